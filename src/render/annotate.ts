import { depthLut, hsvToRgb, textColorOn, trackColor, type Rgb, type ShadedImage } from "./colors.js";
import { GlyphFont } from "./font.js";
import { blit, fillRect, line, mapLevels, shadedToRgb, strokeRect, type Canvas, type RgbCanvas } from "./raster.js";
import { shadedToYuv, type YuvCanvas } from "./yuv.js";
import type { NpzReader } from "../artifacts/npz-reader.js";
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
 * The optical flow (2 x s x s: dx, then dy) as a w x h image (nearest sample): hue its direction
 * (HUES: a lookup and a division instead of atan2 and HSV arithmetic, to within a level), brightness its
 * length over the longest sample's (at least a pixel: a still scene stays dark instead of amplifying
 * noise), full saturation. `into`: the previous image of this size, whose buffers are reused.
 */
export function flowImage(f: ArrayLike<number>, s: number, w: number, h: number, into?: ShadedImage): ShadedImage {
  const img: ShadedImage =
    into?.width === w && into.height === h && into.shade
      ? into
      : { width: w, height: h, index: new Uint16Array(w * h), shade: new Float32Array(w * h), palette: HUES };
  const shade = img.shade!;
  const sxs = new Int32Array(w);
  for (let x = 0; x < w; x++) sxs[x] = Math.min(s - 1, Math.floor(((x + 0.5) * s) / w));
  let max2 = 1;
  for (let y = 0; y < h; y++) {
    const at = Math.min(s - 1, Math.floor(((y + 0.5) * s) / h)) * s;
    max2 = Math.max(max2, flowRow(f, at, at + s * s, sxs, img.index, shade, y * w));
  }
  brightness(shade, 1 / max2);
  return img;
}

// One loop a function (see raster.ts's mapLevels).

/** One row of flowImage: each sample's hue bin and squared length; returns the longest squared length. */
function flowRow(f: ArrayLike<number>, dxAt: number, dyAt: number, sxs: Int32Array, index: Uint16Array, shade: Float32Array, at: number): number {
  let max2 = 0;
  for (let x = 0; x < sxs.length; x++) {
    const dx = f[dxAt + sxs[x]!]!;
    const dy = f[dyAt + sxs[x]!]!;
    const m2 = dx * dx + dy * dy;
    // A sample that is not a number (a broken model's) is drawn as no motion: black.
    if (!(m2 < Infinity)) {
      index[at + x] = 0;
      shade[at + x] = 0;
      continue;
    }
    index[at + x] = Math.min(HUE_BINS - 1, Math.floor(diamondAngle(dx, dy) * (HUE_BINS / 4)));
    shade[at + x] = m2;
    if (m2 > max2) max2 = m2;
  }
  return max2;
}

