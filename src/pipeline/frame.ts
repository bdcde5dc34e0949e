import type { ResizeMode } from "../catalog/types.js";
import { letterbox, type LetterboxInfo } from "../preprocess/letterbox.js";
import { sealPixels } from "../preprocess/normalize.js";
import { centerCropBicubic, stretchCropBilinear } from "../preprocess/pil-resize.js";
import { resizeBilinear, type RgbImage } from "../preprocess/resize.js";

/**
 * One RGB frame as the SDK takes it: 8-bit rgb24, row-major HWC, exactly width * height * 3 bytes. The
 * frames of `readFrames` are of this shape, and so is an RgbImage with 3 channels; `index` and
 * `timestamp` (seconds) are optional for frames that come from elsewhere (they default to the position
 * in the stream and index / fps).
 */
export interface RgbFrame {
  width: number;
  height: number;
  data: Uint8Array;
  index?: number;
  timestamp?: number;
  /** The frame's number in the video (default: `index`). */
  sourceIndex?: number;
  /** The first frame after a timestamp break: no flow pair is formed with the frame before it. */
  afterBreak?: boolean;
}

/** Checks a frame at the API boundary: TypeError for a wrong type, RangeError for sizes that disagree. */
export function checkFrame(frame: RgbFrame, what = "frame"): RgbImage {
  if (typeof frame !== "object" || frame === null) throw new TypeError(`${what} must be an object { width, height, data }`);
  const { width, height, data } = frame;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width < 1 || height < 1) {
    throw new RangeError(`${what}: width and height must be positive integers, got ${String(width)}x${String(height)}`);
  }
  if (!(data instanceof Uint8Array)) throw new TypeError(`${what}.data must be a Uint8Array of rgb24 pixels (a Buffer is fine)`);
  if (data.length !== width * height * 3) {
    throw new RangeError(`${what}: ${width}x${height} rgb24 needs ${width * height * 3} bytes, data has ${data.length}`);
  }
  const channels = (frame as { channels?: unknown }).channels;
  if (channels !== undefined && channels !== 3) throw new RangeError(`${what}: channels must be 3 (rgb24), got ${String(channels)}`);
  return { width, height, channels: 3, data };
}

/** Resizes to S x S, ignoring the aspect ratio (MiDaS, RAFT). */
export function stretchTo(img: RgbImage, size: number, out?: Uint8Array): RgbImage {
  if (img.width === size && img.height === size) return img;
  return resizeBilinear(img, size, size, out ? { out } : {});
}

/**
 * CLIP's and Places365's preprocessing: the shorter side resized to S and the central S x S crop
 * (torchvision's Resize(S) + CenterCrop(S)). Done the cheaper way round: the central square of the
 * frame (shorter side x shorter side, offset floor((longer - shorter) / 2)) is resized to S x S, so no
 * pixel outside the crop is resampled. The crop window is the same as torchvision's to within a
 * fraction of a source pixel.
 */
export function centerCropTo(img: RgbImage, size: number, out?: Uint8Array): RgbImage {
  const { width: w, height: h } = img;
  const side = Math.min(w, h);
  if (w === h && side === size) return img;
  const crop = { x: Math.floor((w - side) / 2), y: Math.floor((h - side) / 2), width: side, height: side };
  return resizeBilinear(img, size, size, out ? { crop, out } : { crop });
}

/** YOLO's letterbox: scaled to fit S x S without enlarging (SPEC section 2), centred, padded with `pad`. */
export function letterboxTo(img: RgbImage, size: number, pad = 114, out?: Uint8Array): { image: RgbImage; info: LetterboxInfo } {
  return letterbox(img, size, size, out ? { fill: pad, scaleUp: false, out } : { fill: pad, scaleUp: false });
}

/** A frame fitted to a branch's input: the pixels, and for letterboxing the geometry to map boxes back. */
export interface FittedImage {
  image: RgbImage;
  letterbox: LetterboxInfo | undefined;
}

/**
 * Byte buffers by size, taken and given back, for the images a video run makes for every frame: the
 * same few sizes hundreds of times. Fresh buffers that live across a few frames are what made V8 run a
 * full collection every few frames (its external-memory trigger); reused ones do not count again. The
 * memory is shared: fitting workers write it and the embedded backend's workers read it without a copy.
 * Every take() is a new view, so a buffer's new contents get a new seal (sealPixels) and never match what
 * a model cached for its old ones. The pool holds at most what was in use at once.
 */
