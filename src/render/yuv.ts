/**
 * Drawing on yuv420p frames (the planes as the frame reader gives them: Y, then U and V at half size
 * each way, limited range). Colours are converted once per colour, not once per pixel; a 2x2 chroma
 * sample that a shape covers in part is blended by the share of its pixels covered, which is what
 * converting a drawn RGB picture to yuv420p (averaging the block) would give.
 */
import type { YuvMatrix } from "../video/color.js";
import type { Rgb, ShadedImage } from "./colors.js";

/** A yuv420p frame being drawn on: Y (width x height), U, V (ceil(width/2) x ceil(height/2)), limited range. */
export interface YuvCanvas {
  format: "yuv420p";
  width: number;
  height: number;
  data: Uint8Array;
  /** The matrix the video's colours are in (VideoColor.matrix). */
  matrix: YuvMatrix;
  /** Set on render's annotation layer: what the primitives cover is recorded here as they draw. @internal */
  coverage?: Coverage;
}

/**
 * @internal
 * What has been drawn on a layer: each pixel's coverage (0 nothing, 255 opaque; a primitive covering a
 * pixel by a moves it toward 255 by a, as it moves the colour toward its own), and per row the span
 * [from, to) drawn on, so that a layer is finished and cleared only where something was drawn.
 */
export interface Coverage {
  alpha: Uint8Array;
  from: Int32Array;
  to: Int32Array;
}

/** A coverage record with nothing drawn, over `alpha` (width x height bytes). */
export function emptyCoverage(width: number, height: number, alpha: Uint8Array): Coverage {
  return { alpha, from: new Int32Array(height).fill(width), to: new Int32Array(height) };
}

/** Marks [xa, xb) x [ya, yb) as drawn on. */
function mark(cov: Coverage, xa: number, ya: number, xb: number, yb: number): void {
  for (let y = ya; y < yb; y++) {
    if (xa < cov.from[y]!) cov.from[y] = xa;
    if (xb > cov.to[y]!) cov.to[y] = xb;
  }
}

/** Kr and Kb of each matrix (ITU-R BT.601, BT.709, BT.2020). */
const K: Record<YuvMatrix, readonly [number, number]> = { bt601: [0.299, 0.114], bt709: [0.2126, 0.0722], bt2020: [0.2627, 0.0593] };

/** rgbToYuv's formulas with the constants folded, for bytes in and bytes out (toYuv, shadedToYuv). */
function folded(matrix: YuvMatrix): { kr: number; kg: number; kb: number; ys: number; us: number; vs: number } {
  const [kr, kb] = K[matrix];
  return { kr, kg: 1 - kr - kb, kb, ys: 219 / 255, us: 224 / (2 * (1 - kb) * 255), vs: 224 / (2 * (1 - kr) * 255) };
}

/** An sRGB-style colour (0..255) as limited-range Y, U, V (Y 16..235, U and V 16..240), not rounded. */
export function rgbToYuv(c: Rgb, matrix: YuvMatrix): [number, number, number] {
  const [kr, kb] = K[matrix];
  const r = c[0] / 255;
  const g = c[1] / 255;
  const b = c[2] / 255;
  const y = kr * r + (1 - kr - kb) * g + kb * b;
  return [16 + 219 * y, 128 + (224 * (b - y)) / (2 * (1 - kb)), 128 + (224 * (r - y)) / (2 * (1 - kr))];
}

const converted = new WeakMap<Rgb, { matrix: YuvMatrix; yuv: [number, number, number] }>();

/** rgbToYuv, remembered per colour object (the palette's colours are drawn thousands of times a video). */
function yuvOf(c: Rgb, matrix: YuvMatrix): [number, number, number] {
  const hit = converted.get(c);
  if (hit?.matrix === matrix) return hit.yuv;
  const yuv = rgbToYuv(c, matrix);
  converted.set(c, { matrix, yuv });
  return yuv;
}

/** Where the chroma planes start, and their size. */
export function chroma(c: { width: number; height: number }): { cw: number; ch: number; u: number; v: number } {
  const cw = Math.ceil(c.width / 2);
  const ch = Math.ceil(c.height / 2);
  const u = c.width * c.height;
  return { cw, ch, u, v: u + cw * ch };
}

/** The share of chroma row (or column) `k`'s pixels that [a, b) covers, in a plane `size` pixels long. */
function share(k: number, a: number, b: number, size: number): number {
  const lo = 2 * k;
  const hi = Math.min(lo + 2, size);
  return Math.max(0, Math.min(b, hi) - Math.max(a, lo)) / (hi - lo);
}

