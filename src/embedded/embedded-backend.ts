import { existsSync, statSync, unlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata } from "../backend/backend.js";
import { ContractCache, checkInputs } from "../backend/contract.js";
import { findModel, inputValues } from "../catalog/catalog.js";
import type { CatalogModel } from "../catalog/types.js";
import { type ErrorCode, type ErrorDetails, abortError, raceAbort, VideoAnalysisError } from "../errors.js";
import { noteCrc32 } from "../checksum.js";
import { sealedId } from "../preprocess/normalize.js";
import type { Tensor } from "../tensor.js";
import { WorkerLink } from "../worker-link.js";

export interface EmbeddedBackendOptions {
  /** Model name -> path of its .onnx file. */
  models: Record<string, string>;
  /** onnxruntime intra-op threads per session; onnxruntime's default (all cores) when omitted. */
  intraOpNumThreads?: number;
  /** Worker threads the models are spread over (default 1). */
  workers?: number;
}

/** What the worker is started with. */
export interface WorkerSetup {
  models: Record<string, string>;
  intraOpNumThreads: number | undefined;
}

/** A request to the worker (ort-worker.ts) and its answer. */
export type WorkerRequest =
  | { id: number; op: "metadata" | "ready"; model: string }
  | { id: number; op: "infer"; model: string; inputs: Tensor[]; outputs: string[] | undefined; ensemble: boolean; shareIds: Array<number | null> | undefined; checksums: boolean }
  | { id: number; op: "close" }
  | { id: 0; op: "recycle"; buffers: ArrayBuffer[] };
/** The worker's answer to an infer request: the outputs, and their CRC-32s when asked for. */
export interface InferAnswer {
  outputs: Record<string, Tensor>;
  crc32?: Record<string, number>;
}
export type WorkerReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: { code: ErrorCode; message: string; model: string | undefined; details: ErrorDetails } };

/**
 * onnxruntime-node is an optional peer dependency (its 290 MB and its install script, which downloads
 * CUDA binaries, are for embedded users only): only the embedded backend's worker imports it. Says how
 * to add it when it is not installed, before any worker starts.
 */
function requireOnnxRuntime(): void {
  try {
    import.meta.resolve("onnxruntime-node");
  } catch (e) {
    throw new VideoAnalysisError(
      "FAILED_PRECONDITION",
      "the embedded backend needs onnxruntime-node, an optional peer dependency of video-analysis-sdk that is not installed: " +
        "add it to your project with `npm install onnxruntime-node --ignore-scripts` (its CPU binaries are in the package; " +
        "its install script only downloads CUDA ones), or use a Triton backend",
      { details: { missing: "onnxruntime-node" }, cause: e },
    );
  }
}

/**
 * onnxruntime's telemetry library leaves an empty `mat-debug-<pid>.log` in the temporary folder of every
 * process that loads it (onnxruntime-node offers no setting for it): removed when the backend closes,
 * unless something was written there.
 */
function removeTelemetryLog(): void {
  const file = join(tmpdir(), `mat-debug-${process.pid}.log`);
  try {
    if (statSync(file).size === 0) unlinkSync(file);
  } catch {
    // not there, or not ours to remove
  }
}

/**
 * Runs ONNX models in this process with onnxruntime-node, behind the same interface as the Triton
 * client. The sessions live on worker threads (ort-worker.ts), one session per model, created on first
 * use and released by close(), so inference never blocks the caller's event loop. With several workers
 * (`workers`), each model is given to one of them at its first call: different models then run and
 * normalise their inputs in parallel. While no call is pending the workers do not keep the process alive.
 *
 * @example
 * const yolo = await EmbeddedBackend.create({ models: { yolo: "yolo11n.onnx" } }); // onnxruntime, in worker threads
 * try {
 *   const md = await yolo.modelMetadata("yolo");
 *   console.log(md.inputs, md.outputs); // [ { name: "images", datatype: "FP32", shape: [ 1, 3, 640, 640 ] } ] [ { name: "output0", ... [ 1, 84, 8400 ] } ]
 *   const r = await yolo.infer("yolo", [tensor("images", "FP32", [1, 3, 640, 640], new Float32Array(3 * 640 * 640))]);
 *   console.log(r.outputs.output0?.shape); // [ 1, 84, 8400 ]
 * } finally {
 *   await yolo.close();
 * }
 */
