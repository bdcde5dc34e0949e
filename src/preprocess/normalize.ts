import type { CatalogModel, Normalization } from "../catalog/types.js";
import { VideoAnalysisError } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { compileModule, F32, I32, instantiate, moduleBytes, op, uleb, V128, vec, type WasmMemory } from "../wasm/assemble.js";

/**
 * The normalisation in WebAssembly SIMD, 16 pixels per step: norm3(src, groups, out, plane, s, m0, m1, m2,
 * d0, d1, d2) reads groups x 48 bytes of RGB at byte address src and writes groups x 16 FP32 values to
 * each of the planes at out, out + plane, out + 2 plane. Per channel: two shuffles gather its 16 bytes,
 * they widen to Int32 and convert to FP32, then ((x / s) - m[c]) / d[c] in FP32, each step rounded: the
 * arithmetic of the Triton preprocess model (numpy, float32) bit for bit.
 */
function norm3Body(): number[] {
  const [SRC, N, OUT, PLANE, S, M0, D0] = [0, 1, 2, 3, 4, 5, 8];
  const [I, O0] = [11, 12];
  const [V0, V1, V2, VS, VM0, VD0, C, H] = [15, 16, 17, 18, 19, 22, 25, 26];
  const locals = vec([[4, I32], [12, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const range = (n: number, f: (i: number) => number) => Array.from({ length: n }, (_, i) => f(i));
  const code: number[] = [...op.get(S), ...op.f32x4Splat, ...op.set(VS)];
  for (let c = 0; c < 3; c++) code.push(...op.get(M0 + c), ...op.f32x4Splat, ...op.set(VM0 + c), ...op.get(D0 + c), ...op.f32x4Splat, ...op.set(VD0 + c));
  code.push(
    ...op.get(OUT), ...op.set(O0),
    ...op.get(OUT), ...op.get(PLANE), ...op.i32Add, ...op.tee(O0 + 1), ...op.get(PLANE), ...op.i32Add, ...op.set(O0 + 2),
    ...op.block, ...op.loop,
    ...op.get(I), ...op.get(N), ...op.i32GeU, ...op.brIf(1),
    ...op.get(SRC), ...op.v128Load(0), ...op.set(V0),
    ...op.get(SRC), ...op.v128Load(16), ...op.set(V1),
    ...op.get(SRC), ...op.v128Load(32), ...op.set(V2),
  );
  for (let c = 0; c < 3; c++) {
    // Byte 3j + c of the 48 holds pixel j's channel c: the first shuffle takes those in V0 and V1, the
    // second keeps them and adds those in V2.
    const inFirst = range(16, (j) => 3 * j + c).filter((b) => b < 32).length;
    code.push(
      ...op.get(V0), ...op.get(V1), ...op.shuffle(range(16, (j) => (j < inFirst ? 3 * j + c : 0))),
      ...op.get(V2), ...op.shuffle(range(16, (j) => (j < inFirst ? j : 16 + 3 * j + c - 32))),
      ...op.set(C),
    );
    for (let k = 0; k < 4; k++) {
      // Pixels 4k..4k+3: bytes -> Int16 (half of C) -> Int32 (half of that) -> FP32 (exact).
      if (k % 2 === 0) code.push(...op.get(C), ...(k < 2 ? op.i16x8ExtendLowU : op.i16x8ExtendHighU), ...op.set(H));
      code.push(
        ...op.get(O0 + c),
        ...op.get(H), ...(k % 2 === 0 ? op.i32x4ExtendLowU : op.i32x4ExtendHighU), ...op.f32x4ConvertI32x4S,
        ...op.get(VS), ...op.f32x4Div, ...op.get(VM0 + c), ...op.f32x4Sub, ...op.get(VD0 + c), ...op.f32x4Div,
        ...op.v128Store(16 * k),
      );
    }
  }
  code.push(
    ...op.inc(SRC, 48),
    ...[O0, O0 + 1, O0 + 2].flatMap((o) => op.inc(o, 64)),
    ...op.inc(I, 1),
    ...op.loopEnd,
    ...op.end,
  );
  return [...locals, ...code];
}

interface NormKernel {
  norm3(src: number, groups: number, out: number, plane: number, s: number, m0: number, m1: number, m2: number, d0: number, d1: number, d2: number): void;
}

let normModule: object | null | undefined;

function normModuleOrNull(): object | null {
  normModule ??= compileModule(moduleBytes([{ name: "norm3", params: [I32, I32, I32, I32, F32, F32, F32, F32, F32, F32, F32], results: [], body: norm3Body() }]));
  return normModule;
}

/** [N, H x W] of an [N, H, W, 3] shape, checked against the pixels. */
function imageShape(pixels: Uint8Array, shape: readonly number[]): [number, number] {
  if (shape.length !== 4 || shape[3] !== 3) throw new RangeError(`normalizeNhwcToNchw: shape must be [N, H, W, 3], got [${shape.join(",")}]`);
  const [n, h, w] = shape as [number, number, number, number];
  const total = n * h * w * 3;
  if (pixels.length !== total) throw new RangeError(`normalizeNhwcToNchw: shape [${shape.join(",")}] holds ${total} values, pixels has ${pixels.length}`);
  return [n, h * w];
}

/**
 * FP32 NCHW normalised pixels of one shape, in a buffer that is reused: with WebAssembly SIMD the kernel
 * writes them in place, `data` being a view of its own memory (one image's pixels, then the planes),
 * which never grows, so the view stays valid and goes to onnxruntime without a copy. The embedded
 * worker keeps a pool of these; `normalizeNhwcToNchw` is the one-off form.
 */
export class NormalizedPixels {
  /** N x 3 x H x W values, written by each normalize(). */
  readonly data: Float32Array;
  private readonly hw: number;
  private readonly kernel: { memory: WasmMemory; exports: NormKernel } | null;
  private readonly planesAt: number;

  constructor(readonly shape: readonly [number, number, number, number], simd = true) {
    const [n, h, w, c] = shape;
    if (c !== 3 || ![n, h, w].every((v) => Number.isInteger(v) && v >= 1)) {
      throw new RangeError(`NormalizedPixels: shape must be [N, H, W, 3] of positive integers, got [${shape.join(",")}]`);
    }
    this.hw = h * w;
    const mod = simd && this.hw >= 16 ? normModuleOrNull() : null;
    // The kernel reads one image's whole 16-pixel groups at address 0 and writes the planes after them.
    this.planesAt = ((this.hw >> 4) * 48 + 15) & ~15;
    const bytes = this.planesAt + n * this.hw * 12;
    this.kernel = mod ? instantiate<NormKernel>(mod, Math.ceil(bytes / 65536)) : null;
    this.data = this.kernel ? new Float32Array(this.kernel.memory.buffer, this.planesAt, n * this.hw * 3) : new Float32Array(n * this.hw * 3);
  }

  /** Normalises `pixels` (UINT8 NHWC of this shape) into `data` and returns it. */
  normalize(pixels: Uint8Array, norm: Normalization): Float32Array {
    const [n, hw] = imageShape(pixels, this.shape);
    const k = float32Constants(norm);
    // The kernel does each image's whole groups of 16 pixels; the JavaScript loop does the rest.
    const groups = this.kernel ? hw >> 4 : 0;
    for (let i = 0; i < n; i++) {
      const r = i * hw * 3;
      if (groups > 0) {
        new Uint8Array(this.kernel!.memory.buffer, 0, groups * 48).set(pixels.subarray(r, r + groups * 48));
        this.kernel!.exports.norm3(0, groups, this.planesAt + r * 4, hw * 4, k.divisor, ...k.mean, ...k.std);
      }
      normalizeLoop(pixels, this.data, r, hw, groups * 16, k);
    }
    return this.data;
  }
}

// The last shape's buffer, reused by the next call of the same shape.
let scratch: { key: string; pixels: NormalizedPixels } | undefined;

export interface NormalizeOptions {
  /** Where to write the result (N x 3 x H x W values); by default a new buffer. */
  out?: Float32Array;
  /** Use the WebAssembly SIMD kernel where the runtime has it (default); false runs the JavaScript loop. */
  simd?: boolean;
}

/**
 * UINT8 NHWC (RGB) to FP32 NCHW, normalised: what the server-side `preprocess_<model>` does, for the
 * embedded backend. `shape` is [N, H, W, 3]; the result holds N x 3 x H x W values. Each value is
 * ((v / divisor) - mean[c]) / std[c] in FP32 arithmetic, every step rounded, with the constants as FP32:
 * numpy's float32 arithmetic in the preprocess model, so both backends feed a model the same bits. A SIMD
 * kernel does it, or the same arithmetic in JavaScript. For repeated calls on one shape,
 * NormalizedPixels reuses its buffer.
 *
 * @example
 * normalizeNhwcToNchw(new Uint8Array([0, 128, 255]), [1, 1, 1, 3], NORMALIZATIONS.unit)
 * // Float32Array [0, 0.50196..., 1]
 */
export function normalizeNhwcToNchw(pixels: Uint8Array, shape: readonly number[], norm: Normalization, options: NormalizeOptions = {}): Float32Array {
  const [n, hw] = imageShape(pixels, shape);
  const total = n * hw * 3;
  if (options.out && options.out.length !== total) throw new RangeError(`normalizeNhwcToNchw: out must hold ${total} values, it holds ${options.out.length}`);
  const simd = options.simd ?? true;
  const key = `${shape.join("x")}/${simd}`;
  if (scratch?.key !== key) scratch = { key, pixels: new NormalizedPixels(shape as [number, number, number, number], simd) };
  const values = scratch.pixels.normalize(pixels, norm);
  if (options.out) {
    options.out.set(values);
    return options.out;
  }
  return values.slice();
}

interface Float32Constants {
  divisor: number;
  mean: [number, number, number];
  std: [number, number, number];
}

/** The normalisation's constants as FP32 values (numpy's np.float32 of them in the preprocess model). */
function float32Constants(norm: Normalization): Float32Constants {
  const f = Math.fround;
  return { divisor: f(norm.divisor), mean: norm.mean.map(f) as Float32Constants["mean"], std: norm.std.map(f) as Float32Constants["std"] };
}

/**
 * Pixels `from`..hw - 1 of the image at `r` (its R plane starts at dst[r]), in JavaScript. Each step is
 * rounded to FP32 (the double result of one operation on FP32 values, rounded once more to FP32, is the
 * correctly rounded FP32 result), so this is numpy's float32 arithmetic too.
 */
function normalizeLoop(pixels: Uint8Array, dst: Float32Array, r: number, hw: number, from: number, k: Float32Constants): void {
  const f = Math.fround;
  const s = k.divisor;
  const [m0, m1, m2] = k.mean;
  const [d0, d1, d2] = k.std;
  const g = r + hw;
  const bl = g + hw;
  for (let p = from, i = r + 3 * from; p < hw; p++, i += 3) {
    dst[r + p] = f(f(pixels[i]! / s) - m0) / d0;
    dst[g + p] = f(f(pixels[i + 1]! / s) - m1) / d1;
    dst[bl + p] = f(f(pixels[i + 2]! / s) - m2) / d2;
  }
}

// Pixel buffers the SDK made and never changes again (fitted frames), by a number of their own.
const sealed = new WeakMap<Uint8Array, number>();
let nextSealed = 1;

/**
 * Marks a pixel buffer as never to be written again, so that normalising it once serves every model
 * that takes it (MiDaS and RAFT at the same size share one stretched frame and the same arithmetic;
 * RAFT takes frame t again as the first image of the next pair). Only for buffers the SDK made itself:
 * a caller may reuse its own buffers for the next frame.
 */
export function sealPixels(data: Uint8Array): void {
  if (!sealed.has(data)) sealed.set(data, nextSealed++);
}

/** The number of a sealed buffer (the key its normalised versions are kept under), else undefined. */
export function sealedId(data: Uint8Array): number | undefined {
  return sealed.get(data);
}

/**
 * The ensemble's inputs of a catalog model turned into its ONNX model's inputs, as the Triton ensemble's
 * preprocess step would: pixels are normalised to FP32 NCHW, token ids pass through. Inputs are matched
 * by the ensemble's input names and renamed to the ONNX names. `normalize` does the pixels of input i
 * (the embedded backend's worker passes one that shares and reuses buffers).
 */
export function preprocessInputs(
  model: CatalogModel,
  inputs: readonly Tensor[],
  normalize: (pixels: Tensor, norm: Normalization, i: number) => Float32Array = (t, norm) => normalizeNhwcToNchw(t.data as Uint8Array, t.shape, norm),
): Tensor[] {
  return model.ensemble.inputs.map((spec, i) => {
    const k = inputs.findIndex((x) => x.name === spec.name);
    const t = inputs[k];
    const target = model.onnx.inputs[i]!;
    if (!t) throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name} was not given`, { model: model.name });
    if (t.datatype !== spec.datatype) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${spec.name}: expected ${spec.datatype}, got ${t.datatype}`, { model: model.name });
    }
    if (!model.normalization) return { ...t, name: target.name };
    const [n, h, w] = t.shape as [number, number, number, number];
    const data = normalize(t, model.normalization, k);
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