/** v blended toward `to` at `alpha`, for every byte v (a blend of one colour over many pixels is then a lookup). */
function blendTable(to: number, alpha: number): Uint8Array {
  const t = new Uint8Array(256);
  for (let v = 0; v < 256; v++) t[v] = v + (to - v) * alpha + 0.5;
  return t;
}

/** Fills [xa, xb) x [ya, yb) (already clipped to the canvas) with a colour at `alpha`. */
export function fillRectYuv(c: YuvCanvas, xa: number, ya: number, xb: number, yb: number, color: Rgb, alpha: number): void {
  const [Y, U, V] = yuvOf(color, c.matrix);
  const d = c.data;
  const w = c.width;
  // A translucent band (the caption's) covers tens of thousands of pixels a frame: a table, not arithmetic.
  const fill = (plane: Uint8Array, to: number) => {
    if (alpha >= 1) {
      const yv = Math.round(to);
      for (let y = ya; y < yb; y++) plane.fill(yv, y * w + xa, y * w + xb);
      return;
    }
    const t = blendTable(to, alpha);
    for (let y = ya; y < yb; y++)
      for (let p = y * w + xa, e = y * w + xb; p < e; p++) plane[p] = t[plane[p]!]!;
  };
  fill(d, Y);
  if (c.coverage) {
    fill(c.coverage.alpha, 255);
    mark(c.coverage, xa, ya, xb, yb);
  }
  const cw = (w + 1) >> 1;
  const u = w * c.height;
  const v = u + cw * ((c.height + 1) >> 1);
  const cya = ya >> 1;
  const cyb = (yb + 1) >> 1;
  const cxa = xa >> 1;
  const cxb = (xb + 1) >> 1;
  // Inner samples are covered whole: one table each (or the colour itself); the edges' shares vary.
  const tu = alpha >= 1 ? undefined : blendTable(U, alpha);
  const tv = alpha >= 1 ? undefined : blendTable(V, alpha);
  const Ur = Math.round(U);
  const Vr = Math.round(V);
  // Only the first and last columns (and rows) can be covered in part.
  const fxa = share(cxa, xa, xb, w);
  const fxb = share(cxb - 1, xa, xb, w);
  for (let cy = cya; cy < cyb; cy++) {
    const fy = share(cy, ya, yb, c.height);
    for (let cx = cxa; cx < cxb; cx++) {
      const f = fy * (cx === cxa ? fxa : cx === cxb - 1 ? fxb : 1);
      const i = cy * cw + cx;
      if (f === 1) {
        d[u + i] = tu ? tu[d[u + i]!]! : Ur;
        d[v + i] = tv ? tv[d[v + i]!]! : Vr;
      } else {
        const a = alpha * f;
        d[u + i] = d[u + i]! + (U - d[u + i]!) * a + 0.5;
        d[v + i] = d[v + i]! + (V - d[v + i]!) * a + 0.5;
      }
    }
  }
}

/** Blends a coverage mask (one byte a pixel) in a colour at (x, y), clipped. */
export function blendMaskYuv(c: YuvCanvas, mask: Uint8Array, mw: number, mh: number, x: number, y: number, color: Rgb): void {
  const [Y, U, V] = yuvOf(color, c.matrix);
  const d = c.data;
  const w = c.width;
  const h = c.height;
  const xa = Math.max(0, x);
  const xb = Math.min(w, x + mw);
  const ya = Math.max(0, y);
  const yb = Math.min(h, y + mh);
  if (xa >= xb || ya >= yb) return;
  const cov = c.coverage;
  for (let cy = ya; cy < yb; cy++) {
    const m = (cy - y) * mw - x;
    for (let cx = xa; cx < xb; cx++) {
      const a = mask[m + cx]!;
      if (a === 0) continue;
      const p = cy * w + cx;
      d[p] = a === 255 ? Y + 0.5 : d[p]! + ((Y - d[p]!) * a) / 255 + 0.5;
      if (cov) cov.alpha[p] = a === 255 ? 255 : cov.alpha[p]! + ((255 - cov.alpha[p]!) * a) / 255 + 0.5;
    }
  }
  if (cov) mark(cov, xa, ya, xb, yb);
  // Each chroma sample moves by the mean coverage of its block's pixels.
  const { cw, u, v } = chroma(c);
  for (let by = ya >> 1; by < (yb + 1) >> 1; by++) {
    const y0 = 2 * by;
    const y1 = Math.min(y0 + 2, h);
    for (let bx = xa >> 1; bx < (xb + 1) >> 1; bx++) {
      const x0 = 2 * bx;
      const x1 = Math.min(x0 + 2, w);
      let sum = 0;
      for (let py = Math.max(y0, ya); py < Math.min(y1, yb); py++)
        for (let px = Math.max(x0, xa); px < Math.min(x1, xb); px++) sum += mask[(py - y) * mw + (px - x)]!;
      if (sum === 0) continue;
      const a = sum / (255 * (y1 - y0) * (x1 - x0));
      const i = by * cw + bx;
      d[u + i] = d[u + i]! + (U - d[u + i]!) * a + 0.5;
      d[v + i] = d[v + i]! + (V - d[v + i]!) * a + 0.5;
    }
  }
}

