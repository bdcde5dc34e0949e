/**
 * The SDK against NVIDIA's real tritonserver (2.51, from the PyPI wheel nvidia-pytriton), on the CPU:
 * the committed triton/models (ensembles and preprocess_* exactly as generated; each <model>_onnx served
 * by onnxruntime inside the python backend on models/contract/<model>.onnx). The server is started once
 * for this file and stopped at its end. Where it cannot run (scripts/tritonserver-local.sh --check exits 3,
 * e.g. its venv is not installed), every test is skipped with the reason. See docs/real-tritonserver.md.
 */
import { centerCropBicubic, stretchCropBilinear } from "../../src/preprocess/pil-resize.js";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import { CLIP_TOKENS, contractFor, findModel, readyChecklist, repositoryModels, type CatalogModel } from "../../src/catalog/index.js";
import { ClipTokenizer } from "../../src/components/clip/tokenizer.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { readImageRgb } from "../../src/preprocess/decode-image.js";
import { letterbox } from "../../src/preprocess/letterbox.js";
import { ensembleOutputs, preprocessInputs } from "../../src/preprocess/normalize.js";
import { resizeBilinear, type RgbImage } from "../../src/preprocess/resize.js";
import { elementCount, tensor, toFloat32, toRaw, type Tensor } from "../../src/tensor.js";
import { TritonClient } from "../../src/triton/client.js";
import { loadProfile } from "../../src/profiles/index.js";
import { routableModels } from "../../src/routing/index.js";
import { SystemSharedMemory } from "../../src/triton/shared-memory.js";
import { startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { repoRoot, testdata } from "../support/testdata.js";

const SOURCE = join(repoRoot, "triton/models");
const CONTRACT = join(repoRoot, "models/contract");
const CLI = join(repoRoot, "dist/src/cli/main.js");
/** Largest |server - in-process| allowed, per element, relative to max(1, |value|). */
const PARITY_TOLERANCE = 1e-4;

let server: RealTriton | undefined;
let startError: Error | undefined;
let skip: string | false = false;
try {
  const r = await startRealTriton({ http: true });
  if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
} catch (e) {
  startError = e as Error;
  skip = "the real tritonserver did not start (see the failing test 'real tritonserver starts')";
}
if (skip && !startError) console.log(`# real-triton tests skipped: ${skip}`);

const client = server ? await TritonClient.create({ url: server.address }) : undefined;
const live = (): { server: RealTriton; client: TritonClient } => ({ server: server!, client: client! });
let embedded: EmbeddedBackend | undefined;

after(async () => {
  await embedded?.close();
  await client?.close();
  await server?.stop();
});

/** The ensembles of the committed repository, each with its catalog model. */
function committedEnsembles(): Array<{ name: string; m: CatalogModel }> {
  if (!server) return [];
  return server.models
    .filter((n) => /^platform:\s*"ensemble"\s*$/m.test(readFileSync(join(SOURCE, n, "config.pbtxt"), "utf8")))
    .map((name) => {
      const m = findModel(name);
      assert.ok(m, `triton/models/${name} is an ensemble the catalog does not know`);
      return { name, m };
    });
}

// --- Realistic inputs: the shared test images through the SDK's own resizing, else synthetic images. ---

const imageFor: Record<string, string> = { midas: "images/horses.jpg", clip_image: "images/dog.jpg", places365: "images/mountains.jpg", yolo11: "images/bus.jpg" };
const images = new Map<string, Promise<RgbImage>>();

/** A smooth gradient with some texture, shifted by `dx` pixels (the second frame of a pair). */
function syntheticImage(size: number, dx = 0): RgbImage {
  const data = new Uint8Array(size * size * 3);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const u = x - dx;
      const o = (y * size + x) * 3;
      data[o] = (u * 255) / size;
      data[o + 1] = (y * 255) / size;
      data[o + 2] = 128 + 100 * Math.sin(u / 9) * Math.cos(y / 13);
    }
  }
  return { width: size, height: size, channels: 3, data };
}

async function loadImage(rel: string): Promise<RgbImage | undefined> {
  const path = testdata(...rel.split("/"));
  if (!existsSync(path)) return undefined;
  let p = images.get(path);
  if (!p) images.set(path, (p = readImageRgb(path)));
  return p;
}

