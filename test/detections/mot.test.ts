import assert from "node:assert/strict";
import { test } from "node:test";
import { Detections } from "../../src/detections/detections.js";
import { formatMot, parseMot } from "../../src/detections/mot.js";
import { isVideoAnalysisError } from "../../src/errors.js";

test("MOT rows: parse by frame (1-based), boxes to xyxy, ids kept when present", () => {
  const text = "# comment\n2,-1,10,20,30,40,0.9,-1,-1,-1\n1,-1,0,0,5,5,0.5,-1,-1,-1\n\n2,-1,100,100,10,10,0.4,-1,-1,-1\n4 7 1 2 3 4 1 -1 -1 -1\n";
  const { frames, firstFrame, lastFrame } = parseMot(text);
  assert.deepEqual([...frames.keys()], [1, 2, 4]);
  assert.deepEqual([firstFrame, lastFrame], [1, 4]);
  const f2 = frames.get(2)!;
  assert.equal(f2.frameIndex, 1);
  assert.deepEqual(f2.box(0), [10, 20, 40, 60]);
  assert.equal(f2.trackIds, null);
  assert.deepEqual([...frames.get(4)!.trackIds!], [7]);
});

test("MOT rows: format and parse round trip", () => {
  const d = Detections.fromRecords([{ box: [1.5, 2.25, 11.5, 22.25], score: 0.75, classId: 0, trackId: 3 }], 9);
  const text = formatMot(d);
  assert.equal(text, "10,3,1.5,2.25,10,20,0.75,-1,-1,-1\n");
  const back = parseMot(text).frames.get(10)!;
  assert.deepEqual(back.toRecords(), d.toRecords());
  assert.equal(formatMot(Detections.empty()), "");
});

test("MOT rows: malformed lines name the line", () => {
  for (const bad of ["1,-1,a,b,c,d\n", "0,-1,1,2,3,4\n", "1,2,3\n"]) {
    assert.throws(() => parseMot(bad, { source: "det.txt" }), (e: unknown) => isVideoAnalysisError(e) && e.code === "INVALID_ARGUMENT" && e.message.startsWith("det.txt line 1"));
  }
});