/** An rgb24 image as a yuv420p one (chroma from each 2x2 block's mean colour); for insets, once per image. */
export function toYuv(img: { width: number; height: number; data: Uint8Array }, matrix: YuvMatrix): YuvCanvas {
  const { width: w, height: h } = img;
  const out: YuvCanvas = { format: "yuv420p", width: w, height: h, data: new Uint8Array(w * h + 2 * Math.ceil(w / 2) * Math.ceil(h / 2)), matrix };
  const { cw, ch, u, v } = chroma(out);
  const { kr, kg, kb, ys, us, vs } = folded(matrix);
  const s = img.data;
  const d = out.data;
  for (let i = 0; i < w * h; i++) d[i] = 16.5 + ys * (kr * s[3 * i]! + kg * s[3 * i + 1]! + kb * s[3 * i + 2]!);
  for (let by = 0; by < ch; by++) {
    // A block's second row and column, where the picture has them (an odd size's last block has one).
    const y0 = 2 * by;
    const dy = y0 + 1 < h ? 3 * w : 0;
    for (let bx = 0; bx < cw; bx++) {
      const p = 3 * (y0 * w + 2 * bx);
      const dx = 2 * bx + 1 < w ? 3 : 0;
      const r = (s[p]! + s[p + dx]! + s[p + dy]! + s[p + dy + dx]!) / 4;
      const g = (s[p + 1]! + s[p + dx + 1]! + s[p + dy + 1]! + s[p + dy + dx + 1]!) / 4;
      const b = (s[p + 2]! + s[p + dx + 2]! + s[p + dy + 2]! + s[p + dy + dx + 2]!) / 4;
      const l = kr * r + kg * g + kb * b;
      d[u + by * cw + bx] = 128.5 + us * (b - l);
      d[v + by * cw + bx] = 128.5 + vs * (r - l);
    }
  }
  return out;
}

/** A palette's Y (less 16.5), U and V (less 128.5) per entry in a matrix: toYuv's sums, per entry. */
const yuvPalettes = new WeakMap<Float32Array, Partial<Record<YuvMatrix, { y: Float64Array; u: Float64Array; v: Float64Array }>>>();

function yuvPalette(palette: Float32Array, matrix: YuvMatrix): { y: Float64Array; u: Float64Array; v: Float64Array } {
  const byMatrix = yuvPalettes.get(palette) ?? {};
  yuvPalettes.set(palette, byMatrix);
  const hit = byMatrix[matrix];
  if (hit) return hit;
  const { kr, kg, kb, ys, us, vs } = folded(matrix);
  const n = palette.length / 3;
  const t = { y: new Float64Array(n), u: new Float64Array(n), v: new Float64Array(n) };
  for (let k = 0; k < n; k++) {
    const r = palette[3 * k]!;
    const g = palette[3 * k + 1]!;
    const b = palette[3 * k + 2]!;
    const l = kr * r + kg * g + kb * b;
    t.y[k] = ys * l;
    t.u[k] = us * (b - l);
    t.v[k] = vs * (r - l);
  }
  byMatrix[matrix] = t;
  return t;
}

/**
 * A shaded image (colors.ts) as yuv420p, into `out` when it is the same size: toYuv of its rgb24 form
 * without making it (the conversion is linear, so a block's chroma is the mean of its pixels' entries'
 * chroma times their shades; to within a level of toYuv of the rounded rgb bytes).
 */
