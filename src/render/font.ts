import { createHash, randomBytes } from "node:crypto";
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
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

  /**
   * Renders the printable ASCII glyphs, and any other characters of `extra`, at `sizePx`; or reads them
   * from the glyph cache (glyphCacheDir) where an earlier process rendered the same ones.
   */
  static async create(sizePx: number, extra = ""): Promise<GlyphFont> {
    const chars = new Set<string>();
    for (let c = 32; c < 127; c++) chars.add(String.fromCharCode(c));
    for (const ch of extra) if (ch >= " ") chars.add(ch);
    const list = [...chars];
    const advance = Math.ceil(sizePx * 0.61);
    const lineHeight = Math.ceil(sizePx * 1.25);
    const file = cacheFile(sizePx, list);
    const cached = file && readCache(file, list, advance * lineHeight);
    if (cached) return new GlyphFont(lineHeight, advance, cached);
    const font = await GlyphFont.render(sizePx, list, advance, lineHeight);
    if (file) writeCache(file, list, font.masks);
    return font;
  }

  private static async render(sizePx: number, list: string[], advance: number, lineHeight: number): Promise<GlyphFont> {
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

/** The glyph cache's format: bump when the masks or the file change. */
const CACHE_VERSION = 1;

/**
 * Where glyph atlases are kept between processes: $VIDEO_SDK_CACHE_DIR/glyphs, else
 * $XDG_CACHE_HOME/video-analysis-sdk/glyphs, else ~/.cache/video-analysis-sdk/glyphs;
 * VIDEO_SDK_CACHE_DIR=off: no cache. Loading sharp and rendering an atlas costs every `render`,
 * `report` and `detect --save` about 0.12 CPU s (bench render); a cached atlas is one small read.
 */
export function glyphCacheDir(): string | undefined {
  const own = process.env.VIDEO_SDK_CACHE_DIR;
  if (own === "off") return undefined;
  if (own) return join(own, "glyphs");
  try {
    const base = process.env.XDG_CACHE_HOME || join(homedir(), ".cache");
    return join(base, "video-analysis-sdk", "glyphs");
  } catch {
    return undefined; // no home directory: no cache
  }
}

/** Where fontconfig keeps its configuration and caches: their times change when fonts come or go. */
const FONT_STATE = ["/etc/fonts", "/etc/fonts/conf.d", "/var/cache/fontconfig", "/usr/lib/fontconfig/cache", "/usr/local/share/fonts", "/usr/share/fonts"];

/**
 * The cache file of an atlas: named by what shapes its masks (size, characters, the versions of sharp and
 * of its libvips, and the times of fontconfig's configuration and caches, system and user, which change
 * when fonts are installed or removed). Anything else that changes the glyphs: VIDEO_SDK_CACHE_DIR=off,
 * or delete the folder.
 */
function cacheFile(sizePx: number, list: readonly string[]): string | undefined {
  const dir = glyphCacheDir();
  if (!dir) return undefined;
  let sharp: unknown;
  try {
    const req = createRequire(import.meta.url);
    const pkg = (p: string) => (JSON.parse(readFileSync(p, "utf8")) as { version?: string; optionalDependencies?: Record<string, string> });
    const own = pkg(join(dirname(req.resolve("sharp")), "..", "package.json"));
    // sharp's libvips comes in an @img/sharp-libvips-<platform> package: its version pinned by sharp's.
    sharp = [own.version, Object.entries(own.optionalDependencies ?? {}).filter(([n]) => n.includes("libvips"))];
  } catch {
    return undefined;
  }
  const home = (() => {
    try {
      return homedir();
    } catch {
      return "";
    }
  })();
  const dirs = [...FONT_STATE, process.env.FONTCONFIG_FILE ?? "", process.env.FONTCONFIG_PATH ?? "", home && join(home, ".cache", "fontconfig"), home && join(home, ".fonts"), home && join(home, ".local", "share", "fonts")];
  const fonts = dirs.filter(Boolean).map((d) => {
    try {
      return statSync(d).mtimeMs;
    } catch {
      return 0;
    }
  });
  const key = createHash("sha256").update(JSON.stringify({ v: CACHE_VERSION, sizePx, chars: list.join(""), sharp, fonts })).digest("hex").slice(0, 32);
  return join(dir, `${key}.bin`);
}

/** The masks of a cache file holding `list`'s glyphs of `bytes` each, or undefined (absent, or not that). */
function readCache(file: string, list: readonly string[], bytes: number): Map<string, Uint8Array> | undefined {
  let b: Buffer;
  try {
    b = readFileSync(file);
  } catch {
    return undefined;
  }
  if (b.length !== 8 + list.length * bytes || b.readUInt32LE(0) !== CACHE_VERSION || b.readUInt32LE(4) !== list.length) return undefined;
  const masks = new Map<string, Uint8Array>();
  list.forEach((ch, i) => masks.set(ch, new Uint8Array(b.subarray(8 + i * bytes, 8 + (i + 1) * bytes))));
  return masks;
}

/** Writes the cache file (atomically); a cache that cannot be written is no error: the next process renders again. */
function writeCache(file: string, list: readonly string[], masks: Map<string, Uint8Array>): void {
  const head = Buffer.alloc(8);
  head.writeUInt32LE(CACHE_VERSION, 0);
  head.writeUInt32LE(list.length, 4);
  const tmp = `${file}.${process.pid}-${randomBytes(4).toString("hex")}`;
  try {
    mkdirSync(dirname(file), { recursive: true });
    writeFileSync(tmp, Buffer.concat([head, ...list.map((ch) => masks.get(ch)!)]));
    renameSync(tmp, file);
  } catch {
    // Read-only home, full disk: rendered each time instead.
    rmSync(tmp, { force: true });
  }
}
