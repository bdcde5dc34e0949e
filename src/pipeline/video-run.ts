import { setMaxListeners } from "node:events";
import { join, resolve } from "node:path";
import { decodeRecord, decodingRecord, videoRecord, MANIFEST_FILE, MANIFEST_VERSION, maskedProfile, sdkVersion, timestampsRecord, writeManifest, type Manifest } from "../artifacts/manifest.js";
import { NpzWriter } from "../artifacts/npz.js";
import type { InferenceBackend } from "../backend/backend.js";
import { VideoAnalysisError } from "../errors.js";
import type { Profile } from "../profiles/index.js";
import type { Routing, VideoMetadata as RouteVideo } from "../routing/index.js";
import type { TritonClient } from "../triton/client.js";
import { readFrames } from "../video/frame-reader.js";
import { planFrames } from "../video/frame-plan.js";
import { probeVideo, type VideoMetadata } from "../video/metadata.js";
import type { ArtifactOptions, ArtifactRecord, ArtifactSink } from "./artifact.js";
import type { Analyzer, Component } from "./component.js";
import type { FitPool } from "./fit-pool.js";
import type { RgbFrame } from "./frame.js";
import { fingerprintVideo, JOURNAL_FILE, jsonDiff, partialPath, removeJournal, resultProfile, RunJournal, type JournalData, type VideoFingerprint } from "./journal.js";
import type { ModelHandle } from "./model.js";
import { analyzeFrames, type FrameResult, type PipelineComponents } from "./pipeline.js";
import { ProgressMeter, type Progress } from "./progress.js";
import { RunFolder } from "./run-folder.js";
import { round2, StageClock } from "./stats.js";

// A whole video through the components into a run folder: decoding, the frame loop, writing behind the
// analysis, commits and resume, the manifest. The manager (model-manager.ts) owns the profile, the backend,
// routing and sessions and hands them in as a RunHost.

export interface RunOptions {
  /** Run folder; the profile's output.dir when omitted. */
  out?: string;
  /** Stops the run: ffmpeg is killed, calls are cancelled, nothing of the run is left in `out`. */
  signal?: AbortSignal;
  /** Called after each analysed frame. */
  onProgress?: (p: Progress) => void;
  /** Replace a run already in `out` (default: the profile's output.overwrite). */
  overwrite?: boolean;
  /**
   * Go on with the interrupted run in `out` (killed, stopped, or its server gone too long): its committed
   * frames are kept and analysis continues from the first frame not committed; the finished artifacts are
   * those an uninterrupted run writes. The video and the profile must be the ones it was started with
   * (else FAILED_PRECONDITION naming what differs). A folder that is empty or absent: a fresh run. A
   * complete run in `out`: ALREADY_EXISTS unless `overwrite`.
   */
  resume?: boolean;
  /**
   * What a stopped run (`signal`, or a failure a later try may get past: server unavailable, deadline,
   * disk full) leaves in `out` when it has committed frames: true (default) keeps them for `resume`;
   * false deletes everything of the run.
   */
  keep?: boolean;
  /** Analyse at most this many frames (from the start). */
  maxFrames?: number;
  /** Decoding errors stop the run (default: the profile's input.strict). */
  strict?: boolean;
  /**
   * The video's metadata from probeVideo(video), or its promise: for a caller that has probed the video
   * already or started to while it set up. Otherwise run() probes it.
   */
  metadata?: VideoMetadata | Promise<VideoMetadata>;
}

export interface RunResult {
  /** The run folder (absolute). */
  out: string;
  manifestPath: string;
  manifest: Manifest;
}

/** The models and components of one run, one stream, or the single-frame calls at one frame size. */
export interface Session {
  routing: Routing;
  handles: ModelHandle[];
  components: PipelineComponents;
  window: number;
}

/** Results of `run` that may wait for their write while later frames are analysed. */
const WRITE_BEHIND = 4;

/** What a run needs of its manager. */
export interface RunHost {
  profile: Profile;
  /** Where the profile came from (its path, or "(profile object)"). */
  profileSource: string;
  backend: InferenceBackend;
  components: readonly Component[];
  /** Every file the components may write in a run folder. */
  files: readonly string[];
  route(video: RouteVideo, maxSide: number | null): Promise<Routing>;
  session(routing: Routing, fps: number): Promise<Session>;
  fitter(): FitPool | undefined;
}


