import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { checkContract } from "../../src/backend/contract.js";
import {
  allModels, catalogModel, FAMILIES, family, findModel, inputValues, NORMALIZATIONS, readyChecklist, repositoryModels,
  SIZE_LABELS, yoloCandidates,
} from "../../src/catalog/index.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { EmbeddedEnsembles } from "../../src/embedded/embedded-ensembles.js";
import { tensor } from "../../src/tensor.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

// SPEC section 1, as a table: model -> ensemble input(s) and output.
const SPEC_TABLE: Array<[string, string, string]> = [
  ["midas_256", "INPUT__0 UINT8 [1,256,256,3]", "OUTPUT__0 FP32 [1,256,256]"],
  ["midas_384", "INPUT__0 UINT8 [1,384,384,3]", "OUTPUT__0 FP32 [1,384,384]"],
  ["midas_512", "INPUT__0 UINT8 [1,512,512,3]", "OUTPUT__0 FP32 [1,512,512]"],
  ["raft_256", "INPUT0__0 UINT8 [1,256,256,3] INPUT1__0 UINT8 [1,256,256,3]", "OUTPUT__0 FP32 [1,2,256,256]"],
  ["raft_512", "INPUT0__0 UINT8 [1,512,512,3] INPUT1__0 UINT8 [1,512,512,3]", "OUTPUT__0 FP32 [1,2,512,512]"],
  ["clip_image_224", "INPUT__0 UINT8 [1,224,224,3]", "OUTPUT__0 FP32 [1,512]"],
  ["clip_image_448", "INPUT__0 UINT8 [1,448,448,3]", "OUTPUT__0 FP32 [1,512]"],
  ["clip_text", "INPUT__0 INT64 [1,77]", "OUTPUT__0 FP32 [1,77,512]"],
  ["places365_resnet50_224", "INPUT__0 UINT8 [1,224,224,3]", "OUTPUT__0 FP32 [1,365]"],
  ["places365_resnet50_336", "INPUT__0 UINT8 [1,336,336,3]", "OUTPUT__0 FP32 [1,365]"],
  ["yolo11x_320", "INPUT__0 UINT8 [1,320,320,3]", "OUTPUT__0 FP32 [1,84,2100]"],
  ["yolo11x_640", "INPUT__0 UINT8 [1,640,640,3]", "OUTPUT__0 FP32 [1,84,8400]"],
  ["yolo11x_960", "INPUT__0 UINT8 [1,960,960,3]", "OUTPUT__0 FP32 [1,84,18900]"],
  ["yolo11n_640", "INPUT__0 UINT8 [1,640,640,3]", "OUTPUT__0 FP32 [1,84,8400]"],
];
const fmt = (ts: Array<{ name: string; datatype: string; shape: number[] }>) => ts.map((t) => `${t.name} ${t.datatype} [${t.shape.join(",")}]`).join(" ");

for (const [name, inputs, output] of SPEC_TABLE) {
  test(`catalog: ${name} has SPEC section 1's ensemble contract`, () => {
    const m = findModel(name);
    assert.ok(m, `${name} is in the catalog`);
    assert.equal(fmt(m.ensemble.inputs), inputs);
    assert.equal(fmt(m.ensemble.outputs), output);
  });
}

test("catalog: YOLO ONNX models take `images` FP32 [1,3,S,S] and give `output0` [1,84,N]", () => {
  for (const s of [320, 640, 960]) {
    const m = catalogModel(family("yolo11"), s, "yolo11m");
    assert.equal(m.name, `yolo11m_${s}`);
    assert.equal(fmt(m.onnx.inputs), `images FP32 [1,3,${s},${s}]`);
    assert.equal(fmt(m.onnx.outputs), `output0 FP32 [1,84,${yoloCandidates(s)}]`);
  }
  assert.deepEqual([320, 640, 960].map(yoloCandidates), [2100, 8400, 18900]);
});

test("catalog: a model's input values (what the embedded backend balances its workers by)", () => {
  const values = (name: string) => inputValues(findModel(name)!);
  assert.equal(values("yolo11n_640"), 3 * 640 * 640);
  assert.equal(values("raft_512"), 2 * 3 * 512 * 512); // a pair of frames
  assert.equal(values("clip_text"), 77);
  assert.ok(values("midas_512") > values("clip_image_448"));
});

test("catalog: both axes compose names: yolo11n..x x 320/640/960", () => {
  const names = allModels().filter((m) => m.family.id === "yolo11").map((m) => m.name);
  for (const a of ["n", "s", "m", "l", "x"]) for (const s of [320, 640, 960]) assert.ok(names.includes(`yolo11${a}_${s}`), `yolo11${a}_${s}`);
  assert.equal(names.length, 15);
});

test("catalog: names are unique across every model and part", () => {
  const seen = new Set<string>();
  for (const m of allModels()) {
    for (const p of m.parts) {
      assert.ok(!seen.has(p), `${p} appears twice`);
      seen.add(p);
    }
  }
});

test("catalog: branched families with threshold routing have small, medium and large", () => {
  for (const f of FAMILIES) {
    if (f.routing !== "thresholds") continue;
    assert.deepEqual(f.branches.map((b) => b.size), [...SIZE_LABELS], f.id);
    const sizes = f.branches.map((b) => b.input);
    assert.deepEqual([...sizes].sort((a, b) => a - b), sizes, `${f.id} sizes ascend`);
  }
});

