/**
 * openai/CLIP's image preprocessing resize: torchvision's Resize(S, BICUBIC) on a PIL image (the shorter
 * side to S, the longer to int(S * long / short)), then CenterCrop(S). torchvision hands the resize to
 * Pillow, so the arithmetic reproduced here is Pillow's (Resample.c, learned from reading it):
 * - a cubic convolution filter with a = -0.5 and support 2, stretched by the downscale factor when
 *   shrinking (antialiasing): each output pixel averages every source pixel under its footprint;
 * - per output index: centre = (d + 0.5) * scale, taps from int(centre - support + 0.5) to
 *   int(centre + support + 0.5) clamped to the image, weights filter((x - centre + 0.5) / filterscale)
 *   normalised to sum 1, then turned into 22-bit fixed point (round half away from zero);
 * - the horizontal pass first, over the source rows the vertical pass needs, each sum rounded (+ 2^21)
 *   and clamped to 0..255 (so the intermediate image is uint8), then the vertical pass the same way.
 * Only the output pixels inside the centre crop are computed: each depends on its own taps alone, so they
 * equal those of the full resize cropped afterwards. Checked against openai/CLIP's own preprocessing of
 * ../shared/testdata/images/franz-kafka.jpg (clip/franz_kafka_preprocessed_224.npy): identical to 1e-6.
 */
import { compileModule, I32, instantiate, moduleBytes, op, uleb, V128, vec, type WasmMemory } from "../wasm/assemble.js";
import type { RgbImage } from "./resize.js";

const PRECISION_BITS = 22;
const HALF = 1 << (PRECISION_BITS - 1);

function cubic(x: number): number {
  const a = -0.5;
  if (x < 0) x = -x;
  if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
  if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
  return 0;
}

/** Taps of output indices [first, first + count) of a resize of `inSize` to `outSize`: start, length and fixed-point weights (stride ksize). */
export interface AxisCoefficients {
  ksize: number;
  start: Int32Array;
  length: Int32Array;
  weights: Int32Array;
}

export function bicubicCoefficients(inSize: number, outSize: number, first = 0, count = outSize): AxisCoefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = 2 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(count);
  const length = new Int32Array(count);
  const weights = new Int32Array(count * ksize);
  const k = new Float64Array(ksize);
  for (let i = 0; i < count; i++) {
    const center = (first + i + 0.5) * scale;
    const ss = 1 / filterscale;
    // C's (int) truncates toward zero, as Math.trunc.
    const xmin = Math.max(0, Math.trunc(center - support + 0.5));
    const xmax = Math.min(inSize, Math.trunc(center + support + 0.5)) - xmin;
    let ww = 0;
    for (let x = 0; x < xmax; x++) {
      const w = cubic((x + xmin - center + 0.5) * ss);
      k[x] = w;
      ww += w;
    }
    for (let x = 0; x < xmax; x++) {
      const w = ww !== 0 ? k[x]! / ww : k[x]!;
      weights[i * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * (1 << PRECISION_BITS)) : Math.trunc(0.5 + w * (1 << PRECISION_BITS));
    }
    start[i] = xmin;
    length[i] = xmax;
  }
  return { ksize, start, length, weights };
}

const clip8 = (ss: number) => {
  const v = ss >> PRECISION_BITS;
  return v < 0 ? 0 : v > 255 ? 255 : v;
};

/**
 * One output value group in WebAssembly SIMD: the sum HALF + sum over taps of (4 bytes at `a`, widened
 * to i32 lanes) * weight, `a` stepping by `step` bytes and the weight pointer by 4, then >> 22 and the two
 * saturating narrows (i32 -> i16 -> u8), which clamp to 0..255 exactly as Pillow's clip8. The four
 * result bytes are stored at OUT (the fourth lane spills one value on; the caller leaves room).
 */
function tapSum(A: number, WP: number, T: number, ACC: number, step: number | { local: number }): number[] {
  const stepOps = typeof step === "number" ? op.inc(A, step) : [...op.get(A), ...op.get(step.local), ...op.i32Add, ...op.set(A)];
  return [
    ...op.i32(HALF), ...op.i32x4Splat, ...op.set(ACC),
    ...op.block, ...op.loop,
    ...op.get(T), ...op.i32Eqz, ...op.brIf(1),
    ...op.get(ACC),
    ...op.get(A), ...op.v128Load32Zero(0), ...op.i16x8ExtendLowU, ...op.i32x4ExtendLowU,
    ...op.get(WP), ...op.i32Load, ...op.i32x4Splat,
    ...op.i32x4Mul, ...op.i32x4Add, ...op.set(ACC),
    ...stepOps,
    ...op.inc(WP, 4),
    ...op.inc(T, -1),
    ...op.loopEnd,
    ...op.get(ACC), ...op.i32(PRECISION_BITS), ...op.i32x4ShrS, ...op.tee(ACC), ...op.get(ACC), ...op.i16x8NarrowI32x4S,
    ...op.tee(ACC), ...op.get(ACC), ...op.i8x16NarrowI16x8U, ...op.i32x4ExtractLane(0),
  ];
}

