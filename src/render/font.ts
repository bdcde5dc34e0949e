import { VideoAnalysisError } from "../errors.js";
import type { Rgb } from "./colors.js";
import { blendMask, type Canvas } from "./raster.js";

/**
 * Text for the annotations: a monospace glyph atlas rendered once by sharp (librsvg + fontconfig, DejaVu
 * Sans Mono), then drawn per frame by blending the glyphs' coverage masks in JS (on rgb24 or yuv420p,
 * raster.ts). `bench render` on a 768x432 frame with six labelled boxes: an SVG overlay composited by sharp
 * costs 9-31 ms a frame, the atlas 9-60 ms once and 0.1-1 ms a frame (README, "Seeing a run").
 */
export class GlyphFont {
  private constructor(
    /** Pixel height of a line. */
    readonly lineHeight: number,
    /** Advance of every glyph (monospace). */
    readonly advance: number,
    private readonly masks: Map<string, Uint8Array>,
  ) {}

  /** Renders the printable ASCII glyphs, and any other characters of `extra`, at `sizePx`. */
  static async create(sizePx: number, extra = ""): Promise<GlyphFont> {
    const chars = new Set<string>();
    for (let c = 32; c < 127; c++) chars.add(String.fromCharCode(c));
    for (const ch of extra) if (ch >= " ") chars.add(ch);
    const list = [...chars];
    const advance = Math.ceil(sizePx * 0.61);
    const lineHeight = Math.ceil(sizePx * 1.25);
    const cell = advance + 2;
    const esc = (s: string) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
    const baseline = Math.round(sizePx * 0.95);
    const texts = list
      .map((ch, i) => `<text x="${i * cell}" y="${baseline}" font-family="DejaVu Sans Mono, monospace" font-size="${sizePx}px" fill="#fff" xml:space="preserve">${esc(ch)}</text>`)
      .join("");
    const svg = `<svg xmlns="http://www.w3.org/2000/svg" width="${cell * list.length}" height="${lineHeight}">${texts}</svg>`;
    const { default: sharp } = await import("sharp");
    const { data, info } = await sharp(Buffer.from(svg)).ensureAlpha().extractChannel(3).raw().toBuffer({ resolveWithObject: true });
    if (!data.some((v) => v > 0)) {
      throw new VideoAnalysisError(
        "FAILED_PRECONDITION",
        "no font could be rendered for the annotations' text: install a font (Debian: apt-get install fonts-dejavu-core)",
      );
    }
    const masks = new Map<string, Uint8Array>();
    list.forEach((ch, i) => {
      const m = new Uint8Array(advance * lineHeight);
      for (let y = 0; y < lineHeight; y++) for (let x = 0; x < advance; x++) m[y * advance + x] = data[y * info.width + i * cell + x]!;
      masks.set(ch, m);
    });
    return new GlyphFont(lineHeight, advance, masks);
  }

  /** Width in pixels of `text`. */
  width(text: string): number {
    return [...text].length * this.advance;
  }

  /** Draws `text` with its top-left corner at (x, y); characters without a glyph show as "?". */
  draw(c: Canvas, text: string, x: number, y: number, color: Rgb): void {
    let cx = Math.round(x);
    const cy = Math.round(y);
    for (const ch of text) {
      const m = this.masks.get(ch) ?? this.masks.get("?")!;
      blendMask(c, m, this.advance, this.lineHeight, cx, cy, color);
      cx += this.advance;
      if (cx >= c.width) break;
    }
  }
}