test("catalog: normalisation per family is SPEC section 1's", () => {
  const norm = (name: string) => findModel(name)!.normalization;
  assert.equal(norm("yolo11x_640"), NORMALIZATIONS.unit);
  assert.deepEqual(norm("clip_image_224")!.mean, [0.48145466, 0.4578275, 0.40821073]);
  assert.deepEqual(norm("clip_image_224")!.std, [0.26862954, 0.26130258, 0.27577711]);
  assert.deepEqual(norm("places365_resnet50_224")!.mean, [0.485, 0.456, 0.406]);
  assert.deepEqual(norm("places365_resnet50_224")!.std, [0.229, 0.224, 0.225]);
  // RAFT x/255*2-1 and DPT mean 0.5 std 0.5: both (x/255 - 0.5) / 0.5.
  for (const n of ["raft_256", "midas_384"]) {
    const z = norm(n)!;
    assert.equal((0 / z.divisor - z.mean[0]) / z.std[0], -1);
    assert.equal((255 / z.divisor - z.mean[0]) / z.std[0], 1);
  }
  assert.equal(norm("clip_text"), undefined);
  assert.equal(findModel("clip_text")!.preprocessName, undefined);
});

test("catalog: the READY checklist is SPEC section 5's", () => {
  const list = readyChecklist();
  const of = (level: string) => list.filter((m) => m.checklist === level).map((m) => m.name).sort();
  assert.deepEqual(of("required"), ["clip_image_224", "clip_text", "midas_256", "midas_384", "midas_512", "places365_resnet50_224", "raft_256"]);
  assert.deepEqual(of("additional"), ["places365_resnet50_336", "places365_resnet50_448", "raft_384", "raft_512", "yolo11x_320", "yolo11x_640", "yolo11x_960"]);
  assert.deepEqual(findModel("clip_text")!.parts, ["clip_text", "clip_text_onnx"]);
  assert.deepEqual(findModel("raft_256")!.parts, ["raft_256", "preprocess_raft_256", "raft_256_onnx"]);
});

test("catalog: the repository holds the production architectures, others on request", () => {
  const names = repositoryModels().map((m) => m.name);
  assert.ok(names.includes("yolo11x_960") && !names.includes("yolo11n_640"));
  assert.ok(repositoryModels(["yolo11n"]).some((m) => m.name === "yolo11n_640"));
  assert.throws(() => repositoryModels(["yolo12z"]), /unknown architecture "yolo12z"/);
});

test("catalog: every ONNX model has a committed contract model with exactly its contract", async () => {
  const models: Record<string, string> = {};
  for (const m of allModels()) models[m.name] = join(repoRoot, "models", "contract", `${m.name}.onnx`);
  for (const [n, p] of Object.entries(models)) assert.ok(existsSync(p), `models/contract/${n}.onnx exists (scripts/make_contract_models.py)`);
  const be = await EmbeddedBackend.create({ models, intraOpNumThreads: 1 });
  try {
    for (const m of allModels()) checkContract(m.name, m.onnx, await be.modelMetadata(m.name));
  } finally {
    await be.close();
  }
});

test("catalog: EmbeddedEnsembles answers with the ensemble contract; YOLO contract scores stay low", async () => {
  const emb = await EmbeddedBackend.create({
    models: Object.fromEntries(["raft_256", "clip_text", "yolo11n_320"].map((n) => [n, join(repoRoot, "models", "contract", `${n}.onnx`)])),
    intraOpNumThreads: 1,
  });
  const be = new EmbeddedEnsembles(emb);
  try {
    for (const name of ["raft_256", "clip_text", "yolo11n_320"]) {
      const m = findModel(name)!;
      assert.deepEqual((await be.modelMetadata(name)).inputs, m.ensemble.inputs);
      const inputs = m.ensemble.inputs.map((s) =>
        s.datatype === "INT64"
          ? tensor(s.name, "INT64", s.shape, new BigInt64Array(77).fill(0n).fill(49407n, 1, 2).fill(49406n, 0, 1))
          : tensor(s.name, "UINT8", s.shape, new Uint8Array(s.shape.reduce((a, b) => a * b, 1)).map((_, i) => (i * 7) & 255)),
      );
      const r = await be.infer(name, inputs, { contract: m.ensemble });
      const out = r.outputs.OUTPUT__0!;
      assert.deepEqual(out.shape, m.ensemble.outputs[0]!.shape);
      if (name.startsWith("yolo")) {
        const d = out.data as Float32Array;
        const n = out.shape[2]!;
        let above = 0;
        for (let c = 0; c < n; c++) {
          let best = 0;
          for (let k = 4; k < 84; k++) best = Math.max(best, d[k * n + c]!);
          if (best > 0.25) above++;
        }
        assert.ok(above > 0 && above < n / 100, `a handful of ${n} candidates pass 0.25 (got ${above})`);
      }
    }
    await assert.rejects(be.infer("raft_256", []), /INPUT0__0/);
  } finally {
    await be.close();
  }
});

test(
  "catalog: the real YOLO11n exports in the shared test data have the catalog's ONNX contract",
  { skip: skipUnlessTestdata("models", "yolo11n_int8_640.onnx") },
  async () => {
    const be = await EmbeddedBackend.create({
      models: { yolo11n_640: testdata("models", "yolo11n_int8_640.onnx"), yolo11n_320: testdata("models", "yolo11n_int8_320.onnx") },
      intraOpNumThreads: 1,
    });
    try {
      for (const name of ["yolo11n_640", "yolo11n_320"]) checkContract(name, findModel(name)!.onnx, await be.modelMetadata(name));
    } finally {
      await be.close();
    }
  },
);
