// Rendering a real run (people video, real YOLO11n, ByteTrack): the MP4 as planned (ffprobe), a box's
// colour at its drawn edge in a decoded frame, nothing drawn where nothing was found, cancel, missing layers.
import assert from "node:assert/strict";
import { cpSync, existsSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { OverlayEncoder } from "../../src/render/overlay.js";
import { renderRun, renderSparse } from "../../src/render/render.js";
import { ffmpegFileUrl } from "../../src/video/ffmpeg-tools.js";
import { trackColor } from "../../src/render/colors.js";
import { readFrames } from "../../src/video/frame-reader.js";
import { probeVideo } from "../../src/video/metadata.js";
import { isVideoAnalysisError } from "../../src/errors.js";
import { processesGone, tempDir } from "../pipeline/support.js";
import { repoRoot, testdata } from "../support/testdata.js";
import { FPS, FRAMES, VIDEO, artifactsDir, decodeAll, detectionsNpz, peopleRun, probe, skip } from "./support.js";

const W = 768;
const H = 432;
const tmp = tempDir("va-render-");
after(() => tmp.cleanup());
const runDir = join(tmp.dir, "run");

before(async () => {
  if (!skip) await peopleRun(runDir);
}, { timeout: 300_000 });

/** The analysis frames of the run, decoded by the SDK's reader from the source (no drawing, no re-encode). */
async function sourceFrames(): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const f of readFrames(VIDEO, { fps: FPS })) {
    if (out.length >= FRAMES) break;
    out.push(Uint8Array.from(f.data));
  }
  return out;
}

/** Mean absolute difference of two frames over the pixels where `keep(x, y)`. */
function regionDiff(a: Uint8Array, b: Uint8Array, keep: (x: number, y: number) => boolean): { mean: number; p99: number } {
  const diffs: number[] = [];
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      if (!keep(x, y)) continue;
      const p = (y * W + x) * 3;
      diffs.push((Math.abs(a[p]! - b[p]!) + Math.abs(a[p + 1]! - b[p + 1]!) + Math.abs(a[p + 2]! - b[p + 2]!)) / 3);
    }
  diffs.sort((x, y) => x - y);
  return { mean: diffs.reduce((s, v) => s + v, 0) / diffs.length, p99: diffs[Math.floor(diffs.length * 0.99)]! };
}

