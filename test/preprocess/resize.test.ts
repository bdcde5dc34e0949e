import assert from "node:assert/strict";
import { test } from "node:test";
import { resizeBilinear } from "../../src/preprocess/resize.js";
import { simdAvailable } from "../../src/detections/score-scan.js";

// The SIMD vertical pass must give exactly the bytes of the JavaScript one (the cv2-identical arithmetic,
// which test_yolo_reference.py checks against OpenCV): reductions, enlargements, odd row lengths that
// end mid-vector, 1-4 channels, and values that clamp.
const cases: Array<[number, number, number, number, number]> = [
  [640, 360, 512, 512, 3], [360, 360, 448, 448, 3], [1920, 1080, 640, 360, 3], [7, 5, 13, 3, 3],
  [100, 50, 33, 77, 1], [33, 17, 16, 16, 4], [640, 360, 640, 361, 3], [3, 2, 1, 1, 2], [1, 1, 5, 9, 3],
];

test("resize: the SIMD vertical pass equals the JavaScript one byte for byte", { skip: simdAvailable() ? false : "no WebAssembly SIMD here" }, () => {
  for (const [w, h, dw, dh, cn] of cases) {
    const data = new Uint8Array(w * h * cn).map((_, i) => ((i * 7919 + (i >> 5)) >>> 3) & 255);
    // Hard edges (0/255 stripes) push OpenCV's rounding to both ends of the range.
    for (let i = 0; i < data.length; i += 11) data[i] = i % 2 ? 255 : 0;
    const img = { width: w, height: h, channels: cn, data };
    const simd = resizeBilinear(img, dw, dh, true);
    const js = resizeBilinear(img, dw, dh, false);
    assert.equal(simd.data.length, dw * dh * cn);
    assert.ok(Buffer.from(simd.data).equals(Buffer.from(js.data)), `${w}x${h}x${cn} -> ${dw}x${dh}`);
  }
});

test("resize: results do not alias the kernel's memory (a later resize leaves them unchanged)", () => {
  const a = resizeBilinear({ width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(10) }, 8, 8);
  const copy = a.data.slice();
  resizeBilinear({ width: 4, height: 4, channels: 3, data: new Uint8Array(48).fill(200) }, 8, 8);
  assert.deepEqual(a.data, copy);
  assert.ok(a.data.every((v) => v === 10));
});
