import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { isVideoAnalysisError } from "../../src/errors.js";
import { embeddedModelPath, embeddedWorkers, loadProfile, preprocessWorkers, parseProfile, serverModelName, substituteEnv, type LocatedIssue } from "../../src/profiles/index.js";
import { repoRoot } from "../support/testdata.js";

const dir = mkdtempSync(join(tmpdir(), "profiles-test-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes a profile to a temp file and returns its path. */
function write(name: string, text: string): string {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
}

/** The 1-based line of the first line containing `marker`. */
function lineOf(text: string, marker: string): number {
  const i = text.split("\n").findIndex((l) => l.includes(marker));
  assert.ok(i >= 0, `marker ${marker} is in the text`);
  return i + 1;
}

/** Loads and expects PROFILE_INVALID; returns its first issue. */
async function invalid(file: string, env: Record<string, string> = {}): Promise<LocatedIssue & { text: string }> {
  try {
    await loadProfile(file, { env });
  } catch (e) {
    assert.ok(isVideoAnalysisError(e), `a VideoAnalysisError, got ${e}`);
    assert.equal(e.code, "PROFILE_INVALID");
    const issues = e.details.issues as LocatedIssue[];
    assert.ok(issues.length >= 1);
    return { ...issues[0]!, text: e.message };
  }
  assert.fail(`${file} was accepted`);
}

const HEAD = `version: 1
name: t
backend:
  triton:
    url: localhost:8001
`;

test("profiles: the shipped profiles load, with defaults and ${VAR:-default}", async () => {
  const gpu = await loadProfile(join(repoRoot, "profiles/baseline_gpu.yaml"), { env: {} });
  assert.equal(gpu.backend.triton!.url, "localhost:8001");
  assert.equal(gpu.backend.triton!.deadline_ms, 60000);
  assert.equal(gpu.components.core_clip!.prompts.length, 29);
  assert.equal(gpu.components.core_object_detections, undefined);
  assert.deepEqual(Object.keys(gpu.components).sort(), ["core_clip", "core_depth_midas", "core_optical_flow", "scene"]);

  const yolo = await loadProfile(join(repoRoot, "profiles/baseline_gpu_yolo.yaml"), { env: { TRITON_GRPC_URL: "gpu:9001", TRITON_DEADLINE_MS: "1500" } });
  assert.equal(yolo.backend.triton!.url, "gpu:9001");
  assert.equal(yolo.backend.triton!.deadline_ms, 1500, "an unquoted ${VAR} is re-read as a number");
  const det = yolo.components.core_object_detections!;
  assert.equal(det.architecture, "yolo11x");
  assert.deepEqual(det.branches, [320, 640]);
  assert.equal(det.detection.iou, 0.7);
  assert.equal(det.tracker.variant, "default");
  // The parsed profile holds every tracker knob resolved from the variant, for the manifest.
  assert.deepEqual(
    [det.tracker.box, det.tracker.kalman, det.tracker.match_on, det.tracker.fuse_score, det.tracker.high_thresh, det.tracker.low_thresh],
    ["detection", "xywh", "prediction", true, 0.6, 0.1],
  );
  assert.equal(serverModelName(yolo, "yolo11x_640"), "yolo11x_640");

  const cpu = await loadProfile(join(repoRoot, "profiles/embedded_cpu.yaml"), { env: {} });
  assert.equal(embeddedModelPath(cpu, "midas_256"), join(repoRoot, "models/contract/midas_256.onnx"));
  assert.equal(cpu.components.core_object_detections!.architecture, "yolo11n");
  assert.equal(cpu.components.core_object_detections!.tracker.track_buffer, 30, "defaults fill omitted settings");
});

test("profiles: broken YAML names file, key path and line", async () => {
  const text = `${HEAD}    deadline_ms: 5
   retries: 2
components:
  scene: {}
`;
  const file = write("bad-yaml.yaml", text);
  const e = await invalid(file);
  assert.equal(e.file, file);
  assert.equal(e.line, lineOf(text, "retries: 2"));
  assert.equal(e.keyPath, "backend.retries");
  assert.match(e.message, /not valid YAML \(BAD_INDENT\)/);
  assert.ok(e.text.startsWith(`profile ${file}:${e.line}:`), e.text);
});

test("profiles: a value of the wrong type names file, key path, line and what was expected", async () => {
  const text = `${HEAD}    deadline_ms: soon
components:
  scene: {}
`;
  const file = write("wrong-type.yaml", text);
  const e = await invalid(file);
  assert.equal(e.file, file);
  assert.equal(e.keyPath, "backend.triton.deadline_ms");
  assert.equal(e.line, lineOf(text, "deadline_ms: soon"));
  assert.equal(e.message, 'expected a number, got "soon"');
});

test("profiles: an unknown key is an error naming the keys allowed there", async () => {
  const text = `${HEAD}components:
  scene:
    enabled: true
    topk: 3
`;
  const file = write("unknown-key.yaml", text);
  const e = await invalid(file);
  assert.equal(e.file, file);
  assert.equal(e.keyPath, "components.scene.topk");
  assert.equal(e.line, lineOf(text, "topk: 3"));
  assert.match(e.message, /unknown key "topk"; expected one of: .*top_k/);
});

test("profiles: a missing environment variable without default names the key and line", async () => {
  const text = `version: 1
name: t
backend:
  triton:
    url: \${VIDEO_SDK_TEST_UNSET_URL}
components:
  scene: {}
`;
  const file = write("missing-env.yaml", text);
  const e = await invalid(file, {});
  assert.equal(e.file, file);
  assert.equal(e.keyPath, "backend.triton.url");
  assert.equal(e.line, lineOf(text, "VIDEO_SDK_TEST_UNSET_URL"));
  assert.match(e.message, /environment variable VIDEO_SDK_TEST_UNSET_URL is not set and has no default/);
  // Set, it is substituted.
  const p = await loadProfile(file, { env: { VIDEO_SDK_TEST_UNSET_URL: "h:1" } });
  assert.equal(p.backend.triton!.url, "h:1");
});

test("profiles: a quoted ${VAR} stays a string, and errors say where the value came from", async () => {
  const text = `${HEAD}    deadline_ms: "\${DL:-100}"
components:
  scene: {}
`;
  const e = await invalid(write("quoted-env.yaml", text));
  assert.equal(e.keyPath, "backend.triton.deadline_ms");
  assert.equal(e.message, 'expected a number, got "100" (from ${DL:-100})');
});

test("profiles: names and sizes are checked against the catalog, at their line", async () => {
  const text = `${HEAD}routing:
  fallbacks:
    - { from: raft_512, to: raft_265 }
components:
  core_depth_midas:
    branches: [256, 300]
  core_object_detections:
    architecture: yolo11q
`;
  const file = write("catalog.yaml", text);
  try {
    await loadProfile(file, { env: {} });
    assert.fail("accepted");
  } catch (e) {
    assert.ok(isVideoAnalysisError(e));
    const issues = e.details.issues as LocatedIssue[];
    const by = Object.fromEntries(issues.map((i) => [i.keyPath, i]));
    assert.equal(by["routing.fallbacks[0].to"]?.line, lineOf(text, "raft_265"));
    assert.match(by["routing.fallbacks[0].to"]!.message, /did you mean "raft_256"/);
    assert.equal(by["components.core_depth_midas.branches[1]"]?.line, lineOf(text, "[256, 300]"));
    assert.match(by["components.core_depth_midas.branches[1]"]!.message, /one of 256, 384, 512, got 300/);
    assert.equal(by["components.core_object_detections.architecture"]?.line, lineOf(text, "yolo11q"));
    assert.match(e.message, /has 3 problems/);
  }
});

test("profiles: a missing required key points at its parent's line", async () => {
  const text = `version: 1
name: t
backend:
  triton:
    url: x:1
components:
  core_clip:
    top_k: 2
`;
  const e = await invalid(write("missing-key.yaml", text));
  assert.equal(e.keyPath, "components.core_clip.prompts");
  assert.equal(e.line, lineOf(text, "core_clip:"));
  assert.equal(e.message, "expected a list, but the key is missing");
});

test("profiles: exactly one backend, exactly one of url/urls", async () => {
  const both = parseProfile.bind(null, `version: 1
name: t
backend:
  triton: { url: a:1, urls: [b:1] }
components: { scene: {} }
`, "both.yaml", { env: {} });
  assert.throws(both, (e: unknown) => isVideoAnalysisError(e) && e.details.keyPath === "backend.triton" && /exactly one of "url" or "urls"/.test(e.message));
});

test("profiles: embedded and fitting workers: a number, or auto by the cores", () => {
  const profile = (workers: string) => parseProfile(`version: 1\nname: t\nbackend:\n  embedded: { models_dir: m${workers} }\ncomponents: { scene: {} }\n`, "w.yaml", { env: {} });
  const auto = profile("");
  assert.equal(auto.backend.embedded!.workers, "auto");
  assert.deepEqual([1, 2, 4, 7, 8, 16, 64].map((cores) => embeddedWorkers(auto, cores)), [1, 1, 1, 1, 2, 4, 4]);
  assert.equal(embeddedWorkers(profile(", workers: 3"), 2), 3);
  // Fitting workers: none below 8 cores, then one per 8 cores, at most 2; 0 turns them off.
  assert.deepEqual([2, 7, 8, 15, 16, 64].map((cores) => preprocessWorkers(auto, cores)), [0, 0, 1, 1, 2, 2]);
  assert.equal(preprocessWorkers(parseProfile(`version: 1\nname: t\nbackend:\n  embedded: { models_dir: m }\nconcurrency: { preprocess_workers: 0 }\ncomponents: { scene: {} }\n`, "w.yaml", { env: {} }), 64), 0);
  for (const bad of ["0", "many", "1.5"]) {
    assert.throws(() => profile(`, workers: ${bad}`), (e: unknown) => isVideoAnalysisError(e) && e.details.keyPath === "backend.embedded.workers", bad);
  }
});

test("profiles: substituteEnv follows the shell: default when unset or empty, $$ for $", () => {
  assert.deepEqual(substituteEnv("${A:-x}-${B}", { B: "b" }), { value: "x-b", missing: [], used: ["A", "B"] });
  assert.equal(substituteEnv("${A:-x}", { A: "" }).value, "x");
  assert.equal(substituteEnv("$${A}", { A: "no" }).value, "${A}");
  assert.deepEqual(substituteEnv("${NOPE}", {}).missing, ["NOPE"]);
});

test("track D settings: input jpeg with its quality and tier; raw output is refused with a located message", () => {
  const yaml = (det: string) => `version: 1\nname: t\nbackend:\n  triton: { url: "h:1" }\ncomponents:\n  core_object_detections: ${det}\n`;
  const p = parseProfile(yaml("{ output_format: end2end, input: jpeg, jpeg_quality: 80, tier: streaming }"), "d.yaml", { env: {} });
  const d = p.components.core_object_detections!;
  assert.deepEqual([d.input, d.jpeg_quality, d.tier], ["jpeg", 80, "streaming"]);
  const defaults = parseProfile(yaml("{}"), "d.yaml", { env: {} }).components.core_object_detections!;
  assert.deepEqual([defaults.input, defaults.jpeg_quality, defaults.tier], ["pixels", 90, "balanced"]);
  assert.throws(
    () => parseProfile(yaml("{ input: jpeg }"), "d.yaml", { env: {} }),
    (e: unknown) => isVideoAnalysisError(e) && /core_object_detections\.input/.test(e.message) && /output_format: end2end/.test(e.message),
  );
  assert.throws(() => parseProfile(yaml("{ output_format: end2end, input: jpeg, tier: fastest }"), "d.yaml", { env: {} }), (e: unknown) => isVideoAnalysisError(e) && /tier/.test(e.message));
});

test("overrides: a bad value they set is reported as theirs (no line); a bad value of the file at its own line, not the rewritten text's", async () => {
  const { resolveProfile } = await import("../../src/pipeline/profile-source.js");
  const dir = mkdtempSync(join(tmpdir(), "vasdk-ov-"));
  try {
    const file = join(dir, "p.yaml");
    const text = ["version: 1", "name: ov", "backend:", "  embedded: { models_dir: m }", "analysis:", "  fps: 2", "components:", "  scene:", "    top_k: 3", "output:", "  float16: maybe", ""].join("\n");
    writeFileSync(file, text);
    const error = async (overrides: Record<string, unknown>) => {
      try {
        await resolveProfile(file, { overrides, env: {} });
      } catch (e) {
        assert.ok(isVideoAnalysisError(e) && e.code === "PROFILE_INVALID", String(e));
        return e;
      }
      assert.fail("no error");
    };
    // The file's own mistake (line 11), with overrides that add lines above it (analysis.sparse_decode,
    // components.scene.branches): still line 11.
    const own = await error({ analysis: { sparse_decode: false }, components: { scene: { branches: [224] } } });
    assert.equal(own.message, `profile ${file}:11:12: output.float16: expected a boolean, got "maybe"`);
    // A bad value the overrides set: no line of the file holds it.
    const theirs = await error({ output: { float16: false }, analysis: { fps: 5000 }, components: { scene: { top_k: 0 } } });
    assert.equal(theirs.message, [`profile ${file} has 2 problems:`, `  ${file} (overrides): analysis.fps: expected a number <= 1000, got 5000`, `  ${file} (overrides): components.scene.top_k: expected a number >= 1, got 0`].join("\n"));
    const issues = (theirs.details as { issues: LocatedIssue[] }).issues;
    assert.deepEqual(issues.map((i) => i.line), [0, 0]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
