// Resume with the embedded backend on a real video (the people video, all five components, the real
// YOLO11n int8 320 export so ByteTrack has people to track, lose and find again): the CLI is killed with
// SIGKILL at 5 seeded random points, `main --resume` finishes each run, and each is array-equal to a
// clean run (test/python/compare_runs.py: numpy array_equal, dtypes, shapes, and the manifest apart from
// timings, call statistics and the interruptions record). A resume with another profile or another video
// is refused naming what differs; SIGTERM keeps the committed frames and says how to resume.
import assert from "node:assert/strict";
import { execFile, spawn } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { JOURNAL_FILE } from "../../src/pipeline/journal.js";
import { LOCK_FILE } from "../../src/pipeline/run-folder.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { CLI, EMBEDDED_PROFILE, tempDir } from "./support.js";

const exec = promisify(execFile);
const PEOPLE = ["video", "people_768x432_10fps.mp4"];
const CARS = ["video", "cars_768x432_12fps.mp4"];
const YOLO = ["models", "yolo11n_int8_320.onnx"];
const skip = skipUnlessTestdata(...PEOPLE) || skipUnlessTestdata(...CARS) || skipUnlessTestdata(...YOLO);
// 1 fps, 30 frames: person 1 walks in at 8 s and out at 18 s, the next person (a new id) at 25 s.
const FRAMES = 30;

const tmp = tempDir("va-resume-");
after(() => tmp.cleanup());

/** profiles/embedded_cpu.yaml with absolute model paths, the real YOLO, 320 px analysis, commits every frame. */
function writeProfile(name: string, edit: (yaml: string) => string = (y) => y): string {
  const y = readFileSync(EMBEDDED_PROFILE, "utf8")
    .replace("${VIDEO_SDK_MODELS_DIR:-../models/contract}", join(repoRoot, "models", "contract"))
    .replace("    models: {}", `    models: { yolo11n_320: ${testdata(...YOLO)} }`)
    .replace(/ {2}max_side: 640.*/, "  max_side: 320")
    .replace(/^output:\n/m, "output:\n  commit_interval_s: 0\n");
  const path = join(tmp.dir, `${name}.yaml`);
  writeFileSync(path, edit(y));
  return path;
}

let profile = "";
const video = () => testdata(...PEOPLE);
const args = (out: string, extra: string[] = [], p = profile, v = video()) => [CLI, "main", "--video", v, "--profile", p, "--out", out, "--quiet", "--max-frames", String(FRAMES), ...extra];

async function main(out: string, extra: string[] = [], p = profile, v = video()): Promise<{ code: number; stderr: string }> {
  try {
    const r = await exec("node", args(out, extra, p, v), { cwd: repoRoot });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, stderr: x.stderr };
  }
}

function committed(out: string): number {
  try {
    return (JSON.parse(readFileSync(join(out, JOURNAL_FILE), "utf8")) as { frames: number }).frames;
  } catch {
    return 0;
  }
}

/** Starts main and kills it with `signal` once the journal has committed `frames` frames. */
function killAt(out: string, frames: number, signal: NodeJS.Signals, extra: string[] = []): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; atKill: number }> {
  return new Promise((resolve) => {
    const c = spawn("node", args(out, extra), { cwd: repoRoot });
    let stderr = "";
    let atKill = -1;
    c.stderr.on("data", (x: Buffer) => (stderr += x.toString()));
    const poll = setInterval(() => {
      const n = committed(out);
      if (n >= frames && atKill < 0) {
        atKill = n;
        c.kill(signal);
      }
    }, 10);
    c.on("close", (code, sig) => {
      clearInterval(poll);
      resolve({ code, signal: sig, stderr, atKill });
    });
  });
}

async function compare(a: string, b: string): Promise<string> {
  try {
    return (await exec("python3", [join(repoRoot, "test", "python", "compare_runs.py"), a, b])).stdout.trim();
  } catch (e) {
    throw new Error(`runs differ: ${(e as { stdout: string }).stdout}`);
  }
}