/**
 * Analyses a video file with every enabled component and writes the run folder: one .npz per
 * component and manifest.json (SPEC section 4). Frames are decoded by ffmpeg at the profile's analysis
 * fps and size. A run that fails or is aborted leaves nothing in `out` (no artifact, no manifest).
 * Errors: VideoAnalysisError naming the file for bad inputs (NOT_FOUND, VIDEO_INVALID), ROUTING_FAILED,
 * ALREADY_EXISTS for a folder holding a run, CANCELLED on abort, and the backend's.
 */
export async function runVideo(host: RunHost, video: string, options: RunOptions = {}): Promise<RunResult> {
  if (typeof video !== "string" || video === "") throw new TypeError("run: video must be the path of a video file");
  const { signal } = options;
  // Every call in flight listens to the run's signal (a slot, a request, a wait): many at once is normal.
  if (signal) setMaxListeners(0, signal);
  if (options.maxFrames !== undefined && !(Number.isInteger(options.maxFrames) && options.maxFrames >= 1)) {
    throw new RangeError(`run: maxFrames must be a positive integer, got ${String(options.maxFrames)}`);
  }
  const out = options.out ?? host.profile.output.dir;
  if (!out) throw new VideoAnalysisError("INVALID_ARGUMENT", `no output folder: pass --out (run's { out }) or set output.dir in profile ${host.profileSource}`);
  const overwrite = options.overwrite ?? host.profile.output.overwrite;
  const resume = options.resume ?? false;
  const keep = options.keep ?? true;
  const resumable = host.profile.output.resumable;
  const t0 = performance.now();
  const clock = new StageClock();

  await RunFolder.check(out, overwrite, resume, host.files);
  signal?.throwIfAborted();
  const meta = await (options.metadata ?? probeVideo(video));
  if (options.metadata && meta.path !== resolve(video)) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `run: the metadata given is of ${meta.path}, not of the video ${resolve(video)}; pass probeVideo(video)'s`);
  }
  const routing = await host.route({ width: meta.width, height: meta.height, rotation: meta.rotation }, host.profile.analysis.max_side);
  const fps = Math.min(host.profile.analysis.fps, meta.frameRate);
  const a = routing.analysis;
  const strict = options.strict ?? host.profile.input.strict;
  const readOptions = {
    fps: host.profile.analysis.fps,
    width: a.width,
    height: a.height,
    metadata: meta,
    timestampBreaks: host.profile.input.timestamp_breaks,
    strict,
    ...(signal ? { signal } : {}),
  };
  const estimate = planFrames(meta, readOptions).estimatedFrames;
  const meter = new ProgressMeter(options.maxFrames ? Math.min(options.maxFrames, estimate) : estimate);
  // A Triton client that waits out a server outage says so in the progress, and the manifest lists it.
  const triton = host.backend.kind === "triton" && "outages" in host.backend ? (host.backend as TritonClient) : undefined;
  const outagesAtStart = triton?.outages.length ?? 0;
  if (triton) {
    triton.onOutage = (st) =>
      options.onProgress?.({
        ...meter.snapshot(),
        ...(st ? { waiting: `waiting for triton at ${st.endpoint}: ${st.waitingFor} (${Math.round(st.waitedMs / 1000)} s of ${Math.round(st.budgetMs / 1000)} s)` } : {}),
      });
  }

  // ffmpeg starts now and decodes while the models load and the prompts are embedded: up to 16 frames
  // (at most 16 MiB) wait for the pipeline, then ffmpeg pauses. Its errors reach the frame loop below.
  const ahead = Math.max(2, Math.min(16, Math.floor((16 << 20) / (a.width * a.height * 3))));
  const fitter = host.fitter();
  const reader = readFrames(video, {
    ...readOptions,
    highWaterMarkFrames: ahead,
    shared: fitter !== undefined,
    sparse: host.profile.analysis.sparse_decode,
  });
  reader.on("error", () => {});
  // CLIP's vocabulary loads (tens of ms of parsing here) once ffmpeg is decoding, not before it starts;
  // a failure is reported where the tokenizer is needed.
  for (const c of host.components) c.preload?.(host.profile);
  let session: Session;
  let folder: RunFolder;
  const fingerprint = resumable || resume ? fingerprintVideo(meta.path) : undefined;
  fingerprint?.catch(() => undefined);
  try {
    session = await host.session(routing, fps);
    folder = await RunFolder.prepare(out, overwrite, resume, host.files);
  } catch (e) {
    reader.destroy();
    throw e;
  }
  const interrupted = folder.interrupted;
  const models = Object.fromEntries(Object.entries(routing.resolved_model_mapping).map(([slot, r]) => [slot, r.model]));
  let journal: RunJournal | undefined;
  let resumedRows: Map<string, Uint8Array[]> | undefined;
  try {
    if (interrupted) {
      checkResume(host, interrupted, folder.dir, meta.path, await fingerprint!, models, options.maxFrames);
      ({ journal, rows: resumedRows } = await RunJournal.resume(folder.dir, interrupted));
      journal.resumed();
    } else if (resumable) {
      journal = await RunJournal.create(folder.dir, {
        video: await fingerprint!, profile: resultProfile(host.profile), profile_source: host.profileSource, models,
        overwrite, max_frames: options.maxFrames ?? null, outages: [],
      });
    }
  } catch (e) {
    reader.destroy();
    await journal?.close();
    await folder.release();
    throw e;
  }
  const done = interrupted?.frames ?? 0;
  const maxFrames = options.maxFrames ?? interrupted?.max_frames ?? undefined;
  const { components } = session;
  const sinks: ArtifactSink[] = [];
  let first: number | null = interrupted?.first_timestamp ?? null;
  let last: number | null = interrupted?.last_timestamp ?? null;
  if (done > 0) meter.restart(done);
  const outagesBefore = interrupted?.outages ?? [];
  const outagesNow = () => [...outagesBefore, ...(triton?.outages.slice(outagesAtStart) ?? [])];
  try {
    signal?.throwIfAborted();
    for (const c of components) await c.prepare?.(clock, signal);
    const float16 = host.profile.output.float16;
    const frameSize = [a.width, a.height] as const;
    // A resumable run writes each artifact under a stable name (<artifact>.partial) that a resume opens
    // again at its last commit; the columns held in memory come back from the journal's rows.
    const files = (file: string): ArtifactOptions => ({
      open: (path, o) => {
        const at = interrupted?.artifacts[file];
        if (interrupted && !at) throw new VideoAnalysisError("DATA_LOSS", `${join(folder.dir, JOURNAL_FILE)} has no ${file}; start the run again with --overwrite`);
        if (at) return NpzWriter.resume(path, join(folder.dir, at.partial), at.npz, o);
        return NpzWriter.create(path, journal ? { ...o, tempPath: partialPath(path) } : o);
      },
    });
    const maps = { float16, directIo: host.profile.output.direct_io };
    const sourceSize = [meta.displayWidth, meta.displayHeight] as const;
    const sinkOf = new Map<Analyzer, ArtifactSink>();
    for (const c of components) {
      const file = c.artifact && host.components.find((x) => x.name === c.name)?.files[0];
      if (!c.artifact || !file) continue;
      await folder.ensureParent(join(folder.dir, file));
      const s = await c.artifact({ runDir: folder.dir, frameSize, sourceSize, maps, options: files(file) });
      sinks.push(s);
      sinkOf.set(c, s);
      const rows = resumedRows?.get(file);
      if (interrupted && rows) {
        s.journal.columns.forEach((col, k) => col.pushBytes(rows[k] ?? new Uint8Array(0)));
        s.resumed?.(done);
        journal!.adopt(s, interrupted.artifacts[file]!.rows);
      }
    }
    if (interrupted) for (const c of components) c.restore?.(interrupted.states[c.name] ?? null);

    // A resume decodes from the start (the same frames, bit for bit, as the first run) and skips the
    // committed ones; the last of them goes to RAFT again, to pair with the first new frame.
    const prime = done > 0 && components.some((c) => c.pairs) ? 1 : 0;
    let frames: AsyncIterable<RgbFrame> = maxFrames ? take(reader, maxFrames) : reader;
    if (done > 0) frames = drop(frames, done - prime, (f) => reader.recycle(f.data));
    // The report's picker frames and track crops are taken as results come out (their frames still held),
    // so the report decodes nothing; a resumed run has not seen its first frames and leaves it to decode.
    let capture = host.profile.output.report && done === 0 ? await (await import("../report/capture.js")).startCapture(meter.total ?? 0, meta.displayWidth, meta.displayHeight) : undefined;
    const held: RgbFrame[] = [];
    if (capture) frames = tap(frames, (f) => held.push(f));
    const results = analyzeFrames(frames, components, {
      window: session.window,
      clock,
      fps,
      outputSize: { width: meta.displayWidth, height: meta.displayHeight },
      recycle: (f) => reader.recycle(f.data),
      // FP32 maps are written as the models answer them, so their CRC-32 can be taken on the backend's thread.
      checksums: !float16,
      ...(fitter ? { fitter } : {}),
      ...(signal ? { signal } : {}),
      prime,
    });
    // Frames are written in order behind the analysis: the next frames are pulled (and their calls
    // made) while this one goes to disk, with at most WRITE_BEHIND results waiting for their write.
    const write = async (r: FrameResult, commit: CommitPoint | undefined) => {
      signal?.throwIfAborted();
      const t = performance.now();
      for (const s of sinks) await s.write(r);
      clock.add("write", performance.now() - t);
      // Written and seen by no one else: the maps' buffers go back to the backend for later answers.
      host.backend.recycle?.(components.flatMap((c) => (c.buffers && r[c.key] !== undefined ? c.buffers(r[c.key]) : [])));
      first ??= r.timestamp;
      last = r.timestamp;
      const p = meter.tick();
      if (commit && journal) {
        const tc = performance.now();
        await journal.commit(sinks, { frames: meter.frames, first, last, states: commit.states, outages: outagesNow() });
        clock.add("commit", performance.now() - tc);
      }
      options.onProgress?.(p);
    };
    // Commits are decided as results come out in order, where the tracker's state is that of this frame
    // (the writes lag behind by up to WRITE_BEHIND frames).
    const interval = host.profile.output.commit_interval_s * 1000;
    let lastCommit = performance.now();
    let writes: Promise<void> = Promise.resolve();
    const waiting: Array<Promise<void>> = [];
    try {
      for await (const r of results) {
        const f = held.shift();
        if (capture && f && (f.index ?? r.index) === r.index) capture.add(f, r.timestamp, r.detections);
        else capture = undefined;
        let commit: CommitPoint | undefined;
        if (journal && performance.now() - lastCommit >= interval) {
          lastCommit = performance.now();
          commit = { states: Object.fromEntries(components.flatMap((c) => (c.state ? [[c.name, c.state()]] : []))) };
        }
        writes = writes.then(() => write(r, commit));
        waiting.push(writes);
        writes.catch(() => undefined);
        if (waiting.length > WRITE_BEHIND) await waiting.shift();
      }
    } finally {
      // Nothing may still be writing when the sinks are finished or aborted.
      await writes.catch(() => undefined);
    }
    await writes;
    signal?.throwIfAborted();
    // The reader refuses errors itself when ffmpeg runs to the end; a run stopped early (maxFrames) checks here.
    const rs = reader.stats;
    if (strict && rs.ffmpegErrors > 0) {
      throw new VideoAnalysisError("VIDEO_INVALID", `${meta.path} has decoding errors (${rs.ffmpegErrors}; last: ${rs.ffmpegErrorLines.at(-1) ?? "?"}); strict mode rejects them.`, {
        details: { file: meta.path, ffmpegErrors: [...rs.ffmpegErrorLines] },
      });
    }

    // The artifacts are finished together: each ends with an fsync, and the disk can take them at once.
    const tw = performance.now();
    await folder.retireOldManifest();
    const finished = await Promise.allSettled(sinks.map((s) => s.finish()));
    const records: ArtifactRecord[] = [];
    finished.forEach((f, i) => {
      if (f.status === "fulfilled") {
        records.push(f.value);
        folder.committedFile(sinks[i]!.path);
      }
    });
    const failed = finished.find((f) => f.status === "rejected");
    if (failed) throw failed.reason;
    const end = { runDir: folder.dir, profile: host.profile };
    for (const [c, sink] of sinkOf) {
      for (const x of (await c.finishRun?.(sink, end)) ?? []) {
        records.push(x.record);
        folder.committedFile(join(folder.dir, x.file));
      }
    }
    await folder.removeOldArtifacts();
    const manifest: Manifest = {
      manifest_version: MANIFEST_VERSION,
      sdk: sdkVersion(),
      created_at: new Date().toISOString(),
      video: videoRecord(meta),
      analysis: {
        width: a.width,
        height: a.height,
        fps: host.profile.analysis.fps,
        frames: meter.frames,
        first_timestamp: first,
        last_timestamp: last,
        max_frames: maxFrames ?? null,
        decode: decodeRecord(reader.stats.decode),
        decoding: decodingRecord(reader.stats, meta, estimate, meter.frames, strict, options.maxFrames !== undefined && meter.frames >= options.maxFrames, reader.countsThrough(meter.frames)),
        timestamps: timestampsRecord(reader.stats, host.profile.input.timestamp_breaks),
      },
      profile: maskedProfile(host.profile),
      profile_source: host.profileSource,
      routing: { video: routing.video, analysis: routing.analysis },
      resolved_model_mapping: routing.resolved_model_mapping,
      models_used: session.handles.map((x) => x.usage()),
      artifacts: records,
      outages: outagesNow(),
      interruptions: journal?.state.interruptions ?? [],
      timings: { wall_ms: 0, stages_ms: {}, frames_per_second: 0 },
    };
    // The report is written before the manifest (which records it), so a complete folder has both.
    if (host.profile.output.report) {
      const { REPORT_FILE, writeReport } = await import("../report/report.js");
      manifest.report = await writeReport(folder.dir, { manifest, video, ...(capture ? { captured: capture.images() } : {}), ...(signal ? { signal } : {}) });
      folder.committedFile(join(folder.dir, REPORT_FILE));
    }
    const manifestPath = join(folder.dir, MANIFEST_FILE);
    signal?.throwIfAborted();
    clock.add("write", performance.now() - tw);
    const wall = performance.now() - t0;
    manifest.timings = { wall_ms: round2(wall), stages_ms: clock.rounded(), frames_per_second: round2((meter.frames * 1000) / wall) };
    await writeManifest(manifestPath, manifest);
    // Complete: the journal goes (after the manifest, so a kill in between leaves a run that is whole).
    await journal?.close();
    if (journal) await removeJournal(folder.dir);
    await folder.release();
    warnAboutInput(manifest);
    if (triton) triton.onOutage = undefined;
    return { out: folder.dir, manifestPath, manifest };
  } catch (e) {
    if (triton) triton.onOutage = undefined;
    reader.destroy();
    const cancelled = signal?.aborted ?? false;
    // Committed frames are kept for a resume when the run was stopped, or failed in a way a later try
    // may get past; other failures (bad input, a model that changed) leave nothing, as before.
    // A resumed run keeps what it had whatever stopped it: it holds the work of the runs before.
    const retryable = cancelled || interrupted !== undefined || (e instanceof VideoAnalysisError && KEEP_ON.has(e.code));
    if (journal && keep && retryable && journal.frames > 0) {
      const why = cancelled ? String((signal!.reason as Error)?.message ?? "cancelled") : e instanceof VideoAnalysisError ? `${e.code}: ${e.message}` : String(e);
      await Promise.all(sinks.map((s) => s.journal.writer.suspend().catch(() => undefined)));
      await journal.stopped(why);
      await journal.close();
      await folder.release();
      const n = journal.frames;
      const kept = `${n} frame${n === 1 ? "" : "s"} committed in ${folder.dir} are kept: run the same command with --resume (run's { resume: true }) to continue from frame ${n}, or with --overwrite to start over`;
      const details = { out: folder.dir, frames_done: meter.frames, frames_committed: n, resumable: true };
      if (cancelled) throw new VideoAnalysisError("CANCELLED", `the run on ${meta.path} was cancelled after ${meter.frames} frames; ${kept}`, { cause: e, details });
      const v = e instanceof VideoAnalysisError ? e : new VideoAnalysisError("INTERNAL", String((e as Error)?.message ?? e));
      throw new VideoAnalysisError(v.code, `${v.message}; the run stopped after ${meter.frames} frames; ${kept}`, { cause: e, details: { ...v.details, ...details }, ...(v.model ? { model: v.model } : {}) });
    }
    await Promise.all(sinks.map((s) => s.abort().catch(() => undefined)));
    await journal?.close();
    if (journal) await removeJournal(folder.dir);
    await folder.discard();
    if (cancelled) {
      throw new VideoAnalysisError("CANCELLED", `the run on ${meta.path} was cancelled; nothing was written to ${folder.dir}`, { cause: e });
    }
    throw e;
  }
}

