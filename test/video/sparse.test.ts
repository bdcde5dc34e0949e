import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { FrameReader, probeVideo, readFrames, type ReadFramesOptions } from "../../src/video/index.js";
import { planSparseInput, type SparseInput, type SparsePlan } from "../../src/video/sparse.js";
import { mp4FrameTimes } from "../../src/video/mp4-index.js";
import { frameTimes } from "../../src/render/overlay.js";
import type { VideoMetadata } from "../../src/video/metadata.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";
import { ffmpegRun, makeVideo, tempDir } from "./fixtures.js";

const tmp = tempDir();
const files: Record<string, string> = {};

// libx264's preset veryfast (and its default) makes B-frames, about half of them never referenced: the
// frames a sparse decode may leave out. (The other tests' videos use ultrafast, which makes none.)
const bframes = ["-preset", "veryfast"];

before(() => {
  const mk = (name: string, rate: number | string, extra: string[] = [], seconds = 4) =>
    (files[name] = makeVideo(tmp.dir, name, { size: "160x120", rate: Number(rate), seconds, pattern: "testsrc2", extra: [...extra, ...bframes] }));
  mk("b30.mp4", 30, ["-g", "30"], 6);
  mk("ntsc.mp4", 30000 / 1001, ["-r", "30000/1001"]);
  mk("faststart.mp4", 25, ["-movflags", "+faststart"]);
  mk("clip.mov", 24);
  files["audio.mp4"] = join(tmp.dir, "audio.mp4");
  ffmpegRun([
    "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=30", "-f", "lavfi", "-i", "sine=d=4",
    "-t", "4", "-c:v", "libx264", ...bframes, "-pix_fmt", "yuv420p", "-c:a", "aac", files["audio.mp4"],
  ]);
  // Cut at 1.3 s without re-encoding: an edit list starts the video after its first frames (which ffmpeg
  // decodes for reference and then drops).
  files["trimmed.mp4"] = join(tmp.dir, "trimmed.mp4");
  ffmpegRun(["-ss", "1.3", "-i", files["b30.mp4"]!, "-c", "copy", files["trimmed.mp4"]]);
  // Without an edit list the first frame's pts is its composition offset, not 0.
  files["noedit.mp4"] = join(tmp.dir, "noedit.mp4");
  ffmpegRun(["-i", files["b30.mp4"]!, "-c", "copy", "-use_editlist", "0", files["noedit.mp4"]]);
  // An empty edit before the video (two edits): not a case the planner takes on.
  files["offset.mp4"] = join(tmp.dir, "offset.mp4");
  ffmpegRun(["-itsoffset", "0.5", "-i", files["b30.mp4"]!, "-c", "copy", files["offset.mp4"]]);
  files["clip.mkv"] = join(tmp.dir, "clip.mkv");
  ffmpegRun(["-i", files["b30.mp4"]!, "-c", "copy", files["clip.mkv"]]);
  // HEVC: x265's defaults (hvc1), two temporal layers (hev1: only the top layer's _N pictures may go), and a
  // deeper B-pyramid at 29.97 fps with audio and the index first.
  const x265 = (name: string, rate: string, params: string, extra: string[] = []) => {
    files[name] = join(tmp.dir, name);
    ffmpegRun([
      "-f", "lavfi", "-i", `testsrc2=size=160x120:rate=${rate}`, ...extra, "-t", "4",
      "-c:v", "libx265", "-x265-params", `log-level=error${params}`, "-pix_fmt", "yuv420p", files[name],
    ]);
  };
  x265("hevc.mp4", "30", "", ["-tag:v", "hvc1"]);
  x265("hevc-layers.mp4", "30", ":temporal-layers=1");
  x265("hevc-pyramid.mp4", "30000/1001", ":bframes=7:b-pyramid=1", ["-f", "lavfi", "-i", "sine=d=4", "-c:a", "aac", "-movflags", "+faststart"]);
  files["ultrafast.mp4"] = makeVideo(tmp.dir, "ultrafast.mp4", { size: "160x120", rate: 30, seconds: 2, pattern: "testsrc2" });
});
after(() => tmp.cleanup());

interface Read {
  data: Buffer[];
  timestamps: number[];
  reader: FrameReader;
}

async function read(reader: FrameReader): Promise<Read> {
  const data: Buffer[] = [];
  const timestamps: number[] = [];
  for await (const f of reader) {
    data.push(Buffer.from(f.data));
    timestamps.push(f.timestamp);
    reader.recycle(f.data);
  }
  return { data, timestamps, reader };
}

function assertSame(sparse: Read, full: Read, what: string): void {
  assert.deepEqual(sparse.timestamps, full.timestamps, `${what}: timestamps`);
  assert.equal(sparse.data.length, full.data.length);
  sparse.data.forEach((d, i) => assert.ok(d.equals(full.data[i]!), `${what}: frame ${i} differs from the full decode's`));
}