export class EmbeddedBackend implements InferenceBackend {
  readonly kind = "embedded" as const;
  readonly endpoint = "embedded";
  private readonly contracts = new ContractCache();
  private readonly links: WorkerLink<WorkerReply>[] = [];
  private readonly linkOf = new Map<string, WorkerLink<WorkerReply>>();
  private readonly load: number[] = [];
  private nextId = 1;
  private closed: Promise<void> | undefined;
  private failure: VideoAnalysisError | undefined;
  /** Output buffers a worker handed over, and which: the only ones recycle() sends back. */
  private readonly answered = new WeakMap<ArrayBuffer, WorkerLink<WorkerReply>>();

  private constructor(private readonly options: EmbeddedBackendOptions) {
    const setup: WorkerSetup = { models: { ...options.models }, intraOpNumThreads: options.intraOpNumThreads };
    const onMessage = (link: WorkerLink<WorkerReply>, msg: WorkerReply) => {
      const p = link.take(msg.id);
      if (!p) return;
      if (msg.ok) {
        const outputs = (msg.value as { outputs?: Record<string, Tensor> } | null)?.outputs;
        if (outputs) for (const t of Object.values(outputs)) if (ArrayBuffer.isView(t.data)) this.answered.set(t.data.buffer as ArrayBuffer, link);
        p.resolve(msg.value);
      } else {
        p.reject(new VideoAnalysisError(msg.error.code, msg.error.message, { model: msg.error.model, details: msg.error.details }));
      }
    };
    const onFailure = (e: Error) => {
      this.failure ??= new VideoAnalysisError("INTERNAL", `the embedded backend's worker stopped: ${e.message}`, { cause: e });
      for (const link of this.links) link.failAll(this.failure);
    };
    const file = new URL("./ort-worker.js", import.meta.url);
    for (let i = 0; i < (options.workers ?? 1); i++) {
      this.links.push(new WorkerLink(file, setup, onMessage, onFailure, () => this.closed !== undefined));
      this.load.push(0);
    }
  }

  /** Checks that every model file exists; sessions are created lazily, once per model. */
  static async create(options: EmbeddedBackendOptions): Promise<EmbeddedBackend> {
    if (typeof options !== "object" || options === null || typeof options.models !== "object") {
      throw new TypeError("EmbeddedBackend.create: options.models must map model names to .onnx paths");
    }
    if (options.workers !== undefined && !(Number.isInteger(options.workers) && options.workers >= 1)) {
      throw new RangeError(`EmbeddedBackend.create: workers must be a positive integer, got ${String(options.workers)}`);
    }
    requireOnnxRuntime();
    for (const [name, path] of Object.entries(options.models)) {
      if (!existsSync(path)) {
        throw new VideoAnalysisError("NOT_FOUND", `model file ${path} does not exist; point the profile's embedded model path at an .onnx export`, { model: name });
      }
    }
    return new EmbeddedBackend(options);
  }

  /** The models this backend serves. */
  get modelNames(): string[] {
    return Object.keys(this.options.models);
  }

  /**
   * The worker that runs `model`, chosen at the model's first call: the one with the least work given
   * so far, a model's work taken as the number of input values of its ONNX contract (catalog models;
   * 1 for others). Called heaviest first (ModelManager warms its models so), this keeps the heavy
   * models apart.
   */
  private link(model: string): WorkerLink<WorkerReply> {
    let link = this.linkOf.get(model);
    if (!link) {
      let best = 0;
      for (let i = 1; i < this.links.length; i++) if (this.load[i]! < this.load[best]!) best = i;
      link = this.links[best]!;
      const m = findModel(model);
      this.load[best]! += m ? inputValues(m) : 1;
      this.linkOf.set(model, link);
    }
    return link;
  }

  private call<T>(req: DistributiveOmit<WorkerRequest, "id">, link: WorkerLink<WorkerReply>): Promise<T> {
    const model = "model" in req ? req.model : undefined;
    if (this.closed && req.op !== "close") return Promise.reject(new VideoAnalysisError("FAILED_PRECONDITION", "the embedded backend is closed", { model }));
    if (this.failure) return Promise.reject(this.failure);
    const id = this.nextId++;
    return link.call<T>(id, { ...req, id }).catch((e: unknown) => {
      if (e instanceof VideoAnalysisError) throw e;
      throw new VideoAnalysisError("INVALID_ARGUMENT", `the request cannot be passed to the embedded backend's worker: ${(e as Error).message}`, { model, cause: e });
    });
  }

