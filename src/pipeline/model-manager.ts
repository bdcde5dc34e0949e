import { setMaxListeners } from "node:events";
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { decodeRecord, decodingRecord, videoRecord, MANIFEST_FILE, MANIFEST_VERSION, maskedProfile, sdkVersion, timestampsRecord, writeManifest, type Manifest } from "../artifacts/manifest.js";
import type { InferenceBackend, ModelContract } from "../backend/backend.js";
import { EmbeddedEnsembles } from "../embedded/embedded-ensembles.js";
import { catalogModel, clipText, findModel, inputValues } from "../catalog/index.js";
import type { CatalogModel, ComponentName } from "../catalog/types.js";
import { ARTIFACT_FILES, BUILTIN_COMPONENTS, OPTIONAL_ARTIFACT_FILES } from "../components/builtins.js";
import { ClipComponent, clipTokenizer, type ClipFrameResult } from "../components/clip/clip.js";
import type { DepthMap } from "../components/depth/depth.js";
import type { FlowAnalyzer } from "../components/flow/index.js";
import type { FlowField } from "../components/flow/flow.js";
import type { SceneResult } from "../components/scene/scene.js";
import type { Detections } from "../detections/detections.js";
import { EmbeddedBackend } from "../embedded/embedded-backend.js";
import { VideoAnalysisError } from "../errors.js";
import { embeddedModelPath, embeddedWorkers, maxInFlight, preprocessWorkers, serverModelName, tritonClientOptions, type Profile } from "../profiles/index.js";
import { resolveModelMapping, routableModels, type ResolvedModel, type Routing, type VideoMetadata as RouteVideo } from "../routing/index.js";
import { readFrames } from "../video/frame-reader.js";
import { planFrames } from "../video/frame-plan.js";
import { probeVideo, type VideoMetadata } from "../video/metadata.js";
import type { ArtifactOptions, ArtifactRecord, ArtifactSink } from "./artifact.js";
import type { Analyzer, Component } from "./component.js";
import { FitPool } from "./fit-pool.js";
import { checkFrame, FittedFrame, type RgbFrame } from "./frame.js";
import { Limiter } from "./limiter.js";
import { ModelHandle, type ModelUsage } from "./model.js";
import { analyzeFrames, type FrameResult, type PipelineComponents } from "./pipeline.js";
import { resolveProfile, type ProfileSource, type ProfileSourceOptions } from "./profile-source.js";
import { ProgressMeter, type Progress } from "./progress.js";
import { RunFolder } from "./run-folder.js";
import { fingerprintVideo, JOURNAL_FILE, jsonDiff, partialPath, removeJournal, resultProfile, RunJournal, type JournalData, type VideoFingerprint } from "./journal.js";
import { NpzWriter } from "../artifacts/npz.js";
import { round2, StageClock } from "./stats.js";
import type { TritonClient } from "../triton/client.js";

export interface ModelManagerOptions extends ProfileSourceOptions {
  /**
   * A backend to use instead of the one the profile describes, e.g. an application's own TritonClient.
   * It must answer like the Triton ensembles (UINT8 NHWC in): a TritonClient, or EmbeddedEnsembles over
   * an EmbeddedBackend. The manager does not close a backend it was given.
   */
  backend?: InferenceBackend;
}

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

export interface ProcessOptions {
  signal?: AbortSignal;
  /** Frame rate of the stream, for timestamps of frames without one and for the tracker (default: the profile's analysis fps). */
  fps?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}

/** The models and components of one run, one stream, or the single-frame calls at one frame size. */
interface Session {
  routing: Routing;
  handles: ModelHandle[];
  components: PipelineComponents;
  window: number;
}

/** Results of `run` that may wait for their write while later frames are analysed. */
const WRITE_BEHIND = 4;

/**
 * The SDK's entry point: a profile's models on its backend (Triton over gRPC, or onnxruntime in this
 * process), run on a whole video (`run`), on frames from elsewhere (`process`), or one frame at a time
 * (`depth`, `flow`, `clip`, `clipText`, `scene`, `detect`). Create it with `fromProfile`, end it with
 * `close()`.
 *
 * @example
 * const mm = await ModelManager.fromProfile("profiles/embedded_cpu.yaml");
 * try {
 *   const { manifest } = await mm.run("in.mp4", { out: "runs/in", onProgress: (p) => console.log(p.frames) });
 *   console.log(manifest.models_used.map((m) => m.branch)); // [ "midas_512", "raft_512", "clip_image_448", ... ]
 * } finally {
 *   await mm.close();
 * }
 */
