import assert from "node:assert/strict";
import { test } from "node:test";
import { findModel, NORMALIZATIONS } from "../../src/catalog/index.js";
import { ensembleOutputs, NormalizedPixels, normalizeNhwcToNchw, preprocessInputs } from "../../src/preprocess/normalize.js";
import { tensor } from "../../src/tensor.js";

test("normalize: UINT8 NHWC -> FP32 NCHW with (x/255 - mean)/std per channel", () => {
  // 1 x 1 x 2 x 3: two pixels (R,G,B) = (0,128,255) and (255,0,51).
  const px = new Uint8Array([0, 128, 255, 255, 0, 51]);
  const out = normalizeNhwcToNchw(px, [1, 1, 2, 3], NORMALIZATIONS.imagenet);
  const n = NORMALIZATIONS.imagenet;
  const want = [
    (0 / 255 - n.mean[0]) / n.std[0], (255 / 255 - n.mean[0]) / n.std[0],
    (128 / 255 - n.mean[1]) / n.std[1], (0 / 255 - n.mean[1]) / n.std[1],
    (255 / 255 - n.mean[2]) / n.std[2], (51 / 255 - n.mean[2]) / n.std[2],
  ];
  assert.equal(out.length, 6);
  out.forEach((v, i) => assert.ok(Math.abs(v - want[i]!) < 1e-6, `value ${i}: ${v} vs ${want[i]}`));
});

test("normalize: YOLO's x/255 is Ultralytics' float32 division for every byte value, SIMD and JavaScript alike", () => {
  // 16 x 16 pixels with every byte value in every channel: the SIMD kernel does all of them.
  const px = new Uint8Array(256 * 3).map((_, i) => (Math.floor(i / 3) + 85 * (i % 3)) & 255);
  for (const simd of [true, false]) {
    const out = normalizeNhwcToNchw(px, [1, 16, 16, 3], NORMALIZATIONS.unit, { simd });
    for (let c = 0; c < 3; c++) {
      for (let p = 0; p < 256; p++) {
        // float32(v) / float32(255), correctly rounded: numpy's `im.astype(np.float32) / 255`.
        assert.equal(out[c * 256 + p], Math.fround(px[3 * p + c]! / 255), `simd ${simd}, channel ${c}, byte ${px[3 * p + c]}`);
      }
    }
  }
  // The reciprocal product differs in the last bit for many byte values: this is what the test guards against.
  const differ = Array.from({ length: 256 }, (_, v) => Math.fround(v * Math.fround(1 / 255)) !== Math.fround(v / 255)).filter(Boolean).length;
  assert.ok(differ > 100, `x * (1/255) and x / 255 differ for ${differ} byte values`);
});

const cases: Array<[string, number, number]> = [
  ["unit", 0, 0], ["unit", 255, 1], ["signed", 0, -1], ["signed", 255, 1], ["dpt", 255, 1],
];
for (const [k, v, want] of cases) {
  test(`normalize: ${k}(${v}) = ${want}`, () => {
    const out = normalizeNhwcToNchw(new Uint8Array([v, v, v]), [1, 1, 1, 3], NORMALIZATIONS[k as keyof typeof NORMALIZATIONS]);
    for (const x of out) assert.ok(Math.abs(x - want) < 1e-7);
  });
}

test("normalize: batches, reuses `out`, and refuses wrong shapes", () => {
  const px = new Uint8Array(2 * 2 * 2 * 3).map((_, i) => i);
  const out = new Float32Array(24);
  assert.equal(normalizeNhwcToNchw(px, [2, 2, 2, 3], NORMALIZATIONS.unit, { out }), out);
  // batch 1, channel 0 (R) of the 4 pixels: bytes 12, 15, 18, 21.
  assert.deepEqual([...out.subarray(12, 16)].map((x) => Math.round(x * 255)), [12, 15, 18, 21]);
  assert.throws(() => normalizeNhwcToNchw(px, [2, 2, 2, 4], NORMALIZATIONS.unit), RangeError);
  assert.throws(() => normalizeNhwcToNchw(px, [1, 2, 2, 3], NORMALIZATIONS.unit), /holds 12 values, pixels has 24/);
  assert.throws(() => normalizeNhwcToNchw(px, [2, 2, 2, 3], NORMALIZATIONS.unit, { out: new Float32Array(3) }), /out must hold 24/);
});

