import { createHash } from "node:crypto";
import { createReadStream } from "node:fs";
import { stat } from "node:fs/promises";
import { hostname } from "node:os";
import { join, resolve } from "node:path";
import { Queue, UnrecoverableError, WaitingError, Worker, type ConnectionOptions, type Job } from "bullmq";
import { sdkVersion } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";
import { ModelManager } from "../pipeline/model-manager.js";
import { resolveProfile } from "../pipeline/profile-source.js";
import { expandInputs, type ExpandOptions } from "./inputs.js";
import { redactRedisUrl } from "./redis-url.js";
import { profileFingerprint, runVideo } from "./run-video.js";

/** What a job carries: everything a worker on any machine needs, and no secret (no Redis URL, no token). */
export interface VideoJobData {
  video: string;
  run_dir: string;
  /** The profile's path (absolute; on the storage every worker sees) and the overrides laid over it. */
  profile: string;
  overrides: Record<string, unknown>;
  profile_fingerprint: string;
  sdk_version: string;
  /** What the job id was made from. */
  identity: { size: number; mtime_ms: number } | { sha256: string };
}

/** A finished job's return value. */
export interface VideoJobResult {
  status: "done" | "skipped";
  run_dir: string;
  frames: number;
  video_seconds: number;
  wall_ms: number;
  /** host:pid of the worker that did it. */
  worker: string;
}

/** How a job's progress looks (job.updateProgress). */
export interface VideoJobProgress {
  frames: number;
  total: number | null;
  fps: number;
}

/** BullMQ's connection options for a URL: a worker waits for Redis however long it is away; a client fails fast. */
function connection(url: string, worker = false): ConnectionOptions {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `the Redis URL ${redactRedisUrl(url)} does not parse; pass redis://[user:password@]host:port[/db] or rediss:// for TLS`);
  }
  if (u.protocol !== "redis:" && u.protocol !== "rediss:") {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `the Redis URL must start with redis:// or rediss:// (TLS), got ${u.protocol}//`);
  }
  // ioredis reads rediss:// as TLS. A worker's blocking connection must retry forever (BullMQ's requirement).
  return worker ? { url, maxRetriesPerRequest: null } : { url, maxRetriesPerRequest: 1, retryStrategy: (n: number) => (n > 3 ? null : 200 * n) };
}

/** Redis's errors name host and port, never the password; this adds what to check. */
function redisError(e: unknown, url: string): VideoAnalysisError {
  if (e instanceof VideoAnalysisError) return e;
  const msg = (e as Error)?.message ?? String(e);
  const auth = /NOAUTH|WRONGPASS|invalid password|AUTH/i.test(msg);
  const cert = /certificate|self.signed|CERT_|unable to verify/i.test(msg);
  const hint = auth ? "check the password in the URL"
    : cert ? "the server's TLS certificate is not trusted: for a private CA, point NODE_EXTRA_CA_CERTS at its PEM file"
    : "check that Redis runs there and the URL";
  return new VideoAnalysisError(auth ? "UNAUTHENTICATED" : "UNAVAILABLE", `Redis at ${redactRedisUrl(url)}: ${msg.replaceAll(url, redactRedisUrl(url))}; ${hint}`, { cause: e });
}