/** A resume goes on only with the video, profile, routing and frame limit the interrupted run had. */
function checkResume(host: RunHost, j: JournalData, dir: string, video: string, fp: VideoFingerprint, models: Record<string, string>, maxFrames: number | undefined): void {
  const fail = (msg: string, details: Record<string, unknown>) =>
    new VideoAnalysisError("FAILED_PRECONDITION", `--resume: ${dir} holds an interrupted run (${j.frames} frames committed) ${msg}; resume with what it was started with, or start over with --overwrite`, { details: { out: dir, ...details } });
  if (fp.bytes !== j.video.bytes || fp.sha256_head_tail !== j.video.sha256_head_tail) {
    const same = fp.path === j.video.path;
    throw fail(
      same ? `of ${j.video.path}, which has changed since (${j.video.bytes} bytes then, ${fp.bytes} now)` : `of the video ${j.video.path}, not of ${video} (another video: ${j.video.bytes} and ${fp.bytes} bytes)`,
      { video: video, interrupted_video: j.video.path },
    );
  }
  const diff = jsonDiff(j.profile, resultProfile(host.profile));
  if (diff.length > 0) throw fail(`made with another profile (${j.profile_source}, now ${host.profileSource}): ${diff.join("; ")}`, { differences: diff });
  const routed = jsonDiff(j.models, models);
  if (routed.length > 0) throw fail(`whose models were routed otherwise: ${routed.join("; ")}`, { differences: routed });
  if (maxFrames !== undefined && maxFrames !== (j.max_frames ?? undefined)) {
    throw fail(`with --max-frames ${j.max_frames ?? "(none)"}, not ${maxFrames}`, { max_frames: j.max_frames });
  }
}