function centerCrop(img: RgbImage, s: number): RgbImage {
  const k = s / Math.min(img.width, img.height);
  const w = Math.max(s, Math.round(img.width * k));
  const h = Math.max(s, Math.round(img.height * k));
  const r = resizeBilinear(img, w, h);
  const x0 = (w - s) >> 1;
  const y0 = (h - s) >> 1;
  const out = new Uint8Array(s * s * 3);
  for (let y = 0; y < s; y++) out.set(r.data.subarray(((y + y0) * w + x0) * 3, ((y + y0) * w + x0 + s) * 3), y * s * 3);
  return { width: s, height: s, channels: 3, data: out };
}

/** The image fitted into S x S the way the family's client does (stretch, centre crop or letterbox). */
function fit(m: CatalogModel, img: RgbImage, s: number): RgbImage {
  if (m.family.resize === "letterbox") return letterbox(img, s, s, { fill: m.family.pad ?? 114 }).image;
  if (m.family.resize === "center_crop") return centerCrop(img, s);
  if (m.family.resize === "center_crop_bicubic") return centerCropBicubic(img, s);
  if (m.family.resize === "stretch_crop_bilinear") return stretchCropBilinear(img, s);
  return resizeBilinear(img, s, s);
}

let tokenizer: Promise<ClipTokenizer | undefined> | undefined;

/** The ensemble's inputs, from real pictures, frames and tokens where the shared test data has them. */
async function realisticInputs(m: CatalogModel): Promise<Tensor[]> {
  const specs = contractFor(m, "triton").inputs;
  if (m.family.input === "tokens") {
    tokenizer ??= ClipTokenizer.load().catch(() => undefined);
    const tok = await tokenizer;
    const ids = tok?.tokenize("a photo of a dog running on the grass") ?? new BigInt64Array(CLIP_TOKENS.context);
    if (!tok) [CLIP_TOKENS.sot, 320, 1125, 539, 320, 1929, CLIP_TOKENS.eot].forEach((v, i) => (ids[i] = BigInt(v)));
    return [tensor(specs[0]!.name, "INT64", specs[0]!.shape, ids)];
  }
  const s = m.inputSize!;
  const frames =
    m.family.input === "image_pair"
      ? await Promise.all(["raft/frame_0016.png", "raft/frame_0017.png"].map(loadImage))
      : [await loadImage(imageFor[m.family.id] ?? "images/bus.jpg")];
  return specs.map((spec, k) => {
    const src = frames[k];
    const img = src ? fit(m, src, s) : syntheticImage(s, 3 * k);
    assert.equal(img.data.length, elementCount(spec.shape));
    return tensor(spec.name, "UINT8", spec.shape, img.data);
  });
}

/** max |a - b| / max(1, |b|) over the elements, and max |b|. */
function parity(a: Float32Array, b: Float32Array): { diff: number; scale: number } {
  assert.equal(a.length, b.length);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < a.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!) / Math.max(1, Math.abs(b[i]!)));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return { diff, scale };
}

function assertSdkError(e: unknown, code: string, grpcStatus: number | undefined, pattern?: RegExp): true {
  assert.ok(e instanceof VideoAnalysisError, `expected a VideoAnalysisError, got ${String(e)}`);
  assert.equal(e.code, code, e.toString());
  assert.equal(e.details.grpcStatus, grpcStatus, e.toString());
  if (pattern) assert.match(e.message, pattern);
  return true;
}

// ------------------------------------------------------------------------------------------------

test("real tritonserver starts on the committed repository", { skip: startError ? false : skip }, (t) => {
  if (startError) throw startError;
  t.diagnostic(`${server!.models.length} models READY after ${(server!.startupMs / 1000).toFixed(1)} s at ${server!.address}`);
});

test("health: live, ready, server metadata", { skip }, async () => {
  const { client } = live();
  assert.equal(await client.serverLive(), true);
  assert.equal(await client.serverReady(), true);
  const md = await client.serverMetadata();
  assert.equal(md.name, "triton");
  assert.match(md.version, /^\d+\.\d+\.\d+$/);
  for (const ext of ["model_repository", "model_configuration", "system_shared_memory", "statistics"]) assert.ok(md.extensions.includes(ext), ext);
});

