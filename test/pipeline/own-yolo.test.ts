// A YOLO model of the user's own for the built-in detections component, named by the profile alone
// (`components.core_object_detections.model`, relative to the profile's folder), with no catalog key:
// the real int8 YOLO11n of ../shared/testdata, and a copy of it cut to 3 classes with names of its own in
// its ONNX metadata. `main` (the CLI) and `mm.detect()` must name the classes by the model (detections.npz,
// models_used, toRecords), and a model whose outputs are no YOLO layout must be refused with a coded error
// naming the profile key and the file, before a run folder exists.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { COCO80_NAMES, ModelManager, readImageRgb, VideoAnalysisError } from "../../src/index.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";
import { CLI, loadNpz, tempDir } from "./support.js";

const exec = promisify(execFile);
const YOLO = ["models", "yolo11n_int8_640.onnx"];
const PEOPLE = ["video", "people_768x432_10fps.mp4"];
const skip = skipUnlessTestdata(...YOLO) || skipUnlessTestdata(...PEOPLE) || skipUnlessTestdata("images", "bus.jpg");
// People walk in from the 8th second: at 1 fps, frames 7-9 hold persons.
const FRAMES = 10;
const THREE = ["walker", "cyclist", "auto"];
const KEY = "components.core_object_detections.model";

const tmp = tempDir("va-own-yolo-");
after(() => tmp.cleanup());
const profiles = join(tmp.dir, "profiles");
const models = join(tmp.dir, "models");

/** The real YOLO's raw head cut to its first 3 classes ([1, 7, 8400]), with `names` metadata of its own. */
async function buildThreeClassModel(dest: string): Promise<void> {
  const py = [
    "import onnx, sys",
    "from onnx import helper as h, TensorProto as T",
    "m = onnx.load(sys.argv[1]); g = m.graph; out = g.output[0]",
    "for n in g.node: n.output[:] = ['all_classes' if o == out.name else o for o in n.output]",
    "g.initializer.extend([h.make_tensor(k, T.INT64, [1], [v]) for k, v in (('cut_start', 0), ('cut_end', 7), ('cut_axis', 1))])",
    "g.node.append(h.make_node('Slice', ['all_classes', 'cut_start', 'cut_end', 'cut_axis'], [out.name]))",
    "out.type.tensor_type.shape.dim[1].dim_value = 7",
    "for p in m.metadata_props:",
    "    if p.key == 'names': p.value = sys.argv[3]",
    "onnx.checker.check_model(m); onnx.save(m, sys.argv[2])",
  ].join("\n");
  await exec("python3", ["-c", py, testdata(...YOLO), dest, `{${THREE.map((n, i) => `${i}: '${n}'`).join(", ")}}`]);
}

/** A model of the wrong layout: Ultralytics' NMS-free [1, 300, 6] output (onnx's helper builds it). */
async function buildNmsFreeModel(dest: string): Promise<void> {
  const py = [
    "import onnx, sys",
    "from onnx import helper as h, TensorProto as T",
    "x = h.make_tensor_value_info('images', T.FLOAT, [1, 3, 64, 64])",
    "y = h.make_tensor_value_info('output0', T.FLOAT, [1, 300, 6])",
    "c = h.make_node('Constant', [], ['output0'], value=h.make_tensor('v', T.FLOAT, [1, 300, 6], [0.0] * 1800))",
    "m = h.make_model(h.make_graph([c], 'nms_free', [x], [y]), opset_imports=[h.make_opsetid('', 13)]); m.ir_version = 8",
    "onnx.checker.check_model(m); onnx.save(m, sys.argv[1])",
  ].join("\n");
  await exec("python3", ["-c", py, dest]);
}

/**
 * An End2End model (NMS inside, as TensorRT's EfficientNMS exports give it) at 64 x 64 that always answers
 * one box, [16, 16, 48, 48] in its input, of class 1 at 0.8, with 2 class names in its metadata.
 */
async function buildEnd2EndModel(dest: string): Promise<void> {
  const py = [
    "import onnx, sys",
    "from onnx import helper as h, TensorProto as T",
    "x = h.make_tensor_value_info('images', T.FLOAT, [1, 3, 64, 64])",
    "outs = [('num_dets', T.INT32, [1, 1], [1]), ('det_boxes', T.FLOAT, [1, 100, 4], [16, 16, 48, 48] + [0] * 396),",
    "        ('det_scores', T.FLOAT, [1, 100], [0.8] + [0] * 99), ('det_classes', T.INT32, [1, 100], [1] + [0] * 99)]",
    "nodes = [h.make_node('Constant', [], [n], value=h.make_tensor(n + '_v', t, s, v)) for n, t, s, v in outs]",
    "g = h.make_graph(nodes, 'end2end', [x], [h.make_tensor_value_info(n, t, s) for n, t, s, _ in outs])",
    "m = h.make_model(g, opset_imports=[h.make_opsetid('', 13)]); m.ir_version = 8",
    "m.metadata_props.add(key='names', value=\"{0: 'alpha', 1: 'beta'}\")",
    "onnx.checker.check_model(m); onnx.save(m, sys.argv[1])",
  ].join("\n");
  await exec("python3", ["-c", py, dest]);
}

