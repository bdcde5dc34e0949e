// report.html of a real run, opened from disk by headless Chromium (Debian's chromium, driven by
// playwright-core): no console error, no network request, and the charts, the track table, the scene
// timeline and the frame picker agree with the npz files as numpy reads them.
// (The callbacks run in the page; the project compiles without DOM types, hence the structural casts.)
import assert from "node:assert/strict";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { after, before, test } from "node:test";
import { writeReport } from "../../src/report/report.js";
import { loadNpz, tempDir } from "../pipeline/support.js";
import { repoRoot } from "../support/testdata.js";
import { artifactsDir, detectionsNpz, peopleRun, skip as noData } from "./support.js";

const CHROMIUM = process.env.CHROMIUM_PATH ?? ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const skip = noData || (CHROMIUM ? false : "no chromium executable (/usr/bin/chromium; Debian: apt-get install chromium, as scripts/setup.sh does; or set CHROMIUM_PATH)");

type Img = { naturalWidth: number; naturalHeight: number };

const tmp = tempDir("va-report-");
after(() => tmp.cleanup());
const runDir = join(tmp.dir, "run");

before(async () => {
  if (!skip) await peopleRun(runDir);
}, { timeout: 300_000 });

test("main writes report.html and records it (and its image cap) in the manifest", { skip, timeout: 60_000 }, () => {
  const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
  const size = statSync(join(runDir, "report.html")).size;
  assert.equal(m.report.file, "report.html");
  assert.equal(m.report.bytes, size);
  assert.equal(m.report.thumbnails.picker_frames, 40);
  assert.ok(m.report.thumbnails.image_bytes <= m.report.thumbnails.image_bytes_cap);
  const html = readFileSync(join(runDir, "report.html"), "utf8");
  assert.doesNotMatch(html, /<script[^>]+src=|<link[^>]+href="(?!data:)|<img[^>]+src="(?!data:)/, "nothing loaded from elsewhere");
});

/** The data a report page embeds. */
function pageData(html: string): { picker: Array<{ t: number; img: string }>; tracks: Array<{ id: number; thumb: string | null }> } {
  return JSON.parse(/<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html)![1]!);
}

test("main takes the report's frames during the run (no second decode), and they match the frames `report` decodes again", { skip, timeout: 120_000 }, async (t) => {
  const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
  assert.equal(m.report.frames_from, "run");
  const fromRun = pageData(readFileSync(join(runDir, "report.html"), "utf8"));
  const again = await writeReport(runDir, { updateManifest: false });
  assert.equal(again.frames_from, "video");
  const fromVideo = pageData(readFileSync(join(runDir, "report.html"), "utf8"));
  assert.deepEqual(fromRun.picker.map((p) => p.t), fromVideo.picker.map((p) => p.t));
  assert.deepEqual(fromRun.tracks.map((k) => [k.id, k.thumb !== null]), fromVideo.tracks.map((k) => [k.id, true]));
  const sharp = (await import("sharp")).default;
  const pixels = async (uri: string) => sharp(Buffer.from(uri.split(",")[1]!, "base64")).removeAlpha().raw().toBuffer({ resolveWithObject: true });
  // The same annotated frame, by two ways (annotated at the size the run took it, or at the full size,
  // both scaled to 320): alike to within the JPEGs', the scaling's and the line widths' differences, and
  // unlike another frame.
  const meanDiff = (a: Buffer, b: Buffer) => a.reduce((n, v, i) => n + Math.abs(v - b[i]!), 0) / a.length;
  for (const i of [0, 17, 39]) {
    const [a, b] = await Promise.all([pixels(fromRun.picker[i]!.img), pixels(fromVideo.picker[i]!.img)]);
    assert.deepEqual([a.info.width, a.info.height], [b.info.width, b.info.height]);
    const d = meanDiff(a.data, b.data);
    const other = meanDiff(a.data, (await pixels(fromVideo.picker[(i + 20) % 40]!.img)).data);
    t.diagnostic(`picker frame ${i}: mean difference ${d.toFixed(2)} levels from the decoded one, ${other.toFixed(2)} from another frame`);
    assert.ok(d < 8 && d < other / 2, `picker frame ${i}: mean difference ${d.toFixed(2)} levels from the decoded one (${other.toFixed(2)} from another frame)`);
  }
  // Each track's crop: its box in the track's colour around the same region.
  for (const [k, track] of fromRun.tracks.entries()) {
    const [a, b] = await Promise.all([pixels(track.thumb!), pixels(fromVideo.tracks[k]!.thumb!)]);
    assert.ok(Math.abs(a.info.width / a.info.height - b.info.width / b.info.height) < 0.15, `track ${track.id}: crop ${a.info.width}x${a.info.height}, decoded ${b.info.width}x${b.info.height}`);
  }
});

