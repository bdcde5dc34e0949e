import assert from "node:assert/strict";
import { test } from "node:test";
import { simdAvailable } from "../../src/detections/score-scan.js";
import { YoloDecoder, decodeYolo } from "../../src/detections/yolo.js";
import { decodeEnd2End } from "../../src/detections/end2end.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { isVideoAnalysisError } from "../../src/errors.js";
import { readImageRgb } from "../../src/preprocess/decode-image.js";
import { NORMALIZATIONS } from "../../src/catalog/normalization.js";
import { letterbox, letterboxGeometry } from "../../src/preprocess/letterbox.js";
import { normalizeNhwcToNchw } from "../../src/preprocess/normalize.js";
import { tensor } from "../../src/tensor.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";

interface Anchor {
  i: number;
  box: [number, number, number, number]; // cx, cy, w, h
  scores: Record<number, number>;
}

/** A raw [1, 4 + nc, n] output with the given anchors, every other value 0. */
function output(nc: number, n: number, anchors: Anchor[]): Float32Array {
  const out = new Float32Array((4 + nc) * n);
  for (const a of anchors) {
    a.box.forEach((v, r) => (out[r * n + a.i] = v));
    for (const [c, s] of Object.entries(a.scores)) out[(4 + Number(c)) * n + a.i] = s;
  }
  return out;
}

const both = simdAvailable() ? [true, false] : [false];

for (const simd of both) {
  const tag = simd ? "simd" : "js";

  test(`[${tag}] decode: threshold is strict, best class wins, boxes become xyxy`, () => {
    const out = output(3, 37, [
      { i: 0, box: [50, 50, 20, 10], scores: { 0: 0.25, 1: 0.1 } }, // exactly at the threshold: dropped
      { i: 5, box: [100, 100, 40, 20], scores: { 0: 0.3, 2: 0.6 } }, // class 2
      { i: 36, box: [200, 150, 10, 10], scores: { 1: 0.26 } }, // last anchor (padding lane)
    ]);
    const d = new YoloDecoder({ simd }).decode(out, [1, 7, 37]);
    assert.equal(d.length, 2);
    assert.deepEqual([...d.classIds], [2, 1]);
    assert.deepEqual([...d.scores], [Math.fround(0.6), Math.fround(0.26)]);
    assert.deepEqual(d.box(0), [80, 90, 120, 110]);
  });

  test(`[${tag}] decode: equal class scores pick the lower class index`, () => {
    const out = output(4, 16, [{ i: 3, box: [10, 10, 4, 4], scores: { 1: 0.5, 3: 0.5 } }]);
    assert.deepEqual([...new YoloDecoder({ simd }).decode(out, [1, 8, 16]).classIds], [1]);
  });

  test(`[${tag}] decode: multi-label, class filter, agnostic`, () => {
    const out = output(3, 20, [
      { i: 2, box: [50, 50, 20, 20], scores: { 0: 0.9, 1: 0.8 } },
      { i: 9, box: [51, 50, 20, 20], scores: { 1: 0.7 } },
    ]);
    const shape = [1, 7, 20];
    assert.deepEqual([...new YoloDecoder({ simd }).decode(out, shape).classIds], [0, 1]);
    assert.deepEqual([...new YoloDecoder({ simd, multiLabel: true }).decode(out, shape).classIds], [0, 1]);
    assert.deepEqual([...new YoloDecoder({ simd, multiLabel: true }).decode(out, shape).scores], [Math.fround(0.9), Math.fround(0.8)]);
    assert.deepEqual([...new YoloDecoder({ simd, agnostic: true }).decode(out, shape).classIds], [0]);
    // The class filter applies after the best class is chosen: anchor 2 (best 0) is gone, not relabelled.
    assert.deepEqual([...new YoloDecoder({ simd, classes: [1] }).decode(out, shape).scores], [Math.fround(0.7)]);
  });

  test(`[${tag}] decode: maxNms keeps the best candidates, maxDet caps the output`, () => {
    const anchors: Anchor[] = Array.from({ length: 10 }, (_, k) => ({ i: k * 3, box: [k * 50 + 10, 10, 8, 8], scores: { 0: 0.3 + k * 0.05 } }));
    const out = output(1, 30, anchors);
    assert.equal(new YoloDecoder({ simd }).decode(out, [1, 5, 30]).length, 10);
    const top = new YoloDecoder({ simd, maxNms: 3 }).decode(out, [1, 5, 30]);
    assert.deepEqual([...top.scores], [0.75, 0.7, 0.65].map(Math.fround));
    assert.equal(new YoloDecoder({ simd, maxDet: 4 }).decode(out, [1, 5, 30]).length, 4);
  });

  test(`[${tag}] decode: boxes go back through the letterbox and are clipped`, () => {
    const info = letterboxGeometry(810, 1080, 640, 640); // scale 640/1080, 80 px left border
    const out = output(1, 8, [
      { i: 1, box: [320, 320, 160, 320], scores: { 0: 0.9 } },
      { i: 2, box: [82, 10, 20, 40], scores: { 0: 0.8 } }, // partly in the border
    ]);
    const d = new YoloDecoder({ simd }).decode(out, [1, 5, 8], info, 3);
    assert.equal(d.frameIndex, 3);
    const s = 1080 / 640;
    const [x1, y1, x2, y2] = d.box(0);
    assert.ok(Math.abs(x1 - 160 * s) < 1e-3 && Math.abs(y1 - 160 * s) < 1e-3 && Math.abs(x2 - 320 * s) < 1e-3 && Math.abs(y2 - 480 * s) < 1e-3);
    const b = d.box(1);
    assert.equal(b[0], 0);
    assert.equal(b[1], 0);
    assert.ok(Math.abs(b[2] - 12 * s) < 1e-3);
  });
}

