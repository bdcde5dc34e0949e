// The annotation layer (what render sends ffmpeg): its yuva420p bytes checked against the formula it
// stands for, pixel by pixel, at sizes whose rows do not split into whole words of four pixels, and
// laid over a picture the way ffmpeg's overlay does, against the same things drawn straight on it.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Annotator } from "../../src/render/annotate.js";
import { AnnotationLayer } from "../../src/render/layer.js";
import { layerStartExpr } from "../../src/render/overlay.js";
import { fillRect } from "../../src/render/raster.js";
import { blendMaskYuv, chroma, type YuvCanvas } from "../../src/render/yuv.js";

/** Opaque and half-covered shapes, some touching the edges, like a frame's boxes, labels and an inset. */
function drawing(c: YuvCanvas): void {
  fillRect(c, 3, 2, 6, 1, [255, 0, 0]);
  fillRect(c, 0, 5, c.width, 1, [0, 200, 40], 0.5);
  fillRect(c, c.width - 4, c.height - 5, 4, 5, [20, 40, 250]);
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

/** ffmpeg's overlay (straight alpha): main + (layer - main) * A / 255, chroma with its 2x2 block's mean A. */
function overlay(main: YuvCanvas, layer: Uint8Array): Float64Array {
  const { width: w, height: h } = main;
  const { cw, ch, u } = chroma(main);
  const a0 = u + 2 * cw * ch;
  const out = new Float64Array(a0);
  for (let i = 0; i < w * h; i++) out[i] = main.data[i]! + ((layer[i]! - main.data[i]!) * layer[a0 + i]!) / 255;
  for (let by = 0; by < ch; by++)
    for (let bx = 0; bx < cw; bx++) {
      const ys = [2 * by, Math.min(2 * by + 1, h - 1)];
      const xs = [2 * bx, Math.min(2 * bx + 1, w - 1)];
      const a = ys.reduce((s, y) => s + layer[a0 + y * w + xs[0]!]! + layer[a0 + y * w + xs[1]!]!, 0) >> 2;
      for (const p of [u + by * cw + bx, u + cw * ch + by * cw + bx]) out[p] = main.data[p]! + ((layer[p]! - main.data[p]!) * a) / 255;
    }
  return out;
}

for (const [w, h] of [[768, 432], [37, 23], [6, 7], [3, 1]] as const) {
  test(`layer ${w}x${h}: laid over a picture as ffmpeg does, it gives the drawing: exactly where opaque or uncovered, within a level where partly covered; a reused buffer is cleared`, async () => {
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
      assert.ok(Math.abs(layer.data[a0 + i]! - cover) <= 1, `A at pixel ${i}: ${layer.data[a0 + i]} for coverage ${cover}`);
    }
    for (const [main, direct] of [[plain(w, h, 100, 90), plain(w, h, 100, 90)], [plain(w, h, 30, 200), plain(w, h, 30, 200)]] as const) {
      drawing(direct);
      const got = overlay(main, layer.data);
      let worst = 0;
      for (let i = 0; i < n; i++) {
        const a = layer.data[a0 + i]!;
        if (a === 0 || a === 255) assert.equal(Math.round(got[i]!), direct.data[i], `Y at pixel ${i}, A ${a}`);
        worst = Math.max(worst, Math.abs(got[i]! - direct.data[i]!));
      }
      assert.ok(worst <= 1, `Y off by ${worst} where partly covered`);
      let worstUv = 0;
      for (let p = u; p < a0; p++) worstUv = Math.max(worstUv, Math.abs(got[p]! - direct.data[p]!));
      assert.ok(worstUv <= 2, `U/V off by ${worstUv}`);
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