/** A profile in tmp/profiles whose detections model is `model` (as written: relative to that folder). */
function writeProfile(name: string, model: string, extra = ""): string {
  const path = join(profiles, `${name}.yaml`);
  writeFileSync(
    path,
    [
      "version: 1",
      `name: ${name}`,
      "backend:",
      "  embedded: {}",
      "analysis: { fps: 1, max_side: 640 }",
      "components:",
      "  core_object_detections:",
      `    model: ${model}`,
      "    tracker: { enabled: false }",
      ...(extra ? [extra] : []),
      "output: { report: false }",
      "",
    ].join("\n"),
  );
  return path;
}

/** `main` through the CLI, run from the repository (not the profile's folder). */
async function main(profile: string, out: string): Promise<{ code: number; stderr: string }> {
  try {
    const r = await exec("node", [CLI, "main", "--video", testdata(...PEOPLE), "--profile", profile, "--out", out, "--quiet", "--max-frames", String(FRAMES)], { cwd: repoRoot });
    return { code: 0, stderr: r.stderr };
  } catch (e) {
    const x = e as { code: number; stderr: string };
    return { code: x.code, stderr: x.stderr };
  }
}

interface Used {
  slot: string;
  name: string;
  family: string;
  output_format: string | null;
  class_names?: string[];
  contract: { inputs: unknown[]; outputs: unknown[] };
  calls: number;
}

