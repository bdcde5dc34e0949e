// One run per folder (a lock), --overwrite that keeps the old run until the new one completes, and the
// signals that stop a run (SIGTERM, SIGHUP) with their exit statuses.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { ARTIFACT_FILES } from "../../src/components/builtins.js";
import { LOCK_FILE } from "../../src/pipeline/run-folder.js";
import { repoRoot } from "../support/testdata.js";
import { CLI, EMBEDDED_PROFILE, filesUnder, makeVideo, processesGone, tempDir } from "./support.js";

const tmp = tempDir("va-runfolder-");
let video = "";
let longer = "";
let a: ModelManager;
let b: ModelManager;
before(async () => {
  video = makeVideo(tmp.dir, "clip.mp4", { size: "320x180", rate: 10, seconds: 2, pattern: "testsrc2" });
  longer = makeVideo(tmp.dir, "longer.mp4", { size: "320x180", rate: 10, seconds: 30, pattern: "testsrc2" });
  [a, b] = await Promise.all([ModelManager.fromProfile(EMBEDDED_PROFILE), ModelManager.fromProfile(EMBEDDED_PROFILE)]);
});
after(async () => {
  await a?.close();
  await b?.close();
  tmp.cleanup();
});

test("two runs into one folder at once: exactly one runs, the other gets ALREADY_EXISTS (20 trials)", async () => {
  for (let trial = 0; trial < 20; trial++) {
    const out = join(tmp.dir, `both-${trial}`);
    const settled = await Promise.allSettled([a.run(video, { out, maxFrames: 1 }), b.run(video, { out, maxFrames: 1 })]);
    const ok = settled.filter((s) => s.status === "fulfilled");
    const refused = settled.flatMap((s) => (s.status === "rejected" ? [s.reason] : []));
    assert.equal(ok.length, 1, `trial ${trial}: ${refused.map(String).join("; ")}`);
    assert.ok(refused[0] instanceof VideoAnalysisError && refused[0].code === "ALREADY_EXISTS", String(refused[0]));
    assert.match(refused[0].message, new RegExp(`in use by process ${process.pid} on |already holds a run`));
    assert.deepEqual(filesUnder(out), [...ARTIFACT_FILES, "manifest.json", "report.html"].sort());
  }
});

test("two CLI runs into one folder at once: one exits 0, the other 1 naming the process that holds it (3 trials)", async () => {
  const main = (out: string) =>
    new Promise<{ code: number | null; stderr: string }>((resolve) => {
      const c = spawn("node", [CLI, "main", "--video", video, "--profile", EMBEDDED_PROFILE, "--out", out, "--quiet", "--max-frames", "3"], { cwd: repoRoot });
      let stderr = "";
      c.stderr.on("data", (x: Buffer) => (stderr += x.toString()));
      c.on("close", (code) => resolve({ code, stderr }));
    });
  for (let trial = 0; trial < 3; trial++) {
    const out = join(tmp.dir, `cli-both-${trial}`);
    const r = await Promise.all([main(out), main(out)]);
    assert.deepEqual(r.map((x) => x.code).sort(), [0, 1], r.map((x) => x.stderr).join("\n"));
    assert.match(r.find((x) => x.code === 1)!.stderr, /\[ALREADY_EXISTS\]/);
    assert.equal(existsSync(join(out, "manifest.json")), true);
    assert.equal(existsSync(join(out, LOCK_FILE)), false);
  }
});

test("a lock left by a process that is gone is taken over, with a warning; a live one is respected", async () => {
  const out = join(tmp.dir, "stale");
  mkdirSync(out, { recursive: true });
  // A pid above the kernel's limit (4194304 at most) belongs to no process.
  writeFileSync(join(out, LOCK_FILE), JSON.stringify({ pid: 4_194_305, host: hostname(), started_at: "2026-01-01T00:00:00.000Z" }));
  const warnings: string[] = [];
  const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? "");
  process.on("warning", onWarning);
  try {
    await a.run(video, { out, maxFrames: 1 });
  } finally {
    process.off("warning", onWarning);
  }
  assert.deepEqual(warnings, ["VASDK_STALE_LOCK"]);
  assert.deepEqual(filesUnder(out), [...ARTIFACT_FILES, "manifest.json", "report.html"].sort());

  const busy = join(tmp.dir, "busy");
  mkdirSync(busy, { recursive: true });
  writeFileSync(join(busy, LOCK_FILE), JSON.stringify({ pid: process.ppid, host: hostname(), started_at: "2026-01-01T00:00:00.000Z" }));
  await assert.rejects(a.run(video, { out: busy, maxFrames: 1 }), (e: unknown) => {
    assert.ok(e instanceof VideoAnalysisError && e.code === "ALREADY_EXISTS");
    assert.match(e.message, new RegExp(`in use by process ${process.ppid} on ${hostname()} since 2026-01-01`));
    return true;
  });
  assert.deepEqual(filesUnder(busy), [LOCK_FILE]);
});

test("--overwrite keeps the previous run whole until the new one completes", async () => {
  const out = join(tmp.dir, "keep");
  await a.run(video, { out, maxFrames: 2 });
  const before = Object.fromEntries(filesUnder(out).map((f) => [f, readFileSync(join(out, f))]));
  // The new run fails (cancelled) after it has written frames: the old run is still there, byte for byte.
  const ac = new AbortController();
  await assert.rejects(a.run(longer, { out, overwrite: true, signal: ac.signal, onProgress: (p) => p.frames === 3 && ac.abort() }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "CANCELLED");
  assert.deepEqual(filesUnder(out), Object.keys(before).sort());
  for (const [f, bytes] of Object.entries(before)) assert.ok(readFileSync(join(out, f)).equals(bytes), `${f} changed`);
  // A new run that completes replaces it; one that writes fewer artifacts leaves none of the old ones.
  const r = await a.run(longer, { out, overwrite: true, maxFrames: 3 });
  assert.equal(r.manifest.analysis.frames, 3);
  const detectionsOnly = await ModelManager.fromProfile(EMBEDDED_PROFILE, {
    overrides: { components: { core_depth_midas: { enabled: false }, core_optical_flow: { enabled: false }, core_clip: { enabled: false }, scene: { enabled: false } } },
  });
  try {
    await detectionsOnly.run(video, { out, overwrite: true, maxFrames: 2 });
  } finally {
    await detectionsOnly.close();
  }
  assert.deepEqual(filesUnder(out), ["core_object_detections/detections.npz", "manifest.json", "report.html"]);
});

for (const [sig, status] of [["SIGTERM", 143], ["SIGHUP", 129]] as const) {
  test(`${sig} on the CLI: exit ${status}, nothing left in --out, ffmpeg gone`, async () => {
    const out = join(tmp.dir, `run-${sig}`);
    const child = spawn("node", [CLI, "main", "--video", longer, "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "5"], { cwd: repoRoot });
    let stderr = "";
    const code = await new Promise<number | null>((resolve) => {
      child.stderr.on("data", (x: Buffer) => {
        stderr += x.toString();
        if (/frames/.test(stderr) && !child.killed) child.kill(sig);
      });
      child.on("close", (c) => resolve(c));
    });
    assert.equal(code, status, stderr);
    assert.deepEqual(filesUnder(out), []);
    assert.deepEqual(await processesGone(longer), []);
  });
}
