/**
 * Pillow's resize followed by torchvision's CenterCrop, for the families whose reference code runs
 * torchvision transforms on PIL images: openai/CLIP (Resize(S, BICUBIC): the shorter side to S, the longer
 * to int(S * long / short); CenterCrop(S)) and CSAIL's Places365 demo (Resize((256, 256)), bilinear;
 * CenterCrop(224)). torchvision hands the resize to Pillow, so the arithmetic reproduced here is Pillow's
 * (Resample.c, learned from reading it):
 * - a convolution filter (bicubic: a = -0.5, support 2; bilinear: the triangle, support 1), stretched by
 *   the downscale factor when shrinking (antialiasing): each output pixel averages every source pixel
 *   under its footprint;
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

/** One of Pillow's filters: its kernel and support (in source pixels at scale 1). */
export interface PilFilter {
  kernel(x: number): number;
  support: number;
}

export const PIL_BICUBIC: PilFilter = {
  support: 2,
  kernel(x) {
    const a = -0.5;
    if (x < 0) x = -x;
    if (x < 1) return ((a + 2) * x - (a + 3)) * x * x + 1;
    if (x < 2) return (((x - 5) * x + 8) * x - 4) * a;
    return 0;
  },
};

export const PIL_BILINEAR: PilFilter = {
  support: 1,
  kernel(x) {
    if (x < 0) x = -x;
    return x < 1 ? 1 - x : 0;
  },
};

/** Taps of output indices [first, first + count) of a resize of `inSize` to `outSize`: start, length and fixed-point weights (stride ksize). */
export interface AxisCoefficients {
  ksize: number;
  start: Int32Array;
  length: Int32Array;
  weights: Int32Array;
}

