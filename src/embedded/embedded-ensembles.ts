import type { InferenceBackend, InferOptions, InferResult, ModelMetadata } from "../backend/backend.js";
import { checkContract, checkInputs } from "../backend/contract.js";
import type { Tensor } from "../tensor.js";
import { findModel } from "../catalog/catalog.js";
import type { EmbeddedBackend } from "./embedded-backend.js";

/**
 * Makes a backend that runs the ONNX exports themselves (the embedded onnxruntime backend) answer like
 * Triton's ensembles: callers send the ensemble's UINT8 NHWC inputs and get the ensemble's output names,
 * for every catalog model; the SDK's preprocessing (src/preprocess/normalize.ts, run on the backend's
 * worker thread) stands in for the python-backend preprocess step. Models the catalog does not know
 * pass through unchanged.
 *
 * @example
 * const emb = await EmbeddedBackend.create({ models: { yolo11n_640: "yolo11n.onnx" } }); // catalog name -> the ONNX export
 * const be = new EmbeddedEnsembles(emb); // called as the Triton ensemble would be: UINT8 NHWC pixels in, normalised here
 * const { image } = letterbox(await readImageRgb("bus.jpg"), 640);
 * const r = await be.infer("yolo11n_640", [tensor("INPUT__0", "UINT8", [1, 640, 640, 3], image.data)]);
 * console.log(r.outputs.OUTPUT__0?.shape); // [ 1, 84, 8400 ]
 * await be.close();
 */
export class EmbeddedEnsembles implements InferenceBackend {
  readonly kind: InferenceBackend["kind"];
  readonly endpoint: string;

  constructor(private readonly inner: EmbeddedBackend) {
    this.kind = inner.kind;
    this.endpoint = inner.endpoint;
  }

  async infer(model: string, inputs: Tensor[], options: InferOptions = {}): Promise<InferResult> {
    const m = findModel(model);
    if (!m) return this.inner.infer(model, inputs, options);
    if (options.contract) {
      checkContract(model, options.contract, { name: model, versions: ["1"], platform: "ensemble", ...m.ensemble });
    }
    checkInputs(model, m.ensemble, inputs);
    const outputs = options.outputs?.map((o) => m.onnx.outputs[m.ensemble.outputs.findIndex((e) => e.name === o)]?.name ?? o);
    return this.inner.inferEnsemble(m, inputs, { ...options, outputs });
  }

  /** The ensemble's contract, once the ONNX model underneath has been checked against the catalog. */
  async modelMetadata(model: string): Promise<ModelMetadata> {
    const m = findModel(model);
    const md = await this.inner.modelMetadata(model);
    if (!m) return md;
    checkContract(model, m.onnx, md);
    return { name: model, versions: md.versions, platform: "ensemble", inputs: m.ensemble.inputs, outputs: m.ensemble.outputs };
  }

  modelReady(model: string): Promise<boolean> {
    return this.inner.modelReady(model);
  }

  recycle(data: readonly ArrayBufferView[]): void {
    this.inner.recycle(data);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}
