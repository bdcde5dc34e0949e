/**
 * HttpProtocol against NVIDIA's real tritonserver (2.51, from the PyPI wheel nvidia-pytriton, on the CPU),
 * serving one model of the committed repository (preprocess_midas_256, python backend): every call of the
 * Protocol interface, errors with Triton's own statuses and texts, system shared memory; and the test
 * server's HTTP front (test/support/test-server.ts) checked against the real one, request by request.
 * Skipped where the real server cannot run, as real-triton.test.ts is (scripts/tritonserver-local.sh
 * --check exits 3); see docs/real-tritonserver.md.
 */
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { after, test } from "node:test";
import { NORMALIZATIONS } from "../../src/catalog/index.js";
import { normalizeNhwcToNchw } from "../../src/preprocess/normalize.js";
import { tensor } from "../../src/tensor.js";
import { HttpProtocol } from "../../src/triton/http.js";
import { TransportError, type CallOptions } from "../../src/triton/protocol.js";
import { SystemSharedMemory } from "../../src/triton/shared-memory.js";
import { committedModels, startRealTriton, type RealTriton } from "../support/real-tritonserver.js";
import { TestServer } from "../support/test-server.js";

const M = "preprocess_midas_256";
const SHAPE = [1, 256, 256, 3];
const OUT_SHAPE = [1, 3, 256, 256];
const O: CallOptions = { deadlineMs: 30_000 };

let server: RealTriton | undefined;
let startError: Error | undefined;
let skip: string | false = false;
try {
  const r = await startRealTriton({
    http: true,
    build: committedModels(M),
  });
  if (r.skip !== undefined) skip = `real tritonserver not run: ${r.skip}`;
  else server = r.server;
} catch (e) {
  startError = e as Error;
  skip = "the real tritonserver did not start (see the failing test 'real tritonserver starts (HTTP)')";
}
if (skip && !startError) console.log(`# real-triton-http tests skipped: ${skip}`);

const conn = (url: string) => ({ urls: [url], headers: {}, keepaliveTimeMs: 300_000, keepaliveTimeoutMs: 20_000, maxReceiveMessageBytes: 1 << 30, connectTimeoutMs: 10_000 });
const p = server ? new HttpProtocol(conn(server.httpAddress!)) : undefined;
const live = () => ({ server: server!, p: p! });

after(async () => {
  await p?.close();
  await server?.stop();
});

const pixels = new Uint8Array(256 * 256 * 3).map((_, i) => (i * 31) % 256);
const frame = () => tensor("INPUT__0", "UINT8", SHAPE, pixels);

async function rejectsWith(call: Promise<unknown>, code: string, http: number, text: RegExp): Promise<void> {
  await assert.rejects(call, (e: unknown) => {
    assert.ok(e instanceof TransportError, String(e));
    assert.equal(e.code, code, `${e.code} ${e.status?.http}: ${e.details}`);
    assert.equal(e.status?.http, http, e.details);
    assert.match(e.details, text);
    return true;
  });
}

/**
 * Waits until the model is READY, or UNAVAILABLE after an unload: Triton unloads in the background, and
 * while the model is UNLOADING the server is not ready (its readiness asks every model to be READY or
 * unloaded).
 */
async function untilReady(p: HttpProtocol, ready: boolean): Promise<void> {
  const state = async () => (await p.repositoryIndex("", false, O)).find((m) => m.name === M)?.state;
  const want = ready ? "READY" : "UNAVAILABLE";
  for (let i = 0; i < 100 && (await state()) !== want; i++) await sleep(100);
  assert.equal(await state(), want);
  assert.equal(await p.modelReady(M, "", O), ready);
}

test("real tritonserver starts (HTTP)", { skip: startError ? false : skip }, (t) => {
  if (startError) throw startError;
  t.diagnostic(`READY after ${(server!.startupMs / 1000).toFixed(1)} s, HTTP at ${server!.httpAddress}`);
});