test("normalize: preprocessInputs maps ensemble inputs to the ONNX ones (RAFT pair, CLIP tokens)", () => {
  const raft = findModel("raft_256")!;
  const a = tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], new Uint8Array(256 * 256 * 3).fill(255));
  const b = tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], new Uint8Array(256 * 256 * 3));
  const [x, y] = preprocessInputs(raft, [b, a]);
  assert.equal(x!.name, "image1");
  assert.deepEqual(x!.shape, [1, 3, 256, 256]);
  assert.equal((x!.data as Float32Array)[0], 1);
  assert.equal(y!.name, "image2");
  assert.equal((y!.data as Float32Array)[0], -1);

  const text = findModel("clip_text")!;
  const ids = tensor("INPUT__0", "INT64", [1, 77], new BigInt64Array(77));
  const [t] = preprocessInputs(text, [ids]);
  assert.equal(t!.name, "input_ids");
  assert.equal(t!.data, ids.data);
  assert.throws(() => preprocessInputs(raft, [a]), /INPUT1__0 was not given/);

  const renamed = ensembleOutputs(raft, { flow: tensor("flow", "FP32", [1], new Float32Array(1)) });
  assert.deepEqual(Object.keys(renamed), ["OUTPUT__0"]);
});

test("normalize: the SIMD kernel gives exactly the JavaScript loop's values", () => {
  // Sizes with and without a tail of fewer than 16 pixels, batches, every normalisation.
  for (const [n, h, w] of [[1, 16, 16], [1, 7, 5], [2, 9, 13], [1, 1, 1], [1, 64, 48]] as const) {
    const px = new Uint8Array(n * h * w * 3).map((_, i) => (i * 7919 + (i >> 3)) & 255);
    px[0] = 0;
    px[1] = 255;
    for (const [k, norm] of Object.entries(NORMALIZATIONS)) {
      const simd = normalizeNhwcToNchw(px, [n, h, w, 3], norm);
      const js = normalizeNhwcToNchw(px, [n, h, w, 3], norm, { simd: false });
      assert.ok(Buffer.from(simd.buffer).equals(Buffer.from(js.buffer)), `${k} ${n}x${h}x${w}`);
    }
  }
});

test("NormalizedPixels: one reused buffer per shape, written in place, equal to the one-off function", () => {
  const shape = [2, 24, 20, 3] as const;
  const buf = new NormalizedPixels([...shape]);
  const a = new Uint8Array(2 * 24 * 20 * 3).map((_, i) => (i * 13) & 255);
  const b = new Uint8Array(a.length).map((_, i) => (i * 29 + 7) & 255);
  const first = buf.normalize(a, NORMALIZATIONS.clip);
  assert.equal(first, buf.data);
  assert.deepEqual([...first], [...normalizeNhwcToNchw(a, shape, NORMALIZATIONS.clip, { simd: false })]);
  // The same array holds the next image's values.
  assert.equal(buf.normalize(b, NORMALIZATIONS.signed), first);
  assert.deepEqual([...first], [...normalizeNhwcToNchw(b, shape, NORMALIZATIONS.signed, { simd: false })]);
  assert.throws(() => buf.normalize(a.subarray(3), NORMALIZATIONS.clip), /holds 2880 values, pixels has 2877/);
  assert.throws(() => new NormalizedPixels([1, 2, 2, 4]), /shape must be \[N, H, W, 3\]/);
});
