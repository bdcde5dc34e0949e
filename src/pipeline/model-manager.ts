import { existsSync } from "node:fs";
import type { InferenceBackend, ModelContract } from "../backend/backend.js";
import { checkContract } from "../backend/contract.js";
import { EmbeddedEnsembles } from "../embedded/embedded-ensembles.js";
import { findModel, inputValues } from "../catalog/index.js";
import type { CatalogModel, ComponentName } from "../catalog/types.js";
import { composeComponents } from "../components/load.js";
import { BUILTIN, flowBetween, openClipText, type ClipFrameResult, type ClipTextEmbedder, type DepthMap, type FlowField, type SceneResult } from "../components/builtins.js";
import type { Detections } from "../detections/detections.js";
import { EmbeddedBackend } from "../embedded/embedded-backend.js";
import { VideoAnalysisError } from "../errors.js";
import { embeddedModelPath, embeddedWorkers, maxInFlight, preprocessWorkers, serverModelName, tritonClientOptions, type Profile } from "../profiles/index.js";
import { resolveModelMapping, routableModels, type ResolvedModel, type Routing, type VideoMetadata as RouteVideo } from "../routing/index.js";
import type { Analyzer, Component, ComponentModel } from "./component.js";
import { FitPool } from "./fit-pool.js";
import { checkFrame, FittedFrame, type RgbFrame } from "./frame.js";
import { Limiter } from "./limiter.js";
import { ModelHandle, type ModelUsage } from "./model.js";
import { analyzeFrames, type FrameResult } from "./pipeline.js";
import { resolveProfile, type ProfileSource, type ProfileSourceOptions } from "./profile-source.js";
import { StageClock } from "./stats.js";
import { runVideo, type RunHost, type RunOptions, type RunResult, type Session } from "./video-run.js";

export type { RunOptions, RunResult } from "./video-run.js";

export interface ModelManagerOptions extends ProfileSourceOptions {
  /**
   * A backend to use instead of the one the profile describes, e.g. an application's own TritonClient.
   * It must answer like the Triton ensembles (UINT8 NHWC in): a TritonClient, or EmbeddedEnsembles over
   * an EmbeddedBackend. The manager does not close a backend it was given.
   */
  backend?: InferenceBackend;
  /**
   * Components of the application's own, composed after the built-ins (their settings, if any, are the
   * profile's components.<name>; disabled there with enabled: false). See Component.
   */
  components?: readonly Component[];
}


export interface ProcessOptions {
  signal?: AbortSignal;
  /** Frame rate of the stream, for timestamps of frames without one and for the tracker (default: the profile's analysis fps). */
  fps?: number;
}

export interface CallOptions {
  signal?: AbortSignal;
}


/**
 * The SDK's entry point: a profile's models on its backend (Triton over gRPC, or onnxruntime in this
 * process), run on a whole video (`run`), on frames from elsewhere (`process`), or one frame at a time
 * (`depth`, `flow`, `clip`, `clipText`, `scene`, `detect`). Create it with `fromProfile`, end it with
 * `close()`.
 *
 * @example
 * const mm = await ModelManager.fromProfile("my_yolo.yaml"); // a YOLO of one's own, in process (README: Your own YOLO); or a profile object
 * try {
 *   const { manifest } = await mm.run("people.mp4", { out: "runs/mine", maxFrames: 10, onProgress: (p) => console.log(p.frames) });
 *   console.log(manifest.models_used[0]?.class_names?.[0]); // "person"
 *   const dets = await mm.detect(await readImageRgb("bus.jpg"));
 *   console.log(dets.toRecords().map((d) => d.className)); // [ "person", "bus", "person", "person", "person" ]
 * } finally {
 *   await mm.close();
 * }
 */
export class ModelManager {
  private readonly limiters = new Map<string, Limiter>();
  private readiness: Promise<(serverName: string) => boolean> | undefined;
  private readonly frameSessions = new Map<string, Promise<Session>>();
  private textSession: Promise<ClipTextEmbedder> | undefined;
  private readonly adhoc: ModelHandle[] = [];
  private fitPool: FitPool | undefined;
  private closed = false;
  /** Every file the components may write in a run folder. */
  private readonly files: readonly string[];
  /** Contracts of the components' own models (outside the catalog), by the name they are called with. */
  private readonly ownContracts = new Map<string, Promise<ModelContract>>();

  private constructor(
    /** The validated profile. */
    readonly profile: Profile,
    /** Where the profile came from (its path, or "(profile object)"). */
    readonly profileSource: string,
    /** The backend every call goes through. */
    readonly backend: InferenceBackend,
    private readonly ownsBackend: boolean,
    /** Embedded only: model name -> .onnx path the profile names (present or not). */
    private readonly embeddedFiles: Map<string, string | undefined> | undefined,
    /** The families this manager composes, in the order their models and artifacts are listed. */
    private readonly components: readonly Component[],
    /** The components' own models (Component.models), with the component each serves. */
    private readonly ownModels: ReadonlyArray<ComponentModel & { component: string }>,
  ) {
    this.files = components.flatMap((c) => [...c.files, ...(c.optionalFiles ?? [])]);
  }

