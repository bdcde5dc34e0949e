// `main` with output.mot: true on the people video (real YOLO11n int8, default tracker): mot.txt holds one
// MOTChallenge row per tracked detection of detections.npz, with the video's frame numbers, the same ids and
// boxes, and nothing that is not a finite number; the manifest lists it and records the tracker's settings.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { skipUnlessTestdata, testdata } from "../support/testdata.js";
import { EMBEDDED_PROFILE, loadNpz, tempDir } from "./support.js";

const VIDEO = ["video", "people_768x432_10fps.mp4"];
const YOLO = ["models", "yolo11n_int8_640.onnx"];
const skip = skipUnlessTestdata(...VIDEO) || skipUnlessTestdata(...YOLO);
const tmp = tempDir("va-mot-");
after(() => tmp.cleanup());

test("main with output.mot: MOTChallenge rows of the tracked detections, numbered as the video's frames", { skip, timeout: 300_000 }, async () => {
  const out = join(tmp.dir, "run");
  const off = { enabled: false };
  const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, {
    overrides: {
      analysis: { fps: 2 },
      backend: { embedded: { models: { yolo11n_640: testdata(...YOLO) } } },
      components: { core_depth_midas: off, core_optical_flow: off, core_clip: off, scene: off },
      output: { mot: true },
    },
  });
  let result;
  try {
    result = await mm.run(testdata(...VIDEO), { out, maxFrames: 40 });
  } finally {
    await mm.close();
  }
  const m = result.manifest;
  const listed = m.artifacts.find((a) => a.path === "core_object_detections/mot.txt");
  assert.ok(listed, "the manifest lists mot.txt");
  const tracker = m.profile.components.core_object_detections!.tracker;
  assert.deepEqual([tracker.variant, tracker.box, tracker.kalman, tracker.match_on], ["default", "detection", "xywh", "prediction"], "the manifest records the tracker as it ran");

  const text = readFileSync(join(out, "core_object_detections", "mot.txt"), "utf8");
  assert.equal(Buffer.byteLength(text), listed.bytes);
  const rows = text.trim().split("\n").map((l) => l.split(",").map(Number));
  const d = await loadNpz(join(out, "core_object_detections", "detections.npz"));
  const n = d.score!.values.length;
  assert.ok(n > 20, `${n} tracked detections: too few to prove anything`);
  assert.equal(rows.length, n, "one row per tracked detection");
  const box = d.box!.values as number[];
  for (let i = 0; i < n; i++) {
    const r = rows[i]!;
    assert.equal(r.length, 10);
    assert.ok(r.every(Number.isFinite), `row ${i}: ${r}`);
    // 10 fps video analysed at 2 fps: analysis frame k is video frame 5k + 1 (MOTChallenge counts from 1).
    const t = d.timestamp!.values[i] as number;
    assert.equal(r[0], Math.round(t * 10) + 1, `row ${i}: frame ${r[0]} for t = ${t}`);
    assert.equal(r[0], 5 * (d.frame_index!.values[i] as number) + 1);
    assert.equal(r[0], (d.source_frame_index!.values[i] as number) + 1);
    assert.equal(r[1], d.track_id!.values[i]);
    assert.ok(r[1]! >= 1);
    const [x1, y1, x2, y2] = box.slice(4 * i, 4 * i + 4) as [number, number, number, number];
    for (const [got, want] of [[r[2], x1], [r[3], y1], [r[4], x2 - x1], [r[5], y2 - y1]] as const) assert.ok(Math.abs(got! - want) < 2e-3, `row ${i}: ${r} vs ${[x1, y1, x2, y2]}`);
    assert.ok(r[4]! > 0 && r[5]! > 0, `row ${i}: a box without area`);
    assert.deepEqual(r.slice(7), [-1, -1, -1]);
  }
});
