/**
 * Bilinear resizing of 8-bit interleaved images with the arithmetic of OpenCV's `cv2.resize(...,
 * interpolation=INTER_LINEAR)`, the resize Ultralytics' letterbox uses. The int8 YOLO models are
 * sensitive to it: a different bilinear kernel moved the bus on bus.jpg from 0.89 to 0.62.
 *
 * What is reproduced:
 * - half-pixel centres: source x = (dx + 0.5) * (1 / (dw / sw)) - 0.5, computed in double and rounded
 *   to float32, floor for the left tap, the fraction in float32; along x, taps left of 0 or right of
 *   the last pixel clamp with weight 0 on the far tap, along y only the row indices clamp (see axisTaps);
 * - 11-bit fixed-point weights (round half to even of weight * 2048), an exact integer horizontal pass;
 * - the vertical pass as OpenCV computes it for uint8 (its SIMD kernel, and since OpenCV made the
 *   scalar tail bit-identical, every value of the row): each row sum shifted right by 4, multiplied by
 *   the weight keeping the high 16 bits (mul_hi), the two added, + 2, shifted right by 2. This is not
 *   the exact rounding of (a * b0 + b * b1) / 2^22: values are often 1 lower.
 * Checked against opencv-python 5.0 (x86-64) on the standard test images: letterboxes at 320, 333,
 * 417, 640, 960 and 1280, enlargements included, are identical byte for byte. Exact 2x reductions,
 * which OpenCV routes to its INTER_AREA fast path, give the same values by this arithmetic.
 */

import { compileModule, I32, instantiate, moduleBytes, op, uleb, V128, vec, type WasmMemory } from "../wasm/assemble.js";

/** An interleaved 8-bit image: `channels` bytes per pixel, rows `width * channels` bytes apart. */
export interface RgbImage {
  width: number;
  height: number;
  /** Bytes per pixel (3 for RGB). */
  channels: number;
  data: Uint8Array;
}

const COEF_BITS = 11;
const COEF_SCALE = 1 << COEF_BITS;

const f32 = Math.fround;