/**
 * hpass(src, starts, lens, w, ks4, n, out): one row's horizontal pass, 3 channels (+1 spilled lane) per
 * step: output pixel x sums lens[x] taps from src + starts[x] (byte offsets), weights from w + x * ks4.
 */
function hpassBody(): number[] {
  const [SRC, STARTS, LENS, W, KS4, N, OUT] = [0, 1, 2, 3, 4, 5, 6];
  const [END, A, WP, T, ACC] = [7, 8, 9, 10, 11];
  const locals = vec([[4, I32], [1, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const code = [
    ...op.get(STARTS), ...op.get(N), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(END),
    ...op.block, ...op.loop,
    ...op.get(STARTS), ...op.get(END), ...op.i32GeU, ...op.brIf(1),
    ...op.get(SRC), ...op.get(STARTS), ...op.i32Load, ...op.i32Add, ...op.set(A),
    ...op.get(W), ...op.set(WP),
    ...op.get(LENS), ...op.i32Load, ...op.set(T),
    ...op.get(OUT),
    ...tapSum(A, WP, T, ACC, 3),
    ...op.i32Store,
    ...op.get(W), ...op.get(KS4), ...op.i32Add, ...op.set(W),
    ...op.inc(STARTS, 4),
    ...op.inc(LENS, 4),
    ...op.inc(OUT, 3),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

/**
 * vpass(first, len, w, rowBytes, n, out): one output row of the vertical pass, 4 values per step: value
 * i sums `len` rows from first + i, rowBytes apart, with the weights at w.
 */
function vpassBody(): number[] {
  const [FIRST, LEN, W, ROW, N, OUT] = [0, 1, 2, 3, 4, 5];
  const [END, A, WP, T, ACC] = [6, 7, 8, 9, 10];
  const locals = vec([[4, I32], [1, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const code = [
    ...op.get(FIRST), ...op.get(N), ...op.i32Add, ...op.set(END),
    ...op.block, ...op.loop,
    ...op.get(FIRST), ...op.get(END), ...op.i32GeU, ...op.brIf(1),
    ...op.get(FIRST), ...op.set(A),
    ...op.get(W), ...op.set(WP),
    ...op.get(LEN), ...op.set(T),
    ...op.get(OUT),
    ...tapSum(A, WP, T, ACC, { local: ROW }),
    ...op.i32Store,
    ...op.inc(FIRST, 4),
    ...op.inc(OUT, 4),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

interface BicubicKernels {
  hpass(src: number, starts: number, lens: number, w: number, ks4: number, n: number, out: number): void;
  vpass(first: number, len: number, w: number, rowBytes: number, n: number, out: number): void;
}

let kernelModule: object | null | undefined;
let kernelInstance: { memory: WasmMemory; exports: BicubicKernels } | undefined;

function simdKernels(): { memory: WasmMemory; exports: BicubicKernels } | null {
  kernelModule ??= compileModule(
    moduleBytes([
      { name: "hpass", params: [I32, I32, I32, I32, I32, I32, I32], results: [], body: hpassBody() },
      { name: "vpass", params: [I32, I32, I32, I32, I32, I32], results: [], body: vpassBody() },
    ]),
  );
  if (!kernelModule) return null;
  kernelInstance ??= instantiate<BicubicKernels>(kernelModule);
  return kernelInstance;
}

const align16 = (n: number) => (n + 15) & ~15;

/** centerCropBicubic's two passes in the SIMD kernels' memory (both passes needed). */
function simdResize(k: { memory: WasmMemory; exports: BicubicKernels }, img: RgbImage, size: number, hx: AxisCoefficients, vy: AxisCoefficients, dst: Uint8Array): RgbImage {
  const { width: w, data } = img;
  const y0 = vy.start[0]!;
  const rows = vy.start[size - 1]! + vy.length[size - 1]! - y0;
  const srcRow = w * 3;
  const outRow = size * 3;
  // Layout: source rows, horizontal tap tables, the intermediate rows, vertical weights, the result
  // (each with room for the kernels' spill of up to 3 bytes).
  const srcOff = 0;
  const startsOff = align16(srcOff + rows * srcRow + 16);
  const lensOff = startsOff + align16(size * 4);
  const hwOff = lensOff + align16(size * 4);
  const tmpOff = hwOff + align16(size * hx.ksize * 4);
  const vwOff = align16(tmpOff + rows * outRow + 16);
  const outOff = vwOff + align16(size * vy.ksize * 4);
  const need = outOff + size * outRow + 16;
  if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / 65536));
  const mem = k.memory.buffer;
  new Uint8Array(mem, srcOff, rows * srcRow).set(data.subarray(y0 * srcRow, (y0 + rows) * srcRow));
  const starts = new Int32Array(mem, startsOff, size);
  for (let x = 0; x < size; x++) starts[x] = hx.start[x]! * 3;
  new Int32Array(mem, lensOff, size).set(hx.length);
  new Int32Array(mem, hwOff, size * hx.ksize).set(hx.weights);
  new Int32Array(mem, vwOff, size * vy.ksize).set(vy.weights);
  const { hpass, vpass } = k.exports;
  for (let y = 0; y < rows; y++) hpass(srcOff + y * srcRow, startsOff, lensOff, hwOff, hx.ksize * 4, size, tmpOff + y * outRow);
  for (let y = 0; y < size; y++) vpass(tmpOff + (vy.start[y]! - y0) * outRow, vy.length[y]!, vwOff + y * vy.ksize * 4, outRow, outRow, outOff + y * outRow);
  dst.set(new Uint8Array(mem, outOff, size * outRow));
  return { width: size, height: size, channels: 3, data: dst };
}

/** The output size of torchvision's Resize(size) for a w x h image: the shorter side to `size`, the longer int(size * long / short). */
export function shorterSideSize(w: number, h: number, size: number): { width: number; height: number } {
  if (w <= h) return { width: size, height: Math.trunc((size * h) / w) };
  return { width: Math.trunc((size * w) / h), height: size };
}

/** Python's round(): half to even. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * openai/CLIP's Resize(S, BICUBIC) + CenterCrop(S) on an RGB image, with Pillow's arithmetic: an S x S
 * RGB image (into `out` when given). `simd` (default true): the WebAssembly SIMD kernels where the runtime
 * has them (same values; false runs the JavaScript passes).
 */
export function centerCropBicubic(img: RgbImage, size: number, out?: Uint8Array, simd = true): RgbImage {
  const { width: w, height: h, data } = img;
  const c = img.channels;
  if (c !== 3) throw new RangeError(`centerCropBicubic: 3 channels expected, got ${c}`);
  const r = shorterSideSize(w, h, size);
  // torchvision's center_crop: int(round((resized - crop) / 2)).
  const left = roundHalfEven((r.width - size) / 2);
  const top = roundHalfEven((r.height - size) / 2);
  const hx = bicubicCoefficients(w, r.width, left, size);
  const vy = bicubicCoefficients(h, r.height, top, size);
  const dst = out ?? new Uint8Array(size * size * 3);
  if (dst.length !== size * size * 3) throw new RangeError(`centerCropBicubic: out has ${dst.length} bytes, ${size * size * 3} needed`);
  const needH = r.width !== w || left !== 0;
  const needV = r.height !== h || top !== 0;
  const kernels = simd && needH && needV ? simdKernels() : null;
  if (kernels) return simdResize(kernels, img, size, hx, vy, dst);

  // Horizontal pass over the source rows the vertical pass reads.
  const y0 = vy.start[0]!;
  const y1 = vy.start[size - 1]! + vy.length[size - 1]!;
  const rows = y1 - y0;
  const tmp = needH ? new Uint8Array(rows * size * 3) : undefined;
  if (tmp) {
    const { ksize, start, length, weights } = hx;
    for (let y = 0; y < rows; y++) {
      const srcRow = (y0 + y) * w * 3;
      const dstRow = y * size * 3;
      for (let x = 0; x < size; x++) {
        const kb = x * ksize;
        let p = srcRow + start[x]! * 3;
        let s0 = HALF;
        let s1 = HALF;
        let s2 = HALF;
        for (let t = 0, n = length[x]!; t < n; t++, p += 3) {
          const k = weights[kb + t]!;
          s0 += data[p]! * k;
          s1 += data[p + 1]! * k;
          s2 += data[p + 2]! * k;
        }
        const o = dstRow + x * 3;
        tmp[o] = clip8(s0);
        tmp[o + 1] = clip8(s1);
        tmp[o + 2] = clip8(s2);
      }
    }
  }
  // The rows the vertical pass reads: the horizontal pass's, or the source's own columns [left, left + size).
  const rowBytes = needH ? size * 3 : w * 3;
  const src = tmp ?? data;
  const base = needH ? -y0 * rowBytes : left * 3;
  if (!needV) {
    for (let y = 0; y < size; y++) {
      const from = base + (top + y) * rowBytes;
      dst.set(src.subarray(from, from + size * 3), y * size * 3);
    }
    return { width: size, height: size, channels: 3, data: dst };
  }
  const { ksize, start, length, weights } = vy;
  const acc = new Int32Array(size * 3);
  for (let y = 0; y < size; y++) {
    acc.fill(HALF);
    const kb = y * ksize;
    for (let t = 0, n = length[y]!; t < n; t++) {
      const k = weights[kb + t]!;
      const row = base + (start[y]! + t) * rowBytes;
      for (let i = 0; i < size * 3; i++) acc[i] += src[row + i]! * k;
    }
    const o = y * size * 3;
    for (let i = 0; i < size * 3; i++) dst[o + i] = clip8(acc[i]!);
  }
  return { width: size, height: size, channels: 3, data: dst };
}