test("render at the analysis rate: H.264 yuv420p with the planned frames and duration; boxes in their track's colour; nothing drawn where nothing was found", { skip, timeout: 300_000 }, async (t) => {
  const out = join(tmp.dir, "analysis.mp4");
  const progress: number[] = [];
  const r = await renderRun(runDir, { out, onProgress: (p) => progress.push(p.frames) });
  assert.deepEqual(r.layers, ["boxes", "trails", "depth", "flow", "caption"]);
  const p = probe(out);
  t.diagnostic(`ffprobe: ${JSON.stringify(p)}; render ${r.wall_ms} ms`);
  assert.equal(p.codec, "h264");
  assert.equal(p.pixFmt, "yuv420p");
  // The source's pixels go through untouched, so the MP4 keeps its colour tags (BT.601, limited range).
  assert.deepEqual([p.colorSpace, p.colorRange], ["smpte170m", "tv"]);
  assert.equal(p.frames, FRAMES);
  assert.equal(p.rate, `${FPS}/1`);
  assert.ok(Math.abs(p.duration - FRAMES / FPS) < 0.01, `duration ${p.duration}, planned ${FRAMES / FPS}`);
  assert.deepEqual([p.width, p.height], [W, H]);
  assert.equal(progress.at(-1), FRAMES);
  assert.equal(readdirSync(tmp.dir).filter((f) => f.includes(".tmp-")).length, 0);

  const rendered = decodeAll(out, W, H);
  assert.equal(rendered.length, FRAMES);
  const source = await sourceFrames();
  const det = await detectionsNpz(runDir);
  const inset = (x: number, y: number) => x >= W - W / 4 - 12 && y <= 2 * (H / 4) + 30; // depth and flow insets
  const caption = (_x: number, y: number) => y >= H - 30;

  // A frame with a tracked person: the middle of the box's top edge is the track's colour.
  const rows = det.rows.filter((d) => d.track >= 0 && d.box[2]! - d.box[0]! > 60 && d.box[0]! + 20 < W - W / 4 - 12 && d.box[1]! > 30);
  assert.ok(rows.length > 0, "a tracked box away from the insets");
  const d = rows[Math.floor(rows.length / 2)]!;
  const k = det.frames.indexOf(d.frame);
  const frame = rendered[k]!;
  const color = trackColor(d.track, d.cls);
  // The edge is 3 px thick from round(y1) down; a 2x2 chroma block lies wholly inside it. The box is
  // drawn in the decoded yuv420p planes (its colour converted once to Y, U, V and rounded: within 3 levels
  // of R, G, B after ffmpeg's conversion back, test/render/yuv.test.ts); x264 at CRF 20 then softens a
  // 3 px line, which measured 6 levels here: 12 leaves room for other x264 builds.
  const y0 = Math.round(d.box[1]!);
  const ye = y0 % 2 === 0 ? y0 : y0 + 1;
  const xm = Math.round((d.box[0]! + d.box[2]!) / 2) & ~1;
  const px = (x: number, y: number) => Array.from(frame.subarray((y * W + x) * 3, (y * W + x) * 3 + 3));
  const edge = [0, 1, 2].map((c) => (px(xm, ye)[c]! + px(xm + 1, ye)[c]! + px(xm, ye + 1)[c]! + px(xm + 1, ye + 1)[c]!) / 4);
  const off = Math.max(...edge.map((v, c) => Math.abs(v - color[c]!)));
  t.diagnostic(`track ${d.track} at ${d.t} s: edge pixel ${edge.map((v) => v.toFixed(0))} vs colour ${color}; off by ${off.toFixed(1)}`);
  assert.ok(off <= 12, `edge colour ${edge} is not the track's ${color}`);
  const src = source[k]!;
  const before = Array.from(src.subarray((ye * W + xm) * 3, (ye * W + xm) * 3 + 3));
  assert.ok(Math.max(...before.map((v, c) => Math.abs(v - color[c]!))) > 40, "the source pixel there is not already that colour");

  // Frames without detections: outside the insets and the caption the picture is the source's.
  const empty = det.frames.map((f, i) => [f, i] as const).filter(([f]) => !det.rows.some((x) => x.frame === f));
  assert.ok(empty.length >= 5, `${empty.length} frames without detections`);
  for (const [, i] of empty) {
    const diff = regionDiff(rendered[i]!, source[i]!, (x, y) => !inset(x, y) && !caption(x, y));
    assert.ok(diff.mean < 2.5 && diff.p99 < 16, `frame ${i} (no detections) differs from the source: ${JSON.stringify(diff)}`);
  }
  // With a detection: the same holds away from the box, its label and trail; inside its edge it does not.
  const far = (x: number, y: number) => !inset(x, y) && !caption(x, y) && (x < d.box[0]! - 40 || x > d.box[2]! + 40);
  const diffFar = regionDiff(frame, src, far);
  const diffEdge = regionDiff(frame, src, (x, y) => y >= y0 && y < y0 + 3 && x > d.box[0]! + 5 && x < d.box[2]! - 5);
  t.diagnostic(`frame ${k}: away from the box ${JSON.stringify(diffFar)}, on its top edge ${JSON.stringify(diffEdge)}; empty frames ${empty.length}`);
  assert.ok(diffFar.mean < 2.5, `away from the box: ${JSON.stringify(diffFar)}`);
  assert.ok(diffEdge.mean > 30, `on the box's edge: ${JSON.stringify(diffEdge)}`);

  // Kept as a test artifact and, with VIDEO_SDK_UPDATE_DOCS=1, as the README's picture.
  const sharp = (await import("sharp")).default;
  const jpg = await sharp(frame, { raw: { width: W, height: H, channels: 3 } }).jpeg({ quality: 80 }).toBuffer();
  writeFileSync(join(artifactsDir(), "render-frame.jpg"), jpg);
  if (process.env.VIDEO_SDK_UPDATE_DOCS === "1") writeFileSync(join(repoRoot, "docs", "render-frame.jpg"), jpg);
});