test("repository index: every model of triton/models is there and READY; only the _onnx models were rewritten", { skip }, async () => {
  const { server, client } = live();
  const index = await client.repositoryIndex();
  assert.deepEqual(index.map((e) => e.name).sort(), [...server.models].sort());
  const notReady = index.filter((e) => e.state !== "READY");
  assert.deepEqual(notReady, [], JSON.stringify(notReady));
  assert.deepEqual((await client.repositoryIndex({ ready: true })).length, server.models.length);
  // The committed repository holds what the catalog says it does, and the checklist's parts.
  const names = new Set(server.models);
  for (const m of repositoryModels()) for (const p of m.parts) assert.ok(names.has(p), `${m.name}: part ${p} is not in triton/models`);
  for (const m of readyChecklist()) for (const p of m.parts) assert.equal(await client.modelReady(p), true, p);
  for (const n of server.models) {
    const committed = readFileSync(join(SOURCE, n, "config.pbtxt"), "utf8");
    const served = readFileSync(join(server.repository, n, "config.pbtxt"), "utf8");
    if (n.endsWith("_onnx")) assert.match(served, /^backend: "python"$/m, n);
    else assert.equal(served, committed, `${n} must be served exactly as generated`);
  }
});

test("metadata and config: ensembles, preprocess and ONNX models match the catalog's contracts", { skip }, async () => {
  const { client } = live();
  const ensembles = committedEnsembles();
  assert.ok(ensembles.length >= 16, `only ${ensembles.length} ensembles`);
  for (const { name, m } of ensembles) {
    const contract = contractFor(m, "triton");
    const md = await client.modelMetadata(name);
    assert.equal(md.platform, "ensemble", name);
    assert.deepEqual(md.versions, ["1"], name);
    assert.deepEqual(md.inputs, contract.inputs, `${name} inputs`);
    assert.deepEqual(md.outputs, contract.outputs, `${name} outputs`);

    const config = await client.modelConfig(name);
    assert.equal(config.platform, "ensemble", name);
    assert.equal(Number(config.max_batch_size ?? 0), 0, name);
    const steps = (config.ensemble_scheduling?.step ?? []) as Array<{ model_name: string }>;
    assert.deepEqual(steps.map((s) => s.model_name), [m.preprocessName, m.onnxName].filter(Boolean), `${name} steps`);

    const onnx = await client.modelMetadata(m.onnxName);
    assert.deepEqual({ inputs: onnx.inputs, outputs: onnx.outputs }, contractFor(m, "embedded"), m.onnxName);
    if (m.preprocessName) {
      const pre = await client.modelMetadata(m.preprocessName);
      assert.equal(pre.platform, "python", m.preprocessName);
      assert.deepEqual(pre.inputs, contract.inputs, `${m.preprocessName} inputs`);
      assert.deepEqual(pre.outputs, m.onnx.inputs, `${m.preprocessName} outputs = ${m.onnxName} inputs`);
    }
  }
});

test("ModelInfer on every ensemble: output shapes of the catalog, parity with the embedded backend", { skip }, async (t) => {
  const { client } = live();
  const ensembles = committedEnsembles();
  embedded = await EmbeddedBackend.create({
    models: Object.fromEntries(ensembles.map(({ name }) => [name, join(CONTRACT, `${name}.onnx`)])),
    intraOpNumThreads: 1,
  });
  const emb = embedded;
  t.diagnostic(existsSync(testdata("images")) ? `inputs: shared test images, RAFT frames and CLIP tokens (${testdata()})` : "inputs: synthetic images (no shared test data)");
  for (const { name, m } of ensembles) {
    await t.test(name, async (st) => {
      const contract = contractFor(m, "triton");
      const inputs = await realisticInputs(m);
      const t0 = performance.now();
      // The contract option makes the SDK check the server's metadata before the first request.
      const r = await client.infer(name, inputs, { contract });
      const ms = performance.now() - t0;
      assert.equal(r.model, name);
      assert.deepEqual(Object.keys(r.outputs).sort(), contract.outputs.map((o) => o.name).sort());
      for (const spec of contract.outputs) {
        const out = r.outputs[spec.name]!;
        assert.equal(out.datatype, spec.datatype, spec.name);
        assert.deepEqual(out.shape, spec.shape, spec.name);
        assert.ok(toFloat32(out).every(Number.isFinite), `${spec.name} holds NaN or infinity`);
      }
      // The same contract model in this process, fed by the SDK's TypeScript preprocessing.
      const local = await emb.infer(name, preprocessInputs(m, inputs), { contract: m.onnx });
      const expected = ensembleOutputs(m, local.outputs);
      for (const spec of contract.outputs) {
        const { diff, scale } = parity(toFloat32(r.outputs[spec.name]!), toFloat32(expected[spec.name]!));
        st.diagnostic(`${spec.name} [${spec.shape.join(",")}]: max rel diff ${diff.toExponential(2)} (max |value| ${scale.toPrecision(3)}), ${ms.toFixed(0)} ms`);
        assert.ok(diff <= PARITY_TOLERANCE, `${name} ${spec.name}: server and in-process differ by ${diff} > ${PARITY_TOLERANCE}`);
      }
    });
  }
});