/** mulberry32: the kill points are the same on every run of the test. */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe("resume (embedded backend, people video, all five components and tracking)", { skip, timeout: 900_000 }, () => {
  const clean = join(tmp.dir, "clean");
  before(async () => {
    profile = writeProfile("resume");
    const r = await main(clean);
    assert.equal(r.code, 0, r.stderr);
  });

  test("the clean run tracks people with more than one id (what the kills must not disturb)", async () => {
    const { stdout } = await exec("python3", ["-c", "import numpy as np,sys; d=np.load(sys.argv[1]); print(sorted(set(d['track_id'].tolist())))", join(clean, "core_object_detections", "detections.npz")]);
    const ids = JSON.parse(stdout) as number[];
    assert.ok(ids.length >= 2 && ids.every((i) => i > 0), `track ids ${stdout}`);
    assert.deepEqual(JSON.parse(readFileSync(join(clean, "manifest.json"), "utf8")).interruptions, []);
  });

  const rand = seeded(17);
  const points = Array.from({ length: 5 }, () => 1 + Math.floor(rand() * (FRAMES - 2)));
  for (const [i, at] of points.entries()) {
    test(`SIGKILL once ${at} frames are committed, then --resume: array-equal to the clean run`, async () => {
      const out = join(tmp.dir, `kill-${i}`);
      const k = await killAt(out, at, "SIGKILL");
      assert.equal(k.signal, "SIGKILL", `the run ended before frame ${at} was committed: ${k.stderr}`);
      assert.equal(existsSync(join(out, "manifest.json")), false);
      const n = committed(out);
      assert.ok(n >= at && n < FRAMES, `committed ${n}`);
      const r = await main(out, ["--resume"]);
      assert.equal(r.code, 0, r.stderr);
      assert.match(await compare(clean, out), /^equal \(5 files/);
      const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
      assert.equal(m.interruptions.length, 1);
      assert.equal(m.interruptions[0].frames_committed, n);
      assert.equal(m.interruptions[0].reason, null);
      // Nothing of the journal is left in a complete run.
      for (const f of [JOURNAL_FILE, LOCK_FILE]) assert.equal(existsSync(join(out, f)), false, f);
    });
  }

  test("SIGTERM keeps the committed frames (exit 143, the resume command); without --resume the folder is refused; --resume completes", async () => {
    const out = join(tmp.dir, "term");
    const k = await killAt(out, 12, "SIGTERM");
    assert.equal(k.code, 143, k.stderr);
    const n = committed(out);
    assert.match(k.stderr, new RegExp(`cancelled after \\d+ frames; ${n} frames committed in ${out} are kept`));
    assert.match(k.stderr, new RegExp(`resume with: video-analysis main .*--out ${out} .*--resume`));
    const journal = JSON.parse(readFileSync(join(out, JOURNAL_FILE), "utf8"));
    assert.match(journal.stopped.reason, /SIGTERM/);

    const plain = await main(out);
    assert.equal(plain.code, 1);
    assert.match(plain.stderr, /\[ALREADY_EXISTS\] .*holds an interrupted run of .*people_768x432_10fps\.mp4 \(\d+ frames committed\); pass --resume/);

    const r = await main(out, ["--resume"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await compare(clean, out), /^equal/);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    assert.equal(m.interruptions[0].frames_committed, n);
    assert.match(m.interruptions[0].reason, /SIGTERM/);
  });

  test("--no-keep: SIGTERM leaves nothing", async () => {
    const out = join(tmp.dir, "nokeep");
    const k = await killAt(out, 3, "SIGTERM", ["--no-keep"]);
    assert.equal(k.code, 143, k.stderr);
    assert.equal(existsSync(join(out, JOURNAL_FILE)), false);
    assert.equal(existsSync(out), false);
  });

  test("--resume is refused for a changed profile and for another video, naming what differs; the interrupted run stays", async () => {
    const out = join(tmp.dir, "refused");
    const k = await killAt(out, 4, "SIGKILL");
    assert.equal(k.signal, "SIGKILL");
    const n = committed(out);

    const changed = writeProfile("changed", (y) => y.replace(/ {2}scene:\n {4}enabled: true\n {4}top_k: 3/, "  scene:\n    enabled: true\n    top_k: 5"));
    const p = await main(out, ["--resume"], changed);
    assert.equal(p.code, 1);
    assert.match(p.stderr, /\[FAILED_PRECONDITION\] --resume: .* holds an interrupted run \(\d+ frames committed\) made with another profile \(.*resume\.yaml, now .*changed\.yaml\): components\.scene\.top_k: 3 -> 5/);

    const cars = testdata(...CARS);
    const v = await main(out, ["--resume"], profile, cars);
    assert.equal(v.code, 1);
    assert.match(v.stderr, /\[FAILED_PRECONDITION\] --resume: .* of the video .*people_768x432_10fps\.mp4, not of .*cars_768x432_12fps\.mp4/);

    // Refusals touch nothing: the run resumes afterwards, array-equal.
    assert.equal(committed(out), n);
    const r = await main(out, ["--resume"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await compare(clean, out), /^equal/);
  });

  test("--resume on an empty folder runs afresh; on a complete run it is ALREADY_EXISTS", async () => {
    const out = join(tmp.dir, "fresh");
    const r = await main(out, ["--resume"]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(await compare(clean, out), /^equal/);
    const again = await main(out, ["--resume"]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /\[ALREADY_EXISTS\] .*already holds a complete run \(manifest\.json\), nothing to resume/);
  });
});
