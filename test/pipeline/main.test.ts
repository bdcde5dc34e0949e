// `main` end to end on small generated videos with the contract models: the run folder, the manifest,
// the CLI, bad inputs, failures and cancellation (nothing left behind).
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { ARTIFACT_FILES } from "../../src/components/builtins.js";
import { probeVideo } from "../../src/video/metadata.js";
import { repoRoot } from "../support/testdata.js";
import { CLI, contractBackend, EMBEDDED_PROFILE, ffmpegRun, filesUnder, makeVideo, npzDifferences, ProbeBackend, processesGone, tempDir } from "./support.js";

const run = promisify(execFile);
const tmp = tempDir("va-main-");
const files: Record<string, string> = {};

before(() => {
  // 320x180 routes every family to its small branch: the cheapest contract models.
  files.video = makeVideo(tmp.dir, "clip.mp4", { size: "320x180", rate: 10, seconds: 3, pattern: "testsrc2" });
  files.longer = makeVideo(tmp.dir, "longer.mp4", { size: "320x180", rate: 10, seconds: 20, pattern: "testsrc2" });
  files.text = join(tmp.dir, "notes.mp4");
  writeFileSync(files.text, "this is a text file with a video's name\n");
  files.audio = join(tmp.dir, "audio.m4a");
  ffmpegRun(["-f", "lavfi", "-i", "sine=d=1", files.audio]);
  files.truncated = join(tmp.dir, "truncated.mp4");
  writeFileSync(files.truncated, readFileSync(files.longer).subarray(0, Math.floor(readFileSync(files.longer).length / 2)));
  files.zero = join(tmp.dir, "zero.y4m");
  writeFileSync(files.zero, "YUV4MPEG2 W320 H240 F10:1 Ip A1:1 C420jpeg\n");
});
after(() => tmp.cleanup());

