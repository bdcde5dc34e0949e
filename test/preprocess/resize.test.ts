import assert from "node:assert/strict";
import { test } from "node:test";
import { resizeBilinear } from "../../src/preprocess/resize.js";
import { simdAvailable } from "../../src/detections/score-scan.js";

// The SIMD passes (vertical for any channel count, horizontal for 3 channels) must give exactly the bytes
// of the JavaScript ones (the cv2-identical arithmetic, which test_yolo_reference.py checks against
// OpenCV): reductions, enlargements, odd row lengths that end mid-vector, 1-4 channels, values that clamp.
/** A busy test image; hard edges (0/255 stripes) push OpenCV's rounding to both ends of the range. */
function pattern(w: number, h: number, cn: number) {
  const data = new Uint8Array(w * h * cn).map((_, i) => ((i * 7919 + (i >> 5)) >>> 3) & 255);
  for (let i = 0; i < data.length; i += 11) data[i] = i % 2 ? 255 : 0;
  return { width: w, height: h, channels: cn, data };
}

const cases: Array<[number, number, number, number, number]> = [
  [640, 360, 512, 512, 3], [360, 360, 448, 448, 3], [1920, 1080, 640, 360, 3], [7, 5, 13, 3, 3],
  [100, 50, 33, 77, 1], [33, 17, 16, 16, 4], [640, 360, 640, 361, 3], [3, 2, 1, 1, 2], [1, 1, 5, 9, 3],
];

test("resize: the SIMD passes equal the JavaScript ones byte for byte", { skip: simdAvailable() ? false : "no WebAssembly SIMD here" }, () => {
  for (const [w, h, dw, dh, cn] of cases) {
    const img = pattern(w, h, cn);
    const simd = resizeBilinear(img, dw, dh, { simd: true });
    const js = resizeBilinear(img, dw, dh, { simd: false });
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

test("resize: a crop window resizes exactly as the cut-out window does, into `out` when given", () => {
  const img = pattern(640, 360, 3);
  const windows = [
    { x: 140, y: 0, width: 360, height: 360 }, // CLIP's centre square
    { x: 0, y: 0, width: 7, height: 5 },
    { x: 633, y: 355, width: 7, height: 5 }, // at the right and bottom edges
    { x: 10, y: 20, width: 300, height: 1 },
  ];
  for (const win of windows) {
    const cut = new Uint8Array(win.width * win.height * 3);
    for (let y = 0; y < win.height; y++) {
      const from = ((win.y + y) * img.width + win.x) * 3;
      cut.set(img.data.subarray(from, from + win.width * 3), y * win.width * 3);
    }
    const square = { width: win.width, height: win.height, channels: 3, data: cut };
    for (const [dw, dh] of [[448, 448], [13, 3], [win.width, win.height]] as const) {
      const expected = resizeBilinear(square, dw, dh, { simd: false }).data;
      for (const simd of [true, false]) {
        const out = new Uint8Array(dw * dh * 3);
        const r = resizeBilinear(img, dw, dh, { crop: win, simd, out });
        assert.equal(r.data, out);
        assert.ok(Buffer.from(out).equals(Buffer.from(expected)), `${JSON.stringify(win)} -> ${dw}x${dh}, simd ${simd}`);
      }
    }
  }
  assert.throws(() => resizeBilinear(img, 8, 8, { crop: { x: 600, y: 0, width: 41, height: 10 } }), /must lie inside the 640x360 source/);
  assert.throws(() => resizeBilinear(img, 8, 8, { out: new Uint8Array(5) }), /out must hold 192 bytes/);
});
