import { depthLut, hsvToRgb, textColorOn, trackColor, type Rgb } from "./colors.js";
import { GlyphFont } from "./font.js";
import { blit, colorMap, fillRect, line, strokeRect, type Canvas, type RgbCanvas } from "./raster.js";
import { toYuv, type YuvCanvas } from "./yuv.js";
import { rowAtOrBefore, type Box, type RunData } from "./run-data.js";

/** The layers a rendered frame can carry; each is drawn only when on and its artifact is in the run. */
export interface Layers {
  /** Detection boxes with class, score and track id. */
  boxes: boolean;
  /** Each track's path over the last analysed frames. */
  trails: boolean;
  /** The depth map, colour-mapped, as an inset (top right). */
  depth: boolean;
  /** The optical flow as an HSV image (hue: direction, brightness: speed), as an inset under the depth. */
  flow: boolean;
  /** A caption: time, the scene's top label, the most probable CLIP prompt with its probability. */
  caption: boolean;
}

export const ALL_LAYERS: Layers = { boxes: true, trails: true, depth: true, flow: true, caption: true };

const WHITE: Rgb = [255, 255, 255];

/** Bins of the flow inset's hue table. */
const HUE_BINS = 4096;

/**
 * The flow inset's colours at full brightness by "diamond angle" (diamondAngle: a division per pixel
 * instead of atan2 and HSV arithmetic): bin i holds hsvToRgb of the true angle of the direction whose
 * diamond angle is bin i's middle.
 */
const HUES = (() => {
  const t = new Float32Array(HUE_BINS * 3);
  const px = new Uint8Array(3);
  for (let i = 0; i < HUE_BINS; i++) {
    const d = ((i + 0.5) * 4) / HUE_BINS;
    // The point of the unit diamond |x| + |y| = 1 at diamond angle d, then its real angle.
    const [x, y] = d < 1 ? [1 - d, d] : d < 2 ? [1 - d, 2 - d] : d < 3 ? [d - 3, 2 - d] : [d - 3, d - 4];
    hsvToRgb(((Math.atan2(y, x) * 180) / Math.PI + 360) % 360, 1, 1, px, 0);
    t.set(px, i * 3);
  }
  return t;
})();

/**
 * The flow image's colour of a motion (dx, dy) at out[at..at+2]: hue its direction, brightness its length
 * over `max` (at most 1), full saturation; hsvToRgb of the angle to within a level, for a lookup and a division.
 */
export function flowRgb(dx: number, dy: number, max: number, out: Uint8Array, at: number): void {
  // Full saturation: the colour is the hue's, scaled by the brightness (hsvToRgb with s = 1).
  const k = 3 * Math.min(HUE_BINS - 1, Math.floor(diamondAngle(dx, dy) * (HUE_BINS / 4)));
  const v = Math.min(1, Math.sqrt(dx * dx + dy * dy) / max);
  out[at] = HUES[k]! * v + 0.5;
  out[at + 1] = HUES[k + 1]! * v + 0.5;
  out[at + 2] = HUES[k + 2]! * v + 0.5;
}

/** A direction's angle measured along the unit diamond: in [0, 4), increasing with the true angle (0 for no motion). */
function diamondAngle(dx: number, dy: number): number {
  const s = Math.abs(dx) + Math.abs(dy);
  if (s === 0) return 0;
  if (dy >= 0) return dx >= 0 ? dy / s : 1 - dx / s;
  return dx < 0 ? 2 - dy / s : 3 + dx / s;
}

/** Analysed frames a trail reaches back. */
const TRAIL_FRAMES = 12;

/** A box the annotator drew, where (for tests and the report's track thumbnails). */
export interface DrawnBox extends Box {
  color: Rgb;
  thickness: number;
}

/** Line thickness for a picture: at least 3 pixels, a line that wide always covers a whole 2x2 chroma block of yuv420p, so its colour survives encoding. */
export function lineThickness(width: number, height: number): number {
  return Math.max(3, Math.round(Math.min(width, height) / 150));
}

