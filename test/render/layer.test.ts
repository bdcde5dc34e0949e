// The annotation layer (what render sends ffmpeg): its coverage checked against what the shapes cover,
// then laid over pictures by ffmpeg's own overlay filter and compared with the same shapes drawn straight
// on them, at sizes whose rows do not split into whole words of four pixels; a reused buffer is cleared.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { Annotator } from "../../src/render/annotate.js";
import { AnnotationLayer } from "../../src/render/layer.js";
import { layerStartExpr } from "../../src/render/overlay.js";
import { ffmpegPath } from "../../src/video/ffmpeg-tools.js";
import { fillRect } from "../../src/render/raster.js";
import { blendMaskYuv, chroma, type YuvCanvas } from "../../src/render/yuv.js";

/** Opaque and half-covered shapes, some touching the edges, like a frame's boxes, labels and an inset. */
function drawing(c: YuvCanvas): void {
  fillRect(c, 3, 2, 6, 1, [255, 0, 0]);
  fillRect(c, 0, 5, c.width, 1, [0, 200, 40], 0.5);
  fillRect(c, c.width - 4, c.height - 5, 4, 5, [20, 40, 250]);
  // At the right and bottom edges, where ffmpeg's overlay averages A over part of the chroma block only.
  fillRect(c, c.width - 3, 0, 3, c.height, [250, 200, 0], 0.7);
  fillRect(c, c.width - 2, 3, 2, 3, [0, 0, 250], 0.4);
  fillRect(c, 0, c.height - 2, c.width, 2, [0, 250, 250], 0.8);
  const mask = new Uint8Array(5 * 3).map((_, i) => (i * 53) % 256);
  blendMaskYuv(c, mask, 5, 3, 1, c.height - 3, [250, 250, 250]);
}

const annotator = { draw: async (c: YuvCanvas) => (drawing(c), []) } as unknown as Annotator;
/** Another picture: a box elsewhere, so a buffer drawn with `drawing` before must be cleared for it. */
const other = { draw: async (c: YuvCanvas) => (fillRect(c, 1, 1, 1, 3, [9, 9, 200], 0.7), []) } as unknown as Annotator;

function plain(w: number, h: number, y: number, uv: number): YuvCanvas {
  const { cw, ch } = chroma({ width: w, height: h });
  const data = new Uint8Array(w * h + 2 * cw * ch).fill(y, 0, w * h).fill(uv, w * h);
  return { format: "yuv420p", width: w, height: h, data, matrix: "bt709" };
}