export function shadedToYuv(img: ShadedImage, matrix: YuvMatrix, out?: YuvCanvas): YuvCanvas {
  const { width: w, height: h, index, shade } = img;
  const o: YuvCanvas =
    out && out.width === w && out.height === h ? Object.assign(out, { matrix }) : { format: "yuv420p", width: w, height: h, data: new Uint8Array(w * h + 2 * Math.ceil(w / 2) * Math.ceil(h / 2)), matrix };
  const { cw, ch, u, v } = chroma(o);
  const P = yuvPalette(img.palette, matrix);
  // An unshaded image (the depth's) is the shaded case with every shade 1.
  const s = shade ?? ones(w * h);
  shadedLuma(index, s, P.y, o.data);
  for (let by = 0; by < ch; by++) {
    // A block's second row and column, where the picture has them (an odd size's last block has one).
    const y0 = 2 * by;
    shadedChromaRow(index, s, P, o.data, y0 * w, y0 + 1 < h ? w : 0, w, u + by * cw, v + by * cw, cw);
  }
  return o;
}

let unit = new Float32Array(0);
function ones(n: number): Float32Array {
  if (unit.length < n) unit = new Float32Array(n).fill(1);
  return unit;
}

// One loop a function (see raster.ts's mapLevels).

function shadedLuma(index: Uint16Array, shade: Float32Array, py: Float64Array, d: Uint8Array): void {
  for (let i = 0; i < index.length; i++) d[i] = 16.5 + shade[i]! * py[index[i]!]!;
}

/** One row of chroma blocks: the mean of each block's entries' U and V times their shades. */
function shadedChromaRow(index: Uint16Array, shade: Float32Array, P: { u: Float64Array; v: Float64Array }, d: Uint8Array, p0: number, dy: number, w: number, uAt: number, vAt: number, cw: number): void {
  for (let bx = 0; bx < cw; bx++) {
    const p = p0 + 2 * bx;
    const dx = 2 * bx + 1 < w ? 1 : 0;
    const k0 = index[p]!;
    const k1 = index[p + dx]!;
    const k2 = index[p + dy]!;
    const k3 = index[p + dy + dx]!;
    const s0 = shade[p]!;
    const s1 = shade[p + dx]!;
    const s2 = shade[p + dy]!;
    const s3 = shade[p + dy + dx]!;
    d[uAt + bx] = 128.5 + (s0 * P.u[k0]! + s1 * P.u[k1]! + s2 * P.u[k2]! + s3 * P.u[k3]!) / 4;
    d[vAt + bx] = 128.5 + (s0 * P.v[k0]! + s1 * P.v[k1]! + s2 * P.v[k2]! + s3 * P.v[k3]!) / 4;
  }
}

/** Copies a yuv420p image onto the canvas at (x, y), clipped; x and y even, so the chroma samples line up. */
export function blitYuv(c: YuvCanvas, img: YuvCanvas, x: number, y: number): void {
  if (x % 2 !== 0 || y % 2 !== 0) throw new RangeError(`blitYuv: a yuv420p image goes at even coordinates, got (${x}, ${y})`);
  const copy = (src: number, dst: number, iw: number, ih: number, cwid: number, chgt: number, ox: number, oy: number) => {
    const xa = Math.max(0, ox);
    const xb = Math.min(cwid, ox + iw);
    if (xa >= xb) return;
    for (let row = Math.max(0, -oy); row < ih && oy + row < chgt; row++)
      c.data.set(img.data.subarray(src + row * iw + (xa - ox), src + row * iw + (xb - ox)), dst + (oy + row) * cwid + xa);
  };
  copy(0, 0, img.width, img.height, c.width, c.height, x, y);
  const cov = c.coverage;
  if (cov) {
    // Opaque over the part of the image on the canvas.
    const xa = Math.max(0, x);
    const xb = Math.min(c.width, x + img.width);
    const ya = Math.max(0, y);
    const yb = Math.min(c.height, y + img.height);
    for (let row = ya; row < yb && xa < xb; row++) cov.alpha.fill(255, row * c.width + xa, row * c.width + xb);
    if (xa < xb) mark(cov, xa, ya, xb, yb);
  }
  const ci = chroma(img);
  const cc = chroma(c);
  copy(ci.u, cc.u, ci.cw, ci.ch, cc.cw, cc.ch, x / 2, y / 2);
  copy(ci.v, cc.v, ci.cw, ci.ch, cc.cw, cc.ch, x / 2, y / 2);
}
