// The product's main job on a real video: `main` with profiles/embedded_cpu.yaml on the shared people video,
// the detector pointed at the real YOLO11n int8 640 export. Persons are found where people are visible,
// keep their track ids from frame to frame, numpy loads every artifact, and the manifest names every branch.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { EMBEDDED_PROFILE, loadNpz, tempDir } from "./support.js";

const run = promisify(execFile);
const VIDEO = ["video", "people_768x432_10fps.mp4"];
const YOLO = ["models", "yolo11n_int8_640.onnx"];
const skip = skipUnlessTestdata(...VIDEO) || skipUnlessTestdata(...YOLO);

// Seconds where a person stands fully in view, and where nobody is, from looking at the video (one frame
// a second); a second of margin is left at each entry and exit. The run covers the first 70 s at 2 fps.
const VISIBLE: Array<[number, number]> = [[8, 17], [25, 42], [53, 66]];
const EMPTY: Array<[number, number]> = [[0, 5], [21, 22], [46, 49]];
const FPS = 2;
const MAX_FRAMES = 140;

const tmp = tempDir("va-people-");
after(() => tmp.cleanup());

test("main on the people video with the real YOLO11n: persons found and tracked; numpy reads every artifact", { skip, timeout: 600_000 }, async (t) => {
  const out = join(tmp.dir, "run");
  const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, {
    overrides: { analysis: { fps: FPS }, backend: { embedded: { models: { yolo11n_640: testdata(...YOLO) } } } },
  });
  let result;
  try {
    result = await mm.run(testdata(...VIDEO), { out, maxFrames: MAX_FRAMES });
  } finally {
    await mm.close();
  }
  const m = result.manifest;
  assert.equal(m.analysis.frames, MAX_FRAMES);
  assert.deepEqual([m.analysis.width, m.analysis.height], [640, 360]);

  // The manifest names the branch of every model used, and the detector is the real export's branch.
  const branches = Object.fromEntries(m.models_used.map((u) => [u.slot, u.branch]));
  assert.deepEqual(branches, {
    core_depth_midas: "midas_512",
    core_optical_flow: "raft_512",
    "core_clip.image": "clip_image_448",
    "core_clip.text": "clip_text",
    scene: "places365_resnet50_448",
    core_object_detections: "yolo11n_640",
  });

  const d = await loadNpz(join(out, "core_object_detections", "detections.npz"));
  const frames = d.frames_index!.values as number[];
  const times = d.frames_timestamp!.values as number[];
  const persons = new Map<number, number[]>(); // frame -> track ids of persons
  (d.class_id!.values as number[]).forEach((c, i) => {
    if (c !== 0) return;
    const f = d.frame_index!.values[i] as number;
    persons.set(f, [...(persons.get(f) ?? []), d.track_id!.values[i] as number]);
  });
  const inside = (ranges: Array<[number, number]>) => frames.filter((_, k) => ranges.some(([a, b]) => times[k]! >= a && times[k]! <= b));

  const visible = inside(VISIBLE);
  const found = visible.filter((f) => persons.has(f));
  const empty = inside(EMPTY);
  const ghosts = empty.filter((f) => persons.has(f));
  t.diagnostic(`frames with a person: ${persons.size}/${frames.length}; where people are visible: ${found.length}/${visible.length}; where nobody is: ${ghosts.length}/${empty.length}`);
  assert.ok(found.length >= 0.9 * visible.length, `persons on ${found.length} of ${visible.length} frames where people are visible`);
  assert.ok(ghosts.length <= 0.1 * empty.length, `persons on ${ghosts.length} of ${empty.length} frames where nobody is`);

  // Track ids: within each visit one id holds most frames, and consecutive frames keep their id.
  let pairs = 0;
  let kept = 0;
  for (const [a, b] of VISIBLE) {
    const fs = frames.filter((_, k) => times[k]! >= a && times[k]! <= b);
    const ids = new Map<number, number>();
    for (const f of fs) for (const id of new Set(persons.get(f) ?? [])) ids.set(id, (ids.get(id) ?? 0) + 1);
    const [topId, topCount] = [...ids].sort((x, y) => y[1] - x[1])[0] ?? [0, 0];
    t.diagnostic(`${a}-${b} s: ${fs.length} frames, track ${topId} on ${topCount}, ids ${JSON.stringify([...ids])}`);
    assert.ok(topCount >= 0.8 * fs.length, `${a}-${b} s: the main track covers ${topCount} of ${fs.length} frames`);
    for (let i = 1; i < fs.length; i++) {
      const prev = persons.get(fs[i - 1]!);
      const cur = persons.get(fs[i]!);
      if (!prev || !cur) continue;
      pairs++;
      if (cur.some((id) => prev.includes(id))) kept++;
    }
  }
  t.diagnostic(`consecutive frames keeping a person's track id: ${kept}/${pairs}`);
  assert.ok(kept >= 0.95 * pairs, `track ids kept on ${kept} of ${pairs} consecutive pairs`);

  // numpy loads every artifact, with the keys, shapes and dtypes the README documents.
  const py = await run("python3", ["-m", "pytest", "-q", "test/python/test_artifacts.py"], { cwd: repoRoot, env: { ...process.env, VIDEO_SDK_RUN_DIR: out } });
  t.diagnostic(py.stdout.trim().split("\n").at(-1)!);
});