test("ModelStreamInfer: several models on one stream, answers as the unary call's; an error fails only its request", { skip }, async () => {
  const { client } = live();
  const pick = ["midas_256", "clip_text", "places365_resnet50_224"].map((n) => findModel(n)!);
  const inputs = await Promise.all(pick.map(realisticInputs));
  const unary = await Promise.all(pick.map((m, i) => client.infer(m.name, inputs[i]!)));
  const stream = client.stream({ deadlineMs: 60_000 });
  try {
    // Requests go out back to back; answers come back in order, the failed one in its place, with the
    // status a unary call would have had (the stream carries only the message).
    const first = stream.infer(pick[0]!.name, inputs[0]!);
    const failed = stream.infer("no_such_model", inputs[0]!).then(
      () => assert.fail("an unknown model answered on the stream"),
      (e: unknown) => assertSdkError(e, "NOT_FOUND", undefined, /no_such_model.*not found/),
    );
    const rest = [stream.infer(pick[1]!.name, inputs[1]!), stream.infer(pick[2]!.name, inputs[2]!), stream.infer(pick[0]!.name, inputs[0]!)];
    const answers = await Promise.all([first, ...rest]);
    await failed;
    answers.forEach((r, i) => {
      const k = i % pick.length;
      assert.equal(r.model, pick[k]!.name);
      assert.deepEqual(toFloat32(r.outputs.OUTPUT__0!), toFloat32(unary[k]!.outputs.OUTPUT__0!), `${r.model}: stream and unary answers differ`);
    });
  } finally {
    await stream.close();
  }
  const stats = await client.modelStatistics("midas_256");
  assert.ok(Number(stats[0]?.inference_count ?? 0) >= 3, JSON.stringify(stats[0]));
});

test("errors: unknown model NOT_FOUND; wrong shape and datatype INVALID_ARGUMENT from the server; contract checks in the client", { skip }, async () => {
  const { client } = live();
  const m = findModel("midas_256")!;
  const [good] = await realisticInputs(m);
  await assert.rejects(client.infer("no_such_model", [good!]), (e) => assertSdkError(e, "NOT_FOUND", 5, /no_such_model/));
  await assert.rejects(client.modelMetadata("no_such_model"), (e) => assertSdkError(e, "NOT_FOUND", 5, /no_such_model/));
  assert.equal(await client.modelReady("no_such_model"), false);

  // Sent as is (no contract): the server refuses. Triton 2.51 gives no message for a wrong shape.
  const wrongShape = tensor("INPUT__0", "UINT8", [1, 255, 256, 3], (good!.data as Uint8Array).subarray(0, 255 * 256 * 3));
  await assert.rejects(client.infer("midas_256", [wrongShape]), (e) => assertSdkError(e, "INVALID_ARGUMENT", 3));
  const wrongType = tensor("INPUT__0", "FP32", [1, 256, 256, 3], new Float32Array(256 * 256 * 3));
  await assert.rejects(client.infer("midas_256", [wrongType]), (e) => assertSdkError(e, "INVALID_ARGUMENT", 3, /expects 'UINT8'/));
  const wrongName = tensor("PIXELS", "UINT8", [1, 256, 256, 3], good!.data as Uint8Array);
  await assert.rejects(client.infer("midas_256", [wrongName]), (e) => assertSdkError(e, "INVALID_ARGUMENT", 3, /unexpected inference input 'PIXELS'/));

  // With the contract, the SDK stops the request before it leaves the process ...
  await assert.rejects(client.infer("midas_256", [wrongShape], { contract: m.ensemble }), (e) => assertSdkError(e, "INVALID_ARGUMENT", undefined, /\[1,255,256,3\]/));
  // ... and a contract the server's model does not have is CONTRACT_MISMATCH, from the real metadata.
  const clip = findModel("clip_image_224")!;
  const wrongContract = { inputs: clip.ensemble.inputs, outputs: [{ name: "OUTPUT__0", datatype: "FP32" as const, shape: [1, 768] }] };
  const [clipIn] = await realisticInputs(clip);
  // A fresh client: a client checks each model's contract once, and this one has passed clip_image_224's.
  const fresh = await TritonClient.create({ url: live().server.address });
  try {
    await assert.rejects(fresh.infer("clip_image_224", [clipIn!], { contract: wrongContract }), (e) => assertSdkError(e, "CONTRACT_MISMATCH", undefined, /FP32 \[1,512\]/));
  } finally {
    await fresh.close();
  }
});

