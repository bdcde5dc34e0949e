// The annotation layer (what render sends ffmpeg): its yuva420p bytes checked against the formula it
// stands for, pixel by pixel, at sizes whose rows do not split into whole words of four pixels, and
// laid over a picture the way ffmpeg's overlay does, against the same things drawn straight on it.
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Annotator } from "../../src/render/annotate.js";
import { AnnotationLayer } from "../../src/render/layer.js";
import { layerStartExpr } from "../../src/render/overlay.js";
import { blendMaskYuv, chroma, fillRectYuv, type YuvCanvas } from "../../src/render/yuv.js";

/** Opaque and half-covered shapes, some touching the edges, like a frame's boxes, labels and an inset. */
function drawing(c: YuvCanvas): void {
  fillRectYuv(c, 3, 2, 9, 3, [255, 0, 0], 1);
  fillRectYuv(c, 0, 5, c.width, 6, [0, 200, 40], 0.5);
  fillRectYuv(c, c.width - 4, c.height - 5, c.width, c.height, [20, 40, 250], 1);
  const mask = new Uint8Array(5 * 3).map((_, i) => (i * 53) % 256);
  blendMaskYuv(c, mask, 5, 3, 1, c.height - 3, [250, 250, 250]);
}

const annotator = { draw: async (c: YuvCanvas) => (drawing(c), []) } as unknown as Annotator;

/** The layer's definition, one pixel and one chroma block at a time. */
function reference(black: Uint8Array, white: Uint8Array, w: number, h: number): Uint8Array {
  const n = w * h;
  const { cw, ch, u, v } = chroma({ width: w, height: h });
  const a0 = u + 2 * cw * ch;
  const out = new Uint8Array(a0 + n);
  for (let i = 0; i < n; i++) {
    const a = 255 - (white[i]! - black[i]!);
    out[a0 + i] = Math.max(0, Math.min(255, a));
    out[i] = a <= 0 ? 16 : a >= 255 ? black[i]! : Math.min(255, Math.floor((black[i]! * 255) / a + 0.5));
  }
  for (let by = 0; by < ch; by++)
    for (let bx = 0; bx < cw; bx++) {
      const px = [[2 * by, 2 * bx], [2 * by, Math.min(2 * bx + 1, w - 1)], [Math.min(2 * by + 1, h - 1), 2 * bx], [Math.min(2 * by + 1, h - 1), Math.min(2 * bx + 1, w - 1)]];
      const a = px.reduce((s, [y, x]) => s + out[a0 + y! * w + x!]!, 0) >> 2;
      const k = by * cw + bx;
      for (const p of [u, v]) out[p + k] = a === 0 ? 128 : Math.max(0, Math.min(255, Math.floor(128 + (black[p + k]! - 128) * (255 / a) + 0.5)));
    }
  return out;
}

function plain(w: number, h: number, y: number, uv: number): YuvCanvas {
  const { cw, ch } = chroma({ width: w, height: h });
  const data = new Uint8Array(w * h + 2 * cw * ch).fill(y, 0, w * h).fill(uv, w * h);
  return { format: "yuv420p", width: w, height: h, data, matrix: "bt709" };
}

for (const [w, h] of [[768, 432], [37, 23], [6, 7], [3, 1]] as const) {
  test(`layer ${w}x${h}: its bytes are the formula's; laid over a picture it gives the drawing within a level where partly covered, exactly where opaque or uncovered`, async () => {
    const layer = new AnnotationLayer(w, h, "bt709");
    await layer.draw(annotator, 0);
    const black = plain(w, h, 0, 128);
    const white = plain(w, h, 255, 128);
    drawing(black);
    drawing(white);
    assert.deepEqual(Buffer.from(layer.data), Buffer.from(reference(black.data, white.data, w, h)));
    // Drawn a second time into the same buffer (render reuses two): the same bytes.
    const again = new Uint8Array(layer.data.length).fill(77);
    await layer.draw(annotator, 0, again);
    assert.deepEqual(Buffer.from(again), Buffer.from(layer.data));
    // ffmpeg's overlay (straight alpha): main + (layer - main) * A / 255, chroma with its block's mean A.
    const main = plain(w, h, 100, 90);
    const direct = plain(w, h, 100, 90);
    drawing(direct);
    const n = w * h;
    const { cw, ch, u } = chroma({ width: w, height: h });
    const a0 = u + 2 * cw * ch;
    let worst = 0;
    for (let i = 0; i < n; i++) {
      const a = layer.data[a0 + i]!;
      const got = main.data[i]! + ((layer.data[i]! - main.data[i]!) * a) / 255;
      if (a === 0 || a === 255) assert.equal(Math.round(got), direct.data[i], `Y at pixel ${i}, A ${a}`);
      worst = Math.max(worst, Math.abs(got - direct.data[i]!));
    }
    assert.ok(worst <= 1, `Y off by ${worst} where partly covered`);
  });
}

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