async function contentHash(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** A job id: one video (path + size + mtime, or content) under one profile fingerprint and SDK version. */
function jobId(video: string, identity: VideoJobData["identity"], fingerprint: string, version: string): string {
  const who = "sha256" in identity ? `content:${identity.sha256}` : `file:${video}:${identity.size}:${identity.mtime_ms}`;
  return `va-${createHash("sha256").update(`${who}\n${fingerprint}\n${version}`).digest("hex").slice(0, 40)}`;
}

export interface EnqueueOptions extends ExpandOptions {
  /** redis:// or rediss:// URL (with a password if Redis wants one). */
  redis: string;
  queue: string;
  /** The profile's path: every worker reads it there (shared storage). */
  profile: string;
  overrides?: Record<string, unknown>;
  /** The folder the run folders go in: on storage every worker sees, at the same path. */
  out: string;
  /** Identify videos by their content's sha256 instead of path, size and mtime (reads every file). */
  hash?: boolean;
  /** Attempts after the first (default 2), `backoffMs` apart, doubling (default 5000). */
  retries?: number;
  backoffMs?: number;
}

export interface EnqueueReport {
  queue: string;
  added: number;
  existing: number;
  jobs: Array<{ id: string; video: string; run_dir: string; added: boolean }>;
}

/**
 * Adds one job per video to a BullMQ queue. The job id is a hash of the video's identity, the profile's
 * fingerprint and the SDK version, so enqueuing the same videos again adds nothing (while the queue keeps
 * the earlier jobs, done or failed). Run folders are named as `batch` names them, under `out`.
 */
export async function enqueueVideos(inputs: string[], options: EnqueueOptions): Promise<EnqueueReport> {
  const conn = connection(options.redis);
  const videos = await expandInputs(inputs, options);
  const profilePath = resolve(options.profile);
  const overrides = options.overrides ?? {};
  const { profile } = await resolveProfile(profilePath, { overrides });
  const fingerprint = profileFingerprint(profile);
  const version = sdkVersion().version;
  const retries = options.retries ?? 2;
  const out = resolve(options.out);
  const queue = new Queue<VideoJobData, VideoJobResult>(options.queue, { connection: conn });
  queue.on("error", () => undefined); // surfaced by the calls below
  try {
    const jobs: EnqueueReport["jobs"] = [];
    for (const v of videos) {
      const st = await stat(v.video);
      const identity: VideoJobData["identity"] = options.hash ? { sha256: await contentHash(v.video) } : { size: st.size, mtime_ms: st.mtimeMs };
      const id = jobId(v.video, identity, fingerprint, version);
      const data: VideoJobData = { video: v.video, run_dir: join(out, v.name), profile: profilePath, overrides, profile_fingerprint: fingerprint, sdk_version: version, identity };
      let added = false;
      try {
        // BullMQ would return the job already there under this id and add nothing; asked first, to report it.
        if (!(await queue.getJob(id))) {
          await queue.add("video", data, {
            jobId: id,
            attempts: retries + 1,
            backoff: { type: "exponential", delay: options.backoffMs ?? 5000 },
            removeOnComplete: false,
            removeOnFail: false,
          });
          added = true;
        }
      } catch (e) {
        throw redisError(e, options.redis);
      }
      jobs.push({ id, video: v.video, run_dir: data.run_dir, added });
    }
    return { queue: options.queue, added: jobs.filter((j) => j.added).length, existing: jobs.filter((j) => !j.added).length, jobs };
  } finally {
    await queue.close().catch(() => undefined);
  }
}

export interface WorkerOptions {
  redis: string;
  queue: string;
  /** Videos at once in this worker (default 1). */
  concurrency?: number;
  /** How long a job stays this worker's without a renewal (BullMQ lockDuration, default 30000 ms): after it, a
   * worker that died is presumed dead and its job goes back to the queue. */
  lockDurationMs?: number;
  /** How often stalled jobs are looked for (default 30000 ms). */
  stalledIntervalMs?: number;
  /** One line per event (job started, done, failed, released); the Redis URL never appears in them. */
  log?: (line: string) => void;
}

export interface WorkerHandle {
  /**
   * Stops taking jobs, cancels the videos running now and puts their jobs back in the queue (not counted
   * as failed attempts), then disconnects. Their run folders are left for the next worker (which starts them
   * again: see runVideo).
   */
  close(): Promise<void>;
  /** Settles when the worker has closed. */
  closed: Promise<void>;
  /** Jobs this worker finished, failed and released. */
  counts: { done: number; failed: number; released: number };
}

/**
 * Takes videos off a queue filled by enqueueVideos and analyses each with runVideo, the code `batch` runs:
 * complete run folders are skipped, progress goes to job.updateProgress ({ frames, total, fps }) once a
 * second, failures are retried by BullMQ with exponential backoff, and a job whose worker died (its lock
 * expired) is taken by another worker. One ModelManager per profile, shared by the jobs that use it.
 */
export async function runWorker(options: WorkerOptions): Promise<WorkerHandle> {
  const conn = connection(options.redis, true);
  const log = options.log ?? (() => undefined);
  const me = `${hostname()}:${process.pid}`;
  const managers = new Map<string, Promise<ModelManager>>();
  /** Managers of a profile file that changed meanwhile: closed with the worker (jobs may still use them). */
  const retired: Array<Promise<ModelManager>> = [];
  const running = new Set<AbortController>();
  const counts = { done: 0, failed: 0, released: 0 };
  let stopping = false;

  const managerFor = (d: VideoJobData): Promise<ModelManager> => {
    const key = JSON.stringify([d.profile, d.overrides]);
    let m = managers.get(key);
    if (!m) {
      m = ModelManager.fromProfile(d.profile, { overrides: d.overrides });
      managers.set(key, m);
      m.catch(() => managers.delete(key));
    }
    return m;
  };

  const processor = async (job: Job<VideoJobData, VideoJobResult>, token?: string): Promise<VideoJobResult> => {
    const d = job.data;
    if (d.sdk_version !== sdkVersion().version) {
      throw new UnrecoverableError(`[FAILED_PRECONDITION] the job was enqueued for SDK ${d.sdk_version}; this worker runs ${sdkVersion().version}: run workers of that version, or enqueue again`);
    }
    let mm: ModelManager;
    try {
      mm = await managerFor(d);
    } catch (e) {
      throw new Error(e instanceof VideoAnalysisError ? e.toString() : String((e as Error)?.message ?? e));
    }
    if (profileFingerprint(mm.profile) !== d.profile_fingerprint) {
      // The profile file may have changed since this worker loaded it: read it again, once.
      const key = JSON.stringify([d.profile, d.overrides]);
      if (managers.get(key)) {
        retired.push(managers.get(key)!);
        managers.delete(key);
        mm = await managerFor(d).catch((e: unknown) => Promise.reject(new Error(e instanceof VideoAnalysisError ? e.toString() : String(e))));
      }
    }
    if (profileFingerprint(mm.profile) !== d.profile_fingerprint) {
      throw new UnrecoverableError(`[FAILED_PRECONDITION] profile ${d.profile} changed since the job was enqueued (its fingerprint differs); enqueue the video again`);
    }
    const ac = new AbortController();
    running.add(ac);
    let lastProgress = 0;
    log(`job ${job.id} started (attempt ${job.attemptsMade + 1}): ${d.video} -> ${d.run_dir}`);
    try {
      const r = await runVideo(mm, d.video, d.run_dir, {
        signal: ac.signal,
        onProgress: (p) => {
          const now = performance.now();
          if (now - lastProgress < 1000 && p.frames !== p.total) return;
          lastProgress = now;
          job.updateProgress({ frames: p.frames, total: p.total, fps: +p.fps.toFixed(2) } satisfies VideoJobProgress).catch(() => undefined);
        },
      });
      // The last frame's progress, with the true total (the estimate before the run can be off by one).
      await job.updateProgress({ frames: r.frames, total: r.frames, fps: r.wallMs > 0 ? +((r.frames * 1000) / r.wallMs).toFixed(2) : 0 } satisfies VideoJobProgress).catch(() => undefined);
      counts.done++;
      log(`job ${job.id} ${r.status}: ${r.frames} frames${r.status === "done" ? ` in ${(r.wallMs / 1000).toFixed(1)} s` : " (complete run found)"}`);
      return { status: r.status, run_dir: r.runDir, frames: r.frames, video_seconds: r.videoSeconds, wall_ms: Math.round(r.wallMs), worker: me };
    } catch (e) {
      if (stopping && ac.signal.aborted) {
        // Shutting down: the job goes back to the queue for another worker, not counted as an attempt.
        await job.moveToWait(token);
        counts.released++;
        log(`job ${job.id} released: this worker is stopping`);
        throw new WaitingError();
      }
      counts.failed++;
      const msg = e instanceof VideoAnalysisError ? e.toString() : String((e as Error)?.message ?? e);
      log(`job ${job.id} failed (attempt ${job.attemptsMade + 1} of ${job.opts.attempts ?? 1}): ${msg}`);
      // A folder holding another run stays so: no use trying again.
      if (e instanceof VideoAnalysisError && e.code === "ALREADY_EXISTS") throw new UnrecoverableError(msg);
      throw new Error(msg);
    } finally {
      running.delete(ac);
    }
  };

  const worker = new Worker<VideoJobData, VideoJobResult>(options.queue, processor, {
    connection: conn,
    concurrency: options.concurrency ?? 1,
    ...(options.lockDurationMs ? { lockDuration: options.lockDurationMs } : {}),
    ...(options.stalledIntervalMs ? { stalledInterval: options.stalledIntervalMs } : {}),
    autorun: false,
  });
  let lastError = "";
  worker.on("error", (e) => {
    const m = redisError(e, options.redis).message;
    if (m !== lastError) log(`worker: ${m}`);
    lastError = m;
  });
  try {
    await worker.waitUntilReady();
  } catch (e) {
    await worker.close(true).catch(() => undefined);
    throw redisError(e, options.redis);
  }
  const runLoop = worker.run();
  log(`worker ${me} on queue ${options.queue} at ${redactRedisUrl(options.redis)}, concurrency ${options.concurrency ?? 1}`);

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      stopping = true;
      for (const ac of running) ac.abort(new VideoAnalysisError("CANCELLED", "the worker is stopping"));
      await worker.close();
      await runLoop.catch(() => undefined);
      for (const m of [...managers.values(), ...retired]) await (await m.catch(() => undefined))?.close();
    })());
  return { close, closed: runLoop.then(() => closing).then(() => undefined, () => undefined), counts };
}