test("health, server and model metadata, config (int64 fields as numbers), statistics, repository index", { skip }, async () => {
  const { p } = live();
  assert.equal(await p.serverLive(O), true);
  assert.equal(await p.serverReady(O), true);
  assert.equal(await p.modelReady(M, "", O), true);
  assert.equal(await p.modelReady(M, "1", O), true);
  assert.equal(await p.modelReady(M, "2", O), false);
  assert.equal(await p.modelReady("no_such_model", "", O), false);
  const sm = await p.serverMetadata(O);
  assert.equal(sm.name, "triton");
  assert.match(sm.version, /^\d+\.\d+\.\d+$/);
  assert.ok(sm.extensions.includes("binary_tensor_data") && sm.extensions.includes("system_shared_memory"));
  assert.deepEqual(await p.modelMetadata(M, "", O), {
    name: M,
    versions: ["1"],
    platform: "python",
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: SHAPE }],
    outputs: [{ name: "pixel_values", datatype: "FP32", shape: OUT_SHAPE }],
  });
  const config = await p.modelConfig(M, "1", O);
  assert.equal(config.name, M);
  assert.equal(config.backend, "python");
  assert.deepEqual(config.input[0].dims, SHAPE, "dims come as JSON numbers over HTTP");
  assert.equal(config.input[0].data_type, "TYPE_UINT8");
  await p.infer(M, [frame()], {}, O);
  const stats = await p.modelStatistics(M, "", O);
  assert.equal(stats[0]!.name, M);
  assert.ok(Number(stats[0]!.inference_stats.success.count) >= 1);
  assert.ok((await p.modelStatistics("", "", O)).some((s) => s.name === M));
  assert.deepEqual(await p.repositoryIndex("", true, O), [{ name: M, version: "1", state: "READY", reason: "" }]);
});

test("infer: a frame in, the normalised tensor out bit for bit as the SDK computes it; id, outputs named or not", { skip }, async () => {
  const { p } = live();
  const want = normalizeNhwcToNchw(pixels, SHAPE, NORMALIZATIONS.dpt);
  for (const options of [{}, { outputs: ["pixel_values"], requestId: "r-1", serverTimeoutUs: 10_000_000 }]) {
    const r = await p.infer(M, [frame()], options, O);
    assert.equal(r.model, M);
    assert.equal(r.version, "1");
    assert.equal(r.id, "requestId" in options ? "r-1" : "");
    const out = r.outputs.pixel_values!;
    assert.equal(out.datatype, "FP32");
    assert.deepEqual(out.shape, OUT_SHAPE);
    const got = out.data as Float32Array;
    assert.equal(got.byteOffset % 8, 0);
    assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), "same bits as normalizeNhwcToNchw");
  }
});

test("errors carry Triton's HTTP status and text, as the gRPC front's codes", { skip }, async () => {
  const { p } = live();
  await rejectsWith(p.infer("no_such_model", [frame()], {}, O), "NOT_FOUND", 404, /^Request for unknown model: 'no_such_model' is not found$/);
  await rejectsWith(p.modelMetadata(M, "7", O), "NOT_FOUND", 404, /Request for unknown model: 'preprocess_midas_256' version 7 is not found/);
  const small = tensor("INPUT__0", "UINT8", [1, 128, 256, 3], pixels.subarray(0, 128 * 256 * 3));
  await rejectsWith(p.infer(M, [small], {}, O), "INVALID_ARGUMENT", 400, /unexpected shape for input 'INPUT__0' for model 'preprocess_midas_256'\. Expected \[1,256,256,3\], got \[1,128,256,3\]/);
  await rejectsWith(p.infer(M, [tensor("INPUT__0", "FP32", SHAPE, new Float32Array(256 * 256 * 3))], {}, O), "INVALID_ARGUMENT", 400, /inference input 'INPUT__0' data-type is 'FP32', but model 'preprocess_midas_256' expects 'UINT8'/);
  await rejectsWith(p.infer(M, [frame()], { outputs: ["nope"] }, O), "INVALID_ARGUMENT", 400, /unexpected inference output 'nope' for model 'preprocess_midas_256'/);
  await rejectsWith(p.modelStatistics("no_such_model", "", O), "INVALID_ARGUMENT", 400, /requested model 'no_such_model' is not available/);
  await rejectsWith(p.loadModel("no_such_model", {}, O), "INTERNAL", 500, /failed to load 'no_such_model'/);
  await p.unloadModel("no_such_model", {}, O);
});

