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
    ...op.inc(S0, 64),
    ...op.inc(S1, 64),
    ...op.inc(OUT, 16),
    ...op.inc(I, 1),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

/**
 * The horizontal pass for 3 channels in WebAssembly SIMD, one output pixel per step:
 * hpass3(src, ofs, w, n, out) for `n` pixels from the row at byte address src, with per pixel the byte
 * offset of its left tap (Int32 table at ofs) and the weights as eight Int16 [a, b, a, b, a, b, 0, 0]
 * (16 bytes each at w). Eight bytes at the left tap hold both taps (the right one 3 bytes on, weight 0
 * where it is clamped); a shuffle pairs them per channel as Int16 and one dot product gives the three
 * sums, stored 12 bytes apart (the fourth, zero, lane is overwritten by the next pixel).
 */
function hpass3Body(): number[] {
  const [SRC, OFS, W, N, OUT] = [0, 1, 2, 3, 4];
  const [END, T] = [5, 6];
  const locals = vec([[1, I32], [1, V128]].map(([n, t]) => [...uleb(n!), t!]));
  // Lanes of the 8 loaded bytes (r0 g0 b0 r1 g1 b1 . .) as Int16 pairs (r0, r1), (g0, g1), (b0, b1);
  // byte 8 of a 64-bit zero-extended load is 0, the high byte of every Int16 lane.
  const pairs = [0, 8, 3, 8, 1, 8, 4, 8, 2, 8, 5, 8, 8, 8, 8, 8];
  const code = [
    ...op.get(OFS), ...op.get(N), ...op.i32(2), ...op.i32Shl, ...op.i32Add, ...op.set(END),
    ...op.block, ...op.loop,
    ...op.get(OFS), ...op.get(END), ...op.i32GeU, ...op.brIf(1),
    ...op.get(OUT),
    ...op.get(SRC), ...op.get(OFS), ...op.i32Load, ...op.i32Add, ...op.v128Load64Zero(0), ...op.tee(T), ...op.get(T), ...op.shuffle(pairs),
    ...op.get(W), ...op.v128Load(0),
    ...op.i32x4DotI16x8S,
    ...op.v128Store(0),
    ...op.inc(OFS, 4),
    ...op.inc(W, 16),
    ...op.inc(OUT, 12),
    ...op.loopEnd,
    ...op.end,
  ];
  return [...locals, ...code];
}

interface ResizeKernels {
  vpass(s0: number, s1: number, b0: number, b1: number, groups: number, out: number): void;
  hpass3(src: number, ofs: number, w: number, n: number, out: number): void;
}

let kernelModule: object | null | undefined;
let kernelInstance: { memory: WasmMemory; exports: ResizeKernels } | undefined;

/** The SIMD kernels and their memory (one per thread, grown to the largest resize), or null without WebAssembly SIMD. */
function simdKernels(useSimd: boolean): { memory: WasmMemory; exports: ResizeKernels } | null {
  if (!useSimd) return null;
  if (kernelModule === undefined) {
    kernelModule = compileModule(
      moduleBytes([
        { name: "vpass", params: [I32, I32, I32, I32, I32, I32], results: [], body: vpassBody() },
        { name: "hpass3", params: [I32, I32, I32, I32, I32], results: [], body: hpass3Body() },
      ]),
    );
  }
  if (!kernelModule) return null;
  kernelInstance ??= instantiate<ResizeKernels>(kernelModule);
  return kernelInstance;
}

/** A rectangle of the source image, in pixels. */
export interface Window {
  x: number;
  y: number;
  width: number;
  height: number;
}

export interface ResizeOptions {
  /** Resize only this window of the source, as if it had been cut out first (a crop without the copy). */
  crop?: Window;
  /** Where to write the result (dstWidth x dstHeight x channels bytes); by default a new buffer. */
  out?: Uint8Array;
  /** Use the WebAssembly SIMD kernels where the runtime has them (default); false runs the JavaScript passes. */
  simd?: boolean;
}

const isWhole = (v: number, min: number) => Number.isInteger(v) && v >= min;

/**
 * Resizes an interleaved 8-bit image (or a window of it) to `dstWidth` x `dstHeight` as OpenCV's
 * INTER_LINEAR does (see the module comment). Returns a new image, or one over `options.out`; the
 * source is not modified.
 *
 * @example
 * const small = resizeBilinear({ width: 810, height: 1080, channels: 3, data }, 480, 640);
 * const square = resizeBilinear(frame, 448, 448, { crop: { x: 140, y: 0, width: 360, height: 360 } });
 */