describe("main: a run folder from the contract models", () => {
  test("CLI --json: every artifact of SPEC section 4 and a manifest naming every model's branch", async () => {
    const out = join(tmp.dir, "run-cli");
    const { stdout } = await run("node", [CLI, "main", "--video", files.video!, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--json"], { cwd: repoRoot });
    const summary = JSON.parse(stdout) as { frames: number; artifacts: Array<{ path: string }>; peak_rss_bytes: number };
    assert.equal(summary.frames, 6); // 3 s at 2 fps
    assert.ok(summary.peak_rss_bytes > 10 << 20);
    assert.deepEqual(filesUnder(out), [...ARTIFACT_FILES, "manifest.json", "report.html"].sort());
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.video.width, 320);
    assert.equal(m.analysis.frames, 6);
    // The test video has no B-frames (x264 ultrafast), so every frame is a reference and all are decoded.
    assert.deepEqual(m.analysis, {
      width: 320, height: 180, fps: 2, frames: 6, first_timestamp: 0, last_timestamp: 2.5, max_frames: null,
      decode: { mode: "full", reason: "only 0 of 30 frames could be left out" },
      decoding: {
        source_frames: 30, frames_to_decode: 30, frames_decoded: 30, frames_lost: 0, frames_expected: 6, frames_delivered: 6,
        errors: 0, error_lines: [], strict: false, stopped_early: false,
      },
      timestamps: { breaks: "rebase", rebased: [] },
    });
    assert.equal(m.profile.name, "embedded_cpu");
    const slots = m.models_used.map((u: { slot: string }) => u.slot).sort();
    assert.deepEqual(slots, ["core_clip.image", "core_clip.text", "core_depth_midas", "core_object_detections", "core_optical_flow", "scene"]);
    const branch = Object.fromEntries(m.models_used.map((u: { slot: string; branch: string }) => [u.slot, u.branch]));
    assert.deepEqual(branch, {
      core_depth_midas: "midas_256",
      core_optical_flow: "raft_256",
      "core_clip.image": "clip_image_224",
      "core_clip.text": "clip_text",
      scene: "places365_resnet50_224",
      core_object_detections: "yolo11n_320",
    });
    for (const u of m.models_used) {
      assert.equal(u.backend, "embedded");
      assert.equal(u.branch, m.resolved_model_mapping[u.slot].model);
      assert.ok(u.contract.inputs.length > 0 && u.contract.outputs.length > 0);
      assert.ok(u.latency_ms.p50 > 0 && u.latency_ms.p95 >= u.latency_ms.p50);
    }
    const calls = Object.fromEntries(m.models_used.map((u: { slot: string; calls: number }) => [u.slot, u.calls]));
    assert.deepEqual(calls, { core_depth_midas: 6, core_optical_flow: 5, "core_clip.image": 6, "core_clip.text": 6, scene: 6, core_object_detections: 6 });
    const art = Object.fromEntries(m.artifacts.map((a: { path: string; arrays: unknown }) => [a.path, a.arrays]));
    assert.deepEqual(art["core_depth_midas/depth.npz"].depth, { dtype: "float32", shape: [6, 256, 256] });
    assert.deepEqual(art["core_optical_flow/flow.npz"].flow, { dtype: "float32", shape: [5, 2, 256, 256] });
    assert.deepEqual(art["core_clip/embeddings.npz"].similarity, { dtype: "float32", shape: [6, 6] });
    assert.ok(Object.keys(m.timings.stages_ms).includes("inference"));
  });

  test("a folder holding a run is refused (ALREADY_EXISTS) and replaced with overwrite", async () => {
    const out = join(tmp.dir, "run-twice");
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: { analysis: { fps: 1 } } });
    try {
      await mm.run(files.video!, { out });
      const first = readFileSync(join(out, "manifest.json"), "utf8");
      await assert.rejects(mm.run(files.video!, { out }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "ALREADY_EXISTS" && e.message.includes(out));
      assert.equal(readFileSync(join(out, "manifest.json"), "utf8"), first);
      const r = await mm.run(files.video!, { out, overwrite: true, maxFrames: 2 });
      assert.equal(r.manifest.analysis.frames, 2);
      assert.equal(r.manifest.analysis.max_frames, 2);
      assert.deepEqual(filesUnder(out), [...ARTIFACT_FILES, "manifest.json", "report.html"].sort());
    } finally {
      await mm.close();
    }
  });
  test("reused buffers and fitting workers: no input changes while its call is in flight; answers out of order give the same artifacts", async () => {
    const plain = await ModelManager.fromProfile(EMBEDDED_PROFILE);
    const probe = new ProbeBackend(await contractBackend());
    probe.jitterMs = 15;
    const shuffled = await ModelManager.fromProfile(EMBEDDED_PROFILE, { backend: probe, overrides: { concurrency: { max_in_flight: 3, preprocess_workers: 2 } } });
    const a = join(tmp.dir, "run-reuse-plain");
    const b = join(tmp.dir, "run-reuse-shuffled");
    try {
      await plain.run(files.longer!, { out: a });
      const r = await shuffled.run(files.longer!, { out: b });
      assert.ok(r.manifest.analysis.frames >= 20);
      assert.equal(probe.rewrittenInputs, 0);
      for (const f of ARTIFACT_FILES) assert.deepEqual(await npzDifferences(join(a, f), join(b, f)), [], f);
    } finally {
      await plain.close();
      await shuffled.close();
      await probe.close();
    }
  });

  test("output.float16: depth and flow stored as float16, within half precision of the float32 run", async () => {
    const full = await ModelManager.fromProfile(EMBEDDED_PROFILE);
    const half = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: { output: { float16: true } } });
    const a = join(tmp.dir, "run-f32");
    const b = join(tmp.dir, "run-f16");
    try {
      await full.run(files.video!, { out: a, maxFrames: 4 });
      const r = await half.run(files.video!, { out: b, maxFrames: 4 });
      const arrays = Object.fromEntries(r.manifest.artifacts.map((x) => [x.path, x.arrays]));
      assert.equal(arrays["core_depth_midas/depth.npz"]!.depth!.dtype, "float16");
      assert.equal(arrays["core_optical_flow/flow.npz"]!.flow!.dtype, "float16");
      const script =
        "import sys,numpy as np\n" +
        "for f,k in [('core_depth_midas/depth.npz','depth'),('core_optical_flow/flow.npz','flow')]:\n" +
        "  x=np.load(sys.argv[1]+'/'+f)[k]; y=np.load(sys.argv[2]+'/'+f)[k]\n" +
        "  assert y.dtype==np.float16 and x.shape==y.shape, (f, y.dtype, x.shape, y.shape)\n" +
        "  assert np.allclose(x, y.astype(np.float32), rtol=1e-3, atol=1e-3), f\n" +
        "print('ok')";
      const { stdout } = await run("python3", ["-c", script, a, b]);
      assert.equal(stdout.trim(), "ok");
    } finally {
      await full.close();
      await half.close();
    }
  });

  test("metadata probed beforehand (or its promise) is used as it is; another video's is refused", async () => {
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE);
    try {
      // A marked copy shows that run() took it rather than probing again.
      const metadata = probeVideo(files.video!).then((m) => ({ ...m, codec: `${m.codec} (probed before)` }));
      const r = await mm.run(files.video!, { out: join(tmp.dir, "run-probed"), maxFrames: 2, metadata });
      assert.match(r.manifest.video.codec, /\(probed before\)$/);
      assert.equal(r.manifest.analysis.frames, 2);
      const other = join(tmp.dir, "run-other");
      await assert.rejects(
        mm.run(files.video!, { out: other, metadata: await probeVideo(files.longer!) }),
        (e: unknown) => e instanceof VideoAnalysisError && e.code === "INVALID_ARGUMENT" && e.message.includes(files.longer!),
      );
      assert.ok(!existsSync(other));
    } finally {
      await mm.close();
    }
  });

  test("every routed model starts loading before the prompts are embedded, not at the first frame", async () => {
    const probe = new ProbeBackend(await contractBackend());
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { backend: probe });
    try {
      const r = await mm.run(files.video!, { out: join(tmp.dir, "run-warm"), maxFrames: 2 });
      const firstInfer = probe.log.findIndex((l) => l.startsWith("infer "));
      assert.ok(firstInfer > 0 && probe.log[firstInfer] === "infer clip_text", probe.log.slice(0, 10).join(", "));
      const early = new Set(probe.log.slice(0, firstInfer));
      for (const m of r.manifest.models_used) assert.ok(early.has(`metadata ${m.name}`), `${m.name}: ${probe.log.slice(0, firstInfer).join(", ")}`);
    } finally {
      await mm.close();
      await probe.close();
    }
  });
});