test("render at the analysis rate decodes sparsely, as main does, and gives the full decode's frames", { skip, timeout: 300_000 }, async () => {
  const sparse = await renderRun(runDir, { out: join(tmp.dir, "sparse.mp4"), layers: { depth: false, flow: false } });
  const full = await renderRun(runDir, { out: join(tmp.dir, "full.mp4"), layers: { depth: false, flow: false }, sparse: false });
  assert.deepEqual([sparse.decode, full.decode], ["sparse", "full"]);
  const a = decodeAll(join(tmp.dir, "sparse.mp4"), W, H);
  const b = decodeAll(join(tmp.dir, "full.mp4"), W, H);
  assert.equal(a.length, FRAMES);
  assert.equal(b.length, FRAMES);
  a.forEach((f, i) => assert.ok(Buffer.from(f).equals(Buffer.from(b[i]!)), `frame ${i} differs`));
  // Its index files are gone once ffmpeg is done.
  assert.equal(readdirSync(tmpdir()).filter((d) => d.startsWith(`vasdk-sparse-${process.pid}-`)).length, 0);
});

test("a sparse decode that picks other frames than it promised is rendered again from a full decode: the full decode's frames", { skip, timeout: 300_000 }, async () => {
  const real = renderSparse.plan;
  // Its promises are the run's frames, but ffmpeg reads another (shorter) video: it picks other frames.
  renderSparse.plan = async (meta, fps) => {
    const p = await real(meta, fps);
    return p.input ? { input: { ...p.input, url: ffmpegFileUrl(testdata("video", "sintel_1280x720_23frames.mp4")) } } : p;
  };
  try {
    const r = await renderRun(runDir, { out: join(tmp.dir, "fell-back.mp4"), layers: { depth: false, flow: false } });
    assert.equal(r.decode, "full");
  } finally {
    renderSparse.plan = real;
  }
  await renderRun(runDir, { out: join(tmp.dir, "full-2.mp4"), layers: { depth: false, flow: false }, sparse: false });
  const a = decodeAll(join(tmp.dir, "fell-back.mp4"), W, H);
  const b = decodeAll(join(tmp.dir, "full-2.mp4"), W, H);
  assert.equal(a.length, FRAMES);
  a.forEach((f, i) => assert.ok(Buffer.from(f).equals(Buffer.from(b[i]!)), `frame ${i} differs`));
  assert.equal(readdirSync(tmpdir()).filter((d) => d.startsWith(`vasdk-sparse-${process.pid}-`)).length, 0);
});

test("render takes the video's facts from the run's manifest (no ffprobe) while the file is the size it was; else it probes: the same frames", { skip, timeout: 300_000 }, async () => {
  const layers = { depth: false, flow: false };
  const probeBin = process.env.FFPROBE_PATH;
  // Without an ffprobe to run, a render that needs one fails: this one must not.
  process.env.FFPROBE_PATH = join(tmp.dir, "no-ffprobe-here");
  let recorded;
  try {
    recorded = await renderRun(runDir, { out: join(tmp.dir, "facts-manifest.mp4"), layers });
    // A manifest from before the colour was recorded: ffprobe it is.
    const old = join(tmp.dir, "facts-old");
    cpSync(runDir, old, { recursive: true });
    const m = JSON.parse(readFileSync(join(old, "manifest.json"), "utf8"));
    for (const k of Object.keys(m.video)) if (k.startsWith("color_")) delete m.video[k];
    writeFileSync(join(old, "manifest.json"), JSON.stringify(m));
    await assert.rejects(renderRun(old, { out: join(tmp.dir, "facts-old.mp4"), layers }), (e: unknown) => isVideoAnalysisError(e) && e.code === "FAILED_PRECONDITION" && /ffprobe/.test(e.message));
    if (probeBin === undefined) delete process.env.FFPROBE_PATH;
    else process.env.FFPROBE_PATH = probeBin;
    const probed = await renderRun(old, { out: join(tmp.dir, "facts-old.mp4"), layers });
    assert.deepEqual([recorded.facts, probed.facts], ["manifest", "ffprobe"]);
    const a = decodeAll(join(tmp.dir, "facts-manifest.mp4"), W, H);
    const b = decodeAll(join(tmp.dir, "facts-old.mp4"), W, H);
    assert.equal(a.length, FRAMES);
    a.forEach((f, i) => assert.ok(Buffer.from(f).equals(Buffer.from(b[i]!)), `frame ${i} differs`));
    // The video given elsewhere: not the size it was (a copy with a byte more), or the same size but
    // written since the run began (a plain copy): probed again.
    const grown = join(tmp.dir, "people-grown.mp4");
    cpSync(VIDEO, grown);
    writeFileSync(grown, Buffer.from([0]), { flag: "a" });
    assert.equal((await renderRun(runDir, { out: join(tmp.dir, "facts-grown.mp4"), layers, video: grown })).facts, "ffprobe");
    const copied = join(tmp.dir, "people-copied.mp4");
    cpSync(VIDEO, copied);
    assert.equal((await renderRun(runDir, { out: join(tmp.dir, "facts-copied.mp4"), layers, video: copied })).facts, "ffprobe");
  } finally {
    if (probeBin === undefined) delete process.env.FFPROBE_PATH;
    else process.env.FFPROBE_PATH = probeBin;
  }
});