/** The font size for a picture's labels. */
export function labelFontSize(width: number, height: number): number {
  return Math.max(11, Math.round(Math.min(width, height) / 30));
}

/** Draws one box with its label (class, track id, score) in its track's colour; the same for videos and `detect --save`. */
export function drawBox(c: Canvas, b: Box, names: readonly string[], font: GlyphFont, thickness: number): DrawnBox {
  const color = trackColor(b.trackId, b.classId);
  const t = thickness;
  strokeRect(c, b.x1, b.y1, b.x2, b.y2, t, color);
  const name = names[b.classId] ?? `class ${b.classId}`;
  const label = `${name}${b.trackId >= 0 ? ` #${b.trackId}` : ""} ${b.score.toFixed(2)}`;
  const w = font.width(label) + 6;
  const h = font.lineHeight + 2;
  const x = Math.max(0, Math.min(c.width - w, Math.round(b.x1)));
  // Above the box, or inside its top when there is no room above.
  const y = Math.round(b.y1) - h >= 0 ? Math.round(b.y1) - h : Math.round(b.y1) + t;
  fillRect(c, x, y, w, h, color);
  font.draw(c, label, x + 3, y + 1, textColorOn(color));
  return { ...b, color, thickness: t };
}

/**
 * A depth map (S x S, relative inverse depth: larger is nearer) as a w x h colour image, stretched over
 * the range of the image's own samples so that near is bright.
 */
export function depthImage(map: ArrayLike<number>, size: number, w: number, h: number, lut: Uint8Array): RgbCanvas {
  return colorMap(map, size, size, w, h, lut);
}

/**
 * Draws a run's results onto frames of its video (rgb24 or yuv420p, the video's display size).
 *
 * @example
 * const run = await loadRun("runs/people"); // a run folder main wrote
 * const { width, height } = run.manifest.video;
 * const annotator = await Annotator.create(run, { boxes: true, trails: true, depth: false, flow: false, caption: true }, width, height);
 * const picture = { width, height, data: new Uint8Array(width * height * 3) }; // an rgb24 frame of the video
 * const drawn = await annotator.draw(picture, 9); // the results at 9 s, drawn in place
 * console.log(drawn.map((b) => b.trackId)); // the tracks on that frame
 */
export class Annotator {
  private readonly lut = depthLut();
  private depthCache: { row: number; img: RgbCanvas } | undefined;
  private flowCache: { row: number; img: RgbCanvas } | undefined;
  private readonly mapBuffers: Partial<Record<"depth" | "flow", ArrayBufferLike>> = {};
  private readonly yuvCache: Partial<Record<"depth" | "flow", { rgb: RgbCanvas; img: YuvCanvas }>> = {};
  readonly thickness: number;
  readonly insetWidth: number;
  readonly insetHeight: number;
  /** Canvas pixels per pixel of the video's display size (the boxes' coordinates): 1 unless drawing on a smaller copy. */
  private readonly scale: number;

  private constructor(
    private readonly run: RunData,
    readonly layers: Layers,
    readonly width: number,
    readonly height: number,
    readonly font: GlyphFont,
  ) {
    this.thickness = lineThickness(width, height);
    const shown = run.manifest.video?.display_width;
    this.scale = typeof shown === "number" && shown > 0 ? width / shown : 1;
    this.insetWidth = Math.max(32, Math.round(width / 4));
    this.insetHeight = Math.max(18, Math.round((this.insetWidth * height) / width));
  }

  /** An annotator for canvases of width x height: the video's display size, or a smaller copy of its frames (boxes scaled to it). */
  static async create(run: RunData, layers: Layers, width: number, height: number): Promise<Annotator> {
    const extra = [...(run.detections?.classNames ?? []), ...(run.clip?.prompts ?? []), ...(run.scene?.label ?? [])].join("");
    const font = await GlyphFont.create(labelFontSize(width, height), extra);
    return new Annotator(run, layers, width, height, font);
  }

