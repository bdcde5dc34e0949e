import { resizeBilinear, type RgbImage } from "./resize.js";

/**
 * How an image was letterboxed: what `unletterboxBoxes` needs to map boxes back to source pixels.
 * Follows Ultralytics' LetterBox (ultralytics/data/augment.py) for prediction: one scale for both
 * axes, the resized image centred, the borders filled with grey 114.
 */
export interface LetterboxInfo {
  /** Source image size. */
  sourceWidth: number;
  sourceHeight: number;
  /** Letterboxed (model input) size. */
  width: number;
  height: number;
  /** The scale r = min(height / sourceHeight, width / sourceWidth) (capped at 1 without scale-up). */
  scale: number;
  /** Size of the resized image inside the letterbox: round(sourceWidth * r), round(sourceHeight * r). */
  resizedWidth: number;
  resizedHeight: number;
  /** Border widths in pixels. */
  left: number;
  top: number;
  right: number;
  bottom: number;
}

export interface LetterboxOptions {
  /** Grey level of the border; Ultralytics uses 114. */
  fill?: number;
  /**
   * Whether images smaller than the input are enlarged (Ultralytics' `scaleup`, true for
   * prediction). false keeps small images at their size inside a larger border, which avoids
   * inventing detail but leaves small objects small.
   */
  scaleUp?: boolean;
  /** Where to write the letterboxed image (width x height x channels bytes); by default a new buffer. */
  out?: Uint8Array;
}

/** Python's round(): halves go to the even neighbour. */
export function pyRound(v: number): number {
  const r = Math.round(v);
  return (r - v === 0.5 && r % 2 !== 0 ? r - 1 : r) + 0; // + 0 turns -0 into 0
}

/**
 * The letterbox geometry for a source size and a target size, with Ultralytics' rounding:
 * r = min(H / h, W / w), the resized size round(w * r) x round(h * r), the padding halved and split
 * as top = round(dh - 0.1), bottom = round(dh + 0.1) (left/right likewise), Python's round throughout.
 */
export function letterboxGeometry(
  sourceWidth: number,
  sourceHeight: number,
  width: number,
  height: number,
  options: LetterboxOptions = {},
): LetterboxInfo {
  for (const [name, v] of [["sourceWidth", sourceWidth], ["sourceHeight", sourceHeight], ["width", width], ["height", height]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`letterbox: ${name} must be a positive integer, got ${v}`);
  }
  let r = Math.min(height / sourceHeight, width / sourceWidth);
  if (options.scaleUp === false) r = Math.min(r, 1);
  const resizedWidth = pyRound(sourceWidth * r);
  const resizedHeight = pyRound(sourceHeight * r);
  const dw = (width - resizedWidth) / 2;
  const dh = (height - resizedHeight) / 2;
  return {
    sourceWidth,
    sourceHeight,
    width,
    height,
    scale: r,
    resizedWidth,
    resizedHeight,
    left: pyRound(dw - 0.1),
    right: pyRound(dw + 0.1),
    top: pyRound(dh - 0.1),
    bottom: pyRound(dh + 0.1),
  };
}

/** C's roundf: halves away from zero (DALI's round_int and crop anchor). */
export function roundHalfAway(v: number): number {
  return (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)) + 0;
}

/**
 * The letterbox of track D's server-side step (src/triton-repo/dali.ts): DALI's
 * `fn.resize(mode="not_larger", size=[S, S])` then a centred `fn.crop(crop=(S, S), out_of_bounds_policy="pad")`.
 * Where it differs from Ultralytics' (letterboxGeometry):
 * - the scale is float32: r = fround(min(S / h, S / w)), and each extent is roundf(extent * r), halves away
 *   from zero (Ultralytics: Python's round, halves to even: 1280x721 -> 361 rows here, 360 there);
 * - an odd border puts the extra pixel first: left = -roundf((resized - S) / 2) (Ultralytics: last);
 * - (the generated pipeline sets subpixel_scale=False, so the picture is stretched onto the rounded extents
 *   as cv2.resize does; DALI's default would shift it by up to a quarter pixel);
 * - images smaller than S are enlarged (not_larger only bounds the result), as Ultralytics' scaleup.
 */
export function daliLetterboxGeometry(sourceWidth: number, sourceHeight: number, size: number): LetterboxInfo {
  for (const [name, v] of [["sourceWidth", sourceWidth], ["sourceHeight", sourceHeight], ["size", size]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`letterbox: ${name} must be a positive integer, got ${v}`);
  }
  // DALI: per-axis scale as float, the smaller kept; the extents recomputed in float.
  const r = Math.min(Math.fround(size / sourceHeight), Math.fround(size / sourceWidth));
  const resizedWidth = Math.max(1, roundHalfAway(Math.fround(sourceWidth * r)));
  const resizedHeight = Math.max(1, roundHalfAway(Math.fround(sourceHeight * r)));
  const left = -roundHalfAway(Math.fround(0.5 * (resizedWidth - size))) + 0; // + 0: no -0
  const top = -roundHalfAway(Math.fround(0.5 * (resizedHeight - size))) + 0;
  return {
    sourceWidth,
    sourceHeight,
    width: size,
    height: size,
    scale: r,
    resizedWidth,
    resizedHeight,
    left,
    top,
    right: size - resizedWidth - left,
    bottom: size - resizedHeight - top,
  };
}

