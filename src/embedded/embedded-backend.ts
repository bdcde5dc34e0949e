import { existsSync } from "node:fs";
import * as ort from "onnxruntime-node";
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata, TensorSpec } from "../backend/backend.js";
import { ContractCache, checkInputs } from "../backend/contract.js";
import { VideoAnalysisError } from "../errors.js";
import type { DataType, Tensor } from "../tensor.js";

export interface EmbeddedBackendOptions {
  /** Model name -> path of its .onnx file. */
  models: Record<string, string>;
  /** onnxruntime intra-op threads per session; onnxruntime's default (all cores) when omitted. */
  intraOpNumThreads?: number;
}

// onnxruntime's tensor type names -> Triton's.
const ORT_TO_TRITON: Record<string, DataType> = {
  bool: "BOOL", uint8: "UINT8", uint16: "UINT16", uint32: "UINT32", uint64: "UINT64",
  int8: "INT8", int16: "INT16", int32: "INT32", int64: "INT64",
  float16: "FP16", float32: "FP32", float64: "FP64", string: "BYTES",
};
const TRITON_TO_ORT = Object.fromEntries(Object.entries(ORT_TO_TRITON).map(([k, v]) => [v, k])) as Record<DataType, string>;

function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: "BYTES", shape: [] };
  const datatype = ORT_TO_TRITON[meta.type];
  if (!datatype) throw new VideoAnalysisError("UNIMPLEMENTED", `tensor ${meta.name} has type ${meta.type}, which the SDK does not carry`);
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (typeof d === "number" ? d : -1)) };
}

function toOrt(t: Tensor): ort.Tensor {
  const type = TRITON_TO_ORT[t.datatype];
  if (t.datatype === "BYTES") {
    return new ort.Tensor("string", (t.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8")), t.shape);
  }
  if (t.datatype === "BF16") throw new VideoAnalysisError("UNIMPLEMENTED", `input ${t.name}: onnxruntime-node takes no BF16 tensors; send FP32 or FP16`);
  // BOOL is held as 0/1 bytes; onnxruntime takes a Uint8Array for it too.
  return new ort.Tensor(type as "float32", t.data as Float32Array, t.shape);
}

function fromOrt(name: string, v: ort.Tensor): Tensor {
  const datatype = ORT_TO_TRITON[v.type];
  if (!datatype) throw new VideoAnalysisError("UNIMPLEMENTED", `output ${name} has type ${v.type}, which the SDK does not carry`);
  const shape = [...v.dims];
  if (datatype === "BYTES") return { name, datatype, shape, data: (v.data as string[]).map((s) => Buffer.from(s, "utf8")) };
  if (datatype === "BOOL") {
    const d = v.data as Uint8Array;
    return { name, datatype, shape, data: new Uint8Array(d.buffer, d.byteOffset, d.length) };
  }
  return { name, datatype, shape, data: v.data } as Tensor;
}

/**
 * Runs ONNX models in this process with onnxruntime-node, behind the same interface as the Triton
 * client. One session per model, created on first use and released by close().
 */
export class EmbeddedBackend implements InferenceBackend {
  readonly kind = "embedded" as const;
  readonly endpoint = "embedded";
  private readonly sessions = new Map<string, Promise<ort.InferenceSession>>();
  private readonly contracts = new ContractCache();
  private closed = false;

  private constructor(private readonly options: EmbeddedBackendOptions) {}

  /** Checks that every model file exists; sessions are created lazily, once per model. */
  static async create(options: EmbeddedBackendOptions): Promise<EmbeddedBackend> {
    if (typeof options !== "object" || options === null || typeof options.models !== "object") {
      throw new TypeError("EmbeddedBackend.create: options.models must map model names to .onnx paths");
    }
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

  private session(model: string): Promise<ort.InferenceSession> {
    if (this.closed) throw new VideoAnalysisError("FAILED_PRECONDITION", "the embedded backend is closed", { model });
    let s = this.sessions.get(model);
    if (!s) {
      const path = this.options.models[model];
      if (!path) {
        const known = Object.keys(this.options.models).join(", ") || "none";
        throw new VideoAnalysisError("NOT_FOUND", `no embedded model of that name (this backend has: ${known}); add it to the profile's embedded models`, { model });
      }
      const opts: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: "all" };
      if (this.options.intraOpNumThreads) opts.intraOpNumThreads = this.options.intraOpNumThreads;
      s = ort.InferenceSession.create(path, opts).catch((e: unknown) => {
        this.sessions.delete(model);
        throw new VideoAnalysisError("INVALID_ARGUMENT", `onnxruntime could not load ${path}: ${(e as Error).message}; point the profile (or --model) at a valid .onnx export`, { model, cause: e });
      });
      this.sessions.set(model, s);
    }
    return s;
  }

  async modelMetadata(model: string): Promise<ModelMetadata> {
    const s = await this.session(model);
    return {
      name: model,
      versions: ["1"],
      platform: "onnxruntime_onnx",
      inputs: s.inputMetadata.map(specOf),
      outputs: s.outputMetadata.map(specOf),
    };
  }

  async modelReady(model: string): Promise<boolean> {
    if (!(model in this.options.models)) return false;
    try {
      await this.session(model);
      return true;
    } catch {
      return false;
    }
  }

  async infer(model: string, inputs: Tensor[], options: InferOptions = {}): Promise<InferResult> {
    options.signal?.throwIfAborted();
    const s = await this.session(model);
    if (options.contract) {
      await this.contracts.ensure(model, undefined, options.contract, () => this.modelMetadata(model));
      checkInputs(model, options.contract, inputs);
    }
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) {
      if (!s.inputNames.includes(t.name)) {
        throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${t.name} is not one of the model's inputs (${s.inputNames.join(", ")})`, { model });
      }
      feeds[t.name] = toOrt(t);
    }
    const wanted = options.outputs ?? s.outputNames;
    let out: ort.InferenceSession.ReturnType;
    try {
      out = await s.run(feeds, wanted);
    } catch (e) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `onnxruntime failed: ${(e as Error).message}`, { model, cause: e });
    }
    const outputs: Record<string, Tensor> = {};
    for (const name of wanted) outputs[name] = fromOrt(name, out[name]!);
    return { model, version: "1", id: options.requestId ?? "", outputs };
  }

  async close(): Promise<void> {
    this.closed = true;
    const all = [...this.sessions.values()];
    this.sessions.clear();
    await Promise.all(all.map((p) => p.then((s) => s.release(), () => undefined)));
  }
}
