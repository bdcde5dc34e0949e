// enqueue / worker / queue status against a real redis-server (started here on a free port, with a
// password): 3 worker processes on 12 short real clips, a worker SIGKILLed mid-job, enqueuing twice,
// a truncated file that fails after its retries. Artifacts are compared with `main`'s, bit for bit.
import assert from "node:assert/strict";
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { Queue } from "bullmq";
import type { QueueStatus, VideoJobData, VideoJobResult } from "../../src/batch/queue.js";
import { CLI, filesUnder, tempDir } from "../pipeline/support.js";
import { redisUnavailable, startRedis, type RedisServer } from "../support/redis-server.js";
import { repoRoot, skipUnlessTestdata } from "../support/testdata.js";
import { eagerProfile, EMBEDDED_PROFILE, makeClips, mainRuns, runDifferences, SOURCE, truncated } from "./support.js";

const run = promisify(execFile);
const skip = skipUnlessTestdata(...SOURCE) || redisUnavailable() || false;
if (skip) console.log(`# queue tests skipped: ${skip}`);
const tmp = tempDir("va-queue-");
let redis: RedisServer;
let clips: string[] = [];
let longer = "";
let refs = new Map<string, string>();
/** Every worker process started, so that a failing test leaves none running. */
const spawned: ChildProcess[] = [];

/** The CLI with the Redis URL in the environment (as a deployment would pass it: not on the command line). */
function env(): NodeJS.ProcessEnv {
  return { ...process.env, VIDEO_SDK_REDIS_URL: redis.url };
}

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    return { code: 0, ...(await run("node", [CLI, ...args], { cwd: repoRoot, env: env() })) };
  } catch (e) {
    const x = e as { code: number; stdout: string; stderr: string };
    return { code: x.code, stdout: x.stdout, stderr: x.stderr };
  }
}

