// `batch` and runBatch on short real clips with the contract models: one run folder per video, identical
// to `main`'s; complete runs skipped; a run SIGKILLed mid-video done again; a failure that does not stop
// the others; the exit status and batch.json.
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { runBatch, type BatchProgress, type BatchReport } from "../../src/batch/batch.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { CLI, filesUnder, tempDir } from "../pipeline/support.js";
import { repoRoot, skipUnlessTestdata } from "../support/testdata.js";
import { eagerProfile, EMBEDDED_PROFILE, makeClips, mainRuns, OVERRIDES, runDifferences, SOURCE, truncated } from "./support.js";

const run = promisify(execFile);
const skip = skipUnlessTestdata(...SOURCE);
const tmp = tempDir("va-batch-");
let clips: string[] = [];
let longer = "";
let refs = new Map<string, string>();
const inDir = join(tmp.dir, "in");
let killed: ChildProcess | undefined;

/** Runs the CLI; resolves with its exit status and output whatever the status. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await run("node", [CLI, ...args], { cwd: repoRoot });
    return { code: 0, ...r };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

describe("batch: many videos, one run folder each", { skip }, () => {
  before(async () => {
    mkdirSync(inDir);
    clips = makeClips(inDir, 4);
    [longer] = makeClips(tmp.dir, 1, 12, "longer");
    refs = await mainRuns([...clips, longer!], join(tmp.dir, "ref"));
  });
  after(() => {
    if (killed?.exitCode === null && killed.signalCode === null) killed.kill("SIGKILL");
    tmp.cleanup();
  });

  test("CLI: a truncated file fails after its retries, the others complete identical to main's; exit 1; batch.json says which", async () => {
    const bad = truncated(clips[1]!, join(inDir, "zz_truncated.mp4"));
    const out = join(tmp.dir, "out");
    const r = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--retries", "1", "--jobs", "2", "--json", inDir]);
    assert.equal(r.code, 1, r.stderr);
    const summary = JSON.parse(r.stdout) as { counts: Record<string, number>; failed: Array<{ video: string; attempts: number; error: { code: string } }> };
    assert.deepEqual(summary.counts, { pending: 0, running: 0, done: 4, skipped: 0, failed: 1 });
    assert.deepEqual(summary.failed.map((f) => [f.video, f.attempts, f.error.code]), [[bad, 2, "VIDEO_INVALID"]]);

    const b = JSON.parse(readFileSync(join(out, "batch.json"), "utf8")) as BatchReport;
    assert.equal(b.finished, true);
    assert.equal(b.jobs, 2);
    assert.equal(b.profile.name, "embedded_cpu");
    assert.match(b.profile.fingerprint, /^[0-9a-f]{64}$/);
    assert.deepEqual(b.videos.map((v) => [v.run_dir.slice(out.length + 1), v.status]), [["clip00", "done"], ["clip01", "done"], ["clip02", "done"], ["clip03", "done"], ["zz_truncated", "failed"]]);
    const failed = b.videos[4]!;
    assert.equal(failed.attempts, 2);
    assert.match(failed.error!.message, /zz_truncated\.mp4.*truncated/);
    // Nothing of the failed video is left that could look like a run.
    assert.equal(existsSync(failed.run_dir), false);
    for (const v of b.videos.slice(0, 4)) {
      assert.ok(v.frames! >= 3 && v.video_seconds! > 1 && v.wall_ms! > 0 && v.attempts === 1, JSON.stringify(v));
      assert.deepEqual(await runDifferences(v.run_dir, refs.get(v.video)!), [], v.video);
    }
    assert.ok(b.video_seconds_per_second > 0);
    // No temporary file left beside batch.json.
    assert.deepEqual(filesUnder(out).filter((f) => !f.includes("/")), ["batch.json"]);

    // Again, the broken file gone: every run is complete and skipped, untouched; exit 0.
    rmSync(bad);
    const mtimes = b.videos.slice(0, 4).map((v) => statSync(join(v.run_dir, "manifest.json")).mtimeMs);
    const again = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--json", inDir]);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(JSON.parse(again.stdout).counts, { pending: 0, running: 0, done: 0, skipped: 4, failed: 0 });
    assert.deepEqual(b.videos.slice(0, 4).map((v) => statSync(join(v.run_dir, "manifest.json")).mtimeMs), mtimes);
    const b2 = JSON.parse(readFileSync(join(out, "batch.json"), "utf8")) as BatchReport;
    assert.deepEqual(b2.videos.map((v) => v.status), ["skipped", "skipped", "skipped", "skipped"]);
  });

  test("a batch SIGKILLed mid-video: the next batch resumes that video (or starts it again if nothing was committed) and its folder ends identical to main's", async () => {
    const out = join(tmp.dir, "out-killed");
    const eager = eagerProfile(tmp.dir);
    const child = spawn("node", [CLI, "batch", "--profile", eager, "--out", out, "--fps", "2", "--quiet", longer], { cwd: repoRoot, stdio: "ignore" });
    killed = child;
    const runDir = join(out, "longer00");
    // Killed once the run has committed frames (its journal is in the run folder).
    const end = Date.now() + 60_000;
    while (!filesUnder(runDir).includes(".video-analysis.journal.json")) {
      assert.ok(Date.now() < end && child.exitCode === null, "the batch never started writing");
      await new Promise((r) => setTimeout(r, 20));
    }
    child.kill("SIGKILL");
    await new Promise((r) => child.once("exit", r));
    const left = filesUnder(runDir);
    assert.ok(!left.includes("manifest.json") && left.includes(".video-analysis.lock"), left.join(","));

    const r = await cli(["batch", "--profile", eager, "--out", out, "--fps", "2", "--json", longer]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).counts.done, 1);
    assert.deepEqual(await runDifferences(runDir, refs.get(longer)!), []);
    // It went on from the journal's commit, not from the first frame.
    assert.equal(JSON.parse(readFileSync(join(runDir, "manifest.json"), "utf8")).interruptions.length, 1);
  });

  test("runBatch(mm, ...): jobs at once, progress for the whole batch, colliding names told apart by a hash of the path", async () => {
    for (const d of ["a", "b"]) {
      mkdirSync(join(tmp.dir, "twins", d), { recursive: true });
      copyFileSync(clips[d === "a" ? 0 : 2]!, join(tmp.dir, "twins", d, "same.mp4"));
    }
    const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: OVERRIDES });
    const seen: BatchProgress[] = [];
    try {
      const inputs = [join(tmp.dir, "twins", "a", "same.mp4"), join(tmp.dir, "twins", "b", "same.mp4"), clips[3]!];
      const rep = await runBatch(mm, inputs, { out: join(tmp.dir, "out-api"), jobs: 2, onProgress: (p) => seen.push(p) });
      assert.deepEqual(rep.counts, { pending: 0, running: 0, done: 3, skipped: 0, failed: 0 });
      const names = rep.videos.map((v) => v.run_dir.split("/").pop()!);
      assert.match(names[0]!, /^same-[0-9a-f]{8}$/);
      assert.match(names[1]!, /^same-[0-9a-f]{8}$/);
      assert.notEqual(names[0], names[1]);
      assert.equal(names[2], "clip03");
      // The same inputs in another order get the same names.
      const { expandInputs } = await import("../../src/batch/inputs.js");
      const reversed = await expandInputs([...inputs].reverse());
      assert.deepEqual(reversed.map((v) => v.name).reverse(), names);
      assert.equal(Math.max(...seen.map((p) => p.running)), 2);
      const last = seen.at(-1)!;
      assert.equal(last.done, 3);
      assert.ok(last.frames >= 9 && last.fps > 0);
      assert.ok(seen.some((p) => p.etaMs !== null && p.etaMs > 0));
      assert.deepEqual(await runDifferences(rep.videos[2]!.run_dir, refs.get(clips[3]!)!), []);
    } finally {
      await mm.close();
    }
  });

  test("a run folder holding another video's run is not replaced: ALREADY_EXISTS at once, not retried", async () => {
    const out = join(tmp.dir, "out-other");
    cpSync(refs.get(clips[1]!)!, join(out, "clip00"), { recursive: true });
    const r = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--retries", "3", "--json", clips[0]!]);
    assert.equal(r.code, 1);
    const f = JSON.parse(r.stdout).failed[0];
    assert.equal(f.attempts, 1);
    assert.equal(f.error.code, "ALREADY_EXISTS");
    assert.match(f.error.message, /clip01\.mp4/);
  });

  test("bad arguments: no videos, a path that names nothing", async () => {
    const r = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", join(tmp.dir, "x"), join(tmp.dir, "nothing-here.mp4")]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^video-analysis: \[NOT_FOUND\] .*nothing-here\.mp4 is neither a file, a folder nor a pattern/m);
    const g = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", join(tmp.dir, "x"), `${inDir}/*.mkv`]);
    assert.match(g.stderr, /\[NOT_FOUND\] the pattern .*\*\.mkv matches no file/);
    const glob = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", join(tmp.dir, "out-glob"), "--fps", "2", "--json", `${inDir}/clip0[01].mp4`]);
    assert.equal(glob.code, 0, glob.stderr);
    assert.equal(JSON.parse(glob.stdout).counts.done, 2);
    assert.deepEqual(filesUnder(join(tmp.dir, "out-glob")).filter((f) => f.endsWith("manifest.json")), ["clip00/manifest.json", "clip01/manifest.json"]);
    // The same videos under another profile (no --fps 2): their folders hold other runs, which are not replaced.
    const other = await cli(["batch", "--profile", EMBEDDED_PROFILE, "--out", join(tmp.dir, "out-glob"), "--json", `${inDir}/clip0[01].mp4`]);
    assert.equal(other.code, 1);
    assert.deepEqual(JSON.parse(other.stdout).failed.map((f: { error: { code: string } }) => f.error.code), ["ALREADY_EXISTS", "ALREADY_EXISTS"]);
  });
});
