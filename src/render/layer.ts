import type { YuvMatrix } from "../video/color.js";
import type { Annotator, DrawnBox } from "./annotate.js";
import { chroma, type YuvCanvas } from "./yuv.js";

/**
 * The annotations alone, as a yuva420p picture (Y, U, V, then A at full size) for ffmpeg's overlay filter
 * (straight alpha: out = main + (layer - main) * A / 255, chroma with the mean A of its 2x2 block).
 *
 * The annotator's drawing code is reused as it is: it draws the same things twice, on a black and on a
 * white background (Y 0 and 255, U and V 128). Every primitive blends linearly (dst + (colour - dst) * a),
 * so each pixel's coverage is A = 255 - (Y_white - Y_black) and the black drawing holds the colour times
 * A; dividing by A gives the straight colour. Opaque pixels (box edges, insets) come out exactly as they
 * were drawn; pixels nothing covers have A = 0 and leave the video's pixel as it was.
 */
export class AnnotationLayer {
  private readonly black: YuvCanvas;
  private readonly white: YuvCanvas;
  /** The layer in yuva420p (frameByteSize("yuva420p")): what ffmpeg reads. */
  readonly data: Uint8Array;
  /** The two drawings' Y planes four pixels at a time, and which rows hold a covered pixel (compose). */
  private readonly b32: Int32Array;
  private readonly w32: Int32Array;
  private readonly rows: Uint8Array;

  constructor(
    readonly width: number,
    readonly height: number,
    matrix: YuvMatrix,
  ) {
    const { cw, ch } = chroma(this);
    const yuv = width * height + 2 * cw * ch;
    this.black = { format: "yuv420p", width, height, data: new Uint8Array(yuv), matrix };
    this.white = { format: "yuv420p", width, height, data: new Uint8Array(yuv), matrix };
    this.data = new Uint8Array(yuv + width * height);
    const words = (width * height) >> 2;
    // Int32, not Uint32: words stay small integers to V8 (white's -1 would be a heap number as Uint32).
    this.b32 = new Int32Array(this.black.data.buffer, 0, words);
    this.w32 = new Int32Array(this.white.data.buffer, 0, words);
    this.rows = new Uint8Array(height);
  }

  /** Draws what the annotator shows at time `t` into `out` (a buffer of this layer's size, default `data`). */
  async draw(annotator: Annotator, t: number, out: Uint8Array = this.data): Promise<DrawnBox[]> {
    const n = this.width * this.height;
    this.black.data.fill(0, 0, n).fill(128, n);
    this.white.data.fill(255, 0, n).fill(128, n);
    const drawn = await annotator.draw(this.black, t);
    await annotator.draw(this.white, t);
    this.compose(out);
    return drawn;
  }

  private compose(out: Uint8Array): void {
    const { width: w, height: h } = this;
    const n = w * h;
    const b = this.black.data;
    const wh = this.white.data;
    const { cw, ch, u, v } = chroma(this);
    const a0 = u + 2 * cw * ch; // where A starts in `out`
    // Most of a layer is uncovered (black 0 and white 255) and much of the rest opaque (black = white):
    // both found four pixels at a time, the uncovered filled by runs natively. Only the pixels of other
    // words are worked out one by one. Rows holding anything covered are marked for the chroma pass.
    const { b32, w32, rows } = this;
    const o32 = out.byteOffset % 4 === 0 ? new Int32Array(out.buffer, out.byteOffset, b32.length) : undefined;
    rows.fill(0);
    const pixel = (i: number): void => {
      const a = 255 - (wh[i]! - b[i]!);
      if (a <= 0) {
        out[i] = 16;
        out[a0 + i] = 0;
      } else if (a >= 255) {
        out[i] = b[i]!;
        out[a0 + i] = 255;
      } else {
        const y = (b[i]! * 255) / a + 0.5;
        out[i] = y > 255 ? 255 : y;
        out[a0 + i] = a;
      }
    };
    let clear = 0; // the first pixel of the uncovered run being skipped
    for (let k = 0; k < b32.length; k++) {
      const bk = b32[k]!;
      const wk = w32[k]!;
      if (bk === 0 && wk === -1) continue;
      const i = 4 * k;
      if (i > clear) {
        out.fill(16, clear, i);
        out.fill(0, a0 + clear, a0 + i);
      }
      if (bk === wk && o32) {
        o32[k] = bk;
        out[a0 + i] = out[a0 + i + 1] = out[a0 + i + 2] = out[a0 + i + 3] = 255;
      } else {
        pixel(i);
        pixel(i + 1);
        pixel(i + 2);
        pixel(i + 3);
      }
      rows[(i / w) | 0] = 1;
      rows[((i + 3) / w) | 0] = 1;
      clear = i + 4;
    }
    const tail = 4 * b32.length;
    if (tail > clear) {
      out.fill(16, clear, tail);
      out.fill(0, a0 + clear, a0 + tail);
    }
    for (let i = tail; i < n; i++) {
      pixel(i);
      rows[(i / w) | 0] = 1;
    }
    // Chroma: the black drawing's U and V are 128 + (colour - 128) * coverage, the coverage being what
    // the overlay filter will use there (its block's mean A), so the straight colour is found with it.
    // A block whose two rows hold no covered pixel has A = 0: neutral.
    out.fill(128, u, a0);
    for (let by = 0; by < ch; by++) {
      const y0 = 2 * by;
      const y1 = Math.min(y0 + 1, h - 1);
      if (rows[y0] === 0 && rows[y1] === 0) continue;
      for (let bx = 0; bx < cw; bx++) {
        const x0 = 2 * bx;
        const x1 = Math.min(x0 + 1, w - 1);
        const a = (out[a0 + y0 * w + x0]! + out[a0 + y0 * w + x1]! + out[a0 + y1 * w + x0]! + out[a0 + y1 * w + x1]!) >> 2;
        if (a === 0) continue;
        const k = by * cw + bx;
        const s = 255 / a;
        out[u + k] = Math.max(0, Math.min(255, 128 + (b[u + k]! - 128) * s + 0.5));
        out[v + k] = Math.max(0, Math.min(255, 128 + (b[v + k]! - 128) * s + 0.5));
      }
    }
  }
}