/** A worker process; `log` collects its stderr. */
function worker(queue: string, extra: string[] = []): { child: ChildProcess; log: () => string; exited: Promise<number | null> } {
  const child = spawn("node", [CLI, "worker", "--queue", queue, "--lock-ms", "3000", "--stalled-ms", "1000", ...extra], { cwd: repoRoot, env: env(), stdio: ["ignore", "ignore", "pipe"] });
  spawned.push(child);
  let log = "";
  child.stderr!.on("data", (d) => (log += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, log: () => log, exited };
}

async function status(queue: string): Promise<QueueStatus> {
  const r = await cli(["queue", "status", "--queue", queue, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout) as QueueStatus;
}

/** Job ids each worker log says it started. */
function started(log: string): string[] {
  return [...log.matchAll(/job (va-[0-9a-f]+) started/g)].map((m) => m[1]!);
}

describe("workers on a BullMQ queue (real redis-server)", { skip }, () => {
  before(async () => {
    redis = await startRedis();
    const inDir = join(tmp.dir, "in");
    mkdirSync(inDir);
    clips = makeClips(inDir, 12);
    [longer] = makeClips(tmp.dir, 1, 20, "longer");
    refs = await mainRuns([...clips, longer!], join(tmp.dir, "ref"));
  });
  after(async () => {
    for (const c of spawned) if (c.exitCode === null && c.signalCode === null) c.kill("SIGKILL");
    await redis?.stop();
    tmp.cleanup();
  });

  test("12 videos, 3 worker processes: each video analysed exactly once, identical to main's; enqueuing again adds nothing", async () => {
    const out = join(tmp.dir, "out");
    const args = ["enqueue", "--queue", "q12", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--json", join(tmp.dir, "in")];
    const first = await cli(args);
    assert.equal(first.code, 0, first.stderr);
    const e1 = JSON.parse(first.stdout) as { added: number; existing: number; jobs: Array<{ id: string; video: string; run_dir: string }> };
    assert.equal(e1.added, 12);
    assert.equal(new Set(e1.jobs.map((j) => j.id)).size, 12);
    const second = JSON.parse((await cli(args)).stdout) as { added: number; existing: number };
    assert.deepEqual([second.added, second.existing], [0, 12]);
    assert.equal((await status("q12")).counts.waiting, 12);

    const workers = [worker("q12", ["--until-empty"]), worker("q12", ["--until-empty"]), worker("q12", ["--until-empty"])];
    const codes = await Promise.all(workers.map((w) => w.exited));
    assert.deepEqual(codes, [0, 0, 0], workers.map((w) => w.log()).join("\n"));
    const perWorker = workers.map((w) => started(w.log()));
    const all = perWorker.flat();
    assert.equal(all.length, 12, "each job started once, by one worker");
    assert.deepEqual(new Set(all), new Set(e1.jobs.map((j) => j.id)));
    assert.ok(perWorker.filter((ids) => ids.length > 0).length >= 2, `the work was shared: ${perWorker.map((ids) => ids.length).join("/")}`);

    const s = await status("q12");
    assert.deepEqual(s.counts, { waiting: 0, active: 0, delayed: 0, completed: 12, failed: 0 });
    // Enqueued again after they are done: still nothing added (the completed jobs keep their ids).
    assert.equal(JSON.parse((await cli(args)).stdout).added, 0);

    const q = new Queue<VideoJobData, VideoJobResult>("q12", { connection: { url: redis.url } });
    try {
      for (const j of e1.jobs) {
        const job = (await q.getJob(j.id))!;
        assert.equal(job.attemptsMade, 1);
        assert.equal(job.returnvalue.status, "done");
        assert.ok(job.returnvalue.frames >= 3);
        const p = job.progress as { frames: number; total: number; fps: number };
        assert.deepEqual([p.frames, p.total], [job.returnvalue.frames, job.returnvalue.frames]);
        assert.ok(p.fps > 0);
        assert.deepEqual(await runDifferences(j.run_dir, refs.get(j.video)!), [], j.video);
      }
    } finally {
      await q.close();
    }
    // The Redis password appears in no log, job or manifest.
    for (const w of workers) assert.ok(!w.log().includes(redis.password) && w.log().includes("redis://***@127.0.0.1"));
    for (const f of filesUnder(out).filter((f) => f.endsWith(".json"))) assert.ok(!readFileSync(join(out, f), "utf8").includes(redis.password), f);
  });

  test("a worker SIGKILLed mid-job: another worker takes the stalled job and completes it, identical to main's", async () => {
    const out = join(tmp.dir, "out-kill");
    const e = await cli(["enqueue", "--queue", "qkill", "--profile", eagerProfile(tmp.dir), "--out", out, "--fps", "2", "--json", longer]);
    const job = (JSON.parse(e.stdout) as { jobs: Array<{ id: string; run_dir: string }> }).jobs[0]!;
    const a = worker("qkill");
    // Killed once the job has reported frames and its run has committed some (its journal is there).
    const q = new Queue<VideoJobData, VideoJobResult>("qkill", { connection: { url: redis.url } });
    try {
      const end = Date.now() + 60_000;
      for (;;) {
        const progress = (await q.getJob(job.id))?.progress as { frames?: number } | undefined;
        if ((progress?.frames ?? 0) >= 1 && filesUnder(job.run_dir).includes(".video-analysis.journal.json")) break;
        assert.ok(Date.now() < end && a.child.exitCode === null, `the first worker never got going:\n${a.log()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      a.child.kill("SIGKILL");
      assert.equal(await q.getJobState(job.id), "active");
    } finally {
      await q.close();
    }
    await a.exited;
    assert.deepEqual(started(a.log()), [job.id]);
    assert.ok(!filesUnder(job.run_dir).includes("manifest.json"));

    const b = worker("qkill", ["--until-empty"]);
    assert.equal(await b.exited, 0, b.log());
    assert.deepEqual(started(b.log()), [job.id], b.log());
    const s = await status("qkill");
    assert.deepEqual(s.counts, { waiting: 0, active: 0, delayed: 0, completed: 1, failed: 0 });
    assert.deepEqual(await runDifferences(job.run_dir, refs.get(longer)!), []);
    // The second worker went on from the first one's last commit.
    assert.equal(JSON.parse(readFileSync(join(job.run_dir, "manifest.json"), "utf8")).interruptions.length, 1);
  });

  test("SIGTERM mid-job: the worker stops the run, puts the job back (no attempt used) and exits 0; only committed frames are left, for the next worker to resume", async () => {
    const out = join(tmp.dir, "out-term");
    const e = await cli(["enqueue", "--queue", "qterm", "--profile", eagerProfile(tmp.dir), "--out", out, "--fps", "2", "--json", longer]);
    const job = (JSON.parse(e.stdout) as { jobs: Array<{ id: string; run_dir: string }> }).jobs[0]!;
    const w = worker("qterm");
    const q = new Queue<VideoJobData, VideoJobResult>("qterm", { connection: { url: redis.url } });
    try {
      const end = Date.now() + 60_000;
      while (((await q.getJob(job.id))?.progress as { frames?: number } | undefined)?.frames === undefined) {
        assert.ok(Date.now() < end && w.child.exitCode === null, `the worker never got going:\n${w.log()}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      w.child.kill("SIGTERM");
      assert.equal(await w.exited, 0, w.log());
      assert.match(w.log(), /SIGTERM: stopping; running jobs go back to the queue[\s\S]*released: this worker is stopping[\s\S]*0 done, 0 failed attempts, 1 released/);
      assert.equal(await q.getJobState(job.id), "waiting");
      assert.equal((await q.getJob(job.id))!.attemptsMade, 0);
      const left = filesUnder(job.run_dir);
      assert.ok(!left.includes("manifest.json") && !left.includes(".video-analysis.lock"), left.join(","));
      assert.ok(left.every((f) => f.startsWith(".video-analysis.journal") || f.endsWith(".partial") || !f.includes(".")), left.join(","));
    } finally {
      await q.close();
    }
  });

  test("a truncated file ends failed with its error after its retries; the other videos complete", async () => {
    const bad = truncated(clips[0]!, join(tmp.dir, "truncated.mp4"));
    const out = join(tmp.dir, "out-fail");
    const e = await cli(["enqueue", "--queue", "qfail", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", "--retries", "2", "--backoff-ms", "100", "--json", bad, clips[1]!, clips[2]!]);
    assert.equal(JSON.parse(e.stdout).added, 3);
    const w = worker("qfail", ["--until-empty"]);
    assert.equal(await w.exited, 0, w.log());
    const s = await status("qfail");
    assert.deepEqual(s.counts, { waiting: 0, active: 0, delayed: 0, completed: 2, failed: 1 });
    assert.equal(s.failed.length, 1);
    assert.equal(s.failed[0]!.video, bad);
    assert.equal(s.failed[0]!.attempts, 3);
    assert.match(s.failed[0]!.error, /^\[VIDEO_INVALID\] .*truncated\.mp4 is truncated/);
    assert.equal((w.log().match(/failed \(attempt/g) ?? []).length, 3);
    const text = (await cli(["queue", "status", "--queue", "qfail"])).stdout;
    assert.match(text, /0 waiting, 0 active, 0 delayed \(retry backoff\), 2 completed, 1 failed/);
    assert.match(text, /failed +.*truncated\.mp4 after 3 attempts: \[VIDEO_INVALID\]/);
  });

  test("rediss:// (TLS, a private CA trusted through NODE_EXTRA_CA_CERTS): enqueue, a worker and status work; an untrusted certificate is a clear error", async () => {
    mkdirSync(join(tmp.dir, "tls"));
    const tls = await startRedis({ tls: { dir: join(tmp.dir, "tls") } });
    try {
      assert.match(tls.url, /^rediss:/);
      const env = { ...process.env, VIDEO_SDK_REDIS_URL: tls.url, NODE_EXTRA_CA_CERTS: tls.ca! };
      const out = join(tmp.dir, "out-tls");
      const e = await run("node", [CLI, "enqueue", "--queue", "qtls", "--profile", EMBEDDED_PROFILE, "--out", out, "--fps", "2", clips[3]!], { cwd: repoRoot, env });
      assert.match(e.stdout, /^queue qtls at rediss:\/\/\*\*\*@127\.0\.0\.1:\d+: 1 added, 0 already there/);
      const w = await run("node", [CLI, "worker", "--queue", "qtls", "--until-empty"], { cwd: repoRoot, env });
      assert.match(w.stderr, /1 done, 0 failed attempts/);
      const s = JSON.parse((await run("node", [CLI, "queue", "status", "--queue", "qtls", "--json"], { cwd: repoRoot, env })).stdout) as QueueStatus;
      assert.equal(s.counts.completed, 1);
      assert.deepEqual(await runDifferences(join(out, "clip03"), refs.get(clips[3]!)!), []);
      // Without the CA: refused, with what to do, and no password.
      const bad = await run("node", [CLI, "queue", "status", "--queue", "qtls"], { cwd: repoRoot, env: { ...env, NODE_EXTRA_CA_CERTS: "" } }).then(() => assert.fail("accepted an untrusted certificate"), (x: { stderr: string }) => x.stderr);
      assert.match(bad, /\[UNAVAILABLE\] Redis at rediss:\/\/\*\*\*@127\.0\.0\.1:\d+: .*certificate.*NODE_EXTRA_CA_CERTS/);
      assert.ok(!bad.includes(tls.password));
    } finally {
      await tls.stop();
    }
  });

  test("a wrong password is UNAUTHENTICATED, and the password is not printed", async () => {
    const wrong = redis.url.replace(redis.password, "not-the-password");
    const r = await cli(["queue", "status", "--redis", wrong]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\[UNAUTHENTICATED\] Redis at redis:\/\/\*\*\*@127\.0\.0\.1:\d+/);
    assert.ok(!r.stderr.includes("not-the-password"));
  });
});
