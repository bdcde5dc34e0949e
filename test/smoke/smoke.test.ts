import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { formatSmoke, smokeCommand, smokeEmbedded, smokeTriton, type SmokeChecklist } from "../../src/cli/commands/smoke.js";
import { loadProfile } from "../../src/profiles/index.js";
import { TritonClient } from "../../src/triton/client.js";
import { TestServer } from "../support/test-server.js";
import { repoRoot } from "../support/testdata.js";
import { catalogRepository } from "./catalog-server.js";

const baseline = join(repoRoot, "profiles/baseline_gpu.yaml");
const baselineYolo = join(repoRoot, "profiles/baseline_gpu_yolo.yaml");
const yoloOnly = join(repoRoot, "test/smoke/yolo_only.yaml");

let server: TestServer;
let closeModels: () => Promise<void>;

before(async () => {
  const repo = await catalogRepository();
  closeModels = repo.close;
  server = await TestServer.start({ models: repo.models });
});
after(async () => {
  await server?.stop();
  await closeModels?.();
});

async function smokeWith(file: string, address: string, checklist: SmokeChecklist = "baseline") {
  const profile = await loadProfile(file, { env: { TRITON_GRPC_URL: address } });
  const client = await TritonClient.create({ url: address });
  try {
    return await smokeTriton(profile, client, checklist);
  } finally {
    await client.close();
  }
}

/** Runs the CLI command against the test server (TRITON_GRPC_URL set for the profile), output captured. */
async function cli(argv: string[]): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  const had = process.env.TRITON_GRPC_URL;
  process.env.TRITON_GRPC_URL = server.address;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await smokeCommand.run(argv), out: lines.join("\n") };
  } finally {
    console.log = log;
    if (had === undefined) delete process.env.TRITON_GRPC_URL;
    else process.env.TRITON_GRPC_URL = had;
  }
}

test("smoke --checklist baseline: every model present and READY passes, with one checked inference per model", async () => {
  const r = await smokeWith(baseline, server.address);
  assert.equal(r.ok, true, r.failures.join("\n"));
  assert.deepEqual(r.failures, []);
  assert.equal(r.backend.live, true);
  assert.equal(r.backend.ready, true);
  assert.equal(r.backend.models, 47);
  const required = r.checklist.filter((x) => x.level === "required").map((x) => x.model);
  assert.deepEqual(required, ["midas_256", "midas_384", "midas_512", "raft_256", "clip_image_224", "clip_text", "places365_resnet50_224"]);
  assert.equal(r.checklist.filter((x) => x.level === "additional").length, 7);
  assert.ok(r.checklist.every((x) => x.status === "ready"));
  assert.equal(r.inferences.length, 14);
  assert.ok(r.inferences.every((i) => i.ok), JSON.stringify(r.inferences.filter((i) => !i.ok)));
  assert.equal(r.inferences.find((i) => i.model === "yolo11x_960")!.detail, "OUTPUT__0 FP32 [1,84,18900]");

  const { code, out } = await cli(["--profile", baseline, "--checklist", "baseline"]);
  assert.equal(code, 0, out);
  assert.match(out, /^OK: 7\/7 required ready and answering; additional 7\/7 ready; 14\/14 inferences passed$/m);
  assert.doesNotMatch(out, /SPEC/);
});

test("smoke without --checklist checks what the profile routes to, no more", async () => {
  const r = await smokeWith(baseline, server.address, "profile");
  assert.equal(r.ok, true, r.failures.join("\n"));
  assert.deepEqual(r.checklist.map((x) => `${x.model} ${x.level}`), ["midas_256", "midas_384", "midas_512", "raft_256", "clip_image_224", "clip_text", "places365_resnet50_224"].map((m) => `${m} required`));
  assert.deepEqual(r.checklist.find((x) => x.model === "places365_resnet50_224")!.parts.map((p) => p.name), ["places365_resnet50_224", "preprocess_places365_224", "places365_resnet50_224_onnx"]);
  assert.equal(r.inferences.length, 7);
  // A YOLO-only profile needs its YOLO branches only: the baseline's models missing from the server do not matter.
  const repo = await catalogRepository({ without: ["midas_256", "raft_256_onnx", "preprocess_places365_224"] });
  const partial = await TestServer.start({ models: repo.models });
  try {
    const y = await smokeWith(yoloOnly, partial.address, "profile");
    assert.equal(y.ok, true, y.failures.join("\n"));
    assert.deepEqual(y.checklist.map((x) => x.model), ["yolo11x_320", "yolo11x_640"]);
    const b = await smokeWith(yoloOnly, partial.address, "baseline");
    assert.deepEqual(b.failures, ["required midas_256: midas_256 missing", "required raft_256: raft_256_onnx missing", "required places365_resnet50_224: preprocess_places365_224 missing"]);
    const { code, out } = await cli(["--profile", yoloOnly, "--checklist", "nope"]).catch((e: Error) => ({ code: -1, out: e.message }));
    assert.equal(code, -1);
    assert.match(out, /--checklist must be baseline or baseline\+yolo, got "nope"/);
  } finally {
    await partial.stop();
    await repo.close();
  }
});