test("system shared memory: regions registered from offset 0, tensors placed by page-aligned request offsets", { skip }, async () => {
  const { client } = live();
  const m = findModel("raft_256")!;
  const inputs = await realisticInputs(m);
  const reference = await client.infer(m.name, inputs);
  const out = m.ensemble.outputs[0]!;
  const outBytes = elementCount(out.shape) * 4;
  const page = 4096;
  const align = (n: number) => Math.ceil(n / page) * page;
  // Named vasdk_it_<pid>_*: removeStale() clears them if this process dies before the finally below.
  const tag = `${process.pid}_${Date.now().toString(36)}`;
  // Both frames in one region, the output in another one at a page-aligned offset. Each region is
  // registered once, whole, from offset 0: Triton 2.51 applies a non-zero *registered* offset twice
  // (it mmaps from it and adds it again), so placement goes in the request's offsets instead.
  const frameBytes = toRaw(inputs[0]!).byteLength;
  const outOffset = page;
  const inRegion = SystemSharedMemory.create(`/vasdk_it_${tag}_in`, 2 * align(frameBytes));
  const outRegion = SystemSharedMemory.create(`/vasdk_it_${tag}_out`, outOffset + align(outBytes));
  const spare = SystemSharedMemory.create(`/vasdk_it_${tag}_spare`, 2 * page);
  try {
    inputs.forEach((t, i) => inRegion.write(i * align(frameBytes), toRaw(t)));
    await client.registerSystemSharedMemory("it_in", inRegion.key, inRegion.byteSize);
    await client.registerSystemSharedMemory("it_out", outRegion.key, outRegion.byteSize);
    const status = (await client.systemSharedMemoryStatus()).filter((x) => x.name.startsWith("it_")).sort((a, b) => a.name.localeCompare(b.name));
    assert.deepEqual(status, [
      { name: "it_in", key: inRegion.key, offset: 0, byteSize: inRegion.byteSize },
      { name: "it_out", key: outRegion.key, offset: 0, byteSize: outRegion.byteSize },
    ]);
    // A key registers once: a second name for it is refused ...
    await assert.rejects(client.registerSystemSharedMemory("it_again", outRegion.key, page), (e) => assertSdkError(e, "INTERNAL", 13, /Invalid shared memory region/));
    // ... and so is a registered offset that is not page-aligned (the server mmaps from it).
    await assert.rejects(client.registerSystemSharedMemory("it_unaligned", spare.key, 1024, 1024), (e) => assertSdkError(e, "INVALID_ARGUMENT", 3, /it_unaligned/));

    const r = await client.infer(
      m.name,
      m.ensemble.inputs.map((spec, i) => ({ ...spec, sharedMemory: { region: "it_in", byteSize: frameBytes, offset: i * align(frameBytes) } })),
      { sharedMemoryOutputs: { [out.name]: { region: "it_out", byteSize: outBytes, offset: outOffset } } },
    );
    assert.equal(r.outputs[out.name], undefined, "the output went to shared memory, not into the message");
    assert.deepEqual((r as unknown as { sharedMemory: Record<string, unknown> }).sharedMemory[out.name], { datatype: "FP32", shape: out.shape });
    const bytes = outRegion.read(outOffset, outBytes);
    assert.deepEqual(new Float32Array(bytes.buffer, bytes.byteOffset, outBytes / 4), toFloat32(reference.outputs[out.name]!));
    assert.ok(outRegion.read(0, outOffset).every((b) => b === 0), "nothing was written before the output's offset");
  } finally {
    await client.unregisterSystemSharedMemory();
    inRegion.destroy();
    outRegion.destroy();
    spare.destroy();
  }
  assert.deepEqual(await client.systemSharedMemoryStatus(), []);
});