/**
 * Letterboxes an interleaved 8-bit image to width x height: resize with OpenCV's INTER_LINEAR
 * arithmetic (see resize.ts), then a border of `fill` (114). Returns the letterboxed image (HWC, same
 * channel count) and the geometry for mapping boxes back.
 *
 * @example
 * const bus = await readImageRgb("bus.jpg"); // 810 x 1080
 * const { image, info } = letterbox(bus, 640); // scaled to 480 x 640 inside 640 x 640, grey (114) on the sides
 * console.log(image.width, image.height, info.left, info.top, info.scale); // 640 640 80 0 0.5925925925925926
 */
export function letterbox(src: RgbImage, width: number, height = width, options: LetterboxOptions = {}): { image: RgbImage; info: LetterboxInfo } {
  const fill = options.fill ?? 114;
  if (!Number.isInteger(fill) || fill < 0 || fill > 255) throw new RangeError(`letterbox: fill must be an integer in 0..255, got ${fill}`);
  const info = letterboxGeometry(src.width, src.height, width, height, options);
  const resized = info.resizedWidth === src.width && info.resizedHeight === src.height ? src : resizeBilinear(src, info.resizedWidth, info.resizedHeight);
  const cn = src.channels;
  // dh is a whole or half number, so round(dh - 0.1) + round(dh + 0.1) is exactly 2 * dh: the
  // borders always complete the target size.
  const outW = info.left + info.resizedWidth + info.right;
  const outH = info.top + info.resizedHeight + info.bottom;
  if (options.out && options.out.length !== outW * outH * cn) {
    throw new RangeError(`letterbox: out must hold ${outW * outH * cn} bytes, it holds ${options.out.length}`);
  }
  const out = options.out ?? new Uint8Array(outW * outH * cn);
  // The border only: the picture's rows are copied over the rest. Border rows are copied from one row
  // of fill, since fill() on shared memory (a PixelPool buffer) is many times slower than set().
  const rowBytes = info.resizedWidth * cn;
  const outRow = outW * cn;
  const fillRow = new Uint8Array(outRow).fill(fill);
  const leftBytes = info.left * cn;
  const rightBytes = info.right * cn;
  for (let y = 0; y < outH; y++) {
    const o = y * outRow;
    const py = y - info.top;
    if (py < 0 || py >= info.resizedHeight) {
      out.set(fillRow, o);
      continue;
    }
    if (leftBytes > 0) out.set(fillRow.subarray(0, leftBytes), o);
    out.set(resized.data.subarray(py * rowBytes, (py + 1) * rowBytes), o + leftBytes);
    if (rightBytes > 0) out.set(fillRow.subarray(0, rightBytes), o + leftBytes + rowBytes);
  }
  return { image: { width: outW, height: outH, channels: cn, data: out }, info: { ...info, width: outW, height: outH } };
}

/**
 * Maps xyxy boxes (4 values per box, in place) from letterboxed input pixels back to source pixels
 * and clips them to the source image, as Ultralytics' scale_boxes + clip_boxes do: subtract the left/
 * top border, divide by the scale, clamp x to [0, sourceWidth] and y to [0, sourceHeight].
 *
 * @example
 * const { info } = letterbox(await readImageRgb("bus.jpg"), 640);
 * const boxes = Float32Array.of(80, 0, 560, 640, 100, 100, 200, 200); // two boxes in the 640 x 640 input
 * unletterboxBoxes(boxes, info); // in place: now in bus.jpg's 810 x 1080 pixels
 * console.log(boxes); // Float32Array(8) [ 0, 0, 810, 1080, 33.75, 168.75, 202.5, 337.5 ]
 */
export function unletterboxBoxes(xyxy: Float32Array | Float64Array, info: LetterboxInfo, count = xyxy.length >> 2): void {
  const { left, top, scale, sourceWidth: w, sourceHeight: h } = info;
  for (let i = 0; i < count; i++) {
    const o = i * 4;
    const x1 = (xyxy[o]! - left) / scale;
    const y1 = (xyxy[o + 1]! - top) / scale;
    const x2 = (xyxy[o + 2]! - left) / scale;
    const y2 = (xyxy[o + 3]! - top) / scale;
    xyxy[o] = x1 < 0 ? 0 : x1 > w ? w : x1;
    xyxy[o + 1] = y1 < 0 ? 0 : y1 > h ? h : y1;
    xyxy[o + 2] = x2 < 0 ? 0 : x2 > w ? w : x2;
    xyxy[o + 3] = y2 < 0 ? 0 : y2 > h ? h : y2;
  }
}