/** A commit decided for a frame: the components' in-order states (the tracker's) after it. */
interface CommitPoint {
  states: Record<string, unknown>;
}

/** Failures after which a run keeps its committed frames (see RunOptions.keep). */
const KEEP_ON = new Set(["UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "IO_ERROR", "ABORTED", "CANCELLED"]);

/** The items of an async iterable after the first `n`, which go to `skipped`. */
async function* drop<T>(src: AsyncIterable<T>, n: number, skipped: (x: T) => void): AsyncGenerator<T> {
  let i = 0;
  for await (const x of src) {
    if (i++ < n) skipped(x);
    else yield x;
  }
}

/** One warning line each for decoding errors and rebased timestamp breaks (the manifest has the details). */
function warnAboutInput(m: Manifest): void {
  const d = m.analysis.decoding;
  const file = m.video.path;
  if (d.errors > 0) {
    const lost = d.frames_lost > 0 ? `, about ${d.frames_lost} frames lost` : "";
    process.emitWarning(
      `${file}: ffmpeg reported ${d.errors} decoding errors (${d.frames_decoded} of ${d.frames_to_decode} frames decoded${lost}; ` +
        `${d.frames_delivered} of ${d.frames_expected} analysis frames delivered; last: ${d.error_lines.at(-1) ?? "?"}); ` +
        `see analysis.decoding in the manifest, --strict to refuse such files`,
      { code: "VASDK_DECODE_ERRORS" },
    );
  }
  const t = m.analysis.timestamps.rebased;
  if (t.length > 0) {
    const where = t.slice(0, 3).map((b) => `frame ${b.source_frame_index} (${b.previous_time} s -> ${b.time} s)`).join(", ");
    process.emitWarning(
      `${file}: ${t.length} timestamp break${t.length > 1 ? "s" : ""} rebased at ${where}${t.length > 3 ? ", ..." : ""}; ` +
        `no flow pair spans one; see analysis.timestamps in the manifest (input.timestamp_breaks: error to refuse such files)`,
      { code: "VASDK_TIMESTAMP_BREAKS" },
    );
  }
}

/** The items of an async iterable, each shown to `seen` on its way. */
async function* tap<T>(src: AsyncIterable<T>, seen: (x: T) => void): AsyncGenerator<T> {
  for await (const x of src) {
    seen(x);
    yield x;
  }
}

/** The first `n` items of an async iterable; the source is closed when they are taken. */
async function* take<T>(src: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  if (n <= 0) return;
  let i = 0;
  for await (const x of src) {
    yield x;
    if (++i >= n) return;
  }
}
