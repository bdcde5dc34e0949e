// Honest time: timestamp breaks (an MPEG-TS of concatenated segments) rebased or refused, decoding errors
// of a damaged file counted, warned about and recorded (fatal with --strict), and every artifact's
// source_frame_index checked against an independent count of the video's frames (ffprobe).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { readFrames, type Frame } from "../../src/video/frame-reader.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { CLI, EMBEDDED_PROFILE, ffmpegRun, loadNpz, tempDir } from "./support.js";
import { ffprobeJson } from "../video/fixtures.js";

const run = promisify(execFile);
const tmp = tempDir("va-time-");
const skip = skipUnlessTestdata("video", "cars_768x432_12fps.mp4");
const files: Record<string, string> = {};

before(() => {
  if (skip) return;
  // Two 2 s MPEG-TS segments cut from a real video, joined byte for byte: the second restarts the clock.
  const seg = join(tmp.dir, "seg.ts");
  ffmpegRun(["-i", testdata("video", "cars_768x432_12fps.mp4"), "-t", "2", "-c:v", "libx264", "-preset", "ultrafast", "-g", "5", "-an", "-f", "mpegts", seg]);
  files.joined = join(tmp.dir, "joined.ts");
  writeFileSync(files.joined, Buffer.concat([readFileSync(seg), readFileSync(seg)]));
  // 10 s of the people video with the middle 40% of its bytes overwritten by noise (a fixed seed).
  const ten = join(tmp.dir, "ten.mp4");
  ffmpegRun(["-i", testdata("video", "people_768x432_10fps.mp4"), "-t", "10", "-c", "copy", ten]);
  const b = readFileSync(ten);
  let x = 12345;
  for (let i = Math.floor(b.length * 0.3); i < Math.floor(b.length * 0.7); i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    b[i] = x >>> 24;
  }
  files.damaged = join(tmp.dir, "damaged.mp4");
  writeFileSync(files.damaged, b);
});
after(() => tmp.cleanup());

async function collect(path: string, options: Parameters<typeof readFrames>[1]): Promise<Array<Omit<Frame, "data">>> {
  const r = readFrames(path, options);
  const out: Array<Omit<Frame, "data">> = [];
  for await (const f of r) {
    const { data, ...rest } = f;
    out.push(rest);
    r.recycle(data);
  }
  return out;
}

const increasing = (xs: number[]) => xs.every((v, i) => i === 0 || v > xs[i - 1]!);

/** Every frame's pts in presentation order, as ffprobe decodes them (an independent count). */
function probedFrameTimes(path: string): number[] {
  const j = ffprobeJson(path, "-select_streams v:0 -show_entries frame=best_effort_timestamp_time") as { frames: Array<{ best_effort_timestamp_time: string }> };
  return j.frames.map((f) => Number(f.best_effort_timestamp_time));
}

describe("timestamp breaks", { skip }, () => {
  test("the reader rebases a restart: times strictly increase, the break is reported, the frame numbers run on", async () => {
    const frames = await collect(files.joined!, { fps: 2, width: 64 });
    const times = frames.map((f) => f.timestamp);
    assert.ok(increasing(times), `timestamps ${times}`);
    // 25 frames per 2 s segment at 12.5 fps: the second segment's first frame is number 25, placed one
    // frame interval (0.08 s) after the last frame of the first (1.92 s).
    const after = frames.filter((f) => f.afterBreak);
    assert.equal(after.length, 1);
    assert.equal(after[0]!.sourceIndex, 25);
    assert.ok(Math.abs(after[0]!.timestamp - 2.0) < 1e-9, `${after[0]!.timestamp}`);
    assert.ok(increasing(frames.map((f) => f.sourceIndex)));
    assert.equal(frames.at(-1)!.sourceIndex, 44);
    // Without rebasing the select filter would pick no frame of the second segment at all.
    assert.equal(frames.length, 8);
  });

  test("main: every artifact's time increases, the manifest names the break, no flow pair spans it", async () => {
    const out = join(tmp.dir, "run-joined");
    const { stdout, stderr } = await run("node", [CLI, "main", "--video", files.joined!, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--json"], { cwd: repoRoot });
    assert.equal(JSON.parse(stdout).frames, 8);
    const warnings = stderr.split("\n").filter((l) => l.includes("VASDK_TIMESTAMP_BREAKS"));
    assert.equal(warnings.length, 1, stderr);
    assert.match(warnings[0]!, /1 timestamp break rebased at frame 25 \(1\.92 s -> 0 s\)/);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.deepEqual(m.analysis.timestamps, { breaks: "rebase", rebased: [{ source_frame_index: 25, previous_time: 1.92, time: 0, offset: 2 }] });
    for (const file of ["core_depth_midas/depth.npz", "core_clip/embeddings.npz", "scene/places.npz"]) {
      const z = await loadNpz(join(out, file));
      assert.ok(increasing(z.timestamp!.values as number[]), `${file}: ${z.timestamp!.values}`);
      assert.deepEqual(z.source_frame_index!.values, [0, 7, 13, 19, 25, 32, 38, 44], file);
    }
    const det = await loadNpz(join(out, "core_object_detections/detections.npz"));
    assert.ok(increasing(det.frames_timestamp!.values as number[]));
    assert.deepEqual(det.frames_source_index!.values, [0, 7, 13, 19, 25, 32, 38, 44]);
    // 8 frames, 7 consecutive pairs, less the one across the break (19 -> 25).
    const flow = await loadNpz(join(out, "core_optical_flow/flow.npz"));
    assert.deepEqual(flow.source_frame_index!.values, [0, 7, 13, 25, 32, 38]);
    assert.deepEqual(flow.next_source_frame_index!.values, [7, 13, 19, 32, 38, 44]);
    assert.equal(flow.flow!.shape[0], 6);
    for (let i = 0; i < 6; i++) assert.ok((flow.next_timestamp!.values[i] as number) > (flow.timestamp!.values[i] as number));
  });

  test("input.timestamp_breaks: error stops the run with VIDEO_INVALID naming the frame, and leaves nothing", async () => {
    const out = join(tmp.dir, "run-joined-error");
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: { analysis: { fps: 2 }, input: { timestamp_breaks: "error" } } });
    try {
      await assert.rejects(mm.run(files.joined!, { out }), (e: unknown) => {
        assert.ok(e instanceof VideoAnalysisError);
        assert.equal(e.code, "VIDEO_INVALID");
        assert.match(e.message, /timestamp break: frame 25 is at 0\.000 s, after a frame at 1\.920 s/);
        assert.match(e.message, /input\.timestamp_breaks: rebase/);
        return true;
      });
    } finally {
      await mm.close();
    }
    assert.ok(!existsSync(join(out, "manifest.json")));
  });
});