test("render at the source rate: every source frame of the analysed span, boxes held between analysed frames", { skip, timeout: 300_000 }, async () => {
  const out = join(tmp.dir, "source.mp4");
  const r = await renderRun(runDir, { out, rate: "source", layers: { depth: false, flow: false } });
  const p = probe(out);
  // 40 analysed frames at 2 fps = the first 20 s = 200 frames of the 10 fps source.
  assert.equal(p.frames, 200);
  assert.equal(r.frames, 200);
  assert.equal(p.rate, "10/1");
  assert.ok(Math.abs(p.duration - 20) < 0.01, `duration ${p.duration}`);
  assert.deepEqual(r.layers, ["boxes", "trails", "caption"]);

  // Timing: the first analysed frame with a detection after one without. Its source frame is the first
  // to show the box (in its colour at the top edge), the frame before shows the source there, and the
  // box is held on the source frames up to the next analysed one.
  const det = await detectionsNpz(runDir);
  const rendered = decodeAll(out, W, H);
  const source = decodeAll(VIDEO, W, H, 200);
  const i = det.frames.findIndex((f, j) => j > 0 && det.rows.some((x) => x.frame === f && x.track >= 0) && !det.rows.some((x) => x.frame === det.frames[j - 1]));
  assert.ok(i > 0, "an analysed frame where a detection starts");
  const d = det.rows.find((x) => x.frame === det.frames[i] && x.track >= 0)!;
  const n = Math.round(det.times[i]! * 10);
  const color = trackColor(d.track, d.cls);
  const ye = Math.round(d.box[1]!) + (Math.round(d.box[1]!) % 2);
  const xm = Math.round((d.box[0]! + d.box[2]!) / 2) & ~1;
  const at = (f: Uint8Array) => [0, 1, 2].map((c) => (f[(ye * W + xm) * 3 + c]! + f[(ye * W + xm + 1) * 3 + c]! + f[((ye + 1) * W + xm) * 3 + c]! + f[((ye + 1) * W + xm + 1) * 3 + c]!) / 4);
  const off = (f: Uint8Array, ref: readonly number[]) => Math.max(...at(f).map((v, c) => Math.abs(v - ref[c]!)));
  for (const k of [n, n + 1, n + 4]) assert.ok(off(rendered[k]!, color) <= 12, `source frame ${k} (${k / 10} s): box edge ${at(rendered[k]!)} is not ${color}`);
  assert.ok(off(rendered[n - 1]!, color) > 40, `source frame ${n - 1} (before the detection) has the box's colour`);
  assert.ok(off(rendered[n - 1]!, at(source[n - 1]!)) <= 12, `source frame ${n - 1} (before the detection) is not the source there`);
});

