import assert from "node:assert/strict";
import { test } from "node:test";
import { Detections } from "../../src/detections/detections.js";
import { DEFAULT_NMS_OPTIONS, nonMaxSuppression, orderByScore, resolveNmsOptions } from "../../src/detections/nms.js";

const boxes = (...b: number[][]) => Float32Array.from(b.flat());

test("NMS of no boxes is empty", () => {
  assert.deepEqual([...nonMaxSuppression(new Float32Array(0), new Float32Array(0), new Int32Array(0))], []);
  assert.equal(Detections.empty().withNms().length, 0);
});

test("NMS keeps only the best of boxes that all overlap", () => {
  const xyxy = boxes([0, 0, 100, 100], [1, 1, 101, 101], [2, 0, 100, 99], [0, 2, 99, 100]);
  const scores = Float32Array.of(0.5, 0.9, 0.7, 0.6);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, new Int32Array(4), { iou: 0.7 })], [1]);
});

test("NMS keeps boxes that do not overlap, best first", () => {
  const xyxy = boxes([0, 0, 10, 10], [20, 20, 30, 30], [40, 40, 50, 50]);
  assert.deepEqual([...nonMaxSuppression(xyxy, Float32Array.of(0.2, 0.9, 0.5), null)], [1, 2, 0]);
});

test("ties in score: the earlier box wins, as torchvision's stable sort decides", () => {
  const xyxy = boxes([0, 0, 10, 10], [0, 0, 10, 10], [50, 50, 60, 60], [50, 50, 60, 60]);
  const scores = Float32Array.of(0.8, 0.8, 0.8, 0.8);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, null)], [0, 2]);
  const order = new Int32Array(4);
  orderByScore(Float32Array.of(0.5, 0.9, 0.5, 0.9), 4, order);
  assert.deepEqual([...order], [1, 3, 0, 2]);
});

test("class-aware NMS keeps overlapping boxes of different classes; agnostic NMS does not", () => {
  const xyxy = boxes([0, 0, 100, 100], [0, 0, 100, 100], [0, 0, 100, 100]);
  const scores = Float32Array.of(0.9, 0.8, 0.7);
  const classes = Int32Array.of(0, 2, 0);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, classes)], [0, 1]);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, classes, { agnostic: true })], [0]);
});

test("IoU equal to the threshold is kept, above it suppressed (torchvision keeps iou <= threshold)", () => {
  // Two 10x10 boxes overlapping 10x5: IoU = 50 / 150 = 1/3.
  const xyxy = boxes([0, 0, 10, 10], [0, 5, 10, 15]);
  const scores = Float32Array.of(0.9, 0.8);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, null, { iou: 1 / 3 })], [0, 1]);
  assert.deepEqual([...nonMaxSuppression(xyxy, scores, null, { iou: 0.33 })], [0]);
});

test("maxDet caps the kept boxes, keeping the best", () => {
  const xyxy = boxes([0, 0, 1, 1], [10, 10, 11, 11], [20, 20, 21, 21]);
  assert.deepEqual([...nonMaxSuppression(xyxy, Float32Array.of(0.1, 0.3, 0.2), null, { maxDet: 2 })], [1, 2]);
});

test("a suppressed box does not suppress others (greedy against kept boxes only)", () => {
  // A (best) overlaps B heavily; B overlaps C heavily; A does not overlap C: A and C are kept.
  const xyxy = boxes([0, 0, 10, 10], [4, 0, 14, 10], [8, 0, 18, 10]);
  assert.deepEqual([...nonMaxSuppression(xyxy, Float32Array.of(0.9, 0.8, 0.7), null, { iou: 0.3 })], [0, 2]);
});

test("negative and NaN scores are ordered by the comparator fallback", () => {
  const order = new Int32Array(4);
  orderByScore(Float32Array.of(-1, 0.5, NaN, -0.5), 4, order);
  assert.deepEqual([...order], [1, 3, 0, 2]);
});

test("NMS options default to Ultralytics' prediction settings and are checked", () => {
  assert.deepEqual(resolveNmsOptions(), { ...DEFAULT_NMS_OPTIONS });
  assert.equal(DEFAULT_NMS_OPTIONS.conf, 0.25);
  assert.equal(DEFAULT_NMS_OPTIONS.iou, 0.7);
  assert.equal(DEFAULT_NMS_OPTIONS.maxDet, 300);
  assert.equal(DEFAULT_NMS_OPTIONS.maxNms, 30000);
  assert.throws(() => resolveNmsOptions({ iou: 1.5 }), RangeError);
  assert.throws(() => resolveNmsOptions({ maxDet: 0 }), RangeError);
  assert.throws(() => resolveNmsOptions({ conf: "0.3" as unknown as number }), TypeError);
  assert.throws(() => resolveNmsOptions({ classes: [-1] }), TypeError);
});