  /**
   * Draws what the run found at time `t` (seconds, the video's timeline): every layer shows the latest
   * analysed frame at or before `t` (boxes are held between analysed frames). Returns the boxes drawn.
   */
  async draw(c: Canvas, t: number): Promise<DrawnBox[]> {
    if (c.width !== this.width || c.height !== this.height) throw new RangeError(`Annotator: frame ${c.width}x${c.height}, expected ${this.width}x${this.height}`);
    const { run, layers } = this;
    const m = 8;
    // Insets at even coordinates: on yuv420p their chroma samples then line up with the frame's.
    const insetX = (this.width - this.insetWidth - m) & ~1;
    let insetY = m;
    if (layers.depth && run.depth) {
      const img = await this.depthInset(t);
      if (img) {
        this.inset(c, this.inFormatOf(c, "depth", img), insetX, insetY, "depth");
        insetY = (insetY + this.insetHeight + m + 1) & ~1;
      }
    }
    if (layers.flow && run.flow) {
      const img = await this.flowInset(t);
      if (img) this.inset(c, this.inFormatOf(c, "flow", img), insetX, insetY, "flow");
    }
    const drawn: DrawnBox[] = [];
    const det = run.detections;
    if (det && (layers.boxes || layers.trails)) {
      const p = rowAtOrBefore(det.frames.timestamp, t);
      const boxes = p >= 0 ? this.scaled(det.byFrame.get(det.frames.frameIndex[p]!) ?? []) : [];
      if (layers.trails && p >= 0) this.trails(c, p, boxes);
      if (layers.boxes) {
        for (const b of boxes) drawn.push(this.box(c, b, det.classNames));
      }
    }
    if (layers.caption) this.caption(c, t);
    return drawn;
  }

  /** Boxes in this canvas's pixels (the run's are in the video's display pixels). */
  private scaled(boxes: readonly Box[]): readonly Box[] {
    const k = this.scale;
    return k === 1 ? boxes : boxes.map((b) => ({ ...b, x1: b.x1 * k, y1: b.y1 * k, x2: b.x2 * k, y2: b.y2 * k }));
  }

  private box(c: Canvas, b: Box, names: readonly string[]): DrawnBox {
    return drawBox(c, b, names, this.font, this.thickness);
  }

  /** Each current track's box bottom-centre over the last TRAIL_FRAMES analysed frames. */
  private trails(c: Canvas, p: number, boxes: readonly Box[]): void {
    const det = this.run.detections!;
    for (const b of boxes) {
      if (b.trackId < 0) continue;
      const color = trackColor(b.trackId, b.classId);
      let prev: [number, number] = [(b.x1 + b.x2) / 2, b.y2];
      for (let q = p - 1; q >= Math.max(0, p - TRAIL_FRAMES); q--) {
        const o = det.byFrame.get(det.frames.frameIndex[q]!)?.find((x) => x.trackId === b.trackId);
        if (!o) break;
        const k = this.scale;
        const pt: [number, number] = [((o.x1 + o.x2) / 2) * k, o.y2 * k];
        line(c, prev[0], prev[1], pt[0], pt[1], Math.max(2, this.thickness - 1), color);
        prev = pt;
      }
    }
  }

  /** An inset image in the canvas's format: converted to yuv420p once per image, not once per frame. */
  private inFormatOf(c: Canvas, key: "depth" | "flow", img: RgbCanvas): Canvas {
    if (c.format !== "yuv420p") return img;
    const hit = this.yuvCache[key];
    if (hit?.rgb === img && hit.img.matrix === c.matrix) return hit.img;
    const yuv = toYuv(img, c.matrix);
    this.yuvCache[key] = { rgb: img, img: yuv };
    return yuv;
  }