/** Squared lengths -> brightness: the length over the longest (`inv2`: 1 / its square), at most 1. */
function brightness(shade: Float32Array, inv2: number): void {
  for (let i = 0; i < shade.length; i++) shade[i] = Math.min(1, Math.sqrt(shade[i]! * inv2));
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

/** The depth colour map's palette (depthLut as floats, for shaded images). */
const DEPTH_PALETTE = Float32Array.from(depthLut());

/**
 * A depth map (S x S, relative inverse depth: larger is nearer) as a w x h colour-mapped image, stretched
 * over the range of the image's own samples so that near is bright. `into`: the previous image of this
 * size, whose buffer is reused; `samples`: w x h of scratch.
 */
export function depthImage(map: ArrayLike<number>, size: number, w: number, h: number, into?: ShadedImage, samples?: Float32Array): ShadedImage {
  const index = into?.width === w && into.height === h ? into.index : new Uint16Array(w * h);
  return { width: w, height: h, index: mapLevels(map, size, size, w, h, index, samples), shade: undefined, palette: DEPTH_PALETTE };
}

/**
 * The rows of one map array (depth or flow: 1 or 2 MiB each as float32) as the annotator draws them: once
 * it asks for rows in order (a render), the next row is read ahead while this one is drawn, so that a
 * frame does not wait for its map (read from disk, directly, where main wrote it so:
 * NpzOpenOptions.direct). Two buffers take turns: one holds the row being drawn.
 */
class MapRows {
  private readonly buffers: Array<ArrayBufferLike | undefined> = [undefined, undefined];
  private turn = 0;
  private last = -2;
  private ahead: { row: number; data: Promise<ArrayLike<number>> } | undefined;

  constructor(private readonly name: string) {}

  async read(reader: NpzReader, row: number, rows: number): Promise<ArrayLike<number>> {
    const a = this.ahead;
    this.ahead = undefined;
    // A read ahead of another row (the caller went elsewhere) finishes before its buffer is read into again.
    const data = a?.row === row ? await a.data : (await a?.data.catch(() => undefined), await this.into(reader, row));
    if (row === this.last + 1 && row + 1 < rows) {
      const next = this.into(reader, row + 1);
      // Its failure surfaces when that row is asked for; a read ahead never asked for fails silently.
      next.catch(() => undefined);
      this.ahead = { row: row + 1, data: next };
    }
    this.last = row;
    return data;
  }

  /** Row `row`, read into the buffer the row before last used. */
  private async into(reader: NpzReader, row: number): Promise<ArrayLike<number>> {
    const k = (this.turn ^= 1);
    const { data } = await reader.row(this.name, row, this.buffers[k]);
    this.buffers[k] = data.buffer;
    return data;
  }
}

/** An inset's image for an analysed row, and its conversions to the canvases' formats (made when first drawn, buffers reused). */
interface Inset {
  row: number;
  img: ShadedImage;
  rgb?: { row: number; img: RgbCanvas };
  yuv?: { row: number; img: YuvCanvas };
}

/** An inset in the canvas's format: converted once per analysed row, not once per frame. */
function inFormatOf(c: Canvas, ins: Inset): Canvas {
  if (c.format === "yuv420p") {
    if (ins.yuv?.row !== ins.row || ins.yuv.img.matrix !== c.matrix) ins.yuv = { row: ins.row, img: shadedToYuv(ins.img, c.matrix, ins.yuv?.img) };
    return ins.yuv.img;
  }
  if (ins.rgb?.row !== ins.row) ins.rgb = { row: ins.row, img: shadedToRgb(ins.img, ins.rgb?.img) };
  return ins.rgb.img;
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
  /** Each inset's image for the analysed row it shows, and that image in the canvases' formats; buffers reused from row to row. */
  private readonly insets: Partial<Record<"depth" | "flow", Inset>> = {};
  /** Each map's reads: the row drawn last and the next row, read ahead while this frame is drawn. */
  private readonly maps = { depth: new MapRows("depth"), flow: new MapRows("flow") };
  private readonly samples: Float32Array;
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
    this.samples = new Float32Array(this.insetWidth * this.insetHeight);
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
        this.inset(c, inFormatOf(c, img), insetX, insetY, "depth");
        insetY = (insetY + this.insetHeight + m + 1) & ~1;
      }
    }
    if (layers.flow && run.flow) {
      const img = await this.flowInset(t);
      if (img) this.inset(c, inFormatOf(c, img), insetX, insetY, "flow");
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

  private inset(c: Canvas, img: Canvas, x: number, y: number, label: string): void {
    strokeRect(c, x - 1, y - 1, x + img.width + 1, y + img.height + 1, 1, WHITE);
    blit(c, img, x, y);
    const f = this.font;
    fillRect(c, x, y, f.width(label) + 4, f.lineHeight, [0, 0, 0], 0.6);
    f.draw(c, label, x + 2, y, [255, 255, 255]);
  }

  private async depthInset(t: number): Promise<Inset | undefined> {
    const d = this.run.depth!;
    const row = rowAtOrBefore(d.timestamp, t);
    if (row < 0) return undefined;
    const last = this.insets.depth;
    if (last?.row === row) return last;
    const map = await this.maps.depth.read(d.reader, row, d.timestamp.length);
    return (this.insets.depth = { ...last, row, img: depthImage(map, d.size, this.insetWidth, this.insetHeight, last?.img, this.samples) });
  }

  private async flowInset(t: number): Promise<Inset | undefined> {
    const fl = this.run.flow!;
    // The motion that led to the frame shown: the row ending at the latest analysed frame at or before t.
    const row = rowAtOrBefore(fl.nextTimestamp!, t);
    if (row < 0) return undefined;
    const last = this.insets.flow;
    if (last?.row === row) return last;
    const f = await this.maps.flow.read(fl.reader, row, fl.nextTimestamp!.length);
    return (this.insets.flow = { ...last, row, img: flowImage(f, fl.size, this.insetWidth, this.insetHeight, last?.img) });
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
