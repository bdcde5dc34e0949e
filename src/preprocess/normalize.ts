import type { CatalogModel, Normalization } from "../catalog/types.js";
import { VideoAnalysisError } from "../errors.js";
import type { Tensor } from "../tensor.js";

const luts = new WeakMap<Normalization, Float32Array>();

/**
 * The normalisation as a lookup table: 3 x 256 FP32 values, `(v * scale - mean[c]) / std[c]` for every
 * byte value v of channel c, computed once per normalisation.
 */
export function normalizationTable(norm: Normalization): Float32Array {
  let lut = luts.get(norm);
  if (!lut) {
    lut = new Float32Array(3 * 256);
    for (let c = 0; c < 3; c++) {
      for (let v = 0; v < 256; v++) lut[c * 256 + v] = (v * norm.scale - norm.mean[c]!) / norm.std[c]!;
    }
    luts.set(norm, lut);
  }
  return lut;
}

/**
 * UINT8 NHWC (RGB) to FP32 NCHW, normalised: what the server-side `preprocess_<model>` does, for the
 * embedded backend. `shape` is [N, H, W, 3]; the result holds N x 3 x H x W values (written into `out`
 * when given, which must have that length).
 *
 * @example
 * normalizeNhwcToNchw(new Uint8Array([0, 128, 255]), [1, 1, 1, 3], NORMALIZATIONS.unit)
 * // Float32Array [0, 0.50196..., 1]
 */
export function normalizeNhwcToNchw(pixels: Uint8Array, shape: readonly number[], norm: Normalization, out?: Float32Array): Float32Array {
  if (shape.length !== 4 || shape[3] !== 3) throw new RangeError(`normalizeNhwcToNchw: shape must be [N, H, W, 3], got [${shape.join(",")}]`);
  const [n, h, w] = shape as [number, number, number, number];
  const hw = h * w;
  const total = n * hw * 3;
  if (pixels.length !== total) throw new RangeError(`normalizeNhwcToNchw: shape [${shape.join(",")}] holds ${total} values, pixels has ${pixels.length}`);
  const dst = out ?? new Float32Array(total);
  if (dst.length !== total) throw new RangeError(`normalizeNhwcToNchw: out must hold ${total} values, it holds ${dst.length}`);
  const lut = normalizationTable(norm);
  for (let b = 0; b < n; b++) {
    const src0 = b * hw * 3;
    const r = b * hw * 3;
    const g = r + hw;
    const bl = g + hw;
    for (let p = 0, s = src0; p < hw; p++, s += 3) {
      dst[r + p] = lut[pixels[s]!]!;
      dst[g + p] = lut[256 + pixels[s + 1]!]!;
      dst[bl + p] = lut[512 + pixels[s + 2]!]!;
    }
  }
  return dst;
}

/**
 * The ensemble's inputs of a catalog model turned into its ONNX model's inputs, as the Triton ensemble's
 * preprocess step would: pixels are normalised to FP32 NCHW, token ids pass through. Inputs are matched
 * by the ensemble's input names and renamed to the ONNX names.
 */
export function preprocessInputs(model: CatalogModel, inputs: readonly Tensor[]): Tensor[] {
  return model.ensemble.inputs.map((spec, i) => {
    const t = inputs.find((x) => x.name === spec.name);
    const target = model.onnx.inputs[i]!;
    if (!t) throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name} was not given`, { model: model.name });
    if (t.datatype !== spec.datatype) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name}: expected ${spec.datatype}, got ${t.datatype}`, { model: model.name });
    }
    if (!model.normalization) return { ...t, name: target.name };
    const [n, h, w] = t.shape as [number, number, number, number];
    const data = normalizeNhwcToNchw(t.data as Uint8Array, t.shape, model.normalization);
    return { name: target.name, datatype: "FP32", shape: [n, 3, h, w], data };
  });
}

/** The ONNX model's outputs renamed to the ensemble's output names (by position). */
export function ensembleOutputs(model: CatalogModel, outputs: Readonly<Record<string, Tensor>>): Record<string, Tensor> {
  const out: Record<string, Tensor> = {};
  model.onnx.outputs.forEach((spec, i) => {
    const t = outputs[spec.name];
    const name = model.ensemble.outputs[i]!.name;
    if (t) out[name] = { ...t, name };
  });
  return out;
}