export class ModelManager {
  private readonly limiters = new Map<string, Limiter>();
  private readiness: Promise<(serverName: string) => boolean> | undefined;
  private readonly frameSessions = new Map<string, Promise<Session>>();
  private textSession: Promise<ClipComponent> | undefined;
  private readonly adhoc: ModelHandle[] = [];
  private fitPool: FitPool | undefined;
  private closed = false;
  /** The families this manager composes, in the order their models and artifacts are listed. */
  private readonly components: readonly Component[] = BUILTIN_COMPONENTS;
  /** Every file they may write in a run folder. */
  private readonly files: readonly string[] = [...ARTIFACT_FILES, ...OPTIONAL_ARTIFACT_FILES];

  private constructor(
    /** The validated profile. */
    readonly profile: Profile,
    /** Where the profile came from (its path, or "(profile object)"). */
    readonly profileSource: string,
    /** The backend every call goes through. */
    readonly backend: InferenceBackend,
    private readonly ownsBackend: boolean,
    /** Embedded only: catalog name -> .onnx path the profile names (present or not). */
    private readonly embeddedFiles: Map<string, string | undefined> | undefined,
  ) {}

  /**
   * Loads and validates a profile (a YAML path, or the same as an object; `overrides` are laid over it)
   * and connects its backend: a TritonClient for `backend.triton`, onnxruntime sessions (created on first
   * use) for `backend.embedded`.
   */
  static async fromProfile(source: ProfileSource, options: ModelManagerOptions = {}): Promise<ModelManager> {
    const { profile, file } = await resolveProfile(source, options);
    if (options.backend) return new ModelManager(profile, file, options.backend, false, undefined);
    if (profile.backend.triton) {
      // Loaded here: gRPC and its protobuf runtime are megabytes of heap an embedded run never uses.
      const { TritonClient } = await import("../triton/client.js");
      const client = await TritonClient.create(tritonClientOptions(profile));
      return new ModelManager(profile, file, client, true, undefined);
    }
    const files = new Map<string, string | undefined>();
    const present: Record<string, string> = {};
    for (const m of routableModels(profile)) {
      const p = embeddedModelPath(profile, m.name);
      files.set(m.name, p);
      if (p && existsSync(p)) present[m.name] = p;
    }
    const threads = profile.backend.embedded?.intra_op_threads;
    const emb = await EmbeddedBackend.create({ models: present, workers: embeddedWorkers(profile), ...(threads ? { intraOpNumThreads: threads } : {}) });
    return new ModelManager(profile, file, new EmbeddedEnsembles(emb), true, files);
  }

  // --- routing and sessions ------------------------------------------------------------------------

  /** The fitting workers of the profile's concurrency.preprocess_workers, started at the first need; none for 0. */
  private fitter(): FitPool | undefined {
    const n = preprocessWorkers(this.profile);
    if (n > 0) this.fitPool ??= new FitPool(n);
    return this.fitPool;
  }

  private check(): void {
    if (this.closed) throw new VideoAnalysisError("FAILED_PRECONDITION", "this ModelManager is closed; create another with ModelManager.fromProfile");
  }

  /** What the backend has READY, by server model name; computed once. */
  private ready(): Promise<(serverName: string) => boolean> {
    if (!this.readiness) {
      this.readiness = (async () => {
        const models = routableModels(this.profile);
        if (this.embeddedFiles) {
          const ok = new Set(models.filter((m) => this.embeddedFiles!.get(m.name) && existsSync(this.embeddedFiles!.get(m.name)!)).map((m) => serverModelName(this.profile, m.name)));
          return (name: string) => ok.has(name);
        }
        const states = await Promise.all(models.map(async (m) => [serverModelName(this.profile, m.name), await this.backend.modelReady(this.callNameOf(m))] as const));
        const ok = new Set(states.filter(([, r]) => r).map(([n]) => n));
        return (name: string) => ok.has(name);
      })();
      this.readiness.catch(() => (this.readiness = undefined));
    }
    return this.readiness;
  }

