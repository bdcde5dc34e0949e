import assert from "node:assert/strict";
import { join } from "node:path";
import { test } from "node:test";
import { isVideoAnalysisError } from "../../src/errors.js";
import { loadProfile, parseProfile } from "../../src/profiles/index.js";
import { letterboxGeometry, resolveModelMapping, routableModels, type VideoMetadata } from "../../src/routing/index.js";
import { repoRoot } from "../support/testdata.js";

/** Every branch enabled, YOLO 960 included, no fallbacks: the bare rules. */
const ALL = parseProfile(
  `version: 1
name: all
backend: { triton: { url: "x:1" } }
components:
  core_depth_midas: {}
  core_optical_flow: {}
  core_clip: { branches: [224, 336, 448], prompts: [a dog] }
  scene: { branches: [224, 336, 448] }
  core_object_detections: { branches: [320, 640, 960] }
`,
  "all.yaml",
  { env: {} },
);

const baselineYolo = await loadProfile(join(repoRoot, "profiles/baseline_gpu_yolo.yaml"), { env: {} });

const phone: VideoMetadata = { width: 1920, height: 1080, rotation: 90 };

// video -> analysis size, then per profile: depth, flow, clip image, scene, detections.
const TABLE: Array<{ video: VideoMetadata; label: string; analysis: string; all: string; baseline: string }> = [
  { video: { width: 1920, height: 1080 }, label: "1920x1080", analysis: "1920x1080",
    all: "midas_512 raft_512 clip_image_448 places365_resnet50_448 yolo11x_960",
    baseline: "midas_512 raft_256 clip_image_224 places365_resnet50_224 yolo11x_640" },
  { video: { width: 1280, height: 720 }, label: "1280x720", analysis: "1280x720",
    all: "midas_512 raft_512 clip_image_448 places365_resnet50_448 yolo11x_960",
    baseline: "midas_512 raft_256 clip_image_224 places365_resnet50_224 yolo11x_640" },
  { video: { width: 854, height: 480 }, label: "854x480", analysis: "854x480",
    all: "midas_512 raft_512 clip_image_448 places365_resnet50_448 yolo11x_640",
    baseline: "midas_512 raft_256 clip_image_224 places365_resnet50_224 yolo11x_640" },
  { video: { width: 640, height: 360 }, label: "640x360", analysis: "640x360",
    all: "midas_512 raft_512 clip_image_448 places365_resnet50_448 yolo11x_640",
    baseline: "midas_512 raft_256 clip_image_224 places365_resnet50_224 yolo11x_640" },
  { video: { width: 426, height: 240 }, label: "426x240", analysis: "426x240",
    all: "midas_384 raft_384 clip_image_336 places365_resnet50_336 yolo11x_320",
    baseline: "midas_384 raft_256 clip_image_224 places365_resnet50_224 yolo11x_320" },
  { video: { width: 320, height: 240 }, label: "320x240", analysis: "320x240",
    all: "midas_256 raft_256 clip_image_224 places365_resnet50_224 yolo11x_320",
    baseline: "midas_256 raft_256 clip_image_224 places365_resnet50_224 yolo11x_320" },
  { video: phone, label: "phone 1080x1920 (stored 1920x1080, rotation 90)", analysis: "1080x1920",
    all: "midas_512 raft_512 clip_image_448 places365_resnet50_448 yolo11x_960",
    baseline: "midas_512 raft_256 clip_image_224 places365_resnet50_224 yolo11x_640" },
];

const SLOTS = ["core_depth_midas", "core_optical_flow", "core_clip.image", "scene", "core_object_detections"];