  private inset(c: Canvas, img: Canvas, x: number, y: number, label: string): void {
    strokeRect(c, x - 1, y - 1, x + img.width + 1, y + img.height + 1, 1, WHITE);
    blit(c, img, x, y);
    const f = this.font;
    fillRect(c, x, y, f.width(label) + 4, f.lineHeight, [0, 0, 0], 0.6);
    f.draw(c, label, x + 2, y, [255, 255, 255]);
  }

  private async depthInset(t: number): Promise<RgbCanvas | undefined> {
    const d = this.run.depth!;
    const row = rowAtOrBefore(d.timestamp, t);
    if (row < 0) return undefined;
    if (this.depthCache?.row === row) return this.depthCache.img;
    // The map is read into the previous one's buffer: a map is 1 MiB (2 for flow), read up to once a frame.
    const map = (await d.reader.row("depth", row, this.mapBuffers.depth)).data;
    this.mapBuffers.depth = map.buffer;
    const img = depthImage(map, d.size, this.insetWidth, this.insetHeight, this.lut);
    this.depthCache = { row, img };
    return img;
  }

  private async flowInset(t: number): Promise<RgbCanvas | undefined> {
    const fl = this.run.flow!;
    // The motion that led to the frame shown: the row ending at the latest analysed frame at or before t.
    const row = rowAtOrBefore(fl.nextTimestamp!, t);
    if (row < 0) return undefined;
    if (this.flowCache?.row === row) return this.flowCache.img;
    const s = fl.size;
    const f = (await fl.reader.row("flow", row, this.mapBuffers.flow)).data;
    this.mapBuffers.flow = f.buffer;
    const w = this.insetWidth;
    const h = this.insetHeight;
    const out = new Uint8Array(w * h * 3);
    // The inset's samples, then the longest of them sets full brightness (at least a pixel: a still scene
    // stays dark instead of amplifying noise).
    const n = s * s;
    const dxs = new Float32Array(w * h);
    const dys = new Float32Array(w * h);
    let max2 = 1;
    const sxs = new Int32Array(w);
    for (let x = 0; x < w; x++) sxs[x] = Math.min(s - 1, Math.floor(((x + 0.5) * s) / w));
    for (let y = 0; y < h; y++) {
      const sy = Math.min(s - 1, Math.floor(((y + 0.5) * s) / h));
      for (let x = 0; x < w; x++) {
        const sx = sxs[x]!;
        const dx = f[sy * s + sx]!;
        const dy = f[n + sy * s + sx]!;
        dxs[y * w + x] = dx;
        dys[y * w + x] = dy;
        const m2 = dx * dx + dy * dy;
        if (m2 > max2) max2 = m2;
      }
    }
    const max = Math.sqrt(max2);
    for (let i = 0; i < w * h; i++) flowRgb(dxs[i]!, dys[i]!, max, out, i * 3);
    const img = { width: w, height: h, data: out };
    this.flowCache = { row, img };
    return img;
  }

  private caption(c: Canvas, t: number): void {
    const { run } = this;
    const parts = [`${t.toFixed(1)} s`];
    if (run.scene) {
      const r = rowAtOrBefore(run.scene.timestamp, t);
      if (r >= 0) parts.push(`scene: ${run.scene.label[r]} ${run.scene.score[r]!.toFixed(2)}`);
    }
    if (run.clip) {
      const r = rowAtOrBefore(run.clip.timestamp, t);
      const p = run.clip.prompts.length;
      if (r >= 0 && p > 0) {
        let best = 0;
        for (let k = 1; k < p; k++) if (run.clip.probabilities[r * p + k]! > run.clip.probabilities[r * p + best]!) best = k;
        parts.push(`clip: "${run.clip.prompts[best]}" ${run.clip.probabilities[r * p + best]!.toFixed(2)}`);
      }
    }
    const f = this.font;
    const h = f.lineHeight + 6;
    fillRect(c, 0, c.height - h, c.width, h, [0, 0, 0], 0.6);
    f.draw(c, parts.join("   "), 6, c.height - h + 3, [255, 255, 255]);
  }
}