  private callNameOf(m: CatalogModel): string {
    return this.backend.kind === "triton" ? serverModelName(this.profile, m.name) : m.name;
  }

  private limiter(callName: string, catalogName: string): Limiter {
    let l = this.limiters.get(callName);
    if (!l) {
      l = new Limiter(maxInFlight(this.profile, catalogName));
      this.limiters.set(callName, l);
    }
    return l;
  }

  private handle(r: ResolvedModel, slot: string): ModelHandle {
    const cm = findModel(r.model);
    if (!cm) throw new VideoAnalysisError("ROUTING_FAILED", `routing chose ${r.model}, which the catalog does not know`, { model: r.model });
    const custom = this.components.find((c) => c.name === r.component)?.contract?.(cm, r, this.profile, this.backend.kind === "triton" ? "triton" : "embedded");
    if (custom?.callName) {
      // A model called under a name of its own (detections' track D), with the in-flight limit it asks for.
      let l = this.limiters.get(custom.callName);
      if (!l) {
        l = new Limiter(custom.maxInFlight ?? maxInFlight(this.profile, cm.name));
        this.limiters.set(custom.callName, l);
      }
      return new ModelHandle(this.backend, r, slot, cm, custom.callName, custom.contract, l, custom.format);
    }
    const contract: ModelContract = custom?.contract ?? cm.ensemble;
    const format = custom?.format ?? null;
    const name = this.backend.kind === "triton" ? r.server_model : r.model;
    return new ModelHandle(this.backend, r, slot, cm, name, contract, this.limiter(name, cm.name), format);
  }

  private async route(video: RouteVideo, maxSide: number | null): Promise<Routing> {
    const profile: Profile = maxSide === this.profile.analysis.max_side ? this.profile : { ...this.profile, analysis: { ...this.profile.analysis, max_side: maxSide } };
    const ready = await this.ready();
    try {
      return resolveModelMapping(video, profile, { ready });
    } catch (e) {
      if (this.embeddedFiles && e instanceof VideoAnalysisError && e.code === "ROUTING_FAILED" && e.details.because === "not_ready" && e.model) {
        const path = this.embeddedFiles.get(e.model);
        throw new VideoAnalysisError(
          "NOT_FOUND",
          `${e.details.slot as string} needs ${e.model}, but ${path ? `its model file ${path} does not exist` : "the profile names no file for it"}; ` +
            `put ${e.model}.onnx in backend.embedded.models_dir, list it under backend.embedded.models, or add a fallback rule (routing.fallbacks)`,
          { model: e.model, cause: e, details: { file: path } },
        );
      }
      throw e;
    }
  }

  /** Builds the models and components for a routing; `fps` is the tracker's frame rate. */
  private async session(routing: Routing, fps: number): Promise<Session> {
    const p = this.profile;
    const map = routing.resolved_model_mapping;
    const handles: ModelHandle[] = [];
    const h = (slot: string) => {
      const r = map[slot];
      if (!r) return undefined;
      const x = this.handle(r, slot);
      handles.push(x);
      return x;
    };
    const slots = new Map(this.components.flatMap((c) => c.slots.map((slot) => [slot, h(slot)] as const)));
    // Every model starts loading now, while CLIP's vocabulary is read and the prompts are embedded, not at
    // the first frame; heaviest first, which is how the embedded backend spreads them over its workers.
    for (const x of [...handles].sort((a, b) => inputValues(b.catalog) - inputValues(a.catalog))) x.warm();
    const components: Analyzer[] = [];
    for (const c of this.components) {
      const model = (slot: string) => slots.get(slot);
      const modelFile = (slot: string) => (map[slot] ? this.embeddedFiles?.get(map[slot]!.model) : undefined);
      const a = await c.open({ profile: p, fps, model, modelFile });
      if (a) components.push(a);
    }
    const window = Math.max(2, ...handles.map((x) => x.usage().max_in_flight + 1));
    return { routing, handles, components, window };
  }

  // --- whole videos --------------------------------------------------------------------------------