test("decode: no candidates, zero anchors and malformed shapes", () => {
  assert.equal(decodeYolo(new Float32Array(84 * 100), [1, 84, 100]).length, 0);
  assert.equal(decodeYolo(new Float32Array(0), [1, 84, 0]).length, 0);
  const err = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return e;
    }
    return undefined;
  };
  const e = err(() => decodeYolo(new Float32Array(84 * 100), [84, 100, 1]));
  assert.ok(isVideoAnalysisError(e) && e.code === "CONTRACT_MISMATCH", String(e));
  assert.ok(isVideoAnalysisError(err(() => decodeYolo(new Float32Array(10), [1, 84, 100]))));
  assert.throws(() => decodeYolo(new Float32Array(84 * 10), [1, 84, 10], { iou: 2 }), RangeError);
  assert.throws(() => decodeYolo(new Float32Array(84 * 10), [1, 84, 10], { numClasses: 81 }), RangeError);
});

test("decode: rows after the classes (mask coefficients) are ignored with numClasses", () => {
  const out = output(3, 16, [{ i: 4, box: [10, 10, 4, 4], scores: { 0: 0.5, 2: 0.9 } }]);
  assert.deepEqual([...decodeYolo(out, [1, 7, 16], { numClasses: 2 }).classIds], [0]);
});

test("SIMD and JavaScript scans agree on random outputs at several thresholds", { skip: simdAvailable() ? false : "no WebAssembly SIMD here" }, () => {
  let seed = 12345;
  const rand = () => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
  for (const n of [1, 15, 16, 17, 2100, 8400]) {
    const nc = 80;
    const out = new Float32Array((4 + nc) * n);
    for (let i = 0; i < n; i++) {
      out[i] = rand() * 640;
      out[n + i] = rand() * 640;
      out[2 * n + i] = 4 + rand() * 200;
      out[3 * n + i] = 4 + rand() * 200;
    }
    for (let j = 4 * n; j < out.length; j++) out[j] = rand() ** 8;
    for (const conf of [0.25, 0.05, 0.001]) {
      const a = new YoloDecoder({ conf, simd: true }).decode(out, [1, 4 + nc, n]);
      const b = new YoloDecoder({ conf, simd: false }).decode(out, [1, 4 + nc, n]);
      assert.deepEqual(a.toRecords(), b.toRecords(), `n=${n} conf=${conf}`);
    }
  }
});