test("system shared memory: register (twice: ALREADY_EXISTS), status, infer from it into it, unregister", { skip }, async () => {
  const { p } = live();
  // Named vasdk_it_<pid>_*: removeStale() clears it if this process dies before the finally below.
  const key = `/vasdk_it_${process.pid}_http`;
  const inBytes = pixels.byteLength;
  const outBytes = 3 * 256 * 256 * 4;
  const region = SystemSharedMemory.create(key, inBytes + 4096 + outBytes);
  try {
    region.write(0, pixels);
    await p.registerSystemSharedMemory("vasdk_http_rt", key, inBytes + 4096 + outBytes, 0, O);
    await rejectsWith(p.registerSystemSharedMemory("vasdk_http_rt", key, 64, 0, O), "ALREADY_EXISTS", 400, /shared memory region 'vasdk_http_rt' already in manager/);
    assert.deepEqual(await p.systemSharedMemoryStatus("vasdk_http_rt", O), [{ name: "vasdk_http_rt", key, offset: 0, byteSize: inBytes + 4096 + outBytes }]);
    const r = await p.infer(
      M,
      [{ name: "INPUT__0", datatype: "UINT8", shape: SHAPE, sharedMemory: { region: "vasdk_http_rt", byteSize: inBytes } }],
      { outputs: ["pixel_values"], sharedMemoryOutputs: { pixel_values: { region: "vasdk_http_rt", byteSize: outBytes, offset: inBytes + 4096 } } },
      O,
    );
    assert.deepEqual(r.outputs, {});
    assert.deepEqual(r.sharedMemory, { pixel_values: { datatype: "FP32", shape: OUT_SHAPE } });
    const want = normalizeNhwcToNchw(pixels, SHAPE, NORMALIZATIONS.dpt);
    assert.ok(Buffer.from(region.read(inBytes + 4096, outBytes)).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)));
    await rejectsWith(
      p.infer(M, [{ name: "INPUT__0", datatype: "UINT8", shape: SHAPE, sharedMemory: { region: "nope", byteSize: inBytes } }], {}, O),
      "NOT_FOUND",
      404,
      /Unable to find shared memory region: 'nope'/,
    );
  } finally {
    await p.unregisterSystemSharedMemory("vasdk_http_rt", O).catch(() => undefined);
    region.destroy();
  }
  await rejectsWith(p.systemSharedMemoryStatus("vasdk_http_rt", O), "NOT_FOUND", 404, /Unable to find system shared memory region: 'vasdk_http_rt'/);
  assert.deepEqual(await p.systemSharedMemoryStatus("", O), []);
});

/** Raw REST requests whose answers (status and body) the test server must give as the real server does. */
function restCases(key: string): { name: string; method: "GET" | "POST"; path: string; body?: string | Buffer; headers?: Record<string, string> }[] {
  const infer = (shape: number[], outputs?: string[]) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const head = Buffer.from(JSON.stringify({ inputs: [{ name: "INPUT__0", datatype: "UINT8", shape, parameters: { binary_data_size: n } }], ...(outputs ? { outputs: outputs.map((name) => ({ name, parameters: { binary_data: true } })) } : {}) }));
    return { body: Buffer.concat([head, Buffer.alloc(n)]), headers: { "inference-header-content-length": String(head.length), "content-type": "application/octet-stream" } };
  };
  return [
    { name: "metadata", method: "GET", path: `/v2/models/${M}` },
    { name: "unknown model", method: "GET", path: "/v2/models/nope" },
    { name: "unknown model's config", method: "GET", path: "/v2/models/nope/config" },
    { name: "unknown model's readiness", method: "GET", path: "/v2/models/nope/ready" },
    { name: "unknown version", method: "GET", path: `/v2/models/${M}/versions/7` },
    { name: "version not a number", method: "GET", path: `/v2/models/${M}/versions/abc` },
    { name: "unknown model's statistics", method: "GET", path: "/v2/models/nope/stats" },
    { name: "unknown version's statistics", method: "GET", path: `/v2/models/${M}/versions/7/stats` },
    { name: "index", method: "POST", path: "/v2/repository/index", body: JSON.stringify({ ready: true }) },
    { name: "load an unknown model", method: "POST", path: "/v2/repository/models/nope/load", body: "{}" },
    { name: "unload an unknown model", method: "POST", path: "/v2/repository/models/nope/unload", body: "{}" },
    { name: "status of an unknown region", method: "GET", path: "/v2/systemsharedmemory/region/vasdk_x/status" },
    { name: "register a missing key", method: "POST", path: "/v2/systemsharedmemory/region/vasdk_x/register", body: JSON.stringify({ key: "/vasdk_no_such_key", offset: 0, byte_size: 64 }) },
    { name: "register", method: "POST", path: "/v2/systemsharedmemory/region/vasdk_x/register", body: JSON.stringify({ key, offset: 0, byte_size: 64 }) },
    { name: "register again", method: "POST", path: "/v2/systemsharedmemory/region/vasdk_x/register", body: JSON.stringify({ key, offset: 0, byte_size: 64 }) },
    { name: "status of a region", method: "GET", path: "/v2/systemsharedmemory/region/vasdk_x/status" },
    { name: "unregister", method: "POST", path: "/v2/systemsharedmemory/region/vasdk_x/unregister" },
    { name: "status of all regions", method: "GET", path: "/v2/systemsharedmemory/status" },
    { name: "infer an unknown model", method: "POST", path: "/v2/models/nope/infer", ...infer(SHAPE) },
    { name: "infer a wrong shape", method: "POST", path: `/v2/models/${M}/infer`, ...infer([1, 255, 256, 3]) },
    { name: "infer an unknown output", method: "POST", path: `/v2/models/${M}/infer`, ...infer(SHAPE, ["nope"]) },
    { name: "unload", method: "POST", path: `/v2/repository/models/${M}/unload`, body: "{}" },
    { name: "metadata of an unloaded model", method: "GET", path: `/v2/models/${M}` },
    { name: "metadata of an unloaded model's version", method: "GET", path: `/v2/models/${M}/versions/1` },
    { name: "infer an unloaded model", method: "POST", path: `/v2/models/${M}/infer`, ...infer(SHAPE) },
    { name: "infer an unloaded model's version", method: "POST", path: `/v2/models/${M}/versions/1/infer`, ...infer(SHAPE) },
    { name: "readiness of an unloaded model", method: "GET", path: `/v2/models/${M}/ready` },
    { name: "server readiness with a model unloaded", method: "GET", path: "/v2/health/ready" },
    { name: "index with the unloaded model", method: "POST", path: "/v2/repository/index", body: JSON.stringify({ ready: false }) },
    { name: "load", method: "POST", path: `/v2/repository/models/${M}/load`, body: "{}" },
    { name: "no such path", method: "GET", path: "/v2/nothing" },
  ];
}

