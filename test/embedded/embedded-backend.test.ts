import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { promisify } from "node:util";
import { findModel } from "../../src/catalog/index.js";
import { crc32, crc32Of } from "../../src/checksum.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { EmbeddedEnsembles } from "../../src/embedded/embedded-ensembles.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { normalizeNhwcToNchw, preprocessInputs, sealPixels } from "../../src/preprocess/normalize.js";
import { tensor } from "../../src/tensor.js";
import { repoRoot, skipUnlessTestdata, testdata } from "../support/testdata.js";

const contract = (name: string) => join(repoRoot, "models", "contract", `${name}.onnx`);
const pixels = (s: number, seed: number) => new Uint8Array(s * s * 3).map((_, i) => (i * seed + (i >> 7)) & 255);

test("embedded: inference runs on the worker thread; the event loop keeps turning meanwhile", { skip: skipUnlessTestdata("models", "yolo11n_int8_640.onnx") }, async () => {
  const be = await EmbeddedBackend.create({ models: { yolo: testdata("models", "yolo11n_int8_640.onnx") }, intraOpNumThreads: 1 });
  try {
    const input = tensor("images", "FP32", [1, 3, 640, 640], new Float32Array(3 * 640 * 640).fill(0.5));
    await be.infer("yolo", [input]); // session created, warm
    let last = performance.now();
    let worstGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      worstGap = Math.max(worstGap, now - last);
      last = now;
    }, 2);
    const t = performance.now();
    await Promise.all([be.infer("yolo", [input]), be.infer("yolo", [input]), be.infer("yolo", [input])]);
    const busy = performance.now() - t;
    clearInterval(timer);
    // Run on this thread, three YOLO runs would hold the loop for their whole duration.
    assert.ok(worstGap < busy / 2, `longest event-loop gap ${worstGap.toFixed(1)} ms during ${busy.toFixed(1)} ms of inference`);
  } finally {
    await be.close();
  }
});

test("embedded: a sealed frame is normalised once per arithmetic, and each model still gets its own", async () => {
  // MiDaS (DPT) and RAFT share the arithmetic x/255*2-1; CLIP and Places365 at 224 take one buffer with
  // different mean/std. Sealed buffers must give exactly what unsealed copies give.
  const names = ["midas_256", "raft_256", "clip_image_224", "places365_resnet50_224"];
  const emb = await EmbeddedBackend.create({ models: Object.fromEntries(names.map((n) => [n, contract(n)])), intraOpNumThreads: 1 });
  const be = new EmbeddedEnsembles(emb);
  try {
    const a = pixels(256, 7);
    const b = pixels(256, 13);
    const run = async (x: Uint8Array, y: Uint8Array) => ({
      depth: (await be.infer("midas_256", [tensor("INPUT__0", "UINT8", [1, 256, 256, 3], x)])).outputs.OUTPUT__0!.data as Float32Array,
      flow: (await be.infer("raft_256", [tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], x), tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], y)])).outputs.OUTPUT__0!.data as Float32Array,
    });
    const plain = await run(a.slice(), b.slice());
    sealPixels(a);
    sealPixels(b);
    const first = await run(a, b);
    const again = await run(a, b);
    // Flow the other way round: b's cached normalisation serves as the first image now.
    const back = (await be.infer("raft_256", [tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], b), tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], a)])).outputs.OUTPUT__0!.data as Float32Array;
    const backPlain = (await be.infer("raft_256", [tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], b.slice()), tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], a.slice())])).outputs.OUTPUT__0!.data as Float32Array;
    assert.deepEqual(first.depth, plain.depth);
    assert.deepEqual(first.flow, plain.flow);
    assert.deepEqual(again.flow, plain.flow);
    assert.deepEqual(back, backPlain);
    assert.notDeepEqual(back, first.flow);

    const c = pixels(224, 11);
    const crop = async (x: Uint8Array) =>
      Promise.all(["clip_image_224", "places365_resnet50_224"].map(async (n) => (await be.infer(n, [tensor("INPUT__0", "UINT8", [1, 224, 224, 3], x)])).outputs.OUTPUT__0!.data));
    const cropPlain = await crop(c.slice());
    sealPixels(c);
    assert.deepEqual(await crop(c), cropPlain);
  } finally {
    await be.close();
  }
});