test("HTTP/REST: every ensemble answers bit for bit as over gRPC; the same models, metadata and configs", { skip }, async (t) => {
  const { server, client } = live();
  const http = await TritonClient.create({ url: server.httpAddress!, protocol: "http" });
  try {
    assert.equal(await http.serverReady(), true);
    assert.equal((await http.serverMetadata()).version, (await client.serverMetadata()).version);
    assert.deepEqual(await http.repositoryIndex(), await client.repositoryIndex());
    for (const { name, m } of committedEnsembles()) {
      await t.test(name, async () => {
        assert.deepEqual(await http.modelMetadata(name), await client.modelMetadata(name));
        assert.equal((await http.modelConfig(name)).platform, "ensemble");
        const inputs = await realisticInputs(m);
        const contract = contractFor(m, "triton");
        const [viaHttp, viaGrpc] = [await http.infer(name, inputs, { contract }), await client.infer(name, inputs, { contract })];
        for (const spec of contract.outputs) {
          const [a, b] = [toFloat32(viaHttp.outputs[spec.name]!), toFloat32(viaGrpc.outputs[spec.name]!)];
          assert.deepEqual(viaHttp.outputs[spec.name]!.shape, spec.shape);
          assert.ok(Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength)), `${name} ${spec.name}: HTTP and gRPC differ`);
        }
      });
    }
  } finally {
    await http.close();
  }
});

test("HTTP/REST errors carry Triton's status and text: unknown model, wrong shape, wrong datatype", { skip }, async () => {
  const { server } = live();
  const http = await TritonClient.create({ url: server.httpAddress!, protocol: "http", retry: { maxAttempts: 1 } });
  const httpStatus = (e: unknown, status: number) => (assert.equal((e as VideoAnalysisError).details.httpStatus, status, String(e)), true);
  try {
    const m = findModel("midas_256")!;
    const [good] = await realisticInputs(m);
    await assert.rejects(http.infer("no_such_model", [good!]), (e) => assertSdkError(e, "NOT_FOUND", undefined, /Request for unknown model: 'no_such_model' is not found/) && httpStatus(e, 404));
    assert.equal(await http.modelReady("no_such_model"), false);
    const wrongShape = tensor("INPUT__0", "UINT8", [1, 255, 256, 3], (good!.data as Uint8Array).subarray(0, 255 * 256 * 3));
    await assert.rejects(http.infer("midas_256", [wrongShape]), (e) => assertSdkError(e, "INVALID_ARGUMENT", undefined, /unexpected shape for input 'INPUT__0' for model 'midas_256'\. Expected \[1,256,256,3\], got \[1,255,256,3\]/) && httpStatus(e, 400));
    const wrongType = tensor("INPUT__0", "FP32", [1, 256, 256, 3], new Float32Array(256 * 256 * 3));
    await assert.rejects(http.infer("midas_256", [wrongType]), (e) => assertSdkError(e, "INVALID_ARGUMENT", undefined, /expects 'UINT8'/));
  } finally {
    await http.close();
  }
  // Over gRPC Triton 2.51 answers the wrong shape with a status and no text; the SDK still says what was wrong.
  const m = findModel("midas_256")!;
  const [good] = await realisticInputs(m);
  const wrongShape = tensor("INPUT__0", "UINT8", [1, 255, 256, 3], (good!.data as Uint8Array).subarray(0, 255 * 256 * 3));
  await assert.rejects(live().client.infer("midas_256", [wrongShape]), (e) => assertSdkError(e, "INVALID_ARGUMENT", 3, /Expected \[1,256,256,3\], got \[1,255,256,3\]/));
});

for (const protocol of ["grpc", "http"] as const) {
  test(`shared memory pool (${protocol}): frames in and outputs out through /dev/shm, answers equal to the messages'`, { skip }, async () => {
    const { server, client } = live();
    const url = protocol === "grpc" ? server.address : server.httpAddress!;
    const viaShm = await TritonClient.create({ url, protocol, sharedMemory: "system" });
    try {
      for (const name of ["raft_256", "yolo11x_640"]) {
        const m = findModel(name)!;
        const contract = contractFor(m, "triton");
        const inputs = await realisticInputs(m);
        const [a, b] = [await viaShm.infer(name, inputs, { contract }), await client.infer(name, inputs, { contract })];
        for (const spec of contract.outputs) assert.deepEqual(toFloat32(a.outputs[spec.name]!), toFloat32(b.outputs[spec.name]!), `${name} ${spec.name}`);
      }
      const regions = (await client.systemSharedMemoryStatus()).filter((r) => r.name.startsWith("vasdk_shm_"));
      // raft: two frames and the flow; yolo: the frame and its output.
      assert.equal(regions.length, 5);
    } finally {
      await viaShm.close();
    }
    assert.deepEqual((await client.systemSharedMemoryStatus()).filter((r) => r.name.startsWith("vasdk_shm_")), []);
  });
}

