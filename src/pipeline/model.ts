import type { InferenceBackend, ModelContract } from "../backend/backend.js";
import type { CatalogModel } from "../catalog/types.js";
import type { ResolvedModel } from "../routing/route.js";
import type { Tensor } from "../tensor.js";
import type { Limiter } from "./limiter.js";
import { LatencyRecorder, type StageClock } from "./stats.js";

/** One record of `models_used[]` in the manifest: what served a slot, and how it behaved. */
export interface ModelUsage {
  component: string;
  /** Key in resolved_model_mapping: the component, or `component.role` for a component of several models. */
  slot: string;
  /** The name the backend was called with (the server's name on Triton, the catalog name in-process). */
  name: string;
  /** The routed branch, as the catalog names it (midas_256, yolo11n_640, clip_text). */
  branch: string;
  /** small / medium / large; null for unbranched models (CLIP text). */
  size: string | null;
  /** S of the S x S input; null for token inputs. */
  input_size: number | null;
  architecture: string;
  family: string;
  backend: "triton" | "embedded";
  endpoint: string;
  /** The version that answered (Triton reports it per response). */
  version: string | null;
  /** The tensor contract the client sent and expected (the ensemble's, UINT8 NHWC in). */
  contract: ModelContract;
  /** Output layout: "raw" or "end2end" for YOLO, null otherwise. */
  output_format: string | null;
  /** A detector's class names (index = class id), as its component read them from the model; absent for other models. */
  class_names?: string[];
  max_in_flight: number;
  calls: number;
  /** Per-call latency in ms (client side: queueing for a slot excluded), null before the first call. */
  latency_ms: { p50: number; p95: number; mean: number } | null;
}

/**
 * A model as one run uses it: the routed catalog model, the name to call, the contract, the shared
 * in-flight limiter of that model, and the run's own call statistics.
 *
 * @example
 * // A component's open() is handed its model's ModelHandle: the contract the backend reported, and infer()
 * // within the model's in-flight limit, timed into models_used. This one counts YOLO's candidates above 0.5.
 * const candidates: Component = {
 *   name: "candidates", key: "candidates", slots: ["candidates"], files: [],
 *   models: () => [{ slot: "candidates", name: "candidates", file: "yolo11n.onnx" }],
 *   async open(setup) {
 *     const model = setup.model("candidates")!;
 *     console.log(model.contract.inputs); // [ { name: "images", datatype: "FP32", shape: [ 1, 3, 640, 640 ] } ]
 *     return {
 *       name: "candidates", key: "candidates",
 *       async analyze(ctx) {
 *         const { image } = await ctx.fitted.get("letterbox", 640);
 *         const x = tensor("images", "FP32", [1, 3, 640, 640], normalizeNhwcToNchw(image.data, [1, 640, 640, 3], NORMALIZATIONS.unit));
 *         const scores = toFloat32((await model.infer([x], undefined, ctx.clock)).output0!).subarray(4 * 8400);
 *         return scores.filter((s) => s > 0.5).length;
 *       },
 *     };
 *   },
 * };
 * const mm = await ModelManager.fromProfile({ version: 1, name: "mine", backend: { embedded: {} }, components: {} }, { components: [candidates] });
 * for await (const r of mm.process([await readImageRgb("bus.jpg")])) console.log(r["candidates"]); // 40
 * await mm.close();
 */
export class ModelHandle {
  readonly latency = new LatencyRecorder();
  private answeredVersion: string | null = null;

  constructor(
    readonly backend: InferenceBackend,
    readonly resolved: ResolvedModel,
    readonly slot: string,
    /** The catalog model; undefined for a component's own model (Component.models). */
    readonly catalog: CatalogModel | undefined,
    /** What the backend is called with. */
    readonly callName: string,
    readonly contract: ModelContract,
    private readonly limiter: Limiter,
    /** Output layout ("raw", "end2end"); a component that reads it from its own model sets it. */
    public outputFormat: string | null = null,
  ) {}

  /** A detector's class names, set by its component once read from the model (recorded in models_used). */
  classNames: readonly string[] | undefined;

  /** S of the branch (throws for unbranched models, which have no pixel input, and models outside the catalog). */
  get inputSize(): number {
    const s = this.catalog?.inputSize;
    if (s === undefined) throw new RangeError(`${this.callName} has no catalog branch size`);
    return s;
  }

  /** The catalog model, for the built-in families (whose models always are). */
  get catalogModel(): CatalogModel {
    if (!this.catalog) throw new RangeError(`${this.callName} is not a catalog model`);
    return this.catalog;
  }

  /**
   * One inference, holding one of the model's in-flight slots; its duration goes to the call statistics
   * and, when a clock is given, to its inference stage. `checksums`: InferOptions.checksums.
   */
  async infer(inputs: Tensor[], signal?: AbortSignal, clock?: StageClock, checksums = false): Promise<Record<string, Tensor>> {
    const release = await this.limiter.acquire(signal);
    const t = performance.now();
    try {
      const r = await this.backend.infer(this.callName, inputs, { contract: this.contract, ...(signal ? { signal } : {}), ...(checksums ? { checksums } : {}) });
      const ms = performance.now() - t;
      this.latency.add(ms);
      clock?.add("inference", ms);
      this.answeredVersion = r.version || this.answeredVersion;
      return r.outputs;
    } finally {
      release();
    }
  }

  /**
   * Asks the backend for the model's metadata without waiting, so that it loads the model (onnxruntime
   * creates its session) before the first call needs it. Errors are left to that call.
   */
  warm(): void {
    this.backend.modelMetadata(this.callName).catch(() => undefined);
  }

  /** Output data of this model's answers that nothing reads any more, back to the backend for reuse. */
  recycle(outputs: Record<string, Tensor>): void {
    this.backend.recycle?.(Object.values(outputs).flatMap((t) => (ArrayBuffer.isView(t.data) ? [t.data] : [])));
  }

  usage(): ModelUsage {
    const m = this.resolved;
    return {
      component: m.component,
      slot: this.slot,
      name: this.callName,
      branch: m.model,
      size: m.size,
      input_size: m.input_size,
      architecture: m.architecture,
      family: m.family,
      backend: this.backend.kind,
      endpoint: this.backend.endpoint,
      version: this.answeredVersion,
      contract: this.contract,
      output_format: this.outputFormat,
      ...(this.classNames ? { class_names: [...this.classNames] } : {}),
      max_in_flight: this.limiter.limit,
      calls: this.latency.count,
      latency_ms: this.latency.summary(),
    };
  }
}
