import { pixelRegion, type RgbCanvas } from "../render/raster.js";

// The report's images taken during the run, so `main` decodes the video once: the frame picker's frames
// (which analysed frames they are is known from the plan: an even spread) and, per track, the crop of its
// best box so far. writeReport annotates and encodes them at the end instead of decoding the video again.

/** A picker frame as the run saw it: its time and its pixels at the analysis size, JPEG-encoded (quality 92) while the run goes on. */
export interface CapturedFrame {
  t: number;
  width: number;
  height: number;
  jpeg: Promise<Buffer>;
}

/** A track's best box (highest score, the first such) and its crop: at most CROP_SIDE a side, the box `pad` pixels in from each edge. */
export interface CapturedCrop {
  score: number;
  classId: number;
  crop: RgbCanvas;
  /** The box in the crop's pixels, and the annotator's line thickness there. */
  box: [number, number, number, number];
  thickness: number;
}

/** What writeReport needs of a run in place of decoding its video. */
export interface CapturedImages {
  picker: CapturedFrame[];
  crops: Map<number, CapturedCrop>;
}

/** The detections of a frame as the pipeline hands them (display coordinates). */
interface FrameBoxes {
  xyxy: Float32Array;
  scores: Float32Array;
  classIds: Int32Array;
  trackIds: Int32Array | null;
}

/** The picker's frames when the report's options do not say (ReportOptions.maxPickerFrames). */
export const MAX_PICKER_FRAMES = 60;

/** Longest side of a kept crop (the report shows them at 96). */
const CROP_SIDE = 192;

/** Evenly spread picks of `n` out of `total` (all when total <= n). */
export function spread(total: number, n: number): number[] {
  if (total <= n) return Array.from({ length: total }, (_, i) => i);
  return Array.from({ length: n }, (_, i) => Math.round((i * (total - 1)) / Math.max(1, n - 1)));
}

/**
 * Takes the report's images from the frames a run analyses. `add` is called with each result in order,
 * while its frame's pixels are still valid (they are copied, never kept).
 */
export class ReportCapture {
  private readonly picks: Set<number>;
  private position = 0;
  private readonly picker: CapturedFrame[] = [];
  private readonly crops = new Map<number, CapturedCrop>();

  /**
   * @param planned the frames the run plans to analyse (the picker's spread is over them)
   * @param display the size the boxes are in (the video's display size)
   * @param thickness the annotator's line thickness at that size (a crop's margin)
   */
  constructor(
    planned: number,
    maxPickerFrames: number,
    private readonly display: { width: number; height: number },
    private readonly thickness: number,
    private readonly sharp: (typeof import("sharp"))["default"],
  ) {
    this.picks = new Set(spread(planned, maxPickerFrames));
  }

  add(frame: { width: number; height: number; data: Uint8Array }, t: number, boxes: FrameBoxes | undefined): void {
    if (this.picks.has(this.position++)) {
      const data = Buffer.from(frame.data); // a copy: the reader reuses the buffer
      const jpeg = this.sharp(data, { raw: { width: frame.width, height: frame.height, channels: 3 } }).jpeg({ quality: 92 }).toBuffer();
      jpeg.catch(() => undefined);
      this.picker.push({ t, width: frame.width, height: frame.height, jpeg });
    }
    if (!boxes?.trackIds) return;
    const sx = frame.width / this.display.width;
    const sy = frame.height / this.display.height;
    for (let i = 0; i < boxes.scores.length; i++) {
      const id = boxes.trackIds[i]!;
      const score = boxes.scores[i]!;
      if (id < 0 || (this.crops.get(id)?.score ?? -Infinity) >= score) continue;
      const b = boxes.xyxy.subarray(4 * i, 4 * i + 4);
      const pad = this.thickness;
      const { crop, kx, ky, x, y } = cropShrunk(frame, (b[0]! - pad) * sx, (b[1]! - pad) * sy, (b[2]! + pad) * sx, (b[3]! + pad) * sy);
      const box: [number, number, number, number] = [(b[0]! * sx - x) * kx, (b[1]! * sy - y) * ky, (b[2]! * sx - x) * kx, (b[3]! * sy - y) * ky];
      this.crops.set(id, { score, classId: boxes.classIds[i]!, crop, box, thickness: Math.max(1, Math.round(pad * sx * kx)) });
    }
  }

  images(): CapturedImages {
    return { picker: this.picker, crops: this.crops };
  }
}

/** The region of an rgb24 frame, area-averaged down to at most CROP_SIDE a side (`kx`, `ky`: output pixels per frame pixel). */
function cropShrunk(img: { width: number; height: number; data: Uint8Array }, x1: number, y1: number, x2: number, y2: number): { crop: RgbCanvas; kx: number; ky: number; x: number; y: number } {
  const { x: xa, y: ya, w, h } = pixelRegion(img.width, img.height, x1, y1, x2, y2);
  const scale = Math.min(1, CROP_SIDE / Math.max(w, h));
  const ow = Math.max(1, Math.round(w * scale));
  const oh = Math.max(1, Math.round(h * scale));
  const out = new Uint8Array(ow * oh * 3);
  const src = img.data;
  for (let oy = 0; oy < oh; oy++) {
    const y0 = ya + Math.floor((oy * h) / oh);
    const y1e = Math.max(y0 + 1, ya + Math.floor(((oy + 1) * h) / oh));
    for (let ox = 0; ox < ow; ox++) {
      const x0 = xa + Math.floor((ox * w) / ow);
      const x1e = Math.max(x0 + 1, xa + Math.floor(((ox + 1) * w) / ow));
      let r = 0;
      let g = 0;
      let bl = 0;
      for (let y = y0; y < y1e; y++) {
        for (let x = x0, p = (y * img.width + x0) * 3; x < x1e; x++, p += 3) {
          r += src[p]!;
          g += src[p + 1]!;
          bl += src[p + 2]!;
        }
      }
      const n = (y1e - y0) * (x1e - x0);
      const q = (oy * ow + ox) * 3;
      out[q] = Math.round(r / n);
      out[q + 1] = Math.round(g / n);
      out[q + 2] = Math.round(bl / n);
    }
  }
  return { crop: { width: ow, height: oh, data: out }, kx: ow / w, ky: oh / h, x: xa, y: ya };
}

/** A capture for a run planning `planned` frames of a video shown at `width` x `height` (the report's default picker size). */
export async function startCapture(planned: number, width: number, height: number): Promise<ReportCapture> {
  const [{ default: sharp }, { lineThickness }] = await Promise.all([import("sharp"), import("../render/annotate.js")]);
  return new ReportCapture(planned, MAX_PICKER_FRAMES, { width, height }, lineThickness(width, height), sharp);
}