test("model control: an ensemble unloaded is NOT_FOUND, loaded again it answers", { skip }, async () => {
  const { client } = live();
  const m = findModel("clip_text")!;
  const inputs = await realisticInputs(m);
  await client.unloadModel(m.name);
  try {
    assert.equal(await client.modelReady(m.name), false);
    await assert.rejects(client.infer(m.name, inputs), (e) => assertSdkError(e, "NOT_FOUND", 5, /clip_text/));
  } finally {
    await client.loadModel(m.name);
  }
  assert.equal(await client.modelReady(m.name), true);
  assert.deepEqual((await client.infer(m.name, inputs)).outputs.OUTPUT__0!.shape, m.ensemble.outputs[0]!.shape);
});

const smokeSkip = skip || (existsSync(CLI) && existsSync(join(repoRoot, "dist/src/cli/commands/smoke.js")) ? false : "the smoke command is not built (npx tsc -p .)");

interface SmokeJson {
  ok: boolean;
  failures: string[];
  warnings: string[];
  backend: { live: boolean; ready: boolean; models: number; ready_models: number };
  checklist: Array<{ model: string; level: string; status: string; parts: Array<{ name: string }> }>;
  inferences: Array<{ model: string; ok: boolean; ms: number; detail: string }>;
}

/** `video-analysis smoke` against the real server: exit status, stdout. */
async function smokeCli(profileFile: string, args: string[] = []): Promise<{ code: number; stdout: string }> {
  const env = { ...process.env, TRITON_GRPC_URL: live().server.address };
  try {
    const r = await promisify(execFile)(process.execPath, [CLI, "smoke", "--profile", profileFile, ...args], { env, cwd: repoRoot, maxBuffer: 1 << 24 });
    return { code: 0, stdout: r.stdout };
  } catch (e) {
    const x = e as { code?: number; stdout?: string };
    if (typeof x.code !== "number") throw e;
    return { code: x.code, stdout: x.stdout ?? "" };
  }
}

for (const [profile, checklist] of [
  ["baseline_gpu", undefined],
  ["baseline_gpu_yolo", undefined],
  ["baseline_gpu", "baseline+yolo"],
] as const) {
  test(`video-analysis smoke --profile profiles/${profile}.yaml${checklist ? ` --checklist ${checklist}` : ""} against the real server, end to end`, { skip: smokeSkip }, async (t) => {
    const { server } = live();
    const file = join(repoRoot, `profiles/${profile}.yaml`);
    const extra = checklist ? ["--checklist", checklist] : [];
    const json = await smokeCli(file, [...extra, "--json"]);
    const report = JSON.parse(json.stdout) as SmokeJson;
    assert.equal(report.ok, true, report.failures.join("\n"));
    assert.equal(json.code, 0);
    assert.deepEqual(report.warnings, []);
    assert.deepEqual(report.backend, { kind: "triton", endpoint: server.address, live: true, ready: true, models: server.models.length, ready_models: server.models.length });
    const want = checklist ? readyChecklist().length : routableModels(await loadProfile(file, { env: {} })).length;
    assert.equal(report.checklist.length, want);
    if (!checklist) assert.equal(report.checklist.some((r) => r.model.startsWith("yolo")), profile === "baseline_gpu_yolo");
    else assert.ok(report.checklist.every((r) => r.level === "required"));
    assert.ok(report.checklist.every((r) => r.status === "ready"));
    assert.equal(report.inferences.length, report.checklist.length);
    assert.ok(report.inferences.every((i) => i.ok), JSON.stringify(report.inferences.filter((i) => !i.ok)));
    t.diagnostic(`${report.inferences.length} inferences, slowest ${Math.max(...report.inferences.map((i) => i.ms)).toFixed(0)} ms`);
    // The human-readable form, and its exit code.
    const text = await smokeCli(file, extra);
    assert.equal(text.code, 0);
    assert.match(text.stdout, new RegExp(`^OK: \\d+/\\d+ required ready and answering(?:; additional \\d+/\\d+ ready)?; ${report.inferences.length}/${report.inferences.length} inferences passed$`, "m"));
    assert.doesNotMatch(text.stdout, /SPEC/);
  });
}

