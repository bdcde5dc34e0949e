import assert from "node:assert/strict";
import { test } from "node:test";
import { daliLetterboxGeometry, letterbox, letterboxGeometry, pyRound, roundHalfAway, unletterboxBoxes } from "../../src/preprocess/letterbox.js";
import { resizeBilinear, type RgbImage } from "../../src/preprocess/resize.js";
import { readImageRgb } from "../../src/preprocess/decode-image.js";
import { isVideoAnalysisError } from "../../src/errors.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";

test("Python rounding: halves to even", () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -0.1, 79.9, 80.1, 139.9].map(pyRound), [0, 2, 2, 0, 0, 80, 80, 140]);
});

test("letterbox geometry follows Ultralytics' rounding", () => {
  // bus.jpg 810x1080 -> 480x640 centred: 80 px left and right.
  assert.deepEqual(letterboxGeometry(810, 1080, 640, 640), {
    sourceWidth: 810, sourceHeight: 1080, width: 640, height: 640, scale: 640 / 1080,
    resizedWidth: 480, resizedHeight: 640, left: 80, right: 80, top: 0, bottom: 0,
  });
  // zidane.jpg 1280x720 -> 640x360: 140 px top and bottom.
  const z = letterboxGeometry(1280, 720, 640, 640);
  assert.deepEqual([z.resizedWidth, z.resizedHeight, z.top, z.bottom, z.left, z.right], [640, 360, 140, 140, 0, 0]);
  // An odd padding splits as round(d - 0.1), round(d + 0.1): 1 px more at the bottom.
  const odd = letterboxGeometry(100, 33, 64, 64);
  assert.deepEqual([odd.resizedWidth, odd.resizedHeight, odd.top, odd.bottom], [64, 21, 21, 22]);
  // Without scale-up a small image keeps its size.
  const small = letterboxGeometry(100, 50, 640, 640, { scaleUp: false });
  assert.deepEqual([small.scale, small.resizedWidth, small.left, small.top], [1, 100, 270, 295]);
  assert.throws(() => letterboxGeometry(0, 10, 640, 640), RangeError);
});

test("letterbox fills the border with 114 and places the image", () => {
  const src: RgbImage = { width: 4, height: 2, channels: 3, data: new Uint8Array(24).fill(7) };
  const { image, info } = letterbox(src, 8);
  assert.deepEqual([image.width, image.height, info.top, info.bottom], [8, 8, 2, 2]);
  for (let y = 0; y < 8; y++) {
    for (let x = 0; x < 8; x++) {
      const v = image.data[(y * 8 + x) * 3]!;
      assert.equal(v, y >= 2 && y < 6 ? 7 : 114, `pixel ${x},${y}`);
    }
  }
  assert.throws(() => letterbox(src, 8, 8, { fill: 300 }), RangeError);
});

test("boxes map back through the letterbox and are clipped to the image", () => {
  const info = letterboxGeometry(810, 1080, 640, 640);
  const b = Float32Array.of(80, 0, 560, 640, 0, -5, 700, 10);
  unletterboxBoxes(b, info);
  assert.deepEqual([...b.subarray(0, 4)].map((v) => Math.round(v * 1000) / 1000), [0, 0, 810, 1080]);
  assert.deepEqual([b[4], b[5], b[6]], [0, 0, 810]);
});

test("resize: a constant image stays constant; the same size is a copy", () => {
  const src: RgbImage = { width: 53, height: 37, channels: 3, data: new Uint8Array(53 * 37 * 3).fill(200) };
  for (const [w, h] of [[20, 11], [100, 70], [26, 18], [53, 37]] as const) {
    const out = resizeBilinear(src, w, h);
    assert.equal(out.data.length, w * h * 3);
    assert.ok(out.data.every((v) => v === 200), `${w}x${h}`);
  }
  assert.throws(() => resizeBilinear(src, 0, 5), RangeError);
  assert.throws(() => resizeBilinear({ ...src, data: new Uint8Array(5) }, 5, 5), RangeError);
});

test("resize: OpenCV INTER_LINEAR values on small cases", () => {
  // 1 channel, 4 -> 2: an exact 2x reduction averages pairs (with rounding of the 11-bit weights).
  const row: RgbImage = { width: 4, height: 1, channels: 1, data: Uint8Array.of(0, 100, 200, 255) };
  assert.deepEqual([...resizeBilinear(row, 2, 1).data], [50, 228]);
  // 2 -> 4: positions -0.25, 0.25, 0.75, 1.25; the ends clamp to the border pixels.
  const up: RgbImage = { width: 2, height: 1, channels: 1, data: Uint8Array.of(0, 200) };
  assert.deepEqual([...resizeBilinear(up, 4, 1).data], [0, 50, 150, 200]);
});

