import type { YuvMatrix } from "../video/color.js";
import type { Annotator, DrawnBox } from "./annotate.js";
import { chroma, emptyCoverage, type Coverage, type YuvCanvas } from "./yuv.js";

/**
 * The annotations alone, as a yuva420p picture (Y, U, V, then A at full size) for ffmpeg's overlay filter
 * (straight alpha: out = main + (layer - main) * A / 255, chroma with the mean A of its 2x2 block).
 *
 * The annotator draws once, with the yuv420p primitives, on a layer that starts black (Y 0, U and V 128)
 * and transparent. Every primitive blends linearly (dst + (colour - dst) * a) and also moves the pixel's
 * A toward 255 by a (yuv.ts, Coverage), so the drawing holds each colour times its coverage; dividing by A
 * gives the straight colour. Opaque pixels (box edges, insets) come out exactly as they were drawn; pixels
 * nothing covers have A = 0 and leave the video's pixel as it was. Only the rows' drawn spans are
 * finished and, before the next drawing into the same buffer, cleared.
 */
export class AnnotationLayer {
  /** The layer in yuva420p (frameByteSize("yuva420p")): what ffmpeg reads. */
  readonly data: Uint8Array;
  /** What was drawn into each buffer last (render alternates two). */
  private readonly drawn = new WeakMap<Uint8Array, Coverage>();

  constructor(
    readonly width: number,
    readonly height: number,
    private readonly matrix: YuvMatrix,
  ) {
    this.data = this.buffer();
  }

  /** A layer buffer with nothing on it: transparent. */
  buffer(): Uint8Array {
    const { u, cw, ch } = chroma(this);
    const b = new Uint8Array(u + 2 * cw * ch + this.width * this.height);
    b.fill(128, u, u + 2 * cw * ch);
    this.drawn.set(b, emptyCoverage(this.width, this.height, b.subarray(u + 2 * cw * ch)));
    return b;
  }

  /** Draws what the annotator shows at time `t` into `out` (a buffer from buffer(), default `data`). */
  async draw(annotator: Annotator, t: number, out: Uint8Array = this.data): Promise<DrawnBox[]> {
    const coverage = this.drawn.get(out);
    if (!coverage) throw new RangeError("AnnotationLayer.draw: draw into this layer's data or a buffer() of it");
    this.clear(out, coverage);
    const { width, height, matrix } = this;
    const canvas: YuvCanvas = { format: "yuv420p", width, height, data: out.subarray(0, out.length - width * height), matrix, coverage };
    const drawn = await annotator.draw(canvas, t);
    this.straighten(out, coverage);
    return drawn;
  }

  /** The chroma blocks of row pair `by` that hold a drawn pixel: [first, end), empty when first >= end. */
  private blocks(c: Coverage, by: number): [number, number] {
    const y0 = 2 * by;
    const y1 = Math.min(y0 + 1, this.height - 1);
    return [Math.min(c.from[y0]!, c.from[y1]!) >> 1, (Math.max(c.to[y0]!, c.to[y1]!) + 1) >> 1];
  }

  /** Back to transparent where the last drawing was. */
  private clear(out: Uint8Array, c: Coverage): void {
    const { width: w } = this;
    const { cw, ch, u, v } = chroma(this);
    for (let by = 0; by < ch; by++) {
      const [a, b] = this.blocks(c, by);
      if (a >= b) continue;
      out.fill(128, u + by * cw + a, u + by * cw + b);
      out.fill(128, v + by * cw + a, v + by * cw + b);
    }
    for (let y = 0; y < this.height; y++) {
      if (c.from[y]! >= c.to[y]!) continue;
      out.fill(0, y * w + c.from[y]!, y * w + c.to[y]!);
      c.alpha.fill(0, y * w + c.from[y]!, y * w + c.to[y]!);
      c.from[y] = w;
      c.to[y] = 0;
    }
  }