test("the image cap thins the frame picker and the manifest says so", { skip, timeout: 120_000 }, async () => {
  const r = await writeReport(runDir, { imageBytesCap: 250_000 });
  const m = JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8"));
  assert.deepEqual(m.report, r);
  assert.ok(r.thumbnails.picker_frames < 40 && r.thumbnails.picker_frames > 0, `${r.thumbnails.picker_frames} frames`);
  assert.ok(r.thumbnails.image_bytes <= 250_000);
  await writeReport(runDir); // back to the defaults for the browser test
});

test("report.html in headless Chromium: no console error, no request; charts, tracks, scene and frame picker match the npz", { skip, timeout: 300_000 }, async (t) => {
  const { chromium } = await import("playwright-core");
  const browser = await chromium.launch({ executablePath: CHROMIUM!, args: ["--no-sandbox"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
    const errors: string[] = [];
    const requests: string[] = [];
    page.on("console", (msg) => (msg.type() === "error" || msg.type() === "warning") && errors.push(`${msg.type()}: ${msg.text()}`));
    page.on("pageerror", (e) => errors.push(`pageerror: ${e.message}`));
    const url = pathToFileURL(join(runDir, "report.html")).href;
    page.on("request", (r) => r.url() !== url && !r.url().startsWith("data:") && requests.push(r.url()));
    await page.goto(url, { waitUntil: "load" });
    await page.waitForSelector("#tracks-table");

    // Tracks: one row per track id of the npz, with its first and last time.
    const det = await detectionsNpz(runDir);
    const ids = [...new Set(det.rows.filter((r) => r.track >= 0).map((r) => r.track))].sort((a, b) => a - b);
    const table = await page.$$eval("#tracks-table tbody tr", (trs) => trs.map((tr) => Array.from(tr.querySelectorAll("td"), (td) => (td as { textContent: string | null }).textContent ?? "")));
    t.diagnostic(`tracks in the npz: ${JSON.stringify(ids)}; table: ${JSON.stringify(table)}`);
    assert.ok(ids.length >= 1);
    assert.equal(table.length, ids.length);
    for (const [k, id] of ids.entries()) {
      const rows = det.rows.filter((r) => r.track === id);
      const row = table[k]!;
      assert.equal(Number(row[1]), id);
      assert.equal(row[2], det.classNames[rows[0]!.cls]);
      assert.ok(Math.abs(Number(row[3]) - Math.min(...rows.map((r) => r.t))) < 1e-3, `track ${id} first seen ${row[3]}`);
      assert.ok(Math.abs(Number(row[4]) - Math.max(...rows.map((r) => r.t))) < 1e-3, `track ${id} last seen ${row[4]}`);
      assert.equal(Number(row[6]), rows.length);
    }
    const thumbs = await page.$$eval("#tracks-table img", (imgs) => imgs.map((i) => (i as unknown as Img).naturalWidth));
    assert.equal(thumbs.length, ids.length);
    assert.ok(thumbs.every((w) => w > 0), "every track's best-frame thumbnail decodes");

    // CLIP chart: one series per prompt, the npz's similarity over the npz's times.
    const clip = await loadNpz(join(runDir, "core_clip", "embeddings.npz"));
    const prompts = clip.prompts!.values as string[];
    const sim = clip.similarity!.values as number[];
    const chart = await page.evaluate(() => {
      const c = (globalThis as unknown as { report: { charts: Record<string, { data: number[][]; series: Array<{ label: string }> }> } }).report.charts;
      return { clip: { data: c.clip!.data, labels: c.clip!.series.map((s) => s.label) }, det: { data: c.detections!.data, labels: c.detections!.series.map((s) => s.label) } };
    });
    assert.deepEqual(chart.clip.labels.slice(1), prompts);
    const times = clip.timestamp!.values as number[];
    assert.equal(chart.clip.data[0]!.length, times.length);
    times.forEach((tt, i) => assert.ok(Math.abs(chart.clip.data[0]![i]! - tt) < 1e-3));
    prompts.forEach((_, k) => times.forEach((_, i) => assert.ok(Math.abs(chart.clip.data[k + 1]![i]! - sim[i * prompts.length + k]!) < 1e-3, `similarity ${i},${k}`)));
    // Detections chart: per class, the count of each analysed frame.
    for (const [s, label] of chart.det.labels.slice(1).entries()) {
      const cls = det.classNames.indexOf(label);
      det.frames.forEach((f, i) => assert.equal(chart.det.data[s + 1]![i], det.rows.filter((r) => r.frame === f && r.cls === cls).length, `${label} at frame ${f}`));
    }
    assert.ok(chart.det.labels.includes("person"));

    // The scene timeline: the band under a time carries the npz's top label there.
    const scene = await loadNpz(join(runDir, "scene", "places.npz"));
    const k = (scene.top_k_labels!.shape[1] as number) ?? 1;
    const st = scene.timestamp!.values as number[];
    for (const i of [0, Math.floor(st.length / 2), st.length - 1]) {
      const at = st[i]! + 0.01;
      const label = await page.$$eval("#scene-timeline div", (divs, tt) => divs.find((d) => Number(d.dataset.start) <= tt && tt < Number(d.dataset.end))?.dataset.label, at);
      assert.equal(label, scene.top_k_labels!.values[i * k], `scene at ${at} s`);
    }

    // The frame picker: choose a frame, see its time, its scene label, and the annotated image.
    const n = Number(await page.getAttribute("#frame-picker", "max")) + 1;
    assert.equal(n, 40);
    const pick = 17;
    await page.$eval("#frame-picker", (e, v) => {
      (e as unknown as { value: string }).value = String(v);
      e.dispatchEvent(new (globalThis as unknown as { Event: typeof Event }).Event("input"));
    }, pick);
    const shown = await page.$eval("#frame-image", (e) => ({ t: Number(e.getAttribute("data-t")), w: (e as unknown as Img).naturalWidth, h: (e as unknown as Img).naturalHeight }));
    const caption = await page.textContent("#frame-time");
    const ft = det.times[pick]!;
    assert.ok(Math.abs(shown.t - ft) < 1e-3, `picked ${shown.t}, frame ${pick} is at ${ft}`);
    assert.deepEqual([shown.w, shown.h], [320, 180]);
    assert.match(caption ?? "", new RegExp(`^${ft.toFixed(2)} s, scene: ${String(scene.top_k_labels!.values[pick * k]).replace(/[/\\]/g, "\\$&")}$`));

    const depth = await page.$$eval("#depth-strip img", (imgs) => imgs.map((i) => (i as unknown as Img).naturalWidth));
    assert.equal(depth.length, 12);
    assert.ok(depth.every((w) => w === 128));

    const shot = await page.screenshot({ fullPage: true, type: "png" });
    writeFileSync(join(artifactsDir(), "report.png"), shot);
    if (process.env.VIDEO_SDK_UPDATE_DOCS === "1") {
      const sharp = (await import("sharp")).default;
      writeFileSync(join(repoRoot, "docs", "report.jpg"), await sharp(await page.screenshot({ fullPage: true, type: "png" })).resize({ width: 800 }).jpeg({ quality: 70 }).toBuffer());
    }
    t.diagnostic(`screenshot: ${join(artifactsDir(), "report.png")} (${shot.length} bytes); console: ${JSON.stringify(errors)}; requests: ${JSON.stringify(requests)}`);
    assert.deepEqual(errors, []);
    assert.deepEqual(requests, []);
  } finally {
    await browser.close();
  }
});

test("`report` on a run whose video is gone: the page without frames, the manifest saying why; a folder that is no run: NOT_FOUND", { skip, timeout: 120_000 }, async () => {
  const { cpSync } = await import("node:fs");
  const { execFile } = await import("node:child_process");
  const { promisify } = await import("node:util");
  const { CLI } = await import("../pipeline/support.js");
  const dir = join(tmp.dir, "moved");
  cpSync(runDir, dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
  m.video.path = join(tmp.dir, "gone.mp4");
  writeFileSync(join(dir, "manifest.json"), JSON.stringify(m));
  const { stdout } = await promisify(execFile)("node", [CLI, "report", dir, "--json"], { cwd: repoRoot });
  const r = JSON.parse(stdout);
  assert.equal(r.thumbnails.picker_frames, 0);
  assert.equal(r.thumbnails.track_thumbnails, 0);
  assert.equal(r.thumbnails.depth_thumbnails, 12);
  assert.match(r.no_frames, /gone\.mp4.*--video/);
  const { path: _path, ...record } = r;
  assert.deepEqual(JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8")).report, record);
  const html = readFileSync(join(dir, "report.html"), "utf8");
  assert.match(html, /"picker":\[\]/);
  assert.match(html, /"tracks":\[\{"id":/);
  await assert.rejects(promisify(execFile)("node", [CLI, "report", tmp.dir], { cwd: repoRoot }), (e: { code: number; stderr: string }) => e.code === 1 && /\[NOT_FOUND\] .* has no manifest\.json/.test(e.stderr));
});