describe("main: bad inputs give an error naming the file and leave nothing", () => {
  const cases: Array<[string, () => string, string, RegExp]> = [
    ["a missing file", () => join(tmp.dir, "absent.mp4"), "NOT_FOUND", /does not exist/],
    ["a file that is not a video", () => files.text!, "VIDEO_INVALID", /not a video/],
    ["a file with no video stream", () => files.audio!, "VIDEO_INVALID", /no video stream/],
    ["a truncated file", () => files.truncated!, "VIDEO_INVALID", /truncated/],
    ["a video stream with zero frames", () => files.zero!, "VIDEO_INVALID", /no frames/],
  ];
  let mm: ModelManager;
  before(async () => {
    mm = await ModelManager.fromProfile(EMBEDDED_PROFILE);
  });
  after(() => mm.close());
  for (const [what, path, code, re] of cases) {
    test(what, async () => {
      const out = join(tmp.dir, `bad-${code}-${what.replaceAll(" ", "-")}`);
      await assert.rejects(mm.run(path(), { out }), (e: unknown) => {
        assert.ok(e instanceof VideoAnalysisError, String(e));
        assert.equal(e.code, code);
        assert.match(e.message, re);
        assert.ok(e.message.includes(path()), `the message names the file: ${e.message}`);
        return true;
      });
      assert.deepEqual(filesUnder(out), []);
    });
  }

  test("the CLI prints one line naming the file and exits 1", async () => {
    const out = join(tmp.dir, "bad-cli");
    const missing = join(tmp.dir, "nope.mp4");
    await assert.rejects(run("node", [CLI, "main", "--video", missing, "--profile", EMBEDDED_PROFILE, "--out", out], { cwd: repoRoot }), (e: unknown) => {
      const err = e as { code: number; stderr: string };
      assert.equal(err.code, 1);
      assert.match(err.stderr, /^video-analysis: \[NOT_FOUND\] Video file .*nope\.mp4 does not exist/);
      return true;
    });
    assert.deepEqual(filesUnder(out), []);
  });
});