describe("decoding errors", { skip }, () => {
  test("a damaged file: one warning line, the counts in the manifest; --strict makes it fatal", async () => {
    const out = join(tmp.dir, "run-damaged");
    const { stdout, stderr } = await run("node", [CLI, "main", "--video", files.damaged!, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "1", "--json"], { cwd: repoRoot });
    const warnings = stderr.split("\n").filter((l) => l.includes("VASDK_DECODE_ERRORS"));
    assert.equal(warnings.length, 1, stderr);
    assert.match(warnings[0]!, /ffmpeg reported \d+ decoding errors \(\d+ of 101 frames decoded, about \d+ frames lost; \d+ of 11 analysis frames delivered/);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const d = m.analysis.decoding;
    assert.ok(d.errors > 0);
    assert.ok(d.error_lines.length > 0);
    assert.equal(d.source_frames, 101);
    assert.ok(d.frames_decoded < 101 && d.frames_decoded > 20, JSON.stringify(d));
    assert.ok(d.frames_delivered < d.frames_expected, JSON.stringify(d));
    assert.equal(d.frames_delivered, JSON.parse(stdout).frames);
    // The frames lost are counted, so the numbers after the gap are still the video's (1 fps of 10 fps: 10 apart).
    const z = await loadNpz(join(out, "core_clip/embeddings.npz"));
    const src = z.source_frame_index!.values as number[];
    const ts = z.timestamp!.values as number[];
    src.forEach((s, i) => assert.equal(s, Math.round(ts[i]! * 10), `frame ${s} at ${ts[i]} s`));
    assert.equal(d.frames_decoded + d.frames_lost, 101);

    const strictOut = join(tmp.dir, "run-damaged-strict");
    const strict = await run("node", [CLI, "main", "--video", files.damaged!, "--profile", EMBEDDED_PROFILE, "--out", strictOut, "--fps", "1", "--strict"], { cwd: repoRoot }).then(
      () => undefined,
      (e: { code: number; stderr: string }) => e,
    );
    assert.ok(strict, "--strict run should fail");
    assert.notEqual(strict.code, 0);
    assert.match(strict.stderr, /VIDEO_INVALID.*decoding errors/);
    assert.ok(!existsSync(join(strictOut, "manifest.json")));
  });

  test("a clean file has no warning and counts what was decoded, also with --max-frames 3", async () => {
    const video = testdata("video", "people_768x432_10fps.mp4");
    const out = join(tmp.dir, "run-max3");
    const { stderr } = await run("node", [CLI, "main", "--video", video, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "1", "--max-frames", "3", "--json"], { cwd: repoRoot });
    assert.doesNotMatch(stderr, /VASDK_/);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const d = m.analysis.decoding;
    assert.equal(d.errors, 0);
    assert.equal(d.stopped_early, true);
    assert.equal(d.frames_delivered, 3);
    assert.equal(d.source_frames, 1394);
    // Frames 0, 10, 20 analysed: at least the frames they depend on were decoded, far from the 1394.
    assert.ok(d.frames_decoded >= 9 && d.frames_decoded < 300, JSON.stringify(d));
    const z = await loadNpz(join(out, "core_depth_midas/depth.npz"));
    assert.deepEqual(z.source_frame_index!.values, [0, 10, 20]);
  });
});

describe("source_frame_index", { skip }, () => {
  test("is the frame's number in the video: ffprobe's frame at that number has the frame's timestamp", async () => {
    for (const [name, fps, sparse] of [["people_768x432_10fps.mp4", 3, true], ["cars_768x432_12fps.mp4", 5, false], ["bottles_640x360_30fps.mp4", 7, true]] as const) {
      const video = testdata("video", name);
      const times = probedFrameTimes(video);
      const frames = await collect(video, { fps, width: 64, sparse });
      assert.ok(frames.length > 20);
      for (const f of frames) {
        const t = times[f.sourceIndex];
        assert.ok(t !== undefined && Math.abs(t - f.timestamp) < 1e-6, `${name}: frame ${f.index} (number ${f.sourceIndex}) at ${f.timestamp} s, ffprobe's at ${t}`);
      }
    }
  });
});
