import type { VideoMetadata } from "./metadata.js";
import { ffmpegFileUrl } from "./ffmpeg-tools.js";

/** swscale's resampling flags for the resize to the analysis size. */
export type ScaleFlags = "area" | "bilinear" | "bicubic" | "lanczos" | "neighbor" | "fast_bilinear";
const SCALE_FLAGS: readonly ScaleFlags[] = ["area", "bilinear", "bicubic", "lanczos", "neighbor", "fast_bilinear"];

export interface FramePlanOptions {
  /**
   * Analysis frames per second. Time is cut into slots of 1/fps seconds from the file's start and the first
   * decoded frame of each slot is analysed, with its own timestamp. A source slower than `fps` gives every
   * source frame once (no duplicates). Omitted: every source frame.
   */
  fps?: number;
  /**
   * Analysis size in pixels. Neither: the display size (after rotation). One of them: the other follows
   * the display aspect ratio (rounded). Both: exactly that size (the caller chooses the aspect ratio).
   */
  width?: number;
  height?: number;
  /**
   * Resampling for the resize. Default: "area" when the picture shrinks in both directions (averages the
   * source pixels under each output pixel: no aliasing, like OpenCV's INTER_AREA), "bilinear" when it grows
   * in either direction (area degenerates to nearest-neighbour there).
   */
  scaleFlags?: ScaleFlags;
  /**
   * What to do when the decoded frames' timestamps stop increasing (a restart or a step back, as in an
   * MPEG-TS made of concatenated segments). "rebase" (default): from that frame on, time continues one
   * source frame interval after the last frame before the break (ffmpeg shifts the later timestamps, so
   * the analysis rate keeps picking frames), and the reader reports the break. "error": the reader stops
   * with VIDEO_INVALID at the first break.
   */
  timestampBreaks?: TimestampBreaks;
  /**
   * Layout of the frames' bytes. "rgb24" (default): 3 bytes a pixel, row-major. "yuv420p": the planes
   * Y (width x height), then U and V (ceil(width/2) x ceil(height/2) each), limited (tv) range, in the
   * video's own colour matrix: what H.264 video usually decodes to, so a consumer that only draws on the
   * frames and re-encodes them (render) skips two colour conversions and half the bytes.
   */
  pixelFormat?: PixelFormat;
}

export type TimestampBreaks = "rebase" | "error";
export type PixelFormat = "rgb24" | "yuv420p";

/** Bytes of one frame of `format` at width x height. */
export function frameByteSize(format: PixelFormat, width: number, height: number): number {
  return format === "yuv420p" ? width * height + 2 * Math.ceil(width / 2) * Math.ceil(height / 2) : width * height * 3;
}

/** How frames will be decoded: the analysis size, rate and the ffmpeg command that produces them. */
export interface FramePlan {
  width: number;
  height: number;
  /** Analysis fps, or undefined for every source frame. */
  fps: number | undefined;
  scaleFlags: ScaleFlags;
  pixelFormat: PixelFormat;
  /** Bytes per frame (frameByteSize). */
  frameBytes: number;
  /** Expected number of analysis frames (from the metadata; for progress, not a promise). */
  estimatedFrames: number;
  /** ffmpeg's -vf filter chain. */
  filter: string;
}

function checkDim(name: string, v: number | undefined): void {
  if (v === undefined) return;
  if (typeof v !== "number" || !Number.isInteger(v)) throw new TypeError(`readFrames: ${name} must be an integer, got ${String(v)}`);
  if (v < 1 || v > 16384) throw new RangeError(`readFrames: ${name} must be between 1 and 16384, got ${v}`);
}

/** The transpose filters that turn the stored picture the way ffmpeg's autorotation would. */
function rotationFilter(rotation: VideoMetadata["rotation"]): string | undefined {
  switch (rotation) {
    case 90:
      return "transpose=clock";
    case 180:
      return "hflip,vflip";
    case 270:
      return "transpose=cclock";
    default:
      return undefined;
  }
}