  modelMetadata(model: string): Promise<ModelMetadata> {
    return this.call({ op: "metadata", model }, this.link(model));
  }

  modelReady(model: string): Promise<boolean> {
    return this.call({ op: "ready", model }, this.link(model));
  }

  async infer(model: string, inputs: Tensor[], options: InferOptions = {}): Promise<InferResult> {
    if (options.contract) {
      await this.contracts.ensure(model, undefined, options.contract, () => this.modelMetadata(model));
      checkInputs(model, options.contract, inputs);
    }
    return this.run(model, inputs, options, false);
  }

  /**
   * A catalog model called as its Triton ensemble: UINT8 NHWC pixels (and token ids) in, the ensemble's
   * output names out; the worker normalises the pixels as the ensemble's preprocess step would. Pixel
   * buffers sealed with sealPixels are normalised once however many models take them. For EmbeddedEnsembles.
   */
  async inferEnsemble(model: CatalogModel, inputs: Tensor[], options: InferOptions = {}): Promise<InferResult> {
    await this.contracts.ensure(model.name, undefined, model.onnx, () => this.modelMetadata(model.name));
    return this.run(model.name, inputs, options, true);
  }

  private async run(model: string, inputs: Tensor[], options: InferOptions, ensemble: boolean): Promise<InferResult> {
    if (options.signal?.aborted) throw abortError(options.signal, "the call");
    const shareIds = ensemble ? inputs.map((t) => (t.data instanceof Uint8Array ? (sealedId(t.data) ?? null) : null)) : undefined;
    // A view into a larger buffer is cut out first: posting it would copy the whole buffer to the worker
    // (shared memory is not copied at all).
    const own = inputs.map((t) =>
      ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer && t.data.byteLength !== t.data.buffer.byteLength ? ({ ...t, data: t.data.slice() } as Tensor) : t,
    );
    const checksums = options.checksums === true;
    const call = this.call<InferAnswer>({ op: "infer", model, inputs: own, outputs: options.outputs, ensemble, shareIds, checksums }, this.link(model));
    // An abort answers at once; the worker finishes the run it is in and its answer is dropped.
    const r = options.signal ? await raceAbort(call, options.signal, "the call") : await call;
    for (const [name, crc] of Object.entries(r.crc32 ?? {})) {
      const data = r.outputs[name]?.data;
      if (ArrayBuffer.isView(data)) noteCrc32(data, crc);
    }
    return { model, version: "1", id: options.requestId ?? "", outputs: r.outputs };
  }

  /**
   * Output buffers of earlier answers go back to the worker that made them, which answers later outputs
   * of the same size in them: the answers then reuse a few buffers instead of making V8 account for
   * megabytes of new ones per frame. Only whole buffers a worker made are taken; the arrays are detached
   * here.
   */
  recycle(data: readonly ArrayBufferView[]): void {
    if (this.closed || this.failure) return;
    const back = new Map<WorkerLink<WorkerReply>, Set<ArrayBuffer>>();
    for (const d of data) {
      const link = d.buffer instanceof ArrayBuffer && d.byteOffset === 0 && d.byteLength === d.buffer.byteLength && d.byteLength > 0 ? this.answered.get(d.buffer) : undefined;
      if (!link) continue;
      if (!back.has(link)) back.set(link, new Set());
      back.get(link)!.add(d.buffer as ArrayBuffer);
    }
    for (const [link, set] of back) {
      const buffers = [...set];
      for (const b of buffers) this.answered.delete(b);
      link.worker.postMessage({ id: 0, op: "recycle", buffers } satisfies WorkerRequest, buffers);
    }
  }

  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = (async () => {
        if (!this.failure) await Promise.all(this.links.map((l) => this.call({ op: "close" }, l).catch(() => undefined)));
        await Promise.all(this.links.map((l) => l.worker.terminate()));
        removeTelemetryLog();
      })();
    }
    return this.closed;
  }
}

type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;