test("decoding bus.jpg gives 810x1080 RGB", { skip: skipUnlessTestdata("images", "bus.jpg") }, async () => {
  const img = await readImageRgb(testdata("images", "bus.jpg"));
  assert.deepEqual([img.width, img.height, img.channels, img.data.length], [810, 1080, 3, 810 * 1080 * 3]);
});

test("decoding a missing or broken file names it", async () => {
  await assert.rejects(readImageRgb("/nonexistent/x.jpg"), (e: unknown) => isVideoAnalysisError(e) && e.code === "NOT_FOUND" && e.message.includes("/nonexistent/x.jpg"));
  await assert.rejects(readImageRgb(new URL(import.meta.url).pathname), (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT");
});

test("letterbox into a used buffer: every border pixel is written, the picture lands in place", () => {
  for (const [w, h] of [[810, 1080], [1280, 720], [640, 360], [101, 37]] as const) {
    const src: RgbImage = { width: w, height: h, channels: 3, data: new Uint8Array(w * h * 3).map((_, i) => (i * 31) & 255) };
    const fresh = letterbox(src, 320, 320, { fill: 114 });
    const out = new Uint8Array(320 * 320 * 3).fill(7);
    const reused = letterbox(src, 320, 320, { fill: 114, out });
    assert.equal(reused.image.data, out);
    assert.ok(Buffer.from(out).equals(Buffer.from(fresh.image.data)), `${w}x${h}`);
    const { left, top, resizedWidth } = fresh.info;
    // The corner is border, the first picture pixel is the resized image's first pixel.
    assert.deepEqual([...out.subarray(0, 3)], left > 0 || top > 0 ? [114, 114, 114] : [...out.subarray(0, 3)]);
    const first = resizeBilinear(src, resizedWidth, fresh.info.resizedHeight).data.subarray(0, 3);
    assert.deepEqual([...out.subarray((top * 320 + left) * 3, (top * 320 + left) * 3 + 3)], [...first]);
  }
  assert.throws(() => letterbox({ width: 4, height: 4, channels: 3, data: new Uint8Array(48) }, 8, 8, { out: new Uint8Array(10) }), /out must hold 192 bytes/);
});

test("DALI's letterbox geometry: roundf extents, the odd border pixel first, float32 scale", () => {
  assert.equal(roundHalfAway(2.5), 3);
  assert.equal(roundHalfAway(-139.5), -140);
  assert.equal(roundHalfAway(-0.4), 0);
  // Where both agree: bus.jpg 810x1080 -> 480x640, 80 each side.
  const bus = daliLetterboxGeometry(810, 1080, 640);
  assert.deepEqual([bus.resizedWidth, bus.resizedHeight, bus.left, bus.right, bus.top, bus.bottom], [480, 640, 80, 80, 0, 0]);
  const u = letterboxGeometry(810, 1080, 640, 640);
  assert.deepEqual([u.resizedWidth, u.left, u.right], [480, 80, 80]);
  assert.equal(bus.scale, Math.fround(640 / 1080));
  // 1280x721: 360.5 rows -> DALI 361 (half away from zero), Ultralytics 360 (half to even).
  assert.equal(daliLetterboxGeometry(1280, 721, 640).resizedHeight, 361);
  assert.equal(letterboxGeometry(1280, 721, 640, 640).resizedHeight, 360);
  // 1280x722: 361 rows, a 279-row border: DALI 140 on top, Ultralytics 139.
  const d = daliLetterboxGeometry(1280, 722, 640);
  const v = letterboxGeometry(1280, 722, 640, 640);
  assert.deepEqual([d.top, d.bottom, v.top, v.bottom], [140, 139, 139, 140]);
  // Portrait odd width: the extra column on the left for DALI, on the right for Ultralytics.
  const p = daliLetterboxGeometry(427, 640, 640);
  assert.deepEqual([p.left, p.right], [107, 106]);
  assert.deepEqual([letterboxGeometry(427, 640, 640, 640).left, letterboxGeometry(427, 640, 640, 640).right], [106, 107]);
  // not_larger enlarges small images too (Ultralytics' scaleup), and the border always completes S.
  const small = daliLetterboxGeometry(320, 240, 640);
  assert.deepEqual([small.resizedWidth, small.resizedHeight, small.top + small.resizedHeight + small.bottom], [640, 480, 640]);
  for (const [w, h] of [[1, 1], [3, 1000], [1919, 1081], [641, 639]] as const) {
    const g = daliLetterboxGeometry(w, h, 640);
    assert.equal(g.left + g.resizedWidth + g.right, 640, `${w}x${h}`);
    assert.equal(g.top + g.resizedHeight + g.bottom, 640, `${w}x${h}`);
    assert.ok(g.resizedWidth <= 640 && g.resizedHeight <= 640);
  }
  assert.throws(() => daliLetterboxGeometry(0, 10, 640), /sourceWidth must be a positive integer/);
});