/**
 * The select expression for `fps`: keep a frame when it is the first one in a new slot of 1/fps seconds,
 * slots counted from `origin` (the container's start time: ffmpeg runs with -copyts, so `t` is the source
 * pts). A small epsilon (1e-4 of a slot) keeps frames that sit exactly on a slot boundary (e.g. t=0.2 at
 * 5 fps, which is 0.19999... in floating point) in that slot.
 */
export function selectExpression(fps: number, origin = 0): string {
  const o = origin === 0 ? "" : origin > 0 ? `-${origin}` : `+${-origin}`;
  const slot = (t: string) => `floor((${t}${o})*${fps}+0.0001)`;
  return `isnan(prev_selected_t)+gte(${slot("t")},${slot("prev_selected_t")}+1)`;
}

/** The names of the two showinfo filters in the chain (their log lines start "[showinfo@NAME @ 0x..."). */
export const SHOWINFO_DECODED = "decoded";
export const SHOWINFO_PICKED = "picked";

/**
 * setpts's expression that rebases timestamp breaks: a frame whose pts (plus the offset so far) is not
 * after the previous frame's output pts gets the previous one plus one source frame interval, and the
 * offset grows by the difference for every later frame. Expression variables persist from frame to
 * frame (st/ld): 0 the offset, 1 the previous output pts, 2 this frame's. Without a break it is PTS itself.
 */
export function rebaseExpression(frameRate: number): string {
  const step = `1/(${frameRate}*TB)`;
  return `st(2,PTS+ld(0));if(gt(N,0)*lte(ld(2),ld(1)),st(0,ld(1)+${step}-PTS)+st(2,ld(1)+${step}));st(1,ld(2));ld(2)`;
}

/**
 * The slot of time `t` exactly as selectExpression's filter computes it (the same double operations in
 * the same order, on the same decimal constants), for working out in advance which frames it keeps.
 */
export function selectSlot(t: number, fps: number, origin = 0): number {
  const shifted = origin === 0 ? t : origin > 0 ? t - origin : t + -origin;
  return Math.floor(shifted * fps + 0.0001);
}

/** Checks the options' types and ranges (TypeError / RangeError naming the option). */
export function checkFramePlanOptions(options: FramePlanOptions): void {
  const { fps, width, height } = options;
  if (fps !== undefined) {
    if (typeof fps !== "number" || Number.isNaN(fps)) throw new TypeError(`readFrames: fps must be a number, got ${String(fps)}`);
    if (!(fps > 0 && fps <= 1000)) throw new RangeError(`readFrames: fps must be in (0, 1000], got ${fps}`);
  }
  checkDim("width", width);
  checkDim("height", height);
  if (options.timestampBreaks !== undefined && options.timestampBreaks !== "rebase" && options.timestampBreaks !== "error")
    throw new RangeError(`readFrames: timestampBreaks must be "rebase" or "error", got ${String(options.timestampBreaks)}`);
  if (options.pixelFormat !== undefined && options.pixelFormat !== "rgb24" && options.pixelFormat !== "yuv420p")
    throw new RangeError(`readFrames: pixelFormat must be "rgb24" or "yuv420p", got ${String(options.pixelFormat)}`);
  if (options.scaleFlags !== undefined && !SCALE_FLAGS.includes(options.scaleFlags))
    throw new RangeError(`readFrames: scaleFlags must be one of ${SCALE_FLAGS.join(", ")}, got ${String(options.scaleFlags)}`);
}