for (const row of TABLE) {
  test(`route: ${row.label}`, () => {
    for (const [profile, want] of [[ALL, row.all], [baselineYolo, row.baseline]] as const) {
      const r = resolveModelMapping(row.video, profile);
      assert.equal(`${r.analysis.width}x${r.analysis.height}`, row.analysis);
      const got = SLOTS.map((s) => r.resolved_model_mapping[s]!.model).join(" ");
      assert.equal(got, want, `${profile.name}: ${row.label}`);
      assert.equal(r.resolved_model_mapping["core_clip.text"]!.model, "clip_text");
      for (const m of Object.values(r.resolved_model_mapping)) assert.equal(m.ready, null, "readiness unchecked");
    }
  });
}

test("route: the baseline's fallbacks are recorded", () => {
  const m = resolveModelMapping({ width: 1920, height: 1080 }, baselineYolo).resolved_model_mapping;
  assert.equal(m.core_optical_flow!.wanted, "raft_512");
  assert.deepEqual(m.core_optical_flow!.fallbacks, [{ from: "raft_512", to: "raft_256", because: "disabled" }]);
  assert.deepEqual(m.core_depth_midas!.fallbacks, []);
  assert.equal(m.core_depth_midas!.size, "large");
  assert.equal(m.core_depth_midas!.input_size, 512);
});

test("route: a phone video is the same stored either way, and letterboxes upright", () => {
  const a = resolveModelMapping(phone, baselineYolo);
  const b = resolveModelMapping({ width: 1080, height: 1920 }, baselineYolo);
  assert.deepEqual(a.analysis, b.analysis);
  assert.deepEqual(a.video, { width: 1920, height: 1080, rotation: 90 });
  assert.deepEqual(resolveModelMapping({ ...phone, rotation: -90 }, baselineYolo).analysis, a.analysis);
  const lb = a.resolved_model_mapping.core_object_detections!.letterbox!;
  assert.deepEqual(lb, { scale: 1 / 3, width: 360, height: 640, pad_left: 140, pad_top: 0, pad_right: 140, pad_bottom: 0, pad_value: 114 });
});

test("route: YOLO never upscales: a small frame is padded in the smallest branch", () => {
  const r = resolveModelMapping({ width: 200, height: 150 }, ALL).resolved_model_mapping.core_object_detections!;
  assert.equal(r.model, "yolo11x_320");
  assert.deepEqual(letterboxGeometry(200, 150, 320), { scale: 1, width: 200, height: 150, pad_left: 60, pad_top: 85, pad_right: 60, pad_bottom: 85, pad_value: 114 });
  assert.equal(letterboxGeometry(1920, 1080, 640).pad_top, 140);
  assert.match(r.reason, /never upscaled/);
});

test("route: YOLO 960 only when enabled, even for 4K", () => {
  const r = resolveModelMapping({ width: 3840, height: 2160 }, baselineYolo).resolved_model_mapping.core_object_detections!;
  assert.equal(r.model, "yolo11x_640");
  assert.match(r.reason, /960 not enabled/);
});

test("route: analysis.max_side scales the frame down (never up) before routing", () => {
  const p = parseProfile(`version: 1
name: s
backend: { triton: { url: "x:1" } }
analysis: { max_side: 400 }
components: { core_depth_midas: {}, core_object_detections: {} }
`, "s.yaml", { env: {} });
  const r = resolveModelMapping({ width: 1920, height: 1080 }, p);
  assert.deepEqual(r.analysis, { width: 400, height: 225, longer_side: 400 });
  assert.equal(r.resolved_model_mapping.core_depth_midas!.model, "midas_384");
  assert.equal(r.resolved_model_mapping.core_object_detections!.model, "yolo11x_320");
  assert.equal(resolveModelMapping({ width: 320, height: 240 }, p).analysis.width, 320);
});

test("route: per-profile and per-component thresholds", () => {
  const p = parseProfile(`version: 1
name: t
backend: { triton: { url: "x:1" } }
routing: { thresholds: { small: 640, medium: 1280 } }
components:
  core_depth_midas: {}
  core_optical_flow: { thresholds: { small: 100, medium: 200 } }
`, "t.yaml", { env: {} });
  const m = resolveModelMapping({ width: 1280, height: 720 }, p).resolved_model_mapping;
  assert.equal(m.core_depth_midas!.model, "midas_384");
  assert.equal(m.core_optical_flow!.model, "raft_512");
});

