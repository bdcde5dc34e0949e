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
 * RGB image (into `out` when given).
 */
export function centerCropBicubic(img: RgbImage, size: number, out?: Uint8Array): RgbImage {
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