/** Round half to even, as the FPU's default mode (and OpenCV's cvRound) does. */
function roundHalfEven(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * Tap positions and fixed-point weights along one axis: for output index d, the first tap `ofs[d]`
 * (possibly -1 or src - 1 along y, see below) and the weights `w[2d]`, `w[2d + 1]` (summing to 2048).
 *
 * Along x, OpenCV moves a position left of the first pixel or at/after the last one onto that pixel
 * with weight 0 for the far tap (`clamp`). Along y it keeps the fraction and only clamps the row
 * indices when fetching rows, so at the top and bottom of an enlargement both taps read the border
 * row with split weights, which the SIMD rounding can make differ by one from the border value.
 */
function axisTaps(src: number, dst: number, clamp: boolean): { ofs: Int32Array; w: Int16Array } {
  const ofs = new Int32Array(dst);
  const w = new Int16Array(dst * 2);
  const scale = 1 / (dst / src); // OpenCV keeps the inverse scale and inverts it again
  for (let d = 0; d < dst; d++) {
    let fx = f32((d + 0.5) * scale - 0.5);
    let sx = Math.floor(fx);
    fx = f32(fx - sx);
    if (clamp && sx < 0) {
      fx = 0;
      sx = 0;
    }
    if (clamp && sx >= src - 1) {
      fx = 0;
      sx = src - 1;
    }
    ofs[d] = sx;
    w[2 * d] = roundHalfEven(f32(1 - fx) * COEF_SCALE);
    w[2 * d + 1] = roundHalfEven(fx * COEF_SCALE);
  }
  return { ofs, w };
}

/** One source row resampled horizontally: 11-bit fixed-point sums, one per output element. */
function horizontalPass(
  data: Uint8Array,
  base: number,
  xo0: Int32Array,
  xo1: Int32Array,
  xa0: Int32Array,
  xa1: Int32Array,
  dstWidth: number,
  cn: number,
  out: Int32Array,
): void {
  if (cn === 3) {
    for (let dx = 0, e = 0; dx < dstWidth; dx++, e += 3) {
      const p = base + xo0[dx]!;
      const q = base + xo1[dx]!;
      const a = xa0[dx]!;
      const b = xa1[dx]!;
      out[e] = data[p]! * a + data[q]! * b;
      out[e + 1] = data[p + 1]! * a + data[q + 1]! * b;
      out[e + 2] = data[p + 2]! * a + data[q + 2]! * b;
    }
    return;
  }
  for (let dx = 0, e = 0; dx < dstWidth; dx++) {
    const p = base + xo0[dx]!;
    const q = base + xo1[dx]!;
    const a = xa0[dx]!;
    const b = xa1[dx]!;
    for (let k = 0; k < cn; k++, e++) out[e] = data[p + k]! * a + data[q + k]! * b;
  }
}

/**
 * One output row from two horizontally resampled rows, with the arithmetic of OpenCV's kernel
 * (its vector loops and, for uint8, its scalar tail too): each sum shifted right by 4, multiplied by
 * the weight keeping the high 16 bits, the two added, + 2, shifted right by 2.
 */
function verticalPass(s0: Int32Array, s1: Int32Array, b0: number, b1: number, rowLen: number, out: Uint8Array, o: number): void {
  for (let e = 0; e < rowLen; e++) {
    const r = ((((s0[e]! >> 4) * b0) >> 16) + (((s1[e]! >> 4) * b1) >> 16) + 2) >> 2;
    out[o + e] = r < 0 ? 0 : r > 255 ? 255 : r;
  }
}

/**
 * The vertical pass in WebAssembly SIMD, 16 values per step (about 5x the JavaScript loop):
 * vpass(s0, s1, b0, b1, groups, out) for `groups` x 16 row values at byte addresses s0, s1 (Int32) and
 * out (bytes). Same arithmetic, lane by lane: i32x4 shifts and multiplies, then two saturating narrows
 * (i32 -> i16 -> u8) do the clamp to 0..255.
 */
function vpassBody(): number[] {
  const [S0, S1, B0, B1, N, OUT] = [0, 1, 2, 3, 4, 5];
  const [I, VB0, VB1, V2] = [6, 7, 8, 9];
  const locals = vec([[1, I32], [3, V128]].map(([n, t]) => [...uleb(n!), t!]));
  const tap = (ptr: number, w: number, k: number) => [
    ...op.get(ptr), ...op.v128Load(16 * k), ...op.i32(4), ...op.i32x4ShrS, ...op.get(w), ...op.i32x4Mul, ...op.i32(16), ...op.i32x4ShrS,
  ];
  const lane = (k: number) => [...tap(S0, VB0, k), ...tap(S1, VB1, k), ...op.i32x4Add, ...op.get(V2), ...op.i32x4Add, ...op.i32(2), ...op.i32x4ShrS];
  const code = [
    ...op.get(B0), ...op.i32x4Splat, ...op.set(VB0),
    ...op.get(B1), ...op.i32x4Splat, ...op.set(VB1),
    ...op.i32(2), ...op.i32x4Splat, ...op.set(V2),
    ...op.block, ...op.loop,
    ...op.get(I), ...op.get(N), ...op.i32GeU, ...op.brIf(1),
    ...op.get(OUT),
    ...lane(0), ...lane(1), ...op.i16x8NarrowI32x4S,
    ...lane(2), ...lane(3), ...op.i16x8NarrowI32x4S,
    ...op.i8x16NarrowI16x8U, ...op.v128Store(0),
    ...op.get(S0), ...op.i32(64), ...op.i32Add, ...op.set(S0),
    ...op.get(S1), ...op.i32(64), ...op.i32Add, ...op.set(S1),
    ...op.get(OUT), ...op.i32(16), ...op.i32Add, ...op.set(OUT),
    ...op.get(I), ...op.i32(1), ...op.i32Add, ...op.set(I),
    ...op.br(0),
    ...op.end, ...op.end,
    ...op.end,
  ];
  return [...locals, ...code];
}

interface VpassKernel {
  vpass(s0: number, s1: number, b0: number, b1: number, groups: number, out: number): void;
}

let vpassModule: object | null | undefined;
let vpassInstance: { memory: WasmMemory; exports: VpassKernel } | undefined;

/** The SIMD kernel and its memory (one per thread, grown to the largest resize), or null without WebAssembly SIMD. */
function simdVpass(useSimd: boolean): { memory: WasmMemory; exports: VpassKernel } | null {
  if (!useSimd) return null;
  if (vpassModule === undefined) vpassModule = compileModule(moduleBytes([{ name: "vpass", params: [I32, I32, I32, I32, I32, I32], results: [], body: vpassBody() }]));
  if (!vpassModule) return null;
  vpassInstance ??= instantiate<VpassKernel>(vpassModule);
  return vpassInstance;
}

/**
 * Resizes an interleaved 8-bit image to `dstWidth` x `dstHeight` as OpenCV's INTER_LINEAR does
 * (see the module comment). Returns a new image; the source is not modified.
 *
 * @example
 * const small = resizeBilinear({ width: 810, height: 1080, channels: 3, data }, 480, 640);
 */
export function resizeBilinear(src: RgbImage, dstWidth: number, dstHeight: number, useSimd = true): RgbImage {
  const { width: sw, height: sh, channels: cn, data } = src;
  if (!Number.isInteger(dstWidth) || !Number.isInteger(dstHeight) || dstWidth < 1 || dstHeight < 1) {
    throw new RangeError(`resizeBilinear: the target size must be positive integers, got ${dstWidth}x${dstHeight}`);
  }
  if (!Number.isInteger(sw) || !Number.isInteger(sh) || sw < 1 || sh < 1 || !Number.isInteger(cn) || cn < 1) {
    throw new RangeError(`resizeBilinear: the source size must be positive integers, got ${sw}x${sh}x${cn}`);
  }
  if (data.length !== sw * sh * cn) {
    throw new RangeError(`resizeBilinear: ${sw}x${sh}x${cn} needs ${sw * sh * cn} bytes, got ${data.length}`);
  }
  if (sw === dstWidth && sh === dstHeight) return { width: sw, height: sh, channels: cn, data: data.slice() };

  const xt = axisTaps(sw, dstWidth, true);
  const yt = axisTaps(sh, dstHeight, false);
  const rowLen = dstWidth * cn;
  // Per output pixel: byte offsets of the two horizontal taps (first channel) and their weights.
  const xo0 = new Int32Array(dstWidth);
  const xo1 = new Int32Array(dstWidth);
  const xa0 = new Int32Array(dstWidth);
  const xa1 = new Int32Array(dstWidth);
  for (let dx = 0; dx < dstWidth; dx++) {
    const sx = xt.ofs[dx]!;
    xo0[dx] = sx * cn;
    xo1[dx] = Math.min(sx + 1, sw - 1) * cn;
    xa0[dx] = xt.w[2 * dx]!;
    xa1[dx] = xt.w[2 * dx + 1]!;
  }

  // With the SIMD kernel, rows and result live in its memory: two row buffers, then the image; rows are
  // padded to whole 16-value groups (the last group of a row spills into the next row, written after it).
  const simd = simdVpass(useSimd);
  const groups = Math.ceil(rowLen / 16);
  const rowBytes = groups * 64;
  const outOff = 2 * rowBytes;
  let out: Uint8Array;
  let bufs: Int32Array[];
  if (simd) {
    const need = outOff + rowLen * dstHeight + 16;
    if (simd.memory.buffer.byteLength < need) simd.memory.grow(Math.ceil((need - simd.memory.buffer.byteLength) / 65536));
    bufs = [new Int32Array(simd.memory.buffer, 0, groups * 16), new Int32Array(simd.memory.buffer, rowBytes, groups * 16)];
    out = new Uint8Array(simd.memory.buffer, outOff, rowLen * dstHeight);
  } else {
    bufs = [new Int32Array(rowLen), new Int32Array(rowLen)];
    out = new Uint8Array(rowLen * dstHeight);
  }

  // Horizontally resampled source rows, two buffers tagged with the source row they hold
  // (consecutive output rows mostly share their source rows).
  const held = [-1, -1];
  const load = (sy: number, avoid: number): Int32Array => {
    if (held[0] === sy) return bufs[0]!;
    if (held[1] === sy) return bufs[1]!;
    const k = avoid === 0 ? 1 : 0;
    const buf = bufs[k]!;
    horizontalPass(data, sy * sw * cn, xo0, xo1, xa0, xa1, dstWidth, cn, buf);
    held[k] = sy;
    return buf;
  };

  for (let dy = 0; dy < dstHeight; dy++) {
    const sy = yt.ofs[dy]!;
    const s0 = load(Math.min(Math.max(sy, 0), sh - 1), -1);
    const s1 = load(Math.min(Math.max(sy + 1, 0), sh - 1), s0 === bufs[0] ? 0 : 1);
    if (simd) simd.exports.vpass(s0.byteOffset, s1.byteOffset, yt.w[2 * dy]!, yt.w[2 * dy + 1]!, groups, outOff + dy * rowLen);
    else verticalPass(s0, s1, yt.w[2 * dy]!, yt.w[2 * dy + 1]!, rowLen, out, dy * rowLen);
  }
  if (simd) out = out.slice();
  return { width: dstWidth, height: dstHeight, channels: cn, data: out };
}