test("smoke on the real server: a YOLO-only profile passes without the baseline's models; --checklist baseline names what is missing", { skip: smokeSkip }, async () => {
  const { client } = live();
  const yoloOnly = join(repoRoot, "test/smoke/yolo_only.yaml");
  // The checklist's names are the repository's: seed 002's preprocess_places365_<S>.
  for (const m of readyChecklist()) for (const p of m.parts) assert.equal(await client.modelReady(p), true, p);
  assert.ok(readyChecklist().some((m) => m.parts.includes("preprocess_places365_224")));
  await client.unloadModel("preprocess_places365_224");
  // Triton unloads the ensemble with its step, asynchronously: wait until both are unloaded.
  for (let t = Date.now(); Date.now() - t < 30_000; await new Promise((r) => setTimeout(r, 100))) {
    const index = await client.repositoryIndex();
    if (["preprocess_places365_224", "places365_resnet50_224"].every((n) => index.some((e) => e.name === n && e.state === "UNAVAILABLE"))) break;
  }
  try {
    const plain = await smokeCli(yoloOnly, ["--json"]);
    const r = JSON.parse(plain.stdout) as SmokeJson;
    assert.equal(plain.code, 0, r.failures.join("\n"));
    assert.deepEqual(r.checklist.map((x) => [x.model, x.status]), [["yolo11x_320", "ready"], ["yolo11x_640", "ready"]]);
    assert.deepEqual(r.inferences.map((i) => i.detail), ["OUTPUT__0 FP32 [1,84,2100]", "OUTPUT__0 FP32 [1,84,8400]"]);
    const base = await smokeCli(yoloOnly, ["--checklist", "baseline"]);
    assert.equal(base.code, 1);
    // The server may still be UNLOADING the ensemble (it can take longer than the wait above): either is "not ready".
    assert.match(base.stdout, /^FAILED: 1 required problem:\n {2}required places365_resnet50_224: places365_resnet50_224 not ready \((?:unloaded|UNLOADING)\), preprocess_places365_224 not ready \((?:unloaded|UNLOADING)\)$/m);
  } finally {
    await client.loadModel("preprocess_places365_224");
    await client.loadModel("places365_resnet50_224");
  }
  // Back for the tests after this one (a load that met the ensemble still unloading may take a moment).
  let back = false;
  for (let t = Date.now(); !back && Date.now() - t < 30_000; await new Promise((r) => setTimeout(r, 100))) back = await client.modelReady("places365_resnet50_224");
  assert.equal(back, true);
});

test("stock GPU profiles print no warning: main on the CLI, process() and detect() sharing one signal", { skip: smokeSkip }, async () => {
  const { server } = live();
  const run = promisify(execFile);
  const video = testdata("video", "cars_768x432_12fps.mp4");
  const out = join(server.repository, "..", "runs");
  for (const profile of ["baseline_gpu", "baseline_gpu_yolo"]) {
    const r = await run(process.execPath, [CLI, "main", "--video", video, "--profile", join(repoRoot, `profiles/${profile}.yaml`), "--out", join(out, profile), "--max-frames", "8"], {
      env: { ...process.env, TRITON_GRPC_URL: server.address },
      cwd: repoRoot,
    });
    assert.doesNotMatch(r.stderr, /warning|MaxListeners/i, `${profile}: ${r.stderr}`);
  }
  // An application's one signal across many calls at once (29 CLIP prompts, 20 detect() calls).
  const warnings: string[] = [];
  const onWarning = (w: Error) => warnings.push(`${w.name}: ${w.message}`);
  process.on("warning", onWarning);
  const had = process.env.TRITON_GRPC_URL;
  process.env.TRITON_GRPC_URL = server.address;
  const { ModelManager } = await import("../../src/pipeline/model-manager.js");
  const mm = await ModelManager.fromProfile(join(repoRoot, "profiles/baseline_gpu_yolo.yaml"));
  try {
    const img = await readImageRgb(testdata("images", "bus.jpg"));
    const signal = new AbortController().signal;
    let n = 0;
    for await (const r of mm.process([img, img, img], { signal })) n += r.detections ? 1 : 0;
    assert.equal(n, 3);
    const dets = await Promise.all(Array.from({ length: 20 }, () => mm.detect(img, { signal })));
    assert.ok(dets.every((d) => d.length > 0));
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(warnings, []);
  } finally {
    await mm.close();
    process.off("warning", onWarning);
    if (had === undefined) delete process.env.TRITON_GRPC_URL;
    else process.env.TRITON_GRPC_URL = had;
  }
});