test("End2End outputs: first num_dets rows, confidence and class filters, box conventions", () => {
  const outputs = {
    numDets: Int32Array.of(3),
    boxes: Float32Array.of(10, 20, 30, 60, 100, 100, 20, 40, 0, 0, 5, 5, 9, 9, 9, 9),
    scores: Float32Array.of(0.9, 0.5, 0.2, 0.99),
    classes: Int32Array.of(0, 3, 0, 1),
  };
  const xyxy = decodeEnd2End(outputs);
  assert.equal(xyxy.length, 2); // row 2 below 0.25, row 3 beyond num_dets
  assert.deepEqual(xyxy.box(0), [10, 20, 30, 60]);
  assert.deepEqual(decodeEnd2End(outputs, { boxFormat: "cxcywh" }).box(1), [90, 80, 110, 120]);
  assert.deepEqual(decodeEnd2End(outputs, { boxFormat: "xywh" }).box(0), [10, 20, 40, 80]);
  assert.deepEqual([...decodeEnd2End(outputs, { classes: [3] }).classIds], [3]);
  const info = letterboxGeometry(1280, 720, 640, 640); // scale 0.5, top border 140
  assert.deepEqual(decodeEnd2End(outputs, {}, info).box(0), [20, 0, 60, 0]);
  assert.throws(() => decodeEnd2End({ ...outputs, boxes: new Float32Array(3) }));
});

test("real model: yolo11n_int8_640 on bus.jpg finds 4 persons and a bus", { skip: skipUnlessTestdata("models", "yolo11n_int8_640.onnx") || skipUnlessTestdata("images", "bus.jpg") }, async () => {
  const rgb = await readImageRgb(testdata("images", "bus.jpg"));
  const { image, info } = letterbox(rgb, 640);
  const backend = await EmbeddedBackend.create({ models: { yolo: testdata("models", "yolo11n_int8_640.onnx") } });
  try {
    const r = await backend.infer("yolo", [tensor("images", "FP32", [1, 3, 640, 640], normalizeNhwcToNchw(image.data, [1, 640, 640, 3], NORMALIZATIONS.unit))]);
    const out = r.outputs["output0"]!;
    const d = decodeYolo(out.data as Float32Array, out.shape, {}, info);
    const classes = [...d.classIds].sort();
    assert.deepEqual(classes, [0, 0, 0, 0, 5]);
    const bus = d.classIds.indexOf(5);
    assert.ok(Math.abs(d.scores[bus]! - 0.89) < 0.01, `bus score ${d.scores[bus]}`);
    // The bus spans most of the image width.
    const [x1, , x2] = d.box(bus);
    assert.ok(x1 < 40 && x2 > 790, `bus box ${d.box(bus)}`);
    if (simdAvailable()) {
      const js = new YoloDecoder({ simd: false }).decode(out.data as Float32Array, out.shape, info);
      assert.deepEqual(js.toRecords(), d.toRecords());
    }
  } finally {
    await backend.close();
  }
});

test("parseClassNames: Ultralytics' dict literal, a JSON list or object, one name per line", async () => {
  const { parseClassNames, classNamesFor } = await import("../../src/detections/class-names.js");
  assert.deepEqual(parseClassNames("{0: 'person', 1: \"bi'cycle\", 2: 'it\\'s'}"), ["person", "bi'cycle", "it's"]);
  assert.deepEqual(parseClassNames('["a", "b"]'), ["a", "b"]);
  assert.deepEqual(parseClassNames('{"0": "a", "2": "c"}'), ["a", "class1", "c"]);
  assert.deepEqual(parseClassNames("cat\ndog\n"), ["cat", "dog"]);
  assert.equal(parseClassNames("  "), undefined);
  assert.equal(parseClassNames("[1, 2]"), undefined);
  assert.deepEqual(classNamesFor(["a"], 3), ["a", "class1", "class2"]);
  assert.equal(classNamesFor(undefined, 80)[0], "person");
});
