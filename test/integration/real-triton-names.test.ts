/**
 * Class names of a YOLO model on Triton come from the model's config: NVIDIA's real tritonserver serves the
 * committed YOLO11x repository with `parameters { key: "names" }` added (an Ultralytics dict literal on the
 * yolo11x_640 ensemble, a JSON list on the yolo11x_320_onnx step), and `main`'s detections.npz and
 * `mm.detect()` name the classes by it, as they do from ONNX metadata on the embedded backend.
 */
import assert from "node:assert/strict";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { configClassNames } from "../../src/detections/class-names.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import type { ProfileInput } from "../../src/profiles/index.js";
import { readImageRgb } from "../../src/preprocess/decode-image.js";
import { TritonClient } from "../../src/triton/client.js";
import { loadNpz } from "../pipeline/support.js";
import { buildTestRepository, startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const NAMES_640 = Array.from({ length: 80 }, (_, i) => `thing ${i}`);
const NAMES_320 = Array.from({ length: 80 }, (_, i) => `kind-${i}`);
const parameter = (text: string) => `parameters { key: "names" value { string_value: ${JSON.stringify(text)} } }\n`;

/** The committed YOLO11x models (ensembles, preprocess, _onnx), with names in two configs. */
function build(dest: string): string[] {
  const src = mkdtempSync(join(tmpdir(), "vasdk-names-src-"));
  try {
    for (const s of [320, 640]) for (const m of [`yolo11x_${s}`, `preprocess_yolo11x_${s}`, `yolo11x_${s}_onnx`]) cpSync(join(repoRoot, "triton/models", m), join(src, m), { recursive: true });
    const models = buildTestRepository(dest, src);
    const ensemble = join(dest, "yolo11x_640/config.pbtxt");
    writeFileSync(ensemble, readFileSync(ensemble, "utf8") + parameter(`{${NAMES_640.map((n, i) => `${i}: '${n}'`).join(", ")}}`));
    const step = join(dest, "yolo11x_320_onnx/config.pbtxt");
    writeFileSync(step, readFileSync(step, "utf8") + parameter(JSON.stringify(NAMES_320)));
    return models;
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

let server: RealTriton | undefined;
let skip: string | false = skipUnlessTestdata("video/cars_768x432_12fps.mp4") || skipUnlessTestdata("images/bus.jpg");
if (!skip) {
  const r = await startRealTriton({ build });
  if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
}
if (skip) console.log(`# class-name tests skipped: ${skip}`);
const work = mkdtempSync(join(tmpdir(), "vasdk-names-"));
after(async () => {
  await server?.stop();
  rmSync(work, { recursive: true, force: true });
});

test("configClassNames reads the names parameter of a model, or of an ensemble's step; none where there is none", { skip }, async () => {
  const client = await TritonClient.create({ url: server!.address });
  try {
    assert.deepEqual(await configClassNames(client, "yolo11x_640"), NAMES_640);
    assert.deepEqual(await configClassNames(client, "yolo11x_320"), NAMES_320);
    assert.equal(await configClassNames(client, "preprocess_yolo11x_640"), undefined);
    assert.equal(await configClassNames(client, "no_such_model"), undefined);
  } finally {
    await client.close();
  }
});

test("main's detections.npz and mm.detect() name the classes by the model's Triton config", { skip }, async () => {
  const overrides = { backend: { triton: { url: server!.address } }, components: { core_object_detections: { branches: [640], detection: { conf: 0.01 }, tracker: { enabled: false } } } };
  const mm = await ModelManager.fromProfile(join(repoRoot, "test/smoke/yolo_only.yaml"), { overrides });
  try {
    const out = join(work, "run");
    await mm.run(testdata("video", "cars_768x432_12fps.mp4"), { out, maxFrames: 3 });
    const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
    assert.deepEqual(npz.class_names!.values, NAMES_640);

    const found = await mm.detect(await readImageRgb(testdata("images", "bus.jpg")));
    assert.ok(found.length > 0, "the contract model finds something at conf 0.01");
    const records = found.toRecords();
    assert.ok(records.every((r) => r.className === `thing ${r.classId}`), JSON.stringify(records.slice(0, 3)));
  } finally {
    await mm.close();
  }
});

test("components.core_object_detections.model names a server model of one's own (a raw export): its config's names reach main and detect()", { skip }, async () => {
  // yolo11x_320_onnx is the raw YOLO export (FP32 NCHW in, [1,84,2100] out) with the JSON list of names:
  // called as named, fed x/255 by the client, no routing.
  const profile: ProfileInput = {
    version: 1,
    name: "own_yolo_on_triton",
    backend: { triton: { url: server!.address } },
    components: { core_object_detections: { model: "yolo11x_320_onnx", detection: { conf: 0.01 }, tracker: { enabled: false } } },
    output: { report: false },
  };
  const mm = await ModelManager.fromProfile(profile);
  try {
    const out = join(work, "own-run");
    const { manifest } = await mm.run(testdata("video", "cars_768x432_12fps.mp4"), { out, maxFrames: 3 });
    const used = manifest.models_used;
    assert.equal(used.length, 1);
    assert.equal(used[0]!.name, "yolo11x_320_onnx");
    assert.equal(used[0]!.output_format, "raw");
    assert.deepEqual(used[0]!.class_names, NAMES_320);
    assert.deepEqual(used[0]!.contract.inputs, [{ name: "images", datatype: "FP32", shape: [1, 3, 320, 320] }]);
    assert.equal(manifest.resolved_model_mapping["core_object_detections"]!.reason, "named by components.core_object_detections");
    const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
    assert.deepEqual(npz.class_names!.values, NAMES_320);

    const found = await mm.detect(await readImageRgb(testdata("images", "bus.jpg")));
    assert.ok(found.length > 0, "the contract model finds something at conf 0.01");
    assert.ok(found.toRecords().every((r) => r.className === `kind-${r.classId}`));
  } finally {
    await mm.close();
  }
});