export function pilCoefficients(inSize: number, outSize: number, filter: PilFilter, first = 0, count = outSize): AxisCoefficients {
  const scale = inSize / outSize;
  const filterscale = Math.max(1, scale);
  const support = filter.support * filterscale;
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
      const w = filter.kernel((x + xmin - center + 0.5) * ss);
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

/** resizeThenCenterCrop's two passes in the SIMD kernels' memory. */
function simdResize(
  k: { memory: WasmMemory; exports: BicubicKernels },
  img: RgbImage,
  size: number,
  hx: AxisCoefficients,
  vy: AxisCoefficients,
  verticalFirst: boolean,
  dst: Uint8Array,
): RgbImage {
  const { width: w, data } = img;
  const t = twoPasses(w, size, hx, vy, verticalFirst);
  // Only the source rows the passes read are copied in (all of them when vertical first).
  const [r0, r1] = verticalFirst ? [vy.start[0]!, vy.start[size - 1]! + vy.length[size - 1]!] : [t.y0, t.y0 + t.rows];
  const srcBytes = (r1 - r0) * t.srcRowBytes;
  // Layout: source rows, horizontal tap tables, the intermediate image, vertical tap tables, the result
  // (each with room for the kernels' spill of up to 3 bytes).
  const srcOff = 0;
  const startsOff = align16(srcOff + srcBytes + 16);
  const lensOff = startsOff + align16(size * 4);
  const hwOff = lensOff + align16(size * 4);
  const tmpOff = hwOff + align16(size * hx.ksize * 4);
  const vwOff = align16(tmpOff + t.tmpBytes);
  const outOff = vwOff + align16(size * vy.ksize * 4);
  const need = outOff + size * size * 3 + 16;
  if (k.memory.buffer.byteLength < need) k.memory.grow(Math.ceil((need - k.memory.buffer.byteLength) / 65536));
  const mem = k.memory.buffer;
  new Uint8Array(mem, srcOff, srcBytes).set(data.subarray(r0 * t.srcRowBytes, r1 * t.srcRowBytes));
  const starts = new Int32Array(mem, startsOff, size);
  new Int32Array(mem, lensOff, size).set(hx.length);
  new Int32Array(mem, hwOff, size * hx.ksize).set(hx.weights);
  new Int32Array(mem, vwOff, size * vy.ksize).set(vy.weights);
  const { hpass, vpass } = k.exports;
  const passes: Passes<number> = {
    h(src, off, rowBytes, rows, colBase, out, outOff) {
      for (let x = 0; x < size; x++) starts[x] = (hx.start[x]! - colBase) * 3;
      for (let y = 0; y < rows; y++) hpass(src + off + y * rowBytes, startsOff, lensOff, hwOff, hx.ksize * 4, size, out + outOff + y * size * 3);
    },
    v(src, off, rowBytes, nvals, rowBase, out, outOff) {
      for (let y = 0; y < size; y++) vpass(src + off + (vy.start[y]! - rowBase) * rowBytes, vy.length[y]!, vwOff + y * vy.ksize * 4, rowBytes, nvals, out + outOff + y * nvals);
    },
  };
  // Addresses as the buffers; the source copy starts at row r0.
  runPasses(passes, t, { src: srcOff, tmp: tmpOff, out: outOff }, -r0 * t.srcRowBytes);
  dst.set(new Uint8Array(mem, outOff, size * size * 3));
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
  const r = shorterSideSize(img.width, img.height, size);
  return resizeThenCenterCrop(img, r.width, r.height, size, PIL_BICUBIC, out, simd);
}

/**
 * CSAIL's Places365 preprocessing at branch size S: Resize((R, R)) (the whole picture stretched to a
 * square, Pillow's antialiased bilinear) with R = round(S * 256 / 224), then CenterCrop(S). At S = 224
 * this is the demo's Resize((256, 256)) + CenterCrop(224) exactly; larger branches keep its 8/7 margin.
 */
export function stretchCropBilinear(img: RgbImage, size: number, out?: Uint8Array, simd = true): RgbImage {
  const r = Math.round((size * 256) / 224);
  return resizeThenCenterCrop(img, r, r, size, PIL_BILINEAR, out, simd);
}

/** Pillow's resize of `img` to resizedW x resizedH with `filter`, then torchvision's CenterCrop(size). */
export function resizeThenCenterCrop(img: RgbImage, resizedW: number, resizedH: number, size: number, filter: PilFilter, out?: Uint8Array, simd = true): RgbImage {
  const { width: w, height: h, data } = img;
  const c = img.channels;
  if (c !== 3) throw new RangeError(`resizeThenCenterCrop: 3 channels expected, got ${c}`);
  if (resizedW < size || resizedH < size) throw new RangeError(`resizeThenCenterCrop: ${resizedW}x${resizedH} is smaller than the ${size} crop`);
  const r = { width: resizedW, height: resizedH };
  // torchvision's center_crop: int(round((resized - crop) / 2)).
  const left = roundHalfEven((r.width - size) / 2);
  const top = roundHalfEven((r.height - size) / 2);
  const hx = pilCoefficients(w, r.width, filter, left, size);
  const vy = pilCoefficients(h, r.height, filter, top, size);
  const dst = out ?? new Uint8Array(size * size * 3);
  if (dst.length !== size * size * 3) throw new RangeError(`resizeThenCenterCrop: out has ${dst.length} bytes, ${size * size * 3} needed`);
  // Pillow (13) resizes vertically first when the width grows and the height shrinks, else horizontally
  // first; each pass rounds to uint8, so the order shows in the values.
  const verticalFirst = r.width > w && r.height < h;
  const kernels = simd ? simdKernels() : null;
  if (kernels) return simdResize(kernels, img, size, hx, vy, verticalFirst, dst);
  const jsPasses: Passes<Uint8Array> = {
    h: (src, srcOff, rowBytes, rows, colBase, out, outOff) => hpassJs(src, srcOff, rowBytes, rows, hx, colBase, size, out, outOff),
    v: (src, srcOff, rowBytes, nvals, rowBase, out, outOff) => vpassJs(src, srcOff, rowBytes, nvals, vy, rowBase, size, out, outOff),
  };
  const t = twoPasses(w, size, hx, vy, verticalFirst);
  runPasses(jsPasses, t, { src: data, tmp: new Uint8Array(t.tmpBytes), out: dst });
  return { width: size, height: size, channels: 3, data: dst };
}

/** The two passes over buffers of type B: h (horizontal) and v (vertical), reading `src` at byte offsets. */
interface Passes<B> {
  h(src: B, srcOff: number, rowBytes: number, rows: number, colBase: number, out: B, outOff: number): void;
  v(src: B, srcOff: number, rowBytes: number, nvals: number, rowBase: number, out: B, outOff: number): void;
}

/** Where each pass reads: the intermediate image's size and the source region each pass starts from. */
interface TwoPasses {
  verticalFirst: boolean;
  tmpBytes: number;
  /** Horizontal first: the source rows y0 .. y0 + rows. Vertical first: the source columns x0 .. x0 + cols. */
  y0: number;
  rows: number;
  x0: number;
  cols: number;
  srcRowBytes: number;
  size: number;
}

function twoPasses(w: number, size: number, hx: AxisCoefficients, vy: AxisCoefficients, verticalFirst: boolean): TwoPasses {
  const y0 = vy.start[0]!;
  const rows = vy.start[size - 1]! + vy.length[size - 1]! - y0;
  const x0 = hx.start[0]!;
  const cols = hx.start[size - 1]! + hx.length[size - 1]! - x0;
  const tmpBytes = (verticalFirst ? size * cols * 3 : rows * size * 3) + 16;
  return { verticalFirst, tmpBytes, y0, rows, x0, cols, srcRowBytes: w * 3, size };
}

function runPasses<B>(p: Passes<B>, t: TwoPasses, b: { src: B; tmp: B; out: B }, srcBase = 0): void {
  const out = t.size * 3;
  if (t.verticalFirst) {
    // Every output row over the columns the horizontal pass reads, then those rows horizontally.
    p.v(b.src, srcBase + t.x0 * 3, t.srcRowBytes, t.cols * 3, 0, b.tmp, 0);
    p.h(b.tmp, 0, t.cols * 3, t.size, t.x0, b.out, 0);
  } else {
    // The source rows the vertical pass reads, horizontally, then vertically.
    p.h(b.src, srcBase + t.y0 * t.srcRowBytes, t.srcRowBytes, t.rows, 0, b.tmp, 0);
    p.v(b.tmp, 0, out, out, t.y0, b.out, 0);
  }
}

/** Horizontal pass: `rows` rows from src + srcOff (rowBytes apart), output pixel x from source column hx.start[x] - colBase. */
function hpassJs(src: Uint8Array, srcOff: number, rowBytes: number, rows: number, hx: AxisCoefficients, colBase: number, size: number, out: Uint8Array, outOff: number): void {
  const { ksize, start, length, weights } = hx;
  for (let y = 0; y < rows; y++) {
    const srcRow = srcOff + y * rowBytes;
    const dstRow = outOff + y * size * 3;
    for (let x = 0; x < size; x++) {
      const kb = x * ksize;
      let p = srcRow + (start[x]! - colBase) * 3;
      let s0 = HALF;
      let s1 = HALF;
      let s2 = HALF;
      for (let t = 0, n = length[x]!; t < n; t++, p += 3) {
        const k = weights[kb + t]!;
        s0 += src[p]! * k;
        s1 += src[p + 1]! * k;
        s2 += src[p + 2]! * k;
      }
      const o = dstRow + x * 3;
      out[o] = clip8(s0);
      out[o + 1] = clip8(s1);
      out[o + 2] = clip8(s2);
    }
  }
}

/** Vertical pass: output row y (nvals values) from the rows vy.start[y] - rowBase ... of src + srcOff, rowBytes apart. */
function vpassJs(src: Uint8Array, srcOff: number, rowBytes: number, nvals: number, vy: AxisCoefficients, rowBase: number, size: number, out: Uint8Array, outOff: number): void {
  const { ksize, start, length, weights } = vy;
  const acc = new Int32Array(nvals);
  for (let y = 0; y < size; y++) {
    acc.fill(HALF);
    const kb = y * ksize;
    for (let t = 0, n = length[y]!; t < n; t++) {
      const k = weights[kb + t]!;
      const row = srcOff + (start[y]! - rowBase + t) * rowBytes;
      for (let i = 0; i < nvals; i++) acc[i] += src[row + i]! * k;
    }
    const o = outOff + y * nvals;
    for (let i = 0; i < nvals; i++) out[o + i] = clip8(acc[i]!);
  }
}
