import type { Rgb, ShadedImage } from "./colors.js";
import { blendMaskYuv, blitYuv, fillRectYuv, toYuv, type YuvCanvas } from "./yuv.js";

/** An rgb24 image being drawn on: row-major, 3 bytes a pixel (the frame reader's default layout). */
export interface RgbCanvas {
  format?: "rgb24";
  width: number;
  height: number;
  data: Uint8Array;
}

/** What the primitives below draw on: rgb24, or yuv420p planes (yuv.ts; what `render` draws on). */
export type Canvas = RgbCanvas | YuvCanvas;

/** Fills a rectangle (clipped to the canvas), blended at `alpha` (1: opaque). */
export function fillRect(c: Canvas, x0: number, y0: number, w: number, h: number, color: Rgb, alpha = 1): void {
  const xa = Math.max(0, Math.round(x0));
  const ya = Math.max(0, Math.round(y0));
  const xb = Math.min(c.width, Math.round(x0 + w));
  const yb = Math.min(c.height, Math.round(y0 + h));
  if (xa >= xb || ya >= yb) return;
  if (c.format === "yuv420p") return fillRectYuv(c, xa, ya, xb, yb, color, alpha);
  const [r, g, b] = color;
  const d = c.data;
  if (alpha >= 1) {
    for (let y = ya; y < yb; y++) {
      let p = (y * c.width + xa) * 3;
      for (let x = xa; x < xb; x++, p += 3) {
        d[p] = r;
        d[p + 1] = g;
        d[p + 2] = b;
      }
    }
    return;
  }
  const k = 1 - alpha;
  for (let y = ya; y < yb; y++) {
    let p = (y * c.width + xa) * 3;
    for (let x = xa; x < xb; x++, p += 3) {
      d[p] = d[p]! * k + r * alpha;
      d[p + 1] = d[p + 1]! * k + g * alpha;
      d[p + 2] = d[p + 2]! * k + b * alpha;
    }
  }
}

/** A rectangle's outline `t` pixels thick, drawn inside the box [x1, y1, x2, y2] (clipped). */
export function strokeRect(c: Canvas, x1: number, y1: number, x2: number, y2: number, t: number, color: Rgb): void {
  const xa = Math.round(x1);
  const ya = Math.round(y1);
  const xb = Math.round(x2);
  const yb = Math.round(y2);
  const w = xb - xa;
  const h = yb - ya;
  if (w <= 0 || h <= 0) return;
  fillRect(c, xa, ya, w, Math.min(t, h), color);
  fillRect(c, xa, yb - t, w, Math.min(t, h), color);
  fillRect(c, xa, ya, Math.min(t, w), h, color);
  fillRect(c, xb - t, ya, Math.min(t, w), h, color);
}

/** A line `t` pixels thick between two points (a square brush stepped along the longer axis). */
export function line(c: Canvas, xa: number, ya: number, xb: number, yb: number, t: number, color: Rgb): void {
  const steps = Math.max(1, Math.ceil(Math.max(Math.abs(xb - xa), Math.abs(yb - ya))));
  const half = t / 2;
  for (let i = 0; i <= steps; i++) {
    const x = xa + ((xb - xa) * i) / steps;
    const y = ya + ((yb - ya) * i) / steps;
    fillRect(c, x - half, y - half, t, t, color);
  }
}

/**
 * Copies an image onto the canvas at (x, y), clipped. On yuv420p, x and y must be even, and an rgb24
 * image is converted first (pass a yuv420p one, converted once, to draw it on many frames).
 */
export function blit(c: Canvas, img: Canvas, x: number, y: number): void {
  if (c.format === "yuv420p") return blitYuv(c, img.format === "yuv420p" ? img : toYuv(img, c.matrix), x, y);
  if (img.format === "yuv420p") throw new RangeError("blit: a yuv420p image cannot be drawn on an rgb24 canvas");
  const xa = Math.max(0, x);
  const xb = Math.min(c.width, x + img.width);
  if (xa >= xb) return;
  for (let row = 0; row < img.height; row++) {
    const cy = y + row;
    if (cy < 0 || cy >= c.height) continue;
    const src = (row * img.width + (xa - x)) * 3;
    c.data.set(img.data.subarray(src, src + (xb - xa) * 3), (cy * c.width + xa) * 3);
  }
}

