import { cpus } from "node:os";
import { join, resolve } from "node:path";
import { makeFolders, writeFileAtomic } from "../artifacts/atomic.js";
import { sdkVersion } from "../artifacts/manifest.js";
import { abortError, VideoAnalysisError } from "../errors.js";
import type { ModelManager } from "../pipeline/model-manager.js";
import { expandInputs, type BatchVideo, type ExpandOptions } from "./inputs.js";
import { profileFingerprint, runVideo } from "./run-video.js";

/** The file in --out that lists every video of the batch and what became of it. */
export const BATCH_FILE = "batch.json";

export type VideoStatus = "pending" | "running" | "done" | "skipped" | "failed";

/** One video's line in batch.json (snake_case: the SDK writes it). */
export interface BatchEntry {
  video: string;
  run_dir: string;
  status: VideoStatus;
  attempts: number;
  error: { code: string; message: string } | null;
  started_at: string | null;
  finished_at: string | null;
  wall_ms: number | null;
  frames: number | null;
  video_seconds: number | null;
}

/** batch.json, and what `runBatch` returns. */
export interface BatchReport {
  batch_version: 1;
  sdk: { name: string; version: string };
  profile: { name: string; source: string; fingerprint: string };
  out: string;
  jobs: number;
  retries: number;
  started_at: string;
  updated_at: string;
  finished: boolean;
  counts: Record<VideoStatus, number>;
  /** Video-seconds analysed now (skipped ones not counted) per wall-second of the batch so far. */
  video_seconds_per_second: number;
  wall_ms: number;
  videos: BatchEntry[];
}

/** The whole batch's progress, after every frame of any video and every change of a video's status. */
export interface BatchProgress {
  total: number;
  done: number;
  skipped: number;
  failed: number;
  running: number;
  /** Frames analysed by this batch so far (all videos). */
  frames: number;
  /** Frames per second over the batch's wall time. */
  fps: number;
  elapsedMs: number;
  /** Estimated time left, null until something has been analysed. */
  etaMs: number | null;
}

export interface BatchOptions extends ExpandOptions {
  /** The folder the run folders go in (one per video, named from its path), and batch.json. */
  out: string;
  /** Videos analysed at once (default defaultJobs(mm)). */
  jobs?: number;
  /** Attempts after the first for a video that fails (default 1). */
  retries?: number;
  /** Stops the batch: running videos are cancelled (their folders cleaned up), pending ones not started. */
  signal?: AbortSignal;
  onProgress?: (p: BatchProgress) => void;
  /** The batch's videos as expandInputs gave them, when the caller expanded them already. */
  expanded?: BatchVideo[];
}

/**
 * Videos at once when none is asked for: with Triton the server does the work and several videos keep it
 * busy (4, at most the cores); in-process, each video already spreads its models over the cores: 1, or 2
 * from 8 cores up.
 */
export function defaultJobs(mm: ModelManager): number {
  const cores = cpus().length;
  return mm.backend.kind === "triton" ? Math.max(1, Math.min(4, cores)) : cores >= 8 ? 2 : 1;
}

/**
 * Analyses many videos with one ModelManager, `jobs` at a time, each into its own run folder under `out`
 * (see runVideo: complete runs are skipped). A video that fails is tried again up to `retries` times and
 * then reported as failed; the others go on. batch.json in `out` is rewritten atomically at every change
 * of a video's status. Resolves with the final report (also the last batch.json) whether or not videos
 * failed; rejects only on bad arguments, an unwritable `out`, or with CANCELLED when `signal` aborts.
 */