describe("components.core_object_detections.model: a YOLO of your own, by file (embedded backend)", { skip, timeout: 300_000 }, () => {
  let real = "";
  let three = "";
  before(async () => {
    mkdirSync(profiles, { recursive: true });
    mkdirSync(models, { recursive: true });
    await buildThreeClassModel(join(models, "three.onnx"));
    // Both paths relative to the profile's folder, which is not the cwd `main` runs in.
    real = writeProfile("real", relative(profiles, testdata(...YOLO)));
    three = writeProfile("three", "../models/three.onnx");
  });

  test("main with the real YOLO11n int8: COCO's names from its metadata in detections.npz and models_used; persons found", async () => {
    const out = join(tmp.dir, "run-real");
    const r = await main(real, out);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const used = m.models_used as Used[];
    assert.equal(used.length, 1);
    const u = used[0]!;
    assert.equal(u.slot, "core_object_detections");
    assert.equal(u.family, "yolo");
    assert.equal(u.output_format, "raw");
    assert.equal(u.calls, FRAMES);
    assert.deepEqual(u.class_names, [...COCO80_NAMES]);
    assert.deepEqual(u.contract.inputs, [{ name: "images", datatype: "FP32", shape: [1, 3, 640, 640] }]);
    assert.deepEqual(u.contract.outputs, [{ name: "output0", datatype: "FP32", shape: [1, 84, 8400] }]);
    assert.equal(m.resolved_model_mapping.core_object_detections.reason, "named by components.core_object_detections");
    // The manifest's resolved profile holds the file as resolved from the profile's folder.
    assert.equal(m.profile.components.core_object_detections.model, testdata(...YOLO));

    const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
    assert.deepEqual(npz.class_names!.values, [...COCO80_NAMES]);
    const ids = npz.class_id!.values as number[];
    assert.ok(ids.filter((c) => c === 0).length >= 3, `persons in frames 7-9, got class ids ${ids.join(",")}`);
    assert.ok((npz.score!.values as number[]).every((s) => s >= 0.25 && s <= 1));
  });

  test("main with a 3-class model: its own names (ONNX metadata) in detections.npz and models_used, ids within them", async () => {
    const out = join(tmp.dir, "run-three");
    const r = await main(three, out);
    assert.equal(r.code, 0, r.stderr);
    const m = JSON.parse(readFileSync(join(out, "manifest.json"), "utf8"));
    const u = (m.models_used as Used[])[0]!;
    assert.deepEqual(u.class_names, THREE);
    assert.deepEqual(u.contract.outputs, [{ name: "output0", datatype: "FP32", shape: [1, 7, 8400] }]);
    const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
    assert.deepEqual(npz.class_names!.values, THREE);
    const ids = npz.class_id!.values as number[];
    assert.ok(ids.length >= 3 && ids.every((c) => c >= 0 && c < 3), `class ids ${ids.join(",")}`);
    // Class 0 is the real model's person row: the same persons, now called walkers.
    const real = await loadNpz(join(tmp.dir, "run-real", "core_object_detections", "detections.npz"));
    const persons = (real.class_id!.values as number[]).filter((c) => c === 0).length;
    assert.equal(ids.filter((c) => c === 0).length, persons);
  });

  test("mm.detect() names the classes by the model: bus and persons from the real one, walkers from the 3-class one", async () => {
    const bus = await readImageRgb(testdata("images", "bus.jpg"));
    const a = await ModelManager.fromProfile(real);
    try {
      const names = (await a.detect(bus)).toRecords().map((r) => r.className);
      assert.ok(names.includes("bus") && names.filter((n) => n === "person").length >= 3, names.join(", "));
      assert.deepEqual(a.modelsUsed()[0]!.class_names, [...COCO80_NAMES]);
    } finally {
      await a.close();
    }
    const b = await ModelManager.fromProfile(three);
    try {
      const d = await b.detect(bus);
      assert.deepEqual(d.classNames, THREE);
      const names = d.toRecords().map((r) => r.className);
      assert.ok(names.filter((n) => n === "walker").length >= 3, names.join(", "));
      assert.ok(names.every((n) => THREE.includes(n!)), names.join(", "));
    } finally {
      await b.close();
    }
  });

  test("an End2End model of one's own: its detections, its 2 names, boxes mapped back through the letterbox", async () => {
    await buildEnd2EndModel(join(models, "end2end.onnx"));
    const profile = writeProfile("end2end", "../models/end2end.onnx");
    const mm = await ModelManager.fromProfile(profile);
    try {
      const d = await mm.detect(await readImageRgb(testdata("images", "bus.jpg")));
      assert.deepEqual(d.classNames, ["alpha", "beta"]);
      const [r, ...rest] = d.toRecords();
      assert.equal(rest.length, 0);
      assert.equal(r!.className, "beta");
      assert.ok(Math.abs(r!.score - 0.8) < 1e-6);
      // bus.jpg (810 x 1080) in 64 x 64: scaled by 64/1080 to 48 x 64, 8 pixels of border left and right.
      const s = 64 / 1080;
      [(16 - 8) / s, 16 / s, (48 - 8) / s, 48 / s].forEach((v, i) => assert.ok(Math.abs(r!.box[i]! - v) < 1, `box ${r!.box} against ${v} at ${i}`));
      assert.equal(mm.modelsUsed()[0]!.output_format, "end2end");
    } finally {
      await mm.close();
    }
    const out = join(tmp.dir, "run-end2end");
    const r = await main(profile, out);
    assert.equal(r.code, 0, r.stderr);
    const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
    assert.deepEqual(npz.class_names!.values, ["alpha", "beta"]);
    assert.equal((npz.class_id!.values as number[]).length, FRAMES, "one box a frame");
    assert.ok((npz.class_id!.values as number[]).every((c) => c === 1));
  });

  test("a model of no YOLO layout is refused (CONTRACT_MISMATCH naming the key and the file), by main before any run folder, and by detect()", async () => {
    await buildNmsFreeModel(join(models, "nms_free.onnx"));
    const cases = [
      { profile: writeProfile("depth", join(repoRoot, "models", "contract", "midas_256.onnx")), file: join(repoRoot, "models", "contract", "midas_256.onnx"), shows: "predicted_depth FP32 [1,256,256]" },
      { profile: writeProfile("nms_free", "../models/nms_free.onnx"), file: join(models, "nms_free.onnx"), shows: "output0 FP32 [1,300,6]" },
    ];
    for (const c of cases) {
      const out = join(tmp.dir, `refused-${c.shows.length}`);
      const r = await main(c.profile, out);
      assert.equal(r.code, 1, r.stderr);
      assert.match(r.stderr, /^video-analysis: \[CONTRACT_MISMATCH\] /);
      assert.ok(r.stderr.includes(`${KEY}: ${c.file} is not a YOLO detector`), r.stderr);
      assert.ok(r.stderr.includes(c.shows), r.stderr);
      assert.doesNotMatch(r.stderr, /\n\s+at /, "no stack trace");
      assert.equal(existsSync(out), false, "no run folder");

      const mm = await ModelManager.fromProfile(c.profile);
      try {
        await assert.rejects(
          mm.detect(await readImageRgb(testdata("images", "bus.jpg"))),
          (e: unknown) => e instanceof VideoAnalysisError && e.code === "CONTRACT_MISMATCH" && e.details.key === KEY && e.details.file === c.file,
        );
      } finally {
        await mm.close();
      }
    }
  });

  test("a missing file is NOT_FOUND naming the key; catalog settings beside model are PROFILE_INVALID", async () => {
    const missing = writeProfile("missing", "../models/nowhere.onnx");
    const r = await main(missing, join(tmp.dir, "missing-run"));
    assert.equal(r.code, 1);
    assert.ok(r.stderr.includes(`[NOT_FOUND] core_object_detections: components.core_object_detections: its model file ${join(models, "nowhere.onnx")} does not exist`), r.stderr);

    const routed = writeProfile("routed", "../models/three.onnx", "    branches: [640]");
    await assert.rejects(ModelManager.fromProfile(routed), (e: unknown) => e instanceof VideoAnalysisError && e.code === "PROFILE_INVALID" && /components\.core_object_detections\.branches: expected no branches beside model/.test(e.message));
  });
});
