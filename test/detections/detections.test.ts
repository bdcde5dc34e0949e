import assert from "node:assert/strict";
import { test } from "node:test";
import { outputDetections } from "../../src/components/detections/detections.js";
import { Detections } from "../../src/detections/detections.js";

const sample = () =>
  Detections.fromRecords(
    [
      { box: [0, 0, 10, 10], score: 0.9, classId: 0 },
      { box: [1, 1, 11, 11], score: 0.6, classId: 0 },
      { box: [50, 50, 60, 70], score: 0.4, classId: 2 },
    ],
    7,
  );

test("a Detections value holds columnar typed arrays and its frame index", () => {
  const d = sample();
  assert.equal(d.length, 3);
  assert.equal(d.frameIndex, 7);
  assert.deepEqual(d.box(2), [50, 50, 60, 70]);
  assert.equal(d.trackIds, null);
  assert.deepEqual(d.toJSON().detections[0], { box: [0, 0, 10, 10], score: Math.fround(0.9), classId: 0 });
});

test("filter, select, class and score filters return new values", () => {
  const d = sample();
  assert.deepEqual([...d.filter((i) => d.scores[i]! > 0.5).classIds], [0, 0]);
  assert.deepEqual([...d.filter([0, 0, 1]).scores], [Math.fround(0.4)]);
  assert.deepEqual([...d.select([2, 0]).classIds], [2, 0]);
  assert.equal(d.withClasses([2]).length, 1);
  assert.equal(d.withMinScore(0.6).length, 2);
  assert.equal(d.length, 3);
  assert.equal(d.select([]).length, 0);
});

test("NMS on the value itself", () => {
  const kept = sample().withNms({ iou: 0.5 });
  assert.deepEqual([...kept.scores], [Math.fround(0.9), Math.fround(0.4)]);
  assert.equal(kept.frameIndex, 7);
});

test("track ids travel with selections", () => {
  const d = sample().withTrackIds(Int32Array.of(4, 5, 6));
  assert.deepEqual([...d.select([2, 1]).trackIds!], [6, 5]);
  assert.equal(d.toRecords()[0]!.trackId, 4);
});

test("inconsistent arrays are refused at the boundary", () => {
  assert.throws(() => new Detections({ xyxy: new Float32Array(3), scores: new Float32Array(1), classIds: new Int32Array(1) }), RangeError);
  assert.throws(() => new Detections({ xyxy: new Float32Array(4), scores: new Float32Array(1), classIds: new Int32Array(2) }), RangeError);
  assert.throws(() => new Detections({ xyxy: [0, 0, 1, 1] as unknown as Float32Array, scores: new Float32Array(1), classIds: new Int32Array(1) }), TypeError);
  assert.throws(() => sample().withTrackIds(new Int32Array(2)), RangeError);
  assert.throws(() => sample().select([3]), RangeError);
  assert.throws(() => sample().filter([1]), RangeError);
  assert.throws(() => Detections.empty(-1), RangeError);
});

test("outputDetections: boxes clipped to nothing at every edge of the picture are dropped, the rest kept and clipped", () => {
  // A 1280 x 720 frame mapped to the 640 x 360 video: boxes entirely past each edge clip to zero width or height.
  const d = Detections.fromRecords(
    [
      { box: [-50, 100, -10, 200], score: 0.9, classId: 0 }, // left
      { box: [1300, 100, 1400, 200], score: 0.9, classId: 0 }, // right
      { box: [100, -80, 200, -5], score: 0.9, classId: 0 }, // top
      { box: [100, 730, 200, 800], score: 0.9, classId: 0 }, // bottom
      { box: [Number.NaN, 0, 10, 10], score: 0.9, classId: 0 },
      { box: [-20, -20, 100, 100], score: 0.8, classId: 1 }, // partly inside: kept, clipped
    ],
    3,
  );
  const out = outputDetections(d, 1280, 720, 640, 360);
  assert.equal(out.length, 1);
  assert.deepEqual(out.box(0), [0, 0, 50, 50]);
  assert.equal(out.classIds[0], 1);
  assert.equal(out.frameIndex, 3);
});