test("the test server's HTTP front answers as the real server does, status and body", { skip }, async () => {
  const { server, p } = live();
  const stand = await TestServer.start({
    http: true,
    models: [
      {
        name: M,
        inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: SHAPE }],
        outputs: [{ name: "pixel_values", datatype: "FP32", shape: OUT_SHAPE }],
        compute: (x) => ({ pixel_values: tensor("pixel_values", "FP32", OUT_SHAPE, normalizeNhwcToNchw(x.INPUT__0!.data as Uint8Array, SHAPE, NORMALIZATIONS.dpt)) }),
      },
    ],
  });
  const key = `/vasdk_http_parity_${process.pid}`;
  const region = SystemSharedMemory.create(key, 64);
  try {
    const answers = async (address: string) => {
      const out: { name: string; status: number; body: unknown }[] = [];
      const q = new HttpProtocol(conn(address));
      try {
        for (const c of restCases(key)) {
          const res = await fetch(`http://${address}${c.path}`, { method: c.method, body: c.body, headers: c.headers });
          const text = await res.text();
          let body: unknown = text;
          try {
            body = text ? JSON.parse(text) : "";
          } catch {
            // kept as text
          }
          out.push({ name: c.name, status: res.status, body });
          // Triton unloads in the background; what follows an unload or a load waits for it.
          if (c.name === "unload" || c.name === "load") await untilReady(q, c.name === "load");
        }
      } finally {
        await q.close();
      }
      return out;
    };
    const real = await answers(server.httpAddress!);
    const test = await answers(stand.httpAddress!);
    for (const [i, r] of real.entries()) assert.deepEqual(test[i], r, `${r.name}: the test server answers ${JSON.stringify(test[i])}, tritonserver ${JSON.stringify(r)}`);
  } finally {
    region.destroy();
    await stand.stop();
  }
  assert.equal(await p.modelReady(M, "", O), true);
});

test("unload and load: an unloaded model is NOT_FOUND without a version, UNAVAILABLE with one", { skip }, async () => {
  const { p } = live();
  await p.unloadModel(M, { unloadDependents: true }, O);
  try {
    await untilReady(p, false);
    assert.equal(await p.serverReady(O), true);
    assert.deepEqual(await p.repositoryIndex("", false, O), [{ name: M, version: "1", state: "UNAVAILABLE", reason: "unloaded" }]);
    await rejectsWith(p.infer(M, [frame()], {}, O), "NOT_FOUND", 404, /Request for unknown model: 'preprocess_midas_256' has no available versions/);
    await rejectsWith(p.infer(M, [frame()], { version: "1" }, O), "UNAVAILABLE", 503, /Request for unknown model: 'preprocess_midas_256' version 1 is not at ready state/);
  } finally {
    await p.loadModel(M, {}, O);
  }
  await untilReady(p, true);
  assert.deepEqual((await p.infer(M, [frame()], {}, O)).outputs.pixel_values!.shape, OUT_SHAPE);
});