  /**
   * Loads and validates a profile (a YAML path, or the same as an object; `overrides` are laid over it)
   * and connects its backend: a TritonClient for `backend.triton`, onnxruntime sessions (created on first
   * use) for `backend.embedded`.
   */
  static async fromProfile(source: ProfileSource, options: ModelManagerOptions = {}): Promise<ModelManager> {
    const { profile, file } = await resolveProfile(source, options);
    const components = await composeComponents(profile, options.components);
    const own = components.flatMap((c) => {
      const settings = profile.components[c.name] as Record<string, unknown> | undefined;
      return settings?.["enabled"] === false ? [] : (c.models?.(settings, profile) ?? []).map((m) => ({ ...m, component: c.name }));
    });
    if (options.backend) return new ModelManager(profile, file, options.backend, false, undefined, components, own);
    if (profile.backend.triton) {
      // Loaded here: gRPC and its protobuf runtime are megabytes of heap an embedded run never uses.
      const { TritonClient } = await import("../triton/client.js");
      const client = await TritonClient.create(tritonClientOptions(profile));
      return new ModelManager(profile, file, client, true, undefined, components, own);
    }
    const files = new Map<string, string | undefined>();
    const present: Record<string, string> = {};
    const add = (name: string, p: string | undefined) => {
      files.set(name, p);
      if (p && existsSync(p)) present[name] = p;
    };
    for (const m of routableModels(profile)) add(m.name, embeddedModelPath(profile, m.name));
    for (const m of own) add(m.name, m.file);
    const threads = profile.backend.embedded?.intra_op_threads;
    const emb = await EmbeddedBackend.create({ models: present, workers: embeddedWorkers(profile), ...(threads ? { intraOpNumThreads: threads } : {}) });
    return new ModelManager(profile, file, new EmbeddedEnsembles(emb), true, files, components, own);
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

  private handle(r: ResolvedModel, slot: string, contracts: ReadonlyMap<string, ModelContract>): ModelHandle {
    const cm = findModel(r.model);
    const own = contracts.get(r.server_model);
    if (!cm && own) return new ModelHandle(this.backend, r, slot, undefined, r.server_model, own, this.limiter(r.server_model, r.model));
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
      const routing = resolveModelMapping(video, profile, { ready });
      Object.assign(routing.resolved_model_mapping, await this.ownRoutes());
      return routing;
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

  /** The components' own models, as named: each must be there (its file, or READY on the server). */
  private async ownRoutes(): Promise<Record<string, ResolvedModel>> {
    const out: Record<string, ResolvedModel> = {};
    for (const m of this.ownModels) {
      const where = `components.${m.component}`;
      if (this.embeddedFiles) {
        // In process a catalog model's name means its ensemble (the SDK's preprocessing): another model may not take it.
        if (findModel(m.name)) {
          throw new VideoAnalysisError("INVALID_ARGUMENT", `${where}: its model is called ${m.name}, which is a catalog model's name; name the component (or its model) otherwise`, { model: m.name });
        }
        if (!m.file || !existsSync(m.file)) {
          throw new VideoAnalysisError("NOT_FOUND", `${where}: its model file ${m.file ?? "(none named)"} does not exist; set ${where}.model to an .onnx file (relative to the profile's folder)`, {
            model: m.name,
            details: { file: m.file },
          });
        }
      } else if (!(await this.backend.modelReady(m.name))) {
        throw new VideoAnalysisError("MODEL_NOT_READY", `${where}: ${m.name} is not READY on the ${this.backend.kind} backend at ${this.backend.endpoint}; load it there, or set ${where}.model to the name the server knows it by`, { model: m.name });
      }
      await this.ownContract(m);
      out[m.slot] = {
        component: m.component, role: null, family: m.family ?? m.component, architecture: m.name, model: m.name, server_model: m.name,
        size: null, input_size: null, wanted: m.name, reason: `named by components.${m.component}`, fallbacks: [], ready: true, letterbox: null,
      };
    }
    return out;
  }

  /** A component's own model's contract: the one it gives, checked against the backend's metadata, else that metadata. */
  private ownContract(m: ComponentModel): Promise<ModelContract> {
    let c = this.ownContracts.get(m.name);
    if (!c) {
      c = this.backend.modelMetadata(m.name).then((md) => {
        if (!m.contract) return { inputs: md.inputs, outputs: md.outputs };
        checkContract(m.name, m.contract, md);
        return m.contract;
      });
      c.catch(() => this.ownContracts.delete(m.name));
      this.ownContracts.set(m.name, c);
    }
    return c;
  }

  /** Builds the models and components for a routing; `fps` is the tracker's frame rate. */
  private async session(routing: Routing, fps: number): Promise<Session> {
    const p = this.profile;
    const map = routing.resolved_model_mapping;
    const handles: ModelHandle[] = [];
    const routed = this.ownModels.filter((m) => map[m.slot]);
    const contracts = new Map(await Promise.all(routed.map(async (m) => [m.name, await this.ownContract(m)] as const)));
    const h = (slot: string) => {
      const r = map[slot];
      if (!r) return undefined;
      const x = this.handle(r, slot, contracts);
      handles.push(x);
      return x;
    };
    const slots = new Map(this.components.flatMap((c) => c.slots.map((slot) => [slot, h(slot)] as const)));
    // Every model starts loading now, while CLIP's vocabulary is read and the prompts are embedded, not at
    // the first frame; heaviest first, which is how the embedded backend spreads them over its workers.
    const weight = (x: ModelHandle) => (x.catalog ? inputValues(x.catalog) : 0);
    for (const x of [...handles].sort((a, b) => weight(b) - weight(a))) x.warm();
    const components: Analyzer[] = [];
    for (const c of this.components) {
      const model = (slot: string) => slots.get(slot);
      const modelFile = (slot: string) => (map[slot] ? this.embeddedFiles?.get(map[slot]!.model) : undefined);
      const a = await c.open({ profile: p, settings: p.components[c.name] as Record<string, unknown> | undefined, fps, model, modelFile });
      if (a) components.push(a);
    }
    const window = Math.max(2, ...handles.map((x) => x.usage().max_in_flight + 1));
    return { routing, handles, components, window };
  }

  // --- whole videos --------------------------------------------------------------------------------

  /**
   * Analyses a video file with every enabled component and writes the run folder: one .npz per
   * component and manifest.json (SPEC section 4); see runVideo (video-run.ts) and RunOptions.
   */
  async run(video: string, options: RunOptions = {}): Promise<RunResult> {
    this.check();
    const host: RunHost = {
      profile: this.profile, profileSource: this.profileSource, backend: this.backend, components: this.components, files: this.files,
      route: (v, maxSide) => this.route(v, maxSide), session: (r, fps) => this.session(r, fps), fitter: () => this.fitter(),
    };
    return runVideo(host, video, options);
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
   * const mm = await ModelManager.fromProfile("my_yolo.yaml");
   * for await (const r of mm.process(readFrames("people.mp4", { fps: 1 }), { fps: 1 })) {
   *   console.log(r.index, r.detections?.toRecords().map((d) => `${d.className} ${d.trackId}`)); // 8 [ "person 1" ] ...
   *   if (r.index === 9) break; // stops the decoder too
   * }
   * await mm.close();
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

  /** One frame through the component of result key `key` (`what`: the call's name, for errors). */
  private async one<R>(key: string, frame: RgbFrame, signal: AbortSignal | undefined, what = key): Promise<R> {
    const a = analyzer<R>(await this.frameSession(frame, key, what), key);
    await a.prepare?.(new StageClock(), signal);
    return (await a.analyze(this.context(frame, new StageClock()), signal))!;
  }

  /** MiDaS depth of one frame (relative inverse depth at the branch size). */
  depth(frame: RgbFrame, options: CallOptions = {}): Promise<DepthMap> {
    return this.one(BUILTIN.depth.key, frame, options.signal);
  }

  /** RAFT optical flow from frame `a` to frame `b` (same size), in pixels of the branch's S x S input. */
  async flow(a: RgbFrame, b: RgbFrame, options: CallOptions = {}): Promise<FlowField> {
    const key = BUILTIN.flow.key;
    return flowBetween(analyzer(await this.frameSession(a, key), key), a, b, options.signal);
  }

  /** CLIP image embedding of one frame, with its similarities to the profile's prompts. */
  clip(frame: RgbFrame, options: CallOptions = {}): Promise<ClipFrameResult> {
    return this.one(BUILTIN.clip.key, frame, options.signal);
  }

  /** CLIP text embedding (unit norm) of one prompt. */
  async clipText(prompt: string, options: CallOptions = {}): Promise<Float32Array> {
    this.check();
    if (typeof prompt !== "string" || prompt.trim() === "") throw new TypeError("clipText: the prompt must be a non-empty string");
    if (!this.textSession) {
      this.textSession = (async () =>
        openClipText(this.profile, await this.ready(), this.backend.kind, (r, slot) => {
          const h = this.handle(r, slot, new Map());
          this.adhoc.push(h);
          return h;
        }))();
      this.textSession.catch(() => (this.textSession = undefined));
    }
    return (await this.textSession).embedText(prompt, new StageClock(), options.signal);
  }

  /** Places365 top_k scene categories of one frame. */
  scene(frame: RgbFrame, options: CallOptions = {}): Promise<SceneResult> {
    return this.one(BUILTIN.scene.key, frame, options.signal);
  }

  /** YOLO detections of one frame (boxes in the frame's pixels; no tracking: use process() for that). */
  detect(frame: RgbFrame, options: CallOptions = {}): Promise<Detections> {
    return this.one(BUILTIN.detections.key, frame, options.signal, "detect");
  }

  /** The models the single-frame calls and process() have used so far, with their call statistics. */
  modelsUsed(): ModelUsage[] {
    return this.adhoc.map((h) => h.usage());
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