  /**
   * Analyses a video file with every enabled component and writes the run folder: one .npz per
   * component and manifest.json (SPEC section 4). Frames are decoded by ffmpeg at the profile's analysis
   * fps and size. A run that fails or is aborted leaves nothing in `out` (no artifact, no manifest).
   * Errors: VideoAnalysisError naming the file for bad inputs (NOT_FOUND, VIDEO_INVALID), ROUTING_FAILED,
   * ALREADY_EXISTS for a folder holding a run, CANCELLED on abort, and the backend's.
   */
  async run(video: string, options: RunOptions = {}): Promise<RunResult> {
    this.check();
    if (typeof video !== "string" || video === "") throw new TypeError("run: video must be the path of a video file");
    const { signal } = options;
    // Every call in flight listens to the run's signal (a slot, a request, a wait): many at once is normal.
    if (signal) setMaxListeners(0, signal);
    if (options.maxFrames !== undefined && !(Number.isInteger(options.maxFrames) && options.maxFrames >= 1)) {
      throw new RangeError(`run: maxFrames must be a positive integer, got ${String(options.maxFrames)}`);
    }
    const out = options.out ?? this.profile.output.dir;
    if (!out) throw new VideoAnalysisError("INVALID_ARGUMENT", `no output folder: pass --out (run's { out }) or set output.dir in profile ${this.profileSource}`);
    const overwrite = options.overwrite ?? this.profile.output.overwrite;
    const resume = options.resume ?? false;
    const keep = options.keep ?? true;
    const resumable = this.profile.output.resumable;
    const t0 = performance.now();
    const clock = new StageClock();

    await RunFolder.check(out, overwrite, resume, this.files);
    signal?.throwIfAborted();
    const meta = await (options.metadata ?? probeVideo(video));
    if (options.metadata && meta.path !== resolve(video)) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `run: the metadata given is of ${meta.path}, not of the video ${resolve(video)}; pass probeVideo(video)'s`);
    }
    const routing = await this.route({ width: meta.width, height: meta.height, rotation: meta.rotation }, this.profile.analysis.max_side);
    const fps = Math.min(this.profile.analysis.fps, meta.frameRate);
    const a = routing.analysis;
    const strict = options.strict ?? this.profile.input.strict;
    const readOptions = {
      fps: this.profile.analysis.fps,
      width: a.width,
      height: a.height,
      metadata: meta,
      timestampBreaks: this.profile.input.timestamp_breaks,
      strict,
      ...(signal ? { signal } : {}),
    };
    const estimate = planFrames(meta, readOptions).estimatedFrames;
    const meter = new ProgressMeter(options.maxFrames ? Math.min(options.maxFrames, estimate) : estimate);
    // A Triton client that waits out a server outage says so in the progress, and the manifest lists it.
    const triton = this.backend.kind === "triton" && "outages" in this.backend ? (this.backend as TritonClient) : undefined;
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
    const fitter = this.fitter();
    const reader = readFrames(video, {
      ...readOptions,
      highWaterMarkFrames: ahead,
      shared: fitter !== undefined,
      sparse: this.profile.analysis.sparse_decode,
    });
    reader.on("error", () => {});
    // CLIP's vocabulary loads (tens of ms of parsing here) once ffmpeg is decoding, not before it starts;
    // a failure is reported where the tokenizer is needed.
    for (const c of this.components) c.preload?.(this.profile);
    let session: Session;
    let folder: RunFolder;
    const fingerprint = resumable || resume ? fingerprintVideo(meta.path) : undefined;
    fingerprint?.catch(() => undefined);
    try {
      session = await this.session(routing, fps);
      folder = await RunFolder.prepare(out, overwrite, resume, this.files);
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
        this.checkResume(interrupted, folder.dir, meta.path, await fingerprint!, models, options.maxFrames);
        ({ journal, rows: resumedRows } = await RunJournal.resume(folder.dir, interrupted));
        journal.resumed();
      } else if (resumable) {
        journal = await RunJournal.create(folder.dir, {
          video: await fingerprint!, profile: resultProfile(this.profile), profile_source: this.profileSource, models,
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
      const float16 = this.profile.output.float16;
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
      const maps = { float16, directIo: this.profile.output.direct_io };
      const sourceSize = [meta.displayWidth, meta.displayHeight] as const;
      const sinkOf = new Map<Analyzer, ArtifactSink>();
      for (const c of components) {
        const file = c.artifact && this.components.find((x) => x.name === c.name)?.files[0];
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
        this.backend.recycle?.(components.flatMap((c) => (c.buffers && r[c.key] !== undefined ? c.buffers(r[c.key]) : [])));
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
      const interval = this.profile.output.commit_interval_s * 1000;
      let lastCommit = performance.now();
      let writes: Promise<void> = Promise.resolve();
      const waiting: Array<Promise<void>> = [];
      try {
        for await (const r of results) {
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
      const end = { runDir: folder.dir, profile: this.profile };
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
          fps: this.profile.analysis.fps,
          frames: meter.frames,
          first_timestamp: first,
          last_timestamp: last,
          max_frames: maxFrames ?? null,
          decode: decodeRecord(reader.stats.decode),
          decoding: decodingRecord(reader.stats, meta, estimate, meter.frames, strict, options.maxFrames !== undefined && meter.frames >= options.maxFrames),
          timestamps: timestampsRecord(reader.stats, this.profile.input.timestamp_breaks),
        },
        profile: maskedProfile(this.profile),
        profile_source: this.profileSource,
        routing: { video: routing.video, analysis: routing.analysis },
        resolved_model_mapping: routing.resolved_model_mapping,
        models_used: session.handles.map((x) => x.usage()),
        artifacts: records,
        outages: outagesNow(),
        interruptions: journal?.state.interruptions ?? [],
        timings: { wall_ms: 0, stages_ms: {}, frames_per_second: 0 },
      };
      // The report is written before the manifest (which records it), so a complete folder has both.
      if (this.profile.output.report) {
        const { REPORT_FILE, writeReport } = await import("../report/report.js");
        manifest.report = await writeReport(folder.dir, { manifest, video, ...(signal ? { signal } : {}) });
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
  private checkResume(j: JournalData, dir: string, video: string, fp: VideoFingerprint, models: Record<string, string>, maxFrames: number | undefined): void {
    const fail = (msg: string, details: Record<string, unknown>) =>
      new VideoAnalysisError("FAILED_PRECONDITION", `--resume: ${dir} holds an interrupted run (${j.frames} frames committed) ${msg}; resume with what it was started with, or start over with --overwrite`, { details: { out: dir, ...details } });
    if (fp.bytes !== j.video.bytes || fp.sha256_head_tail !== j.video.sha256_head_tail) {
      const same = fp.path === j.video.path;
      throw fail(
        same ? `of ${j.video.path}, which has changed since (${j.video.bytes} bytes then, ${fp.bytes} now)` : `of the video ${j.video.path}, not of ${video} (another video: ${j.video.bytes} and ${fp.bytes} bytes)`,
        { video: video, interrupted_video: j.video.path },
      );
    }
    const diff = jsonDiff(j.profile, resultProfile(this.profile));
    if (diff.length > 0) throw fail(`made with another profile (${j.profile_source}, now ${this.profileSource}): ${diff.join("; ")}`, { differences: diff });
    const routed = jsonDiff(j.models, models);
    if (routed.length > 0) throw fail(`whose models were routed otherwise: ${routed.join("; ")}`, { differences: routed });
    if (maxFrames !== undefined && maxFrames !== (j.max_frames ?? undefined)) {
      throw fail(`with --max-frames ${j.max_frames ?? "(none)"}, not ${maxFrames}`, { max_frames: j.max_frames });
    }
  }

  // --- frames from elsewhere -----------------------------------------------------------------------

  /**
   * Analyses frames that come from elsewhere (an application's own decoder, a camera, another pipeline)
   * and yields one FrameResult per frame, in order, as soon as it and the frames before it are done; no
   * files are written. Models are routed on the first frame's size (frames are analysed at the size
   * given; analysis.max_side does not apply). Detections are tracked over the stream. Breaking out of the
   * loop, or `signal`, stops the work (the source's iterator is closed, calls in flight are awaited).
   *
   * @example
   * for await (const r of mm.process(myFrames(), { signal })) console.log(r.index, r.detections?.length);
   */
  async *process(frames: AsyncIterable<RgbFrame> | Iterable<RgbFrame>, options: ProcessOptions = {}): AsyncGenerator<FrameResult> {
    this.check();
    const source = toAsync(frames);
    const it = source[Symbol.asyncIterator]();
    const head = await it.next();
    if (head.done) return;
    const img = checkFrame(head.value, "frame 0");
    const fps = options.fps ?? this.profile.analysis.fps;
    if (!(fps > 0)) throw new RangeError(`process: fps must be > 0, got ${fps}`);
    const routing = await this.route({ width: img.width, height: img.height }, null);
    const session = await this.session(routing, fps);
    this.adhoc.push(...session.handles);
    const clock = new StageClock();
    for (const c of session.components) await c.prepare?.(clock, options.signal);
    const rest: AsyncIterable<RgbFrame> = {
      [Symbol.asyncIterator]: () => {
        let first = true;
        return {
          next: async () => {
            if (first) {
              first = false;
              return head;
            }
            return it.next();
          },
          return: async () => (it.return ? it.return() : { done: true as const, value: undefined }),
        };
      },
    };
    const fitter = this.fitter();
    yield* analyzeFrames(rest, session.components, { window: session.window, clock, fps, ...(fitter ? { fitter } : {}), ...(options.signal ? { signal: options.signal } : {}) });
  }

  // --- single frames -------------------------------------------------------------------------------

  /** The session for single frames of this size; `key` is the component's result key (its method's name: detect() is "detections"). */
  private frameSession(frame: RgbFrame, key: string, what = key): Promise<Session> {
    this.check();
    const component = this.components.find((c) => c.key === key)!.name as ComponentName;
    if (!this.profile.components[component]?.enabled) {
      throw new VideoAnalysisError("FAILED_PRECONDITION", `${what}() needs ${component}, which profile ${this.profile.name} does not enable; enable components.${component}`);
    }
    const img = checkFrame(frame);
    const size = `${img.width}x${img.height}`;
    let s = this.frameSessions.get(size);
    if (!s) {
      s = this.route({ width: img.width, height: img.height }, null).then(async (routing) => {
        const session = await this.session(routing, this.profile.analysis.fps);
        this.adhoc.push(...session.handles);
        return session;
      });
      s.catch(() => this.frameSessions.delete(size));
      this.frameSessions.set(size, s);
    }
    return s;
  }

  private context(frame: RgbFrame, clock: StageClock) {
    const img = checkFrame(frame);
    const index = frame.index ?? 0;
    return { index, timestamp: frame.timestamp ?? 0, sourceIndex: frame.sourceIndex ?? index, fitted: new FittedFrame(img), clock, outputSize: { width: img.width, height: img.height } };
  }

  /** MiDaS depth of one frame (relative inverse depth at the branch size). */
  async depth(frame: RgbFrame, options: CallOptions = {}): Promise<DepthMap> {
    const s = await this.frameSession(frame, "depth");
    return (await analyzer<DepthMap>(s, "depth").analyze(this.context(frame, new StageClock()), options.signal))!;
  }

  /** RAFT optical flow from frame `a` to frame `b` (same size), in pixels of the branch's S x S input. */
  async flow(a: RgbFrame, b: RgbFrame, options: CallOptions = {}): Promise<FlowField> {
    const ia = checkFrame(a, "frame a");
    const ib = checkFrame(b, "frame b");
    if (ia.width !== ib.width || ia.height !== ib.height) throw new RangeError(`flow: the frames differ in size (${ia.width}x${ia.height} and ${ib.width}x${ib.height})`);
    const s = await this.frameSession(a, "flow");
    const f = (analyzer(s, "flow") as FlowAnalyzer).component;
    const data = await f.pair(new FittedFrame(ia), new FittedFrame(ib), new StageClock(), options.signal);
    return {
      fromIndex: a.index ?? 0,
      toIndex: b.index ?? 1,
      fromSourceIndex: a.sourceIndex ?? a.index ?? 0,
      toSourceIndex: b.sourceIndex ?? b.index ?? 1,
      fromTimestamp: a.timestamp ?? 0,
      toTimestamp: b.timestamp ?? 0,
      width: f.size,
      height: f.size,
      data,
    };
  }

  /** CLIP image embedding of one frame, with its similarities to the profile's prompts. */
  async clip(frame: RgbFrame, options: CallOptions = {}): Promise<ClipFrameResult> {
    const s = await this.frameSession(frame, "clip");
    const c = analyzer<ClipFrameResult>(s, "clip");
    await c.prepare!(new StageClock(), options.signal);
    return (await c.analyze(this.context(frame, new StageClock()), options.signal))!;
  }

  /** CLIP text embedding (unit norm) of one prompt. */
  async clipText(prompt: string, options: CallOptions = {}): Promise<Float32Array> {
    this.check();
    if (typeof prompt !== "string" || prompt.trim() === "") throw new TypeError("clipText: the prompt must be a non-empty string");
    const settings = this.profile.components.core_clip;
    if (!settings?.enabled) throw new VideoAnalysisError("FAILED_PRECONDITION", `clipText() needs core_clip, which profile ${this.profile.name} does not enable; enable components.core_clip`);
    if (!this.textSession) {
      this.textSession = (async () => {
        const m = catalogModel(clipText, undefined, settings.architecture);
        const ready = await this.ready();
        const server = serverModelName(this.profile, m.name);
        if (!ready(server)) throw new VideoAnalysisError("MODEL_NOT_READY", `${server} is not available on the ${this.backend.kind} backend`, { model: server });
        const r: ResolvedModel = {
          component: "core_clip", role: "text", family: clipText.id, architecture: m.architecture.id, model: m.name, server_model: server,
          size: null, input_size: null, wanted: m.name, reason: "unbranched", fallbacks: [], ready: true, letterbox: null,
        };
        const h = this.handle(r, "core_clip.text");
        this.adhoc.push(h);
        return new ClipComponent(undefined, h, await clipTokenizer(settings.bpe_path), settings.prompts, settings.top_k);
      })();
      this.textSession.catch(() => (this.textSession = undefined));
    }
    return (await this.textSession).embedText(prompt, new StageClock(), options.signal);
  }

  /** Places365 top_k scene categories of one frame. */
  async scene(frame: RgbFrame, options: CallOptions = {}): Promise<SceneResult> {
    const s = await this.frameSession(frame, "scene");
    return (await analyzer<SceneResult>(s, "scene").analyze(this.context(frame, new StageClock()), options.signal))!;
  }

  /** YOLO detections of one frame (boxes in the frame's pixels; no tracking: use process() for that). */
  async detect(frame: RgbFrame, options: CallOptions = {}): Promise<Detections> {
    const s = await this.frameSession(frame, "detections", "detect");
    return (await analyzer<Detections>(s, "detections").analyze(this.context(frame, new StageClock()), options.signal))!;
  }

  /** The models the single-frame calls and process() have used so far, with their call statistics. */
  modelsUsed(): ModelUsage[] {
    return this.adhoc.map((h) => h.usage());
  }

  /**
   * Analyses many videos (files, folders, globs), `jobs` at a time, one run folder each under `out`, and
   * writes batch.json there: see runBatch in src/batch (loaded only when called: batch sits above the pipeline).
   */
  async batch(videos: string[], options: import("../batch/batch.js").BatchOptions): Promise<import("../batch/batch.js").BatchReport> {
    this.check();
    const { runBatch } = await import("../batch/batch.js");
    return runBatch(this, videos, options);
  }

  /** Releases the backend (when the manager created it). The manager is unusable afterwards. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fitPool?.close();
    if (this.ownsBackend) await this.backend.close();
  }
}

/** A session's analyser by its key (routing gave the component a model: frameSession checked it is enabled). */
function analyzer<R>(s: Session, key: string): Analyzer<R> {
  const a = s.components.find((c) => c.key === key);
  if (!a) throw new VideoAnalysisError("ROUTING_FAILED", `no model was routed for ${key}`);
  return a as Analyzer<R>;
}

function toAsync<T>(src: AsyncIterable<T> | Iterable<T>): AsyncIterable<T> {
  if (src && typeof (src as AsyncIterable<T>)[Symbol.asyncIterator] === "function") return src as AsyncIterable<T>;
  if (src && typeof (src as Iterable<T>)[Symbol.iterator] === "function") {
    const s = src as Iterable<T>;
    return (async function* () {
      yield* s;
    })();
  }
  throw new TypeError("process: frames must be an iterable or async iterable of { width, height, data } frames");
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

/** The first `n` items of an async iterable; the source is closed when they are taken. */
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

async function* take<T>(src: AsyncIterable<T>, n: number): AsyncGenerator<T> {
  if (n <= 0) return;
  let i = 0;
  for await (const x of src) {
    yield x;
    if (++i >= n) return;
  }
}