export function resizeBilinear(src: RgbImage, dstWidth: number, dstHeight: number, options: ResizeOptions = {}): RgbImage {
  const { width: sw, height: sh, channels: cn, data } = src;
  if (!isWhole(dstWidth, 1) || !isWhole(dstHeight, 1)) {
    throw new RangeError(`resizeBilinear: the target size must be positive integers, got ${dstWidth}x${dstHeight}`);
  }
  if (!isWhole(sw, 1) || !isWhole(sh, 1) || !isWhole(cn, 1)) {
    throw new RangeError(`resizeBilinear: the source size must be positive integers, got ${sw}x${sh}x${cn}`);
  }
  if (data.length !== sw * sh * cn) {
    throw new RangeError(`resizeBilinear: ${sw}x${sh}x${cn} needs ${sw * sh * cn} bytes, got ${data.length}`);
  }
  const win = options.crop ?? { x: 0, y: 0, width: sw, height: sh };
  const { x: wx, y: wy, width: ww, height: wh } = win;
  if (!isWhole(wx, 0) || !isWhole(wy, 0) || !isWhole(ww, 1) || !isWhole(wh, 1) || wx + ww > sw || wy + wh > sh) {
    throw new RangeError(`resizeBilinear: the crop ${ww}x${wh} at (${wx}, ${wy}) must lie inside the ${sw}x${sh} source`);
  }
  const rowLen = dstWidth * cn;
  const total = rowLen * dstHeight;
  if (options.out && options.out.length !== total) {
    throw new RangeError(`resizeBilinear: out must hold ${total} bytes, it holds ${options.out.length}`);
  }
  const result = (pixels: Uint8Array): RgbImage => ({ width: dstWidth, height: dstHeight, channels: cn, data: pixels });
  const srcRow = sw * cn;

  if (ww === dstWidth && wh === dstHeight) {
    // Nothing to resample: the window's rows, copied.
    const out = options.out ?? new Uint8Array(total);
    for (let y = 0; y < wh; y++) out.set(data.subarray((wy + y) * srcRow + wx * cn, (wy + y) * srcRow + (wx + ww) * cn), y * rowLen);
    return result(out);
  }

  const xt = axisTaps(ww, dstWidth, true);
  const yt = axisTaps(wh, dstHeight, false);
  // Per output pixel: byte offsets (from the window's left edge) of the two horizontal taps and their weights.
  const xo0 = new Int32Array(dstWidth);
  const xo1 = new Int32Array(dstWidth);
  const xa0 = new Int32Array(dstWidth);
  const xa1 = new Int32Array(dstWidth);
  for (let dx = 0; dx < dstWidth; dx++) {
    const sx = xt.ofs[dx]!;
    xo0[dx] = sx * cn;
    xo1[dx] = Math.min(sx + 1, ww - 1) * cn;
    xa0[dx] = xt.w[2 * dx]!;
    xa1[dx] = xt.w[2 * dx + 1]!;
  }

  // With the SIMD kernels, everything lives in their memory: two row buffers (padded to whole 16-value
  // groups, plus room for hpass3's spill), the result (the last group of a row spills into the next row,
  // written after it), and for 3 channels the tap tables and the window's source rows.
  const simd = simdKernels(options.simd ?? true);
  const groups = Math.ceil(rowLen / 16);
  const rowBytes = groups * 64 + 64;
  const outOff = 2 * rowBytes;
  const ofsOff = outOff + ((total + 16 + 15) & ~15);
  const wOff = ofsOff + dstWidth * 4;
  const srcOff = wOff + dstWidth * 16;
  const hsimd = simd !== null && cn === 3;
  let out: Uint8Array;
  let bufs: Int32Array[];
  if (simd) {
    const need = hsimd ? srcOff + wh * srcRow + 16 : ofsOff;
    if (simd.memory.buffer.byteLength < need) simd.memory.grow(Math.ceil((need - simd.memory.buffer.byteLength) / 65536));
    const mem = simd.memory.buffer;
    bufs = [new Int32Array(mem, 0, groups * 16), new Int32Array(mem, rowBytes, groups * 16)];
    out = new Uint8Array(mem, outOff, total);
    if (hsimd) {
      new Int32Array(mem, ofsOff, dstWidth).set(xo0);
      const w = new Int16Array(mem, wOff, dstWidth * 8);
      for (let dx = 0, o = 0; dx < dstWidth; dx++, o += 8) {
        w[o] = w[o + 2] = w[o + 4] = xa0[dx]!;
        w[o + 1] = w[o + 3] = w[o + 5] = xa1[dx]!;
      }
      new Uint8Array(mem, srcOff, wh * srcRow).set(data.subarray(wy * srcRow, (wy + wh) * srcRow));
    }
  } else {
    bufs = [new Int32Array(rowLen), new Int32Array(rowLen)];
    out = options.out ?? new Uint8Array(total);
  }

  // Horizontally resampled source rows, two buffers tagged with the window row they hold
  // (consecutive output rows mostly share their source rows).
  const held = [-1, -1];
  const load = (sy: number, avoid: number): Int32Array => {
    if (held[0] === sy) return bufs[0]!;
    if (held[1] === sy) return bufs[1]!;
    const k = avoid === 0 ? 1 : 0;
    const buf = bufs[k]!;
    if (hsimd) simd.exports.hpass3(srcOff + sy * srcRow + wx * cn, ofsOff, wOff, dstWidth, buf.byteOffset);
    else horizontalPass(data, (wy + sy) * srcRow + wx * cn, xo0, xo1, xa0, xa1, dstWidth, cn, buf);
    held[k] = sy;
    return buf;
  };

  for (let dy = 0; dy < dstHeight; dy++) {
    const sy = yt.ofs[dy]!;
    const s0 = load(Math.min(Math.max(sy, 0), wh - 1), -1);
    const s1 = load(Math.min(Math.max(sy + 1, 0), wh - 1), s0 === bufs[0] ? 0 : 1);
    if (simd) simd.exports.vpass(s0.byteOffset, s1.byteOffset, yt.w[2 * dy]!, yt.w[2 * dy + 1]!, groups, outOff + dy * rowLen);
    else verticalPass(s0, s1, yt.w[2 * dy]!, yt.w[2 * dy + 1]!, rowLen, out, dy * rowLen);
  }
  if (simd) out = options.out ? (options.out.set(out), options.out) : out.slice();
  return result(out);
}
