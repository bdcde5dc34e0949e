/** Colours of the annotations: one per track id (stable across frames and runs), and the colour maps. */

export type Rgb = readonly [number, number, number];

/**
 * A picture as entries of a palette (rgb triples, 0..255), each pixel's entry dimmed by its shade in
 * [0, 1] (none: 1): the insets' form (depth: a colour map's level; flow: hue by direction, shade by
 * speed). It becomes rgb24 (shadedToRgb) or yuv420p (shadedToYuv) in one pass, into reused buffers.
 */
export interface ShadedImage {
  width: number;
  height: number;
  index: Uint16Array;
  shade: Float32Array | undefined;
  palette: Float32Array;
}

// 20 saturated, well-separated colours (hand-picked hues; none near the caption's black or white).
const PALETTE: readonly Rgb[] = [
  [255, 56, 56], [255, 157, 151], [255, 112, 31], [255, 178, 29], [207, 210, 49], [72, 249, 10], [146, 204, 23],
  [61, 219, 134], [26, 147, 52], [0, 212, 187], [44, 153, 168], [0, 194, 255], [52, 69, 147], [100, 115, 255],
  [0, 24, 236], [132, 56, 255], [82, 0, 133], [203, 56, 255], [255, 149, 200], [255, 55, 199],
];

/** The colour of track `id` (by id, so the same track keeps it); an untracked box (-1) takes its class's. */
export function trackColor(trackId: number, classId: number): Rgb {
  const k = trackId >= 0 ? trackId : classId;
  return PALETTE[((k % PALETTE.length) + PALETTE.length) % PALETTE.length]!;
}

/** Black or white, whichever reads better on `bg`. */
export function textColorOn(bg: Rgb): Rgb {
  return 0.299 * bg[0] + 0.587 * bg[1] + 0.114 * bg[2] > 150 ? [0, 0, 0] : [255, 255, 255];
}

// Depth: dark blue (far) through purple and orange to light yellow (near), linear between stops.
const DEPTH_STOPS: readonly Rgb[] = [[13, 8, 60], [84, 20, 130], [170, 40, 110], [235, 95, 50], [252, 200, 60], [252, 252, 190]];

/** A 256-entry lookup table of the depth colour map (rgb triples). */
export function depthLut(): Uint8Array {
  const lut = new Uint8Array(256 * 3);
  const n = DEPTH_STOPS.length - 1;
  for (let i = 0; i < 256; i++) {
    const x = (i / 255) * n;
    const k = Math.min(n - 1, Math.floor(x));
    const f = x - k;
    const a = DEPTH_STOPS[k]!;
    const b = DEPTH_STOPS[k + 1]!;
    for (let c = 0; c < 3; c++) lut[i * 3 + c] = Math.round(a[c]! + (b[c]! - a[c]!) * f);
  }
  return lut;
}

/** HSV (h in [0, 360), s and v in [0, 1]) to rgb bytes at out[at..at+2] (no allocation: it runs per pixel). */
export function hsvToRgb(h: number, s: number, v: number, out: Uint8Array, at: number): void {
  const c = v * s;
  const hp = (h % 360) / 60;
  const x = c * (1 - Math.abs((hp % 2) - 1));
  const m = v - c;
  let r: number;
  let g: number;
  let b: number;
  if (hp < 1) (r = c), (g = x), (b = 0);
  else if (hp < 2) (r = x), (g = c), (b = 0);
  else if (hp < 3) (r = 0), (g = c), (b = x);
  else if (hp < 4) (r = 0), (g = x), (b = c);
  else if (hp < 5) (r = x), (g = 0), (b = c);
  else (r = c), (g = 0), (b = x);
  out[at] = Math.round((r + m) * 255);
  out[at + 1] = Math.round((g + m) * 255);
  out[at + 2] = Math.round((b + m) * 255);
}
