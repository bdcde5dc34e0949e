import { depthLut, hsvToRgb, textColorOn, trackColor, type Rgb } from "./colors.js";
import { GlyphFont } from "./font.js";
import { blit, colorMap, fillRect, line, strokeRect, type Canvas } from "./raster.js";
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
 * its own range so that near is bright.
 */
export function depthImage(map: ArrayLike<number>, size: number, w: number, h: number, lut: Uint8Array): Canvas {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < map.length; i++) {
    const v = map[i]!;
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  const span = hi > lo ? hi - lo : 1;
  return colorMap(map, size, size, w, h, (v) => Math.max(0, Math.min(255, Math.round(((v - lo) / span) * 255))), lut);
}

/** Draws a run's results onto frames of its video (rgb24, the video's display size). */
export class Annotator {
  private readonly lut = depthLut();
  private depthCache: { row: number; img: Canvas } | undefined;
  private flowCache: { row: number; img: Canvas } | undefined;
  readonly thickness: number;
  readonly insetWidth: number;
  readonly insetHeight: number;

  private constructor(
    private readonly run: RunData,
    readonly layers: Layers,
    readonly width: number,
    readonly height: number,
    readonly font: GlyphFont,
  ) {
    this.thickness = lineThickness(width, height);
    this.insetWidth = Math.max(32, Math.round(width / 4));
    this.insetHeight = Math.max(18, Math.round((this.insetWidth * height) / width));
  }

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
    let insetY = m;
    if (layers.depth && run.depth) {
      const img = await this.depthInset(t);
      if (img) {
        this.inset(c, img, this.width - this.insetWidth - m, insetY, "depth");
        insetY += this.insetHeight + m;
      }
    }
    if (layers.flow && run.flow) {
      const img = await this.flowInset(t);
      if (img) this.inset(c, img, this.width - this.insetWidth - m, insetY, "flow");
    }
    const drawn: DrawnBox[] = [];
    const det = run.detections;
    if (det && (layers.boxes || layers.trails)) {
      const p = rowAtOrBefore(det.frames.timestamp, t);
      const boxes = p >= 0 ? (det.byFrame.get(det.frames.frameIndex[p]!) ?? []) : [];
      if (layers.trails && p >= 0) this.trails(c, p, boxes);
      if (layers.boxes) {
        for (const b of boxes) drawn.push(this.box(c, b, det.classNames));
      }
    }
    if (layers.caption) this.caption(c, t);
    return drawn;
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
        const pt: [number, number] = [(o.x1 + o.x2) / 2, o.y2];
        line(c, prev[0], prev[1], pt[0], pt[1], Math.max(2, this.thickness - 1), color);
        prev = pt;
      }
    }
  }

  private inset(c: Canvas, img: Canvas, x: number, y: number, label: string): void {
    fillRect(c, x - 1, y - 1, img.width + 2, img.height + 2, [255, 255, 255]);
    blit(c, img, x, y);
    const f = this.font;
    fillRect(c, x, y, f.width(label) + 4, f.lineHeight, [0, 0, 0], 0.6);
    f.draw(c, label, x + 2, y, [255, 255, 255]);
  }

  private async depthInset(t: number): Promise<Canvas | undefined> {
    const d = this.run.depth!;
    const row = rowAtOrBefore(d.timestamp, t);
    if (row < 0) return undefined;
    if (this.depthCache?.row === row) return this.depthCache.img;
    const img = depthImage((await d.reader.row("depth", row)).data, d.size, this.insetWidth, this.insetHeight, this.lut);
    this.depthCache = { row, img };
    return img;
  }

  private async flowInset(t: number): Promise<Canvas | undefined> {
    const fl = this.run.flow!;
    // The motion that led to the frame shown: the row ending at the latest analysed frame at or before t.
    const row = rowAtOrBefore(fl.nextTimestamp!, t);
    if (row < 0) return undefined;
    if (this.flowCache?.row === row) return this.flowCache.img;
    const s = fl.size;
    const f = (await fl.reader.row("flow", row)).data;
    const w = this.insetWidth;
    const h = this.insetHeight;
    const out = new Uint8Array(w * h * 3);
    // The inset's samples, then the longest of them sets full brightness (at least a pixel: a still scene
    // stays dark instead of amplifying noise).
    const n = s * s;
    const dxs = new Float32Array(w * h);
    const dys = new Float32Array(w * h);
    let max2 = 1;
    for (let y = 0; y < h; y++) {
      const sy = Math.min(s - 1, Math.floor(((y + 0.5) * s) / h));
      for (let x = 0; x < w; x++) {
        const sx = Math.min(s - 1, Math.floor(((x + 0.5) * s) / w));
        const dx = f[sy * s + sx]!;
        const dy = f[n + sy * s + sx]!;
        dxs[y * w + x] = dx;
        dys[y * w + x] = dy;
        const m2 = dx * dx + dy * dy;
        if (m2 > max2) max2 = m2;
      }
    }
    const max = Math.sqrt(max2);
    for (let i = 0; i < w * h; i++) {
      const dx = dxs[i]!;
      const dy = dys[i]!;
      const ang = ((Math.atan2(dy, dx) * 180) / Math.PI + 360) % 360;
      hsvToRgb(ang, 1, Math.min(1, Math.sqrt(dx * dx + dy * dy) / max), out, i * 3);
    }
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