test("embedded: recycled output buffers are answered into again, with the same values as fresh ones", async () => {
  const names = ["midas_256", "yolo11n_320"];
  const emb = await EmbeddedBackend.create({ models: Object.fromEntries(names.map((n) => [n, contract(n)])), intraOpNumThreads: 1 });
  const be = new EmbeddedEnsembles(emb);
  try {
    const depth = async (seed: number) => (await be.infer("midas_256", [tensor("INPUT__0", "UINT8", [1, 256, 256, 3], pixels(256, seed))])).outputs.OUTPUT__0!.data as Float32Array;
    const fresh = [(await depth(3)).slice(), (await depth(5)).slice()];
    const given = await depth(9);
    const mine = new Float32Array(given.length);
    be.recycle([given, mine]);
    // Handed over: detached here. An array the backend did not make stays the caller's.
    assert.equal(given.byteLength, 0);
    assert.equal(mine.length, 256 * 256);
    const a = await depth(3);
    const b = await depth(5);
    assert.deepEqual(a, fresh[0]);
    assert.deepEqual(b, fresh[1]);
    // Outputs of another size are unaffected by a spare buffer of this one.
    be.recycle([a]);
    const y = (await be.infer("yolo11n_320", [tensor("INPUT__0", "UINT8", [1, 320, 320, 3], pixels(320, 3))])).outputs.OUTPUT__0!;
    assert.deepEqual(y.shape, [1, 84, 2100]);
    assert.equal(await depth(5).then((d) => d.every((v, i) => v === fresh[1]![i])), true);
  } finally {
    await be.close();
  }
});

test("embedded: asked for checksums, the worker notes each output's CRC-32 (and only then)", async () => {
  const emb = await EmbeddedBackend.create({ models: { raft_256: contract("raft_256") }, intraOpNumThreads: 1 });
  const be = new EmbeddedEnsembles(emb);
  try {
    const inputs = [tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], pixels(256, 3)), tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], pixels(256, 7))];
    const flow = (await be.infer("raft_256", inputs, { checksums: true })).outputs.OUTPUT__0!.data as Float32Array;
    assert.equal(crc32Of(flow), crc32(new Uint8Array(flow.buffer)));
    const plain = (await be.infer("raft_256", inputs)).outputs.OUTPUT__0!.data as Float32Array;
    assert.deepEqual(plain, flow);
    assert.equal(crc32Of(plain), undefined);
  } finally {
    await be.close();
  }
});

test("embedded: models spread over several workers answer as on one, recycling included", async () => {
  const names = ["midas_256", "raft_256", "clip_image_224", "yolo11n_320"];
  const models = Object.fromEntries(names.map((n) => [n, contract(n)]));
  const answers = async (workers: number) => {
    const be = new EmbeddedEnsembles(await EmbeddedBackend.create({ models, workers, intraOpNumThreads: 1 }));
    try {
      const out: Float32Array[] = [];
      for (let round = 0; round < 3; round++) {
        const a = pixels(256, 7 + round);
        const b = pixels(256, 13 + round);
        sealPixels(a);
        const r = await Promise.all([
          be.infer("midas_256", [tensor("INPUT__0", "UINT8", [1, 256, 256, 3], a)]),
          be.infer("raft_256", [tensor("INPUT0__0", "UINT8", [1, 256, 256, 3], a), tensor("INPUT1__0", "UINT8", [1, 256, 256, 3], b)]),
          be.infer("clip_image_224", [tensor("INPUT__0", "UINT8", [1, 224, 224, 3], pixels(224, 3 + round))]),
          be.infer("yolo11n_320", [tensor("INPUT__0", "UINT8", [1, 320, 320, 3], pixels(320, 5 + round))]),
        ]);
        const data = r.map((x) => x.outputs.OUTPUT__0!.data as Float32Array);
        out.push(...data.map((d) => d.slice()));
        be.recycle(data);
      }
      return out;
    } finally {
      await be.close();
    }
  };
  const one = await answers(1);
  const three = await answers(3);
  assert.equal(three.length, 12);
  three.forEach((d, i) => assert.ok(Buffer.from(d.buffer).equals(Buffer.from(one[i]!.buffer)), `answer ${i}`));
  await assert.rejects(EmbeddedBackend.create({ models: {}, workers: 0 }), /workers must be a positive integer, got 0/);
});