/** Draws a coverage mask (one byte a pixel, 0..255) in `color` at (x, y), clipped. */
export function blendMask(c: Canvas, mask: Uint8Array, mw: number, mh: number, x: number, y: number, color: Rgb): void {
  if (c.format === "yuv420p") return blendMaskYuv(c, mask, mw, mh, x, y, color);
  const d = c.data;
  const [r, g, b] = color;
  for (let my = 0; my < mh; my++) {
    const cy = y + my;
    if (cy < 0 || cy >= c.height) continue;
    for (let mx = 0; mx < mw; mx++) {
      const a = mask[my * mw + mx]!;
      if (a === 0) continue;
      const cx = x + mx;
      if (cx < 0 || cx >= c.width) continue;
      const p = (cy * c.width + cx) * 3;
      if (a === 255) {
        d[p] = r;
        d[p + 1] = g;
        d[p + 2] = b;
      } else {
        const f = a / 255;
        d[p] = d[p]! + (r - d[p]!) * f;
        d[p + 1] = d[p + 1]! + (g - d[p + 1]!) * f;
        d[p + 2] = d[p + 2]! + (b - d[p + 2]!) * f;
      }
    }
  }
}

/** A shaded image as rgb24 (into `out` when it is the same size). */
export function shadedToRgb(img: ShadedImage, out?: RgbCanvas): RgbCanvas {
  const { width: w, height: h, index, shade, palette } = img;
  const o = out && out.width === w && out.height === h ? out : { width: w, height: h, data: new Uint8Array(w * h * 3) };
  const d = o.data;
  for (let i = 0, p = 0; i < w * h; i++, p += 3) {
    const k = 3 * index[i]!;
    const s = shade ? shade[i]! : 1;
    d[p] = palette[k]! * s + 0.5;
    d[p + 1] = palette[k + 1]! * s + 0.5;
    d[p + 2] = palette[k + 2]! * s + 0.5;
  }
  return o;
}

/**
 * Resamples a single-channel map (mw x mh, row-major) to w x h (bilinear) and stretches the samples'
 * own range over 256 levels, into `out` (w x h; `samples`: w x h of scratch).
 */
export function mapLevels(values: ArrayLike<number>, mw: number, mh: number, w: number, h: number, out: Uint16Array = new Uint16Array(w * h), samples: Float32Array = new Float32Array(w * h)): Uint16Array {
  // The columns' source indices and weights are the same on every row: worked out once.
  const x0s = new Int32Array(w);
  const fxs = new Float32Array(w);
  for (let x = 0; x < w; x++) {
    const sx = Math.min(mw - 1, Math.max(0, ((x + 0.5) * mw) / w - 0.5));
    // The right neighbour is x0 + 1 (x0 at most mw - 2, so that the last column is x0 + 1 at weight 1).
    x0s[x] = Math.min(Math.floor(sx), Math.max(0, mw - 2));
    fxs[x] = sx - x0s[x]!;
  }
  const range = new Float64Array([Infinity, -Infinity]);
  const right = mw > 1 ? 1 : 0;
  for (let y = 0; y < h; y++) {
    const sy = Math.min(mh - 1, Math.max(0, ((y + 0.5) * mh) / h - 0.5));
    const y0 = Math.min(Math.floor(sy), Math.max(0, mh - 2));
    sampleRow(values, y0 * mw, mh > 1 ? (y0 + 1) * mw : y0 * mw, right, sy - y0, x0s, fxs, samples, y * w, range);
  }
  const [lo, hi] = range as unknown as [number, number];
  stretch(samples, out, lo, hi > lo ? 255 / (hi - lo) : 0);
  return out;
}

// One loop a function: V8 then optimises each with all of its feedback (a loop compiled on the stack
// before the code after it has run is thrown away and compiled again).

/** One output row of mapLevels: bilinear samples between map rows r0 and r1, its range folded into `range`. */
function sampleRow(values: ArrayLike<number>, r0: number, r1: number, right: number, fy: number, x0s: Int32Array, fxs: Float32Array, samples: Float32Array, at: number, range: Float64Array): void {
  let lo = range[0]!;
  let hi = range[1]!;
  for (let x = 0; x < x0s.length; x++) {
    const fx = fxs[x]!;
    const p = x0s[x]!;
    const a = values[r0 + p]! + (values[r0 + p + right]! - values[r0 + p]!) * fx;
    const b = values[r1 + p]! + (values[r1 + p + right]! - values[r1 + p]!) * fx;
    const v = a + (b - a) * fy;
    samples[at + x] = v;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  range[0] = lo;
  range[1] = hi;
}

/** (sample - lo) * scale, rounded, as levels 0..255 (samples are within [lo, hi]). */
function stretch(samples: Float32Array, out: Uint16Array, lo: number, scale: number): void {
  for (let i = 0; i < out.length; i++) out[i] = Math.min(255, (samples[i]! - lo) * scale + 0.5);
}

/** The whole pixels of the box [x1, x2) x [y1, y2) inside a width x height picture: its corner and size (at least 1x1). */
export function pixelRegion(width: number, height: number, x1: number, y1: number, x2: number, y2: number): { x: number; y: number; w: number; h: number } {
  const x = Math.max(0, Math.floor(x1));
  const y = Math.max(0, Math.floor(y1));
  return { x, y, w: Math.max(1, Math.min(width, Math.ceil(x2)) - x), h: Math.max(1, Math.min(height, Math.ceil(y2)) - y) };
}