test("route: a disabled branch without a fallback rule stops with a clear error", () => {
  const p = parseProfile(`version: 1
name: d
backend: { triton: { url: "x:1" } }
components: { core_optical_flow: { branches: [256] } }
`, "d.yaml", { env: {} });
  assert.throws(
    () => resolveModelMapping({ width: 1280, height: 720 }, p),
    (e: unknown) =>
      isVideoAnalysisError(e) && e.code === "ROUTING_FAILED" && e.model === "raft_512" &&
      /needs raft_512, which the profile disables \(components.core_optical_flow.branches: 256\)/.test(e.message) &&
      /routing.fallbacks/.test(e.message),
  );
  assert.equal(resolveModelMapping({ width: 320, height: 240 }, p).resolved_model_mapping.core_optical_flow!.model, "raft_256");
});

test("route: a branch that is not READY falls back only by an explicit rule", () => {
  const p = parseProfile(`version: 1
name: r
backend: { triton: { url: "x:1" } }
routing:
  fallbacks:
    - { from: midas_512, to: midas_384, when: [not_ready] }
    - { from: midas_384, to: midas_256 }
    - { from: raft_512, to: raft_256, when: [disabled] }
model_names: { midas_256: depth_small }
components: { core_depth_midas: {}, core_optical_flow: {} }
`, "r.yaml", { env: {} });
  const notReady = new Set(["midas_512", "midas_384"]);
  const m = resolveModelMapping({ width: 1920, height: 1080 }, p, { ready: (n) => !notReady.has(n) && n !== "raft_512_gone" }).resolved_model_mapping;
  assert.equal(m.core_depth_midas!.model, "midas_256");
  assert.equal(m.core_depth_midas!.server_model, "depth_small");
  assert.deepEqual(m.core_depth_midas!.fallbacks.map((f) => `${f.from}->${f.to}:${f.because}`), ["midas_512->midas_384:not_ready", "midas_384->midas_256:not_ready"]);
  assert.equal(m.core_depth_midas!.ready, true);

  // raft_512's rule is for `disabled` only: not READY, it stops.
  assert.throws(
    () => resolveModelMapping({ width: 1920, height: 1080 }, p, { ready: (n) => n !== "raft_512" }),
    (e: unknown) => isVideoAnalysisError(e) && e.code === "ROUTING_FAILED" && /raft_512, which is not READY on the server/.test(e.message) && /smoke/.test(e.message),
  );
});

test("route: fallback loops are refused", () => {
  const p = parseProfile(`version: 1
name: l
backend: { triton: { url: "x:1" } }
routing:
  fallbacks:
    - { from: midas_512, to: midas_384 }
    - { from: midas_384, to: midas_512 }
components: { core_depth_midas: { branches: [256] } }
`, "l.yaml", { env: {} });
  assert.throws(() => resolveModelMapping({ width: 1920, height: 1080 }, p), /fallback rules loop: midas_512 -> midas_384 -> midas_512/);
});

test("route: bad video metadata is VIDEO_INVALID", () => {
  assert.throws(() => resolveModelMapping({ width: 0, height: 10 }, ALL), (e: unknown) => isVideoAnalysisError(e) && e.code === "VIDEO_INVALID");
  assert.throws(() => resolveModelMapping({ width: 10, height: 10, rotation: 45 }, ALL), /multiple of 90/);
});

test("route: routableModels lists enabled branches and fallback targets", () => {
  const names = routableModels(baselineYolo).map((m) => m.name).sort();
  assert.deepEqual(names, ["clip_image_224", "clip_text", "midas_256", "midas_384", "midas_512", "places365_resnet50_224", "raft_256", "yolo11x_320", "yolo11x_640"]);
});