describe("main: failures and cancellation leave no artifact", () => {
  // Call 1 is the first prompt's embedding, before any frame (ffmpeg has already started); call 40 is mid-run.
  // With fitting workers too: frames in shared memory, fits in flight when the failure comes.
  for (const [call, when, fitWorkers] of [[1, "before the first frame", 0], [40, "in the middle of the run", 0], [40, "in the middle of a run with fitting workers", 2]] as const) {
    test(`a backend failure ${when}: its error, the folder is removed, ffmpeg is stopped`, async () => {
      const probe = new ProbeBackend(await contractBackend());
      probe.failAt = { call, error: new VideoAnalysisError("UNAVAILABLE", "the server went away") };
      const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { backend: probe, overrides: { concurrency: { preprocess_workers: fitWorkers } } });
      const out = join(tmp.dir, `run-fails-${call}-${fitWorkers}`);
      try {
        await assert.rejects(mm.run(files.longer!, { out }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "UNAVAILABLE");
        assert.deepEqual(filesUnder(out), []);
        assert.deepEqual(await processesGone(files.longer!), [], "ffmpeg is not left running");
      } finally {
        await mm.close();
        await probe.close();
      }
    });
  }

  test("a failure in an existing folder removes only what the run wrote", async () => {
    const probe = new ProbeBackend(await contractBackend());
    probe.failAt = { call: 12, error: new VideoAnalysisError("INTERNAL", "boom") };
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { backend: probe });
    const out = join(tmp.dir, "run-fails-existing");
    mkdirSync(out, { recursive: true });
    writeFileSync(join(out, "notes.txt"), "mine");
    try {
      await assert.rejects(mm.run(files.longer!, { out }), /boom/);
      assert.deepEqual(filesUnder(out), ["notes.txt"]);
    } finally {
      await mm.close();
      await probe.close();
    }
  });

  test("AbortSignal: CANCELLED, ffmpeg killed, nothing in the folder", async () => {
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE);
    const out = join(tmp.dir, "run-aborted");
    const ac = new AbortController();
    let seen = 0;
    try {
      await assert.rejects(
        mm.run(files.longer!, { out, signal: ac.signal, onProgress: (p) => (seen = p.frames) === 3 && ac.abort() }),
        (e: unknown) => e instanceof VideoAnalysisError && e.code === "CANCELLED" && /nothing was written/.test(e.message),
      );
      assert.equal(seen, 3);
      assert.deepEqual(filesUnder(out), []);
      assert.deepEqual(await processesGone(files.longer!), []);
    } finally {
      await mm.close();
    }
  });

  test("Ctrl-C on the CLI: exit 130 after cleaning up", async () => {
    const out = join(tmp.dir, "run-sigint");
    const child = spawn("node", [CLI, "main", "--video", files.longer!, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "5"], { cwd: repoRoot });
    let stderr = "";
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (b: Buffer) => {
        stderr += b.toString();
        // The first progress line means frames are flowing and artifacts are being written.
        if (/frames/.test(stderr) && !child.killed) child.kill("SIGINT");
      });
      child.on("close", (c) => resolve(c));
    });
    assert.equal(code, 130, stderr);
    assert.match(stderr, /CANCELLED/);
    assert.deepEqual(filesUnder(out), []);
  });
});