test("a run folder without depth and flow renders without those insets; the inset area is the source's", { skip, timeout: 300_000 }, async () => {
  const dir = join(tmp.dir, "partial");
  cpSync(runDir, dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  m.artifacts = m.artifacts.filter((a: { component: string }) => a.component !== "core_depth_midas" && a.component !== "core_optical_flow");
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
  rmSync(join(dir, "core_depth_midas"), { recursive: true });
  rmSync(join(dir, "core_optical_flow"), { recursive: true });
  const out = join(tmp.dir, "partial.mp4");
  const r = await renderRun(dir, { out });
  assert.deepEqual(r.layers, ["boxes", "trails", "caption"]);
  const rendered = decodeAll(out, W, H);
  const source = await sourceFrames();
  const diff = regionDiff(rendered[0]!, source[0]!, (x, y) => x >= W - W / 4 && y <= H / 2);
  assert.ok(diff.mean < 2.5, `inset area: ${JSON.stringify(diff)}`);
});

// Cancelled at three moments: at the loop's top (progress), while the next layer is drawn (its maps read
// from disk), and while ffmpeg encodes what it holds after the last layer. Each must end CANCELLED, leave
// no file and no ffmpeg, and not hang.
for (const [when, name, abortAt] of [
  ["from a progress call", "cancelled", (p: { frames: number }, ac: AbortController) => p.frames === 20 && ac.abort()],
  ["between layers, while one is drawn", "cancelled-mid", (p: { frames: number }, ac: AbortController) => p.frames >= 20 && setImmediate(() => ac.abort())],
  ["while ffmpeg finishes", "cancelled-late", (p: { frames: number; total: number }, ac: AbortController) => p.frames === p.total && setImmediate(() => ac.abort())],
] as const) {
  test(`render cancelled ${when}: CANCELLED, no file, no ffmpeg left, no hang`, { skip, timeout: 300_000 }, async () => {
    const out = join(tmp.dir, `${name}.mp4`);
    const ac = new AbortController();
    const run = renderRun(runDir, { out, rate: "source", signal: ac.signal, onProgress: (p) => abortAt(p, ac) });
    const hung = new Promise<never>((_, no) => setTimeout(() => no(new Error("still pending 20 s after the abort")), 20_000).unref());
    await assert.rejects(Promise.race([run, hung]), (e: unknown) => isVideoAnalysisError(e) && e.code === "CANCELLED");
    assert.equal(existsSync(out), false);
    assert.deepEqual(readdirSync(tmp.dir).filter((f) => f.startsWith(`${name}.`)), []);
    assert.deepEqual(await processesGone(out), []);
  });
}

test("the encoder after ffmpeg is killed: a pending write and the next one reject, none waits forever", { skip, timeout: 120_000 }, async () => {
  const meta = await probeVideo(VIDEO);
  const frames = 600;
  // Irregular starts (more than 64 runs, as in layer.test.ts): each layer is written once per frame it covers.
  const starts = Array.from({ length: 200 }, (_, i) => i * 3 + (i % 3 === 0 ? 1 : 0) + (i % 7 === 0 ? 1 : 0));
  starts[0] = 0;
  const out = join(tmp.dir, "killed.mp4");
  const enc = new OverlayEncoder(out, meta, { fps: meta.frameRate, frames, layerStarts: starts });
  after(() => enc.abort());
  assert.ok(starts.some((_, i) => enc.copiesOf(i) > 1), "a layer written once per frame it covers");
  const layer = new Uint8Array(enc.layerBytes);
  const within = <T>(p: Promise<T>) => Promise.race([p, new Promise<T>((_, no) => setTimeout(() => no(new Error("still pending after 10 s")), 10_000).unref())]);
  // Fill the pipe until a write waits for room, then kill ffmpeg under it.
  let pending: Promise<void> | undefined;
  for (let i = 0; i < 100 && !pending; i++) {
    const p = enc.write(layer);
    let settled = false;
    void p.then(() => (settled = true), () => (settled = true));
    await new Promise((r) => setImmediate(r));
    if (settled) await p;
    else pending = p;
  }
  assert.ok(pending, "a write waited for the pipe");
  const killed = enc.abort();
  await assert.rejects(within(pending!), (e: unknown) => isVideoAnalysisError(e) && /killed by SIGKILL/.test(e.message));
  await killed;
  await assert.rejects(within(enc.write(layer)), (e: unknown) => isVideoAnalysisError(e));
  assert.equal(existsSync(out), false);
});

test("render of a folder that is not a run: NOT_FOUND naming it", async () => {
  await assert.rejects(renderRun(tmp.dir, { out: join(tmp.dir, "x.mp4") }), (e: unknown) => isVideoAnalysisError(e) && e.code === "NOT_FOUND" && e.message.includes(tmp.dir));
});