  /** Colours times coverage -> straight colours, where drawn. */
  private straighten(out: Uint8Array, c: Coverage): void {
    const { width: w, height: h } = this;
    const A = c.alpha;
    const T = straightTables();
    const one = (p: number) => {
      const a = A[p]!;
      if (a !== 0 && a !== 255) out[p] = T.y[(a << 8) | out[p]!]!;
    };
    // Most drawn pixels are opaque or untouched (a box's span holds its inside): skipped four at a time.
    const a32 = A.byteOffset % 4 === 0 ? new Int32Array(A.buffer, A.byteOffset, A.length >> 2) : undefined;
    for (let y = 0; y < h; y++) {
      let p = y * w + c.from[y]!;
      const e = y * w + c.to[y]!;
      if (a32) {
        for (; p < e && p % 4 !== 0; p++) one(p);
        for (; p + 4 <= e; p += 4) {
          const word = a32[p >> 2]!;
          if (word === 0 || word === -1) continue;
          one(p);
          one(p + 1);
          one(p + 2);
          one(p + 3);
        }
      }
      for (; p < e; p++) one(p);
    }
    // Chroma: the drawing's U and V are 128 + (colour - 128) * coverage; the straight colour is found
    // with the A the overlay filter uses there: its block's mean, but in the last chroma column (row) the
    // block's first pixel column (row) only, as ffmpeg 5-7's vf_overlay averages there. (So a shape that
    // covers only the last pixel column or row of an even-sized frame leaves the chroma there unchanged.)
    // A block whose four pixels are all untouched (its chroma still 128) or all opaque is left as it is:
    // both of its pixel pairs read at once where the rows start on even bytes.
    const { cw, ch, u, v } = chroma(this);
    const a16 = A.byteOffset % 2 === 0 && w % 2 === 0 ? new Uint16Array(A.buffer, A.byteOffset, A.length >> 1) : undefined;
    for (let by = 0; by < ch; by++) {
      const [first, end] = this.blocks(c, by);
      const r0 = 2 * by * w;
      const r1 = r0 + w;
      const lastRow = by + 1 === ch;
      for (let bx = first; bx < end; bx++) {
        if (a16 && !lastRow && bx + 1 < cw) {
          const top = a16[(r0 >> 1) + bx]!;
          if (top === a16[(r1 >> 1) + bx]! && (top === 0 || top === 0xffff)) continue;
        }
        const x0 = 2 * bx;
        let a: number;
        if (!lastRow && bx + 1 < cw) a = (A[r0 + x0]! + A[r0 + x0 + 1]! + A[r1 + x0]! + A[r1 + x0 + 1]!) >> 2;
        else {
          const a00 = A[r0 + x0]!;
          const across = bx + 1 < cw ? (a00 + A[r0 + x0 + 1]!) >> 1 : a00;
          const down = lastRow ? a00 : (a00 + A[r1 + x0]!) >> 1;
          a = (across + down) >> 1;
        }
        const k = by * cw + bx;
        if (a === 0) {
          out[u + k] = out[v + k] = 128;
          continue;
        }
        if (a === 255) continue;
        out[u + k] = T.c[(a << 8) | out[u + k]!]!;
        out[v + k] = T.c[(a << 8) | out[v + k]!]!;
      }
    }
  }
}

let tables: { y: Uint8Array; c: Uint8Array } | undefined;

/**
 * straighten's divisions, as tables indexed by (A << 8) | value (64 KiB each, made once): Y * 255 / A,
 * and 128 + (C - 128) * 255 / A for chroma, rounded and clamped to a byte.
 */
function straightTables(): { y: Uint8Array; c: Uint8Array } {
  if (tables) return tables;
  const y = new Uint8Array(1 << 16);
  const c = new Uint8Array(1 << 16);
  for (let a = 1; a < 255; a++)
    for (let x = 0; x < 256; x++) {
      const s = (x * 255) / a + 0.5;
      y[(a << 8) | x] = s > 255 ? 255 : s;
      c[(a << 8) | x] = Math.max(0, Math.min(255, 128 + (x - 128) * (255 / a) + 0.5));
    }
  return (tables = { y, c });
}