export class PixelPool {
  private readonly free = new Map<number, SharedArrayBuffer[]>();

  take(bytes: number): Uint8Array {
    return new Uint8Array(this.free.get(bytes)?.pop() ?? new SharedArrayBuffer(bytes));
  }

  /** Only once nothing reads `data` any more: no call in flight holds it. */
  give(data: Uint8Array): void {
    const buf = data.buffer;
    if (!(buf instanceof SharedArrayBuffer) || data.byteOffset !== 0 || data.byteLength !== buf.byteLength) return;
    let list = this.free.get(buf.byteLength);
    if (!list) this.free.set(buf.byteLength, (list = []));
    list.push(buf);
  }
}

/** True when the frame itself is already the fitted image (a stretch or crop to its own square size). */
function isFitted(frame: RgbImage, mode: ResizeMode, size: number): boolean {
  return mode !== "letterbox" && frame.width === size && frame.height === size;
}

/** A frame fitted to S x S by `mode` (into `out` when given): what FittedFrame and the fitting workers run. */
export function fitImage(frame: RgbImage, mode: ResizeMode, size: number, pad = 114, out?: Uint8Array): FittedImage {
  if (mode === "stretch") return { image: stretchTo(frame, size, out), letterbox: undefined };
  if (mode === "center_crop") return { image: centerCropTo(frame, size, out), letterbox: undefined };
  if (mode === "center_crop_bicubic") return { image: centerCropBicubic(frame, size, out), letterbox: undefined };
  if (mode === "stretch_crop_bilinear") return { image: stretchCropBilinear(frame, size, out), letterbox: undefined };
  const lb = letterboxTo(frame, size, pad, out);
  return { image: lb.image, letterbox: lb.info };
}

/** Fits frames on other threads: FitPool (fit-pool.ts) implements it. */
export interface Fitter {
  /** Whether it can take this frame without a copy (its pixels in shared memory). */
  accepts(frame: RgbImage): boolean;
  fit(frame: RgbImage, mode: ResizeMode, size: number, pad: number, out: Uint8Array): Promise<FittedImage>;
}

/**
 * The fitted versions of one frame, made once each: MiDaS and RAFT at the same size share one stretch,
 * CLIP and Places365 at the same size one centre crop. With a pool they are written into its buffers,
 * and release() gives them back; with a fitter (and the frame in shared memory) they are made on its
 * threads, otherwise here, at once.
 *
 * @example
 * const frame = new FittedFrame(await readImageRgb("bus.jpg"));
 * const a = await frame.get("letterbox", 640); // made once...
 * const b = await frame.get("letterbox", 640); // ...and shared by every model that takes it
 * console.log(a === b, a.image.width, a.letterbox?.left); // true 640 80
 * frame.release();
 */
export class FittedFrame {
  private readonly cache = new Map<string, Promise<FittedImage>>();
  private readonly taken: Uint8Array[] = [];

  constructor(
    readonly frame: RgbImage,
    private readonly pool?: PixelPool,
    private readonly fitter?: Fitter,
  ) {}

  get(mode: ResizeMode, size: number, pad = 114): Promise<FittedImage> {
    const key = `${mode}:${size}:${mode === "letterbox" ? pad : ""}`;
    let f = this.cache.get(key);
    if (!f) {
      f = this.make(mode, size, pad);
      this.cache.set(key, f);
    }
    return f;
  }

  // Without a fitter this runs to the end synchronously, inside get().
  private async make(mode: ResizeMode, size: number, pad: number): Promise<FittedImage> {
    // The caller's frame, already of the size, is used as it is: never sealed, never pooled.
    if (isFitted(this.frame, mode, size)) return { image: this.frame, letterbox: undefined };
    const out = this.pool?.take(size * size * 3);
    if (out) this.taken.push(out);
    const f = out && this.fitter?.accepts(this.frame) ? await this.fitter.fit(this.frame, mode, size, pad, out) : fitImage(this.frame, mode, size, pad, out);
    // A new buffer (not the caller's frame) is the SDK's own: nothing writes it again until release().
    sealPixels(f.image.data);
    return f;
  }

  /** Gives the fitted images back to the pool: only once no call that was handed one is in flight. */
  release(): void {
    if (this.pool) for (const out of this.taken) this.pool.give(out);
    this.taken.length = 0;
    this.cache.clear();
  }
}