export async function runBatch(mm: ModelManager, inputs: string[], options: BatchOptions): Promise<BatchReport> {
  if (!options || typeof options.out !== "string" || options.out === "") throw new VideoAnalysisError("INVALID_ARGUMENT", "batch: pass { out }, the folder the run folders go in");
  const jobs = options.jobs ?? defaultJobs(mm);
  const retries = options.retries ?? 1;
  if (!Number.isInteger(jobs) || jobs < 1) throw new VideoAnalysisError("INVALID_ARGUMENT", `batch: jobs must be a whole number >= 1, got ${jobs}`);
  if (!Number.isInteger(retries) || retries < 0) throw new VideoAnalysisError("INVALID_ARGUMENT", `batch: retries must be a whole number >= 0, got ${retries}`);
  const out = resolve(options.out);
  const videos = options.expanded ?? (await expandInputs(inputs, options));
  const { signal } = options;

  const t0 = performance.now();
  const startedAt = new Date().toISOString();
  const entries: BatchEntry[] = videos.map((v) => ({
    video: v.video, run_dir: join(out, v.name), status: "pending", attempts: 0, error: null,
    started_at: null, finished_at: null, wall_ms: null, frames: null, video_seconds: null,
  }));
  // Frames of the attempt running now, and the expected total, per video: for the progress and its ETA.
  const live = entries.map(() => ({ frames: 0, total: null as number | null }));
  let framesDone = 0;
  const fingerprint = profileFingerprint(mm.profile);

  const count = () => {
    const c = { pending: 0, running: 0, done: 0, skipped: 0, failed: 0 } satisfies Record<VideoStatus, number>;
    for (const e of entries) c[e.status]++;
    return c;
  };
  const report = (finished: boolean): BatchReport => {
    const counts = count();
    const wall = performance.now() - t0;
    const vs = entries.filter((e) => e.status === "done").reduce((s, e) => s + (e.video_seconds ?? 0), 0);
    return {
      batch_version: 1, sdk: sdkVersion(), profile: { name: mm.profile.name, source: mm.profileSource, fingerprint },
      out, jobs, retries, started_at: startedAt, updated_at: new Date().toISOString(), finished, counts,
      video_seconds_per_second: wall > 0 ? +(vs / (wall / 1000)).toFixed(4) : 0, wall_ms: Math.round(wall), videos: entries,
    };
  };

  // batch.json rewrites, one at a time and in order; the last one wins.
  let writing: Promise<void> = Promise.resolve();
  let writeError: unknown;
  const save = (finished = false) => {
    const text = `${JSON.stringify(report(finished), null, 2)}\n`;
    writing = writing.then(() => writeFileAtomic(join(out, BATCH_FILE), text, { fsync: finished }).catch((e: unknown) => void (writeError ??= e)));
    return writing;
  };

  const progress = (): BatchProgress => {
    const c = count();
    const elapsedMs = performance.now() - t0;
    const running = live.reduce((s, l) => s + l.frames, 0);
    const frames = framesDone + running;
    // Videos finished, plus the running ones' fractions; the rest take as long each on average.
    const settled = c.done + c.failed + c.skipped;
    const equiv = settled + entries.reduce((s, e, i) => s + (e.status === "running" && live[i]!.total ? Math.min(1, live[i]!.frames / live[i]!.total!) : 0), 0);
    const analysed = equiv - c.skipped;
    const etaMs = analysed > 0 ? ((elapsedMs / analysed) * (entries.length - equiv)) : null;
    return { total: entries.length, done: c.done, skipped: c.skipped, failed: c.failed, running: c.running, frames, fps: elapsedMs > 0 ? (frames * 1000) / elapsedMs : 0, elapsedMs, etaMs };
  };
  const tell = () => options.onProgress?.(progress());

  await makeFolders(out);
  await save();
  if (writeError) throw writeError;

  let next = 0;
  const one = async (i: number): Promise<void> => {
    const e = entries[i]!;
    const v = videos[i]!;
    e.status = "running";
    e.started_at = new Date().toISOString();
    void save();
    tell();
    for (;;) {
      e.attempts++;
      live[i] = { frames: 0, total: null };
      try {
        const r = await runVideo(mm, v.video, e.run_dir, {
          ...(signal ? { signal } : {}),
          onProgress: (p) => {
            live[i] = { frames: p.frames, total: p.total };
            tell();
          },
        });
        live[i] = { frames: 0, total: null };
        if (r.status === "done") framesDone += r.frames;
        Object.assign(e, { status: r.status, error: null, frames: r.frames, video_seconds: r.videoSeconds, wall_ms: Math.round(r.wallMs) });
        break;
      } catch (err) {
        live[i] = { frames: 0, total: null };
        if (signal?.aborted) {
          e.status = "pending";
          throw abortError(signal, "the batch");
        }
        const ve = err instanceof VideoAnalysisError ? err : undefined;
        e.error = { code: ve?.code ?? "UNKNOWN", message: ve ? ve.message : String((err as Error)?.message ?? err) };
        // A folder that holds another run is not going to change by trying again.
        if (e.attempts > retries || ve?.code === "ALREADY_EXISTS") {
          e.status = "failed";
          e.wall_ms = Math.round(Date.now() - Date.parse(e.started_at!));
          break;
        }
      }
    }
    e.finished_at = new Date().toISOString();
    void save();
    tell();
  };
  const lane = async (): Promise<void> => {
    while (next < entries.length) {
      signal?.throwIfAborted();
      await one(next++);
    }
  };
  try {
    const lanes = await Promise.allSettled(Array.from({ length: Math.min(jobs, entries.length) }, lane));
    const failed = lanes.find((l): l is PromiseRejectedResult => l.status === "rejected");
    if (failed) throw signal?.aborted ? abortError(signal, "the batch") : failed.reason;
  } finally {
    await save(true);
  }
  if (writeError) throw writeError;
  return report(true);
}

function clock(ms: number): string {
  const s = Math.max(0, Math.round(ms / 1000));
  const h = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60));
  const ss = String(s % 60).padStart(2, "0");
  return h ? `${h}:${mm.padStart(2, "0")}:${ss}` : `${mm}:${ss}`;
}

/** One line for the batch's progress: `videos 5/12 done, 1 skipped, 0 failed, 2 running  41.3 frames/s  0:12 elapsed  ETA 0:20`. */
export function formatBatchProgress(p: BatchProgress): string {
  const eta = p.etaMs !== null && p.done + p.skipped + p.failed < p.total ? `  ETA ${clock(p.etaMs)}` : "";
  return `videos ${p.done + p.skipped}/${p.total} done${p.skipped ? ` (${p.skipped} skipped)` : ""}, ${p.failed} failed, ${p.running} running  ${p.fps.toFixed(1)} frames/s  ${clock(p.elapsedMs)} elapsed${eta}`;
}