export interface QueueStatus {
  queue: string;
  counts: { waiting: number; active: number; delayed: number; completed: number; failed: number };
  failed: Array<{ id: string; video: string; attempts: number; error: string }>;
  active: Array<{ id: string; video: string; progress: VideoJobProgress | null }>;
}

/** How a queue stands: counts by state, the failed jobs with their errors, the active ones with their progress. */
export async function queueStatus(options: { redis: string; queue: string }): Promise<QueueStatus> {
  const queue = new Queue<VideoJobData, VideoJobResult>(options.queue, { connection: connection(options.redis) });
  queue.on("error", () => undefined);
  try {
    const c = await queue.getJobCounts("waiting", "active", "delayed", "completed", "failed", "prioritized");
    const failed = await queue.getFailed(0, 999);
    const active = await queue.getActive(0, 999);
    return {
      queue: options.queue,
      counts: { waiting: (c.waiting ?? 0) + (c.prioritized ?? 0), active: c.active ?? 0, delayed: c.delayed ?? 0, completed: c.completed ?? 0, failed: c.failed ?? 0 },
      failed: failed.map((j) => ({ id: j.id!, video: j.data.video, attempts: j.attemptsMade, error: j.failedReason })),
      active: active.map((j) => ({ id: j.id!, video: j.data.video, progress: typeof j.progress === "object" ? (j.progress as unknown as VideoJobProgress) : null })),
    };
  } catch (e) {
    throw redisError(e, options.redis);
  } finally {
    await queue.close().catch(() => undefined);
  }
}