/** The layer laid over `main` by ffmpeg's own overlay filter, as render does (format=yuv420); yuv420p bytes back. */
function overlay(main: YuvCanvas, layer: Uint8Array): Buffer {
  const dir = mkdtempSync(join(tmpdir(), "va-layer-"));
  try {
    writeFileSync(join(dir, "main.yuv"), main.data);
    writeFileSync(join(dir, "layer.yuv"), layer);
    const size = `${main.width}x${main.height}`;
    execFileSync(ffmpegPath(), [
      "-v", "error", "-y", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-s", size, "-i", join(dir, "main.yuv"),
      "-f", "rawvideo", "-pix_fmt", "yuva420p", "-s", size, "-i", join(dir, "layer.yuv"),
      "-filter_complex", "[0][1]overlay=format=yuv420", "-f", "rawvideo", "-pix_fmt", "yuv420p", join(dir, "out.yuv"),
    ]);
    return readFileSync(join(dir, "out.yuv"));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

for (const [w, h] of [[768, 432], [37, 23], [6, 7], [3, 1]] as const) {
  test(`layer ${w}x${h}: laid over a picture by ffmpeg's overlay, it gives the drawing: exactly where opaque or uncovered, within a level where partly covered; a reused buffer is cleared`, async () => {
    const layer = new AnnotationLayer(w, h, "bt709");
    await layer.draw(annotator, 0);
    // What the shapes cover, from drawing them on black and on white: uncovered pixels stay 0 and 255.
    const black = plain(w, h, 0, 128);
    const white = plain(w, h, 255, 128);
    drawing(black);
    drawing(white);
    const n = w * h;
    const { cw, ch, u } = chroma({ width: w, height: h });
    const a0 = u + 2 * cw * ch;
    for (let i = 0; i < n; i++) {
      const cover = 255 - (white.data[i]! - black.data[i]!);
      if (cover === 0) assert.equal(layer.data[a0 + i], 0, `A at uncovered pixel ${i}`);
      if (cover === 255) assert.equal(layer.data[a0 + i], 255, `A at opaque pixel ${i}`);
      // Both round at every shape, in different places: within 2 where translucent shapes overlap.
      assert.ok(Math.abs(layer.data[a0 + i]! - cover) <= 2, `A at pixel ${i}: ${layer.data[a0 + i]} for coverage ${cover}`);
    }
    for (const [main, direct] of [[plain(w, h, 100, 90), plain(w, h, 100, 90)], [plain(w, h, 30, 200), plain(w, h, 30, 200)]] as const) {
      drawing(direct);
      const got = overlay(main, layer.data);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const a = layer.data[a0 + i]!;
        if (a === 0 || a === 255) assert.equal(got[i], direct.data[i], `Y at pixel ${i}, A ${a}`);
        worst = Math.max(worst, Math.abs(got[i]! - direct.data[i]!));
      }
      assert.ok(worst <= 1, `Y off by ${worst} where partly covered`);
      // Chroma: one straight colour per 2x2 block cannot always give the drawing: translucent shapes of
      // different coverage inside one block (a glyph's edge over the caption band), and edge blocks where
      // ffmpeg's A is not the block's mean. Measured: 5 levels at most, 8 on the 6x7 picture, all of
      // whose blocks are such (it was 10 and 8 when the layer's chroma took the block's mean everywhere).
      let worstUv = 0;
      for (let p = u; p < a0; p++) worstUv = Math.max(worstUv, Math.abs(got[p]! - direct.data[p]!));
      assert.ok(worstUv <= (w < 16 ? 8 : 5), `U/V off by ${worstUv}`);
    }
    // Drawn again into the same buffer (render reuses two), after another picture in it: the same bytes.
    const first = Buffer.from(layer.data);
    const again = layer.buffer();
    await layer.draw(other, 0, again);
    await layer.draw(annotator, 0, again);
    assert.deepEqual(Buffer.from(again), first);
    await layer.draw(other, 0, again);
    const fresh = layer.buffer();
    await layer.draw(other, 0, fresh);
    assert.deepEqual(Buffer.from(again), Buffer.from(fresh));
  });
}

test("a layer refuses a buffer it did not make", async () => {
  const layer = new AnnotationLayer(6, 4, "bt709");
  await assert.rejects(layer.draw(annotator, 0, new Uint8Array(layer.data.length)), RangeError);
});

/** The expression ffmpeg evaluates for layer n (if, lt and arithmetic only). */
function evalStart(expr: string, n: number): number {
  const js = expr.replace(/if\(/g, "iff(").replace(/lt\(N,(\d+)\)/g, "(N<$1)");
  return new Function("N", "iff", `return ${js}`)(n, (c: boolean, a: number, b: number) => (c ? a : b)) as number;
}

test("layerStartExpr: each layer's first frame, for whole-fraction, uneven and single-layer plans; none past 64 runs", () => {
  const plans = [
    [0, 5, 10, 15, 20],
    [0, 1, 2, 3],
    [0],
    [0, 1, 2, 8, 14, 20, 27, 33, 40, 41],
    Array.from({ length: 300 }, (_, i) => Math.floor(i * 5.994)),
  ];
  for (const starts of plans) {
    const expr = layerStartExpr(starts);
    assert.ok(expr !== undefined, `a plan of ${starts.length} layers`);
    assert.deepEqual(starts.map((_, n) => evalStart(expr, n)), starts, expr);
  }
  const irregular = Array.from({ length: 200 }, (_, i) => i * 3 + (i % 3 === 0 ? 1 : 0) + (i % 7 === 0 ? 1 : 0));
  assert.equal(layerStartExpr(irregular), undefined);
});
