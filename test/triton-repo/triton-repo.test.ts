import assert from "node:assert/strict";
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { readyChecklist } from "../../src/catalog/index.js";
import { tritonRepoCommand } from "../../src/cli/commands/triton-repo.js";
import { diffRepository, generateRepository } from "../../src/triton-repo/index.js";
import { repoRoot } from "../support/testdata.js";

const committed = join(repoRoot, "triton", "models");

/** Runs a command with console.log captured. */
async function capture(run: () => Promise<number>): Promise<{ code: number; out: string }> {
  const lines: string[] = [];
  const log = console.log;
  console.log = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await run(), out: lines.join("\n") };
  } finally {
    console.log = log;
  }
}

test("triton-repo: the committed triton/models is exactly the generator's output", async () => {
  const d = await diffRepository(committed, generateRepository());
  assert.deepEqual(d, { missing: [], extra: [], changed: [] }, "triton/models is stale: run `node dist/src/cli/main.js triton-repo --out triton/models`");
});

test("triton-repo: it holds every name of SPEC section 5's checklist, with its parts, and the YOLO ensembles", () => {
  const files = generateRepository();
  const models = new Set([...files.keys()].map((p) => p.split("/")[0]));
  for (const m of readyChecklist()) for (const part of m.parts) assert.ok(models.has(part), `${part} (${m.checklist})`);
  for (const s of [320, 640, 960]) for (const n of [`yolo11x_${s}`, `preprocess_yolo11x_${s}`, `yolo11x_${s}_onnx`]) assert.ok(models.has(n), n);
  assert.ok(models.has("clip_text") && models.has("clip_text_onnx") && !models.has("preprocess_clip_text"));
  assert.equal(models.size, 47);
});

test("triton-repo: every config is fixed-shape, max_batch_size 0, and ensembles call models of the repository", () => {
  const files = generateRepository();
  const models = new Set([...files.keys()].map((p) => p.split("/")[0]));
  for (const [path, text] of files) {
    if (!path.endsWith("config.pbtxt")) continue;
    assert.match(text, /^max_batch_size: 0$/m, path);
    assert.doesNotMatch(text, /dims: \[[^\]]*-1/, `${path} has a dynamic dimension`);
    const name = /^name: "([^"]+)"$/m.exec(text)?.[1];
    assert.equal(`${name}/config.pbtxt`, path);
    for (const [, step] of text.matchAll(/model_name: "([^"]+)"/g)) assert.ok(models.has(step!), `${path} calls ${step}`);
  }
  const yolo = files.get("yolo11x_640/config.pbtxt")!;
  assert.match(yolo, /platform: "ensemble"/);
  assert.match(yolo, /name: "INPUT__0"\n\s+data_type: TYPE_UINT8\n\s+dims: \[ 1, 640, 640, 3 \]/);
  assert.match(yolo, /dims: \[ 1, 84, 8400 \]/);
  assert.match(files.get("yolo11x_640_onnx/config.pbtxt")!, /platform: "onnxruntime_onnx"[\s\S]*name: "images"[\s\S]*name: "output0"/);
  assert.match(files.get("preprocess_clip_image_224/config.pbtxt")!, /backend: "python"/);
  assert.match(files.get("preprocess_clip_image_224/1/model.py")!, /MEAN = np.array\(\[0.48145466, 0.4578275, 0.40821073\]/);
  assert.match(files.get("clip_text/config.pbtxt")!, /key: "input_ids"\n\s+value: "INPUT__0"/);
});

test("triton-repo: extra architectures are added on request", () => {
  const files = generateRepository({ architectures: ["yolo11n"] });
  assert.ok(files.has("yolo11n_640/config.pbtxt") && files.has("preprocess_yolo11n_320/1/model.py"));
});

test("triton-repo: a repository that differs is reported file by file, and --check fails", async () => {
  const dir = mkdtempSync(join(tmpdir(), "triton-repo-"));
  try {
    const out = join(dir, "models");
    assert.equal((await capture(() => tritonRepoCommand.run(["--out", out]))).code, 0);
    const ok = await capture(() => tritonRepoCommand.run(["--out", out, "--check"]));
    assert.equal(ok.code, 0, ok.out);
    // The user's exports are not part of the comparison.
    writeFileSync(join(out, "midas_256_onnx/1/model.onnx"), "weights");

    const cfg = join(out, "midas_384/config.pbtxt");
    writeFileSync(cfg, readFileSync(cfg, "utf8").replace("384, 384, 3", "384, 384, 4"));
    rmSync(join(out, "preprocess_raft_256/1/model.py"));
    cpSync(join(out, "raft_256"), join(out, "raft_999"), { recursive: true });
    const d = await diffRepository(out, generateRepository());
    assert.deepEqual(d.changed, ["midas_384/config.pbtxt"]);
    assert.deepEqual(d.missing, ["preprocess_raft_256/1/model.py"]);
    assert.deepEqual(d.extra, ["raft_999/1/.gitkeep", "raft_999/config.pbtxt"]);
    const bad = await capture(() => tritonRepoCommand.run(["--out", out, "--check"]));
    assert.equal(bad.code, 1);
    assert.match(bad.out, /changed  midas_384\/config.pbtxt/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("triton-repo: --tracks adds tracks C and D; --profile adds them when the profile asks (End2End or JPEG input)", async () => {
  const plain = generateRepository();
  const tracks = generateRepository({ tracks: true });
  const names = (f: Map<string, string>) => new Set([...f.keys()].map((p) => p.split("/")[0]));
  const added = [...names(tracks)].filter((n) => !names(plain).has(n)).sort();
  // Per YOLO branch: _end2end, _e2e and three tier ensembles; one DALI step per size and tier.
  assert.equal(added.length, 3 * 5 + 3 * 3);
  for (const n of ["yolo11x_640_end2end", "yolo11x_640_e2e", "yolo11x_640_gpu_e2e", "yolo11x_640_gpu_e2e_streaming", "yolo11x_640_gpu_e2e_batch", "yolo_preprocess_dali_640_streaming"]) assert.ok(added.includes(n), n);
  for (const [p, text] of plain) assert.equal(tracks.get(p), text, `${p} changed by --tracks`);
  assert.match(tracks.get("yolo_preprocess_dali_640/1/model.py")!, /@autoserialize/);

  const dir = mkdtempSync(join(tmpdir(), "triton-repo-profile-"));
  try {
    const profile = join(dir, "p.yaml");
    writeFileSync(profile, "version: 1\nname: d\nbackend:\n  triton: { url: \"h:1\" }\ncomponents:\n  core_object_detections: { architecture: yolo11s, output_format: end2end, input: jpeg }\n");
    const out = join(dir, "models");
    assert.equal((await capture(() => tritonRepoCommand.run(["--out", out, "--profile", profile]))).code, 0);
    assert.ok(existsSync(join(out, "yolo11s_640_gpu_e2e_streaming/config.pbtxt")) && existsSync(join(out, "yolo11x_960_end2end/config.pbtxt")));
    writeFileSync(profile, "version: 1\nname: d\nbackend:\n  triton: { url: \"h:1\" }\ncomponents:\n  core_object_detections: {}\n");
    const raw = join(dir, "raw");
    assert.equal((await capture(() => tritonRepoCommand.run(["--out", raw, "--profile", profile]))).code, 0);
    assert.ok(!existsSync(join(raw, "yolo11x_640_end2end")));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