test("smoke: a required model not READY fails, naming it", async () => {
  server.setReady("preprocess_midas_384", false);
  try {
    const r = await smokeWith(baseline, server.address);
    assert.equal(r.ok, false);
    assert.deepEqual(r.failures, ["required midas_384: preprocess_midas_384 not ready (unloaded)"]);
    const { code, out } = await cli(["--profile", baseline]);
    assert.equal(code, 1);
    assert.match(out, /FAILED: 1 required problem:\n {2}required midas_384: preprocess_midas_384 not ready \(unloaded\)/);
    assert.match(out, /^midas_384 +required +not ready +preprocess_midas_384 not ready \(unloaded\)$/m);
  } finally {
    server.setReady("preprocess_midas_384", true);
  }
});

test("smoke: an additional model not READY is reported but does not fail; for a profile that routes to it, it does", async () => {
  server.setReady("yolo11x_640", false);
  try {
    const r = await smokeWith(baseline, server.address);
    assert.equal(r.ok, true);
    assert.deepEqual(r.warnings, ["additional yolo11x_640: yolo11x_640 not ready (unloaded)"]);
    const y = await smokeWith(baselineYolo, server.address);
    assert.equal(y.ok, false);
    assert.deepEqual(y.failures, ["required yolo11x_640: yolo11x_640 not ready (unloaded)"]);
    // --checklist baseline+yolo requires every model of the seed's checklist, routed or not.
    const all = await smokeWith(baseline, server.address, "baseline+yolo");
    assert.deepEqual(all.failures, ["required yolo11x_640: yolo11x_640 not ready (unloaded)"]);
    assert.equal(all.checklist.filter((x) => x.level === "required").length, 14);
  } finally {
    server.setReady("yolo11x_640", true);
  }
});

test("smoke: a required model absent from the repository fails, naming the missing part", async () => {
  const repo = await catalogRepository({ without: ["raft_256_onnx"] });
  const partial = await TestServer.start({ models: repo.models });
  try {
    const r = await smokeWith(baseline, partial.address);
    assert.equal(r.ok, false);
    assert.deepEqual(r.failures, ["required raft_256: raft_256_onnx missing"]);
    assert.equal(r.inferences.some((i) => i.model === "raft_256"), false, "no inference on a model that is not ready");
    assert.match(formatSmoke(r, "p.yaml"), /FAILED: 1 required problem:\n {2}required raft_256: raft_256_onnx missing/);
  } finally {
    await partial.stop();
    await repo.close();
  }
});

test("smoke: a model with the wrong contract fails its inference", async () => {
  const repo = await catalogRepository();
  const clip = repo.models.find((m) => m.name === "clip_image_224")!;
  clip.outputs = [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, 768] }];
  const wrong = await TestServer.start({ models: repo.models });
  try {
    const r = await smokeWith(baseline, wrong.address);
    assert.equal(r.ok, false);
    assert.equal(r.failures.length, 1);
    assert.match(r.failures[0]!, /^required clip_image_224: inference failed: \[CONTRACT_MISMATCH\] clip_image_224: output OUTPUT__0: expected FP32 \[1,512\], model has FP32 \[1,768\]/);
  } finally {
    await wrong.stop();
    await repo.close();
  }
});

test("smoke: the embedded profile loads and runs every model it routes to", async () => {
  const p = await loadProfile(join(repoRoot, "profiles/embedded_cpu.yaml"), { env: {} });
  const r = await smokeEmbedded(p);
  assert.equal(r.ok, true, r.failures.join("\n"));
  assert.equal(r.checklist.length, 15);
  assert.ok(r.inferences.every((i) => i.ok));

  const missing = await loadProfile(join(repoRoot, "profiles/embedded_cpu.yaml"), { env: { VIDEO_SDK_MODELS_DIR: "/nonexistent" } });
  const m = await smokeEmbedded(missing);
  assert.equal(m.ok, false);
  assert.match(m.failures[0]!, /^required midas_256: \/nonexistent\/midas_256.onnx missing$/);
});
