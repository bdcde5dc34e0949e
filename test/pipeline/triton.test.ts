// `main` through the Triton gRPC backend, against the in-process test server serving the catalog's
// repository (ensembles computed by the contract models): server names, readiness, End2End YOLO.
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { VideoAnalysisError } from "../../src/errors.js";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { tensor } from "../../src/tensor.js";
import { catalogRepository } from "../smoke/catalog-server.js";
import { TestServer, type TestModel } from "../support/test-server.js";
import { repoRoot } from "../support/testdata.js";
import { filesUnder, loadNpz, makeVideo, tempDir } from "./support.js";

const PROFILE = join(repoRoot, "profiles", "baseline_gpu_yolo.yaml");
const tmp = tempDir("va-triton-");
let server: TestServer;
let closeRepo: () => Promise<void>;
let small: string;
let wide: string;

/** An End2End YOLO engine at 320: one person at input pixels (50, 120)-(100, 170), score 0.9, every frame. */
const end2end320: TestModel = {
  name: "yolo11x_320",
  platform: "ensemble",
  inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 320, 320, 3] }],
  outputs: [
    { name: "num_dets", datatype: "INT32", shape: [1] },
    { name: "det_boxes", datatype: "FP32", shape: [100, 4] },
    { name: "det_scores", datatype: "FP32", shape: [100] },
    { name: "det_classes", datatype: "INT32", shape: [100] },
  ],
  compute: (inputs) => {
    const px = inputs.INPUT__0!.data as Uint8Array;
    // The letterbox pads rows 0..69 with 114 (320x180 in 320x320).
    assert.equal(px[0], 114);
    const boxes = new Float32Array(400);
    boxes.set([50, 120, 100, 170]);
    const scores = new Float32Array(100);
    scores[0] = 0.9;
    return {
      num_dets: tensor("num_dets", "INT32", [1], Int32Array.of(1)),
      det_boxes: tensor("det_boxes", "FP32", [100, 4], boxes),
      det_scores: tensor("det_scores", "FP32", [100], scores),
      det_classes: tensor("det_classes", "INT32", [100], new Int32Array(100)),
    };
  },
};

before(async () => {
  small = makeVideo(tmp.dir, "small.mp4", { size: "320x180", rate: 10, seconds: 2, pattern: "testsrc2" });
  wide = makeVideo(tmp.dir, "wide.mp4", { size: "640x360", rate: 10, seconds: 2, pattern: "testsrc2" });
  const repo = await catalogRepository();
  closeRepo = repo.close;
  // One model under another name on the server, as a profile's model_names maps it.
  const renamed = repo.models.map((m) => (m.name === "midas_256" ? { ...m, name: "depth_small" } : m));
  server = await TestServer.start({ models: [...renamed, { ...end2end320, name: "yolo11x_320_e2e" }] });
});
after(async () => {
  await server.stop();
  await closeRepo();
  tmp.cleanup();
});

const overrides = (extra: Record<string, unknown> = {}) => ({
  backend: { triton: { url: server.address } },
  model_names: { midas_256: "depth_small" },
  ...extra,
});

describe("main over Triton gRPC", () => {
  test("every artifact; models_used names the server's model, the branch, the endpoint and the version", async () => {
    const mm = await ModelManager.fromProfile(PROFILE, { overrides: overrides() });
    try {
      const out = join(tmp.dir, "run");
      const r = await mm.run(small, { out });
      assert.equal(r.manifest.analysis.frames, 4);
      assert.equal(filesUnder(out).length, 7); // 5 artifacts, manifest.json, report.html
      const used = Object.fromEntries(r.manifest.models_used.map((u) => [u.slot, u]));
      assert.equal(used.core_depth_midas!.name, "depth_small");
      assert.equal(used.core_depth_midas!.branch, "midas_256");
      assert.equal(used.core_object_detections!.branch, "yolo11x_320");
      for (const u of r.manifest.models_used) {
        assert.equal(u.backend, "triton");
        assert.equal(u.endpoint, server.address);
        assert.equal(u.version, "1");
        assert.deepEqual(u.contract.inputs[0]!.datatype === "UINT8" || u.slot === "core_clip.text", true);
      }
      assert.equal(r.manifest.resolved_model_mapping.core_depth_midas!.server_model, "depth_small");
    } finally {
      await mm.close();
    }
  });

  test("a branch that is not READY and has no fallback: ROUTING_FAILED before anything is written", async () => {
    server.setReady("places365_resnet50_224", false);
    const mm = await ModelManager.fromProfile(PROFILE, { overrides: overrides({ routing: { fallbacks: [] } }) });
    const out = join(tmp.dir, "not-ready");
    try {
      await assert.rejects(mm.run(small, { out }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "ROUTING_FAILED" && /places365_resnet50_224/.test(e.message) && /not READY/.test(e.message));
      assert.deepEqual(filesUnder(out), []);
    } finally {
      server.setReady("places365_resnet50_224", true);
      await mm.close();
    }
  });

  test("End2End YOLO: the engine's boxes mapped back through the letterbox and the analysis scale, then tracked", async () => {
    const mm = await ModelManager.fromProfile(PROFILE, {
      overrides: overrides({
        analysis: { max_side: 320 },
        model_names: { midas_256: "depth_small", yolo11x_320: "yolo11x_320_e2e" },
        components: { core_object_detections: { output_format: "end2end" } },
      }),
    });
    try {
      const out = join(tmp.dir, "e2e");
      const r = await mm.run(wide, { out });
      const det = r.manifest.models_used.find((u) => u.slot === "core_object_detections")!;
      assert.equal(det.output_format, "end2end");
      assert.deepEqual(det.contract.outputs.map((o) => o.name), ["num_dets", "det_boxes", "det_scores", "det_classes"]);
      const npz = await loadNpz(join(out, "core_object_detections", "detections.npz"));
      assert.deepEqual(npz.frame_index!.values, [0, 1, 2, 3]);
      // Input (50, 120)-(100, 170) -> analysis frame 320x180 (pad top 70) (50, 50)-(100, 100) -> video 640x360, x2.
      assert.deepEqual(npz.box!.values.slice(0, 4), [100, 100, 200, 200]);
      assert.deepEqual(npz.source_size!.values, [640, 360]);
      assert.deepEqual(new Set(npz.track_id!.values), new Set([1]));
      assert.equal(JSON.parse(readFileSync(join(out, "manifest.json"), "utf8")).resolved_model_mapping.core_object_detections.model, "yolo11x_320");
    } finally {
      await mm.close();
    }
  });
});