/** Works out the analysis size, rate and the ffmpeg filter chain for a video. */
export function planFrames(meta: VideoMetadata, options: FramePlanOptions = {}): FramePlan {
  checkFramePlanOptions(options);
  const { fps, width, height } = options;

  const dw = meta.displayWidth;
  const dh = meta.displayHeight;
  let w: number;
  let h: number;
  if (width !== undefined && height !== undefined) [w, h] = [width, height];
  else if (width !== undefined) [w, h] = [width, Math.max(1, Math.round((width * dh) / dw))];
  else if (height !== undefined) [w, h] = [Math.max(1, Math.round((height * dw) / dh)), height];
  else [w, h] = [dw, dh];

  const shrinking = w <= dw && h <= dh;
  const scaleFlags = options.scaleFlags ?? (shrinking ? "area" : "bilinear");

  // Autorotation is switched off (-noautorotate) and done here instead, after the frames are selected and
  // scaled: ffmpeg's own turns every decoded full-size frame, this turns only the analysed, smaller ones.
  // At full size the result equals ffmpeg's; scaled, luma agrees and chroma differs slightly, in our favour:
  // rotating the 4:2:0 picture first (ffmpeg) moves its chroma siting onto the other axis.
  const rotate = rotationFilter(meta.rotation);
  const swap = meta.rotation === 90 || meta.rotation === 270;
  const [sw, sh] = swap ? [h, w] : [w, h];
  // showinfo logs a frame's pts (in the stream time base it logs once as "config in time_base"):
  // "decoded" sees every decoded frame (how the reader counts them, numbers them and finds timestamp
  // breaks), "picked" the selected ones (how frames get their real timestamps). checksum=0: no checksums.
  const parts: string[] = [`showinfo@${SHOWINFO_DECODED}=checksum=0`];
  if ((options.timestampBreaks ?? "rebase") === "rebase") parts.push(`setpts='${rebaseExpression(meta.frameRate)}'`);
  if (fps !== undefined) parts.push(`select='${selectExpression(fps, meta.containerStartTime)}'`);
  parts.push(`showinfo@${SHOWINFO_PICKED}=checksum=0`);
  // One swscale pass does the resize and the YUV -> rgb24 conversion. For yuv420p, out_range=tv makes a
  // full-range source limited like every other (swscale's copy of a frame that needs nothing: ~0.03 ms).
  const pixelFormat = options.pixelFormat ?? "rgb24";
  parts.push(pixelFormat === "yuv420p" ? `scale=${sw}:${sh}:flags=${scaleFlags}:out_range=tv` : `scale=${sw}:${sh}:flags=${scaleFlags}`, `format=${pixelFormat}`);
  if (rotate) parts.push(rotate);

  const estimatedFrames =
    fps === undefined ? meta.frameCount : Math.min(meta.frameCount, Math.max(1, Math.ceil(meta.duration * fps - 1e-9)));
  return { width: w, height: h, fps, scaleFlags, pixelFormat, frameBytes: frameByteSize(pixelFormat, w, h), estimatedFrames, filter: parts.join(",") };
}

/**
 * The full ffmpeg argument list that writes the plan's frames as raw rgb24 (or yuv420p) to stdout. Exported so that a
 * benchmark can time ffmpeg alone on exactly the same work. `input`: what ffmpeg reads (default the file
 * itself; a sparse decode gives its own URL).
 */
export function ffmpegFrameArgs(meta: VideoMetadata, plan: FramePlan, output = "pipe:1", input = ffmpegFileUrl(meta.path)): string[] {
  return [
    "-nostdin", "-hide_banner", "-nostats",
    // "level+" tags every log line with its level, so errors can be told from showinfo's info lines.
    "-loglevel", "level+info",
    // Keep the source timestamps: ffmpeg would otherwise shift them by an offset of its own choosing
    // (for MPEG-TS not always the container start), and frame timestamps must be the real ones.
    "-copyts",
    "-noautorotate",
    "-i", input,
    "-map", `0:${meta.streamIndex}`,
    "-an", "-sn", "-dn",
    "-vf", plan.filter,
    // Passthrough: write exactly the frames the filters give, never duplicate or drop to a constant rate.
    "-fps_mode", "passthrough",
    "-f", "rawvideo", "-pix_fmt", plan.pixelFormat,
    output,
  ];
}