/** A reader whose sparse plan is handed over to `tamper` first (and whose index folder is remembered). */
class Tampered extends FrameReader {
  folder: string | undefined;
  constructor(path: string, options: ReadFramesOptions, private readonly tamper: (input: SparseInput) => void = () => {}) {
    super(path, options);
  }
  protected override async planSparse(meta: VideoMetadata, fps: number): Promise<SparsePlan> {
    const plan = await super.planSparse(meta, fps);
    if (plan.input) {
      this.folder = indexFolder(plan.input.url);
      this.tamper(plan.input);
    }
    return plan;
  }
}

/** The temporary folder holding a sparse input's index (from its URL). */
function indexFolder(url: string): string {
  return dirname(/file:([^|]*\/moov)$/.exec(url)![1]!);
}

async function gone(path: string): Promise<boolean> {
  for (let i = 0; i < 100 && existsSync(path); i++) await sleep(10);
  return !existsSync(path);
}

describe("sparse decoding", () => {
  for (const [name, fps] of [
    ["b30.mp4", 5], ["b30.mp4", 1], ["b30.mp4", 7], ["b30.mp4", 12], ["ntsc.mp4", 2.5], ["faststart.mp4", 5],
    ["clip.mov", 5], ["audio.mp4", 5], ["trimmed.mp4", 5], ["noedit.mp4", 5],
    ["hevc.mp4", 5], ["hevc.mp4", 1], ["hevc-layers.mp4", 5], ["hevc-pyramid.mp4", 7],
  ] as const) {
    test(`${name} at ${fps} fps: the same frames and timestamps as a full decode, from fewer decoded frames`, async () => {
      const opts = { fps, width: 96 };
      const sparse = await read(new Tampered(files[name]!, opts));
      const full = await read(readFrames(files[name]!, { ...opts, sparse: false }));
      assertSame(sparse, full, name);
      const d = sparse.reader.stats.decode!;
      assert.equal(d.mode, "sparse", JSON.stringify(d));
      if (d.mode !== "sparse") return;
      assert.ok(d.plannedFrames < 0.9 * d.sourceFrames, `${d.plannedFrames} of ${d.sourceFrames} decoded`);
      assert.ok(d.plannedFrames >= sparse.data.length);
      assert.deepEqual(full.reader.stats.decode, { mode: "full", reason: "sparse: false" });
      assert.ok(await gone((sparse.reader as Tampered).folder!), "the index folder is removed once ffmpeg exits");
    });
  }

  test("ffmpeg sees only the frames to decode: the rewritten index lists them, at their own timestamps", async () => {
    const meta = await probeVideo(files["b30.mp4"]!);
    const plan = await planSparseInput(meta, 5);
    assert.ok(plan.input);
    try {
      const packets = (url: string) =>
        execFileSync("ffprobe", ["-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts,dts", "-of", "csv=p=0", url], { encoding: "utf8" })
          .trim()
          .split("\n");
      const thin = packets(plan.input.url);
      const all = new Set(packets(meta.path));
      assert.equal(thin.length, plan.input.decoded);
      assert.equal(all.size, 180);
      // Every packet left keeps the pts and dts it had in the original file.
      for (const p of thin) assert.ok(all.has(p), `packet ${p} is not one of the original's`);
    } finally {
      await plan.input.dispose();
    }
  });

  for (const [what, tamper, reason] of [
    ["a planned frame that is not the one ffmpeg picks (frame 0)", (s: SparseInput) => void (s.selectedPts = s.selectedPts.map((p, i) => (i === 0 ? p + 1 : p))), /picked frame 0 at pts/],
    ["a planned frame that is not the one ffmpeg picks (frame 5)", (s: SparseInput) => void (s.selectedPts = s.selectedPts.map((p, i) => (i === 5 ? p + 1 : p))), /picked frame 5 at pts/],
    ["a planned frame that never comes", (s: SparseInput) => void (s.selectedPts = [...s.selectedPts, 1e9]), /ended after 30 of 31 planned frames/],
    // As with an ffmpeg built without the concat or subfile protocol.
    ["ffmpeg failing on the rewritten input", (s: SparseInput) => void (s.url = s.url.replace(/^concat:/, "nosuchprotocol:")), /could not decode the sparse input \(exit code \d+: .*/],
  ] as const) {
    test(`${what} makes the reader decode in full: still the same frames`, async () => {
      const opts = { fps: 5, width: 96, highWaterMarkFrames: 1 };
      const reader = new Tampered(files["b30.mp4"]!, opts, tamper);
      const sparse = await read(reader);
      const full = await read(readFrames(files["b30.mp4"]!, { ...opts, sparse: false }));
      assertSame(sparse, full, "after the fallback");
      const d = reader.stats.decode!;
      assert.equal(d.mode, "full");
      assert.ok(d.mode === "full" && d.fellBack && reason.test(d.reason), JSON.stringify(d));
      assert.ok(await gone(reader.folder!), "the abandoned sparse input's folder is removed");
    });
  }

  test("aborting a sparse decode stops ffmpeg and removes the index folder", async () => {
    const ac = new AbortController();
    const reader = new Tampered(files["b30.mp4"]!, { fps: 5, width: 96, signal: ac.signal });
    await assert.rejects(
      (async () => {
        for await (const f of reader) if (f.index === 2) ac.abort();
      })(),
      { name: "VideoAnalysisError", code: "CANCELLED" },
    );
    assert.ok(await gone(reader.folder!));
  });

  for (const [name, options, reason] of [
    ["ultrafast.mp4", { fps: 5 }, /only 0 of 60 frames could be left out/],
    ["clip.mkv", { fps: 5 }, /container matroska/],
    ["offset.mp4", { fps: 5 }, /edit list with 2 entries/],
    ["b30.mp4", {}, /every frame is analysed/],
    ["b30.mp4", { fps: 5, sparse: false }, /sparse: false/],
  ] as const) {
    test(`${name} ${JSON.stringify(options)}: decoded in full, and the stats say why`, async () => {
      const reader = readFrames(files[name]!, { ...options, width: 96 });
      let n = 0;
      for await (const f of reader) (n++, reader.recycle(f.data));
      assert.ok(n > 0);
      const d = reader.stats.decode!;
      assert.equal(d.mode, "full");
      assert.match(d.mode === "full" ? d.reason : "", reason);
    });
  }

  test("the people video at 5 fps: a real camera-style file, the same frames from 61% of them", { skip: skipUnlessTestdata("video", "people_768x432_10fps.mp4") }, async () => {
    const path = testdata("video", "people_768x432_10fps.mp4");
    const opts = { fps: 5, width: 192 };
    const sparse = await read(readFrames(path, opts));
    const full = await read(readFrames(path, { ...opts, sparse: false }));
    assertSame(sparse, full, "people");
    assert.deepEqual(sparse.reader.stats.decode, { mode: "sparse", sourceFrames: 1394, plannedFrames: 849 });
    // What ffmpeg did, counted from its log: exactly the plan.
    assert.equal(sparse.reader.stats.decodedFrames, 849);
  });
});

describe("every frame's time from the MP4 index (render at the source rate, without ffprobe)", () => {
  // b30.mp4's one edit changed in place (version 0 elst: an entry's duration, then its media time):
  // ending before the media does (ffmpeg drops the frames after it); starting at 0, before the first
  // frame is presented; starting between two frames. ffmpeg shifts the last two otherwise than by the
  // edit's start, so the index is not read for any of them.
  const edited = { "short-edit.mp4": (d: number, m: number) => [Math.floor(d / 2), m], "edit-at-0.mp4": (d: number) => [d, 0], "edit-between.mp4": (d: number, m: number) => [d, m + 137] };
  before(() => {
    for (const [name, change] of Object.entries(edited)) {
      const b = readFileSync(files["b30.mp4"]!);
      const at = b.indexOf("elst") + 4;
      assert.ok(at > 4 && b[at] === 0, "b30.mp4 has a version 0 elst");
      const [d, m] = change(b.readUInt32BE(at + 8), b.readInt32BE(at + 12));
      b.writeUInt32BE(d!, at + 8);
      b.writeInt32BE(m!, at + 12);
      writeFileSync((files[name] = join(tmp.dir, name)), b);
    }
  });
  const cases = [
    "b30.mp4", "ntsc.mp4", "faststart.mp4", "clip.mov", "audio.mp4", "trimmed.mp4", "noedit.mp4", "offset.mp4", ...Object.keys(edited), "hevc.mp4", "hevc-pyramid.mp4", "ultrafast.mp4",
  ].map((n) => [n, () => files[n]!] as const);
  const shared = ["people_768x432_10fps.mp4", "cars_768x432_12fps.mp4", "bottles_640x360_30fps.mp4", "sintel_1280x720_23frames.mp4"].map(
    (n) => [n, () => testdata("video", n)] as const,
  );
  for (const [name, path] of [...cases, ...shared]) {
    test(`${name}: the times of the frames ffmpeg outputs, or none where the index asks for more (and ffprobe's are used)`, { skip: shared.some(([n]) => n === name) && skipUnlessTestdata("video", name) }, async () => {
      const meta = await probeVideo(path());
      const times: number[] = [];
      for await (const f of readFrames(path(), { width: 32 })) times.push(f.timestamp);
      const indexed = await mp4FrameTimes(meta.path, meta.streamIndex);
      const used = await frameTimes(meta.path, meta.streamIndex, meta.containerStartTime, meta.container);
      if (name === "offset.mp4" || name in edited) assert.equal(indexed, undefined, "two edits, or one the index cannot place as ffmpeg does: not read from the index");
      else {
        assert.ok(indexed, `${name}: read from the index`);
        assert.deepEqual(Array.from(indexed, (t) => +(t - meta.containerStartTime).toFixed(9)), times.map((t) => +t.toFixed(9)));
      }
      assert.deepEqual(used.map((t) => +t.toFixed(9)), times.map((t) => +t.toFixed(9)), `${name}: render's frame times are the reader's`);
    });
  }
});