test("embedded: the worker's preprocessing equals preprocessInputs on this thread", async () => {
  const m = findModel("places365_resnet50_224")!;
  const emb = await EmbeddedBackend.create({ models: { [m.name]: contract(m.name) }, intraOpNumThreads: 1 });
  try {
    const px = pixels(224, 5);
    const viaWorker = await emb.inferEnsemble(m, [tensor("INPUT__0", "UINT8", [1, 224, 224, 3], px)]);
    const here = await emb.infer(m.name, preprocessInputs(m, [tensor("INPUT__0", "UINT8", [1, 224, 224, 3], px)]));
    assert.deepEqual(Object.keys(viaWorker.outputs), m.ensemble.outputs.map((o) => o.name));
    assert.deepEqual(viaWorker.outputs.OUTPUT__0!.data, here.outputs[m.onnx.outputs[0]!.name]!.data);
    assert.equal(normalizeNhwcToNchw(px, [1, 224, 224, 3], m.normalization!).length, 3 * 224 * 224);
  } finally {
    await emb.close();
  }
});

test("embedded: errors come back as VideoAnalysisError; a closed backend refuses calls", async () => {
  const emb = await EmbeddedBackend.create({ models: { midas_256: contract("midas_256") }, intraOpNumThreads: 1 });
  await assert.rejects(emb.modelMetadata("nope"), (e) => e instanceof VideoAnalysisError && e.code === "NOT_FOUND" && e.model === "nope" && /midas_256/.test(e.message));
  await assert.rejects(
    emb.infer("midas_256", [tensor("wrong", "FP32", [1, 3, 256, 256], new Float32Array(3 * 256 * 256))]),
    (e) => e instanceof VideoAnalysisError && e.code === "INVALID_ARGUMENT" && /wrong is not one of the model's inputs/.test(e.message),
  );
  assert.equal(await emb.modelReady("midas_256"), true);
  assert.equal(await emb.modelReady("nope"), false);
  const aborted = AbortSignal.abort();
  await assert.rejects(emb.infer("midas_256", [], { signal: aborted }), (e) => e instanceof VideoAnalysisError && e.code === "CANCELLED");
  const later = new AbortController();
  const call = emb.infer("midas_256", [tensor("pixel_values", "FP32", [1, 3, 256, 256], new Float32Array(3 * 256 * 256))], { signal: later.signal });
  later.abort();
  await assert.rejects(call, (e) => e instanceof VideoAnalysisError && e.code === "CANCELLED" && /the call was cancelled/.test(e.message));
  await emb.close();
  await assert.rejects(emb.modelReady("midas_256"), (e) => e instanceof VideoAnalysisError && e.code === "FAILED_PRECONDITION");
});

test("embedded: an idle worker does not keep the process alive (no close() needed to exit)", async () => {
  const script = `
    import { EmbeddedBackend } from ${JSON.stringify(join(repoRoot, "dist/src/embedded/embedded-backend.js"))};
    const be = await EmbeddedBackend.create({ models: { m: ${JSON.stringify(contract("midas_256"))} } });
    console.log(JSON.stringify((await be.modelMetadata("m")).inputs[0].shape));`;
  const { stdout } = await promisify(execFile)(process.execPath, ["--input-type=module", "-e", script], { timeout: 20_000 });
  assert.equal(stdout.trim(), "[1,3,256,256]");
});

test("embedded: a closed backend leaves no mat-debug-<pid>.log of onnxruntime's telemetry in the temporary folder", async () => {
  const file = join(tmpdir(), `mat-debug-${process.pid}.log`);
  const emb = await EmbeddedBackend.create({ models: { midas_256: join(repoRoot, "models/contract/midas_256.onnx") } });
  await emb.modelMetadata("midas_256");
  await emb.close();
  assert.equal(existsSync(file), false, `${file} was left behind`);
});
