/**
 * HttpProtocol (Triton's HTTP/REST protocol on undici) on its own, without TritonClient: against the test
 * server's HTTP front (the same models and handlers as its gRPC service), and against a recording server
 * for what goes on the wire (paths, bodies, headers) and for answers the test server does not give.
 */
import { status as grpcStatus } from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import * as http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { tensor, type DataType, type Tensor } from "../../src/tensor.js";
import { HttpProtocol, statusCode } from "../../src/triton/http.js";
import { TransportError, type CallOptions, type ConnectionOptions } from "../../src/triton/protocol.js";
import { SystemSharedMemory } from "../../src/triton/shared-memory.js";
import { identity, testModels } from "../support/test-models.js";
import { TestServer, type TestModel } from "../support/test-server.js";
import { DATATYPE_SAMPLES, freePort } from "../support/samples.js";
import { makeCertificates } from "../support/certificates.js";

const O: CallOptions = { deadlineMs: 10_000 };

function connection(urls: string[], extra: Partial<ConnectionOptions> = {}): ConnectionOptions {
  return { urls, headers: {}, keepaliveTimeMs: 300_000, keepaliveTimeoutMs: 20_000, maxReceiveMessageBytes: 1 << 30, connectTimeoutMs: 10_000, ...extra };
}

/** Asserts a TransportError with `code`, and optionally its HTTP status and Triton's text. */
async function rejectsWith(p: Promise<unknown>, code: string, http?: number, text?: RegExp): Promise<TransportError> {
  let err: TransportError | undefined;
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof TransportError, `expected a TransportError, got ${String(e)}`);
    assert.equal(e.code, code, `${e.code}: ${e.details}`);
    if (http !== undefined) assert.equal(e.status?.http, http, e.details);
    if (text) assert.match(e.details, text);
    err = e;
    return true;
  });
  return err!;
}

const samples = DATATYPE_SAMPLES;
const same = (a: Tensor["data"], b: Tensor["data"]) =>
  Array.isArray(a) ? assert.deepEqual((a as Uint8Array[]).map((x) => Buffer.from(x).toString("hex")), (b as Uint8Array[]).map((x) => Buffer.from(x).toString("hex"))) : assert.deepEqual(Array.from(a as ArrayLike<unknown>), Array.from(b as ArrayLike<unknown>));

const slow: TestModel = { ...identity("FP32", "slow"), delayMs: 400 };

describe("HttpProtocol against the test server's HTTP front", () => {
  let server: TestServer;
  let p: HttpProtocol;
  before(async () => {
    server = await TestServer.start({ models: [...testModels(), slow], http: true });
    p = new HttpProtocol(connection([server.httpAddress!]));
  });
  after(async () => {
    await p.close();
    await server.stop();
  });

  test("health and readiness: 200 is true, Triton's 400 false", async () => {
    assert.equal(p.name, "http");
    assert.equal(p.endpoint, server.httpAddress);
    assert.equal(await p.serverLive(O), true);
    assert.equal(await p.serverReady(O), true);
    assert.equal(await p.modelReady("echo_uint8", "", O), true);
    assert.equal(await p.modelReady("echo_uint8", "1", O), true);
    assert.equal(await p.modelReady("echo_uint8", "9", O), false);
    assert.equal(await p.modelReady("no_such_model", "", O), false);
    // A model that failed to load makes the server not ready (one unloaded on purpose does not).
    server.setReady("fails_on_negative", false, "failed to load");
    try {
      assert.equal(await p.serverReady(O), false);
      assert.equal(await p.serverLive(O), true);
    } finally {
      server.setReady("fails_on_negative", true);
    }
  });

  test("server metadata, model metadata (shapes as numbers), config, statistics", async () => {
    const sm = await p.serverMetadata(O);
    assert.equal(sm.name, "triton");
    assert.equal(sm.version, "0.0.0-test");
    assert.ok(sm.extensions.includes("binary_tensor_data"));
    const md = await p.modelMetadata("yolo_shape_960", "", O);
    assert.deepEqual(md, {
      name: "yolo_shape_960",
      versions: ["1"],
      platform: "python",
      inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 960, 960, 3] }],
      outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, 84, 18900] }],
    });
    assert.deepEqual((await p.modelMetadata("echo_uint8", "1", O)).versions, ["1"]);
    const config = await p.modelConfig("yolo_shape_960", "", O);
    assert.equal(config.name, "yolo_shape_960");
    assert.equal(config.max_batch_size, 0);
    assert.deepEqual(config.input[0], { name: "INPUT__0", data_type: "TYPE_UINT8", format: "FORMAT_NONE", dims: [1, 960, 960, 3] });
    assert.deepEqual(config.output[0].dims.map(Number), [1, 84, 18900]);

    const before = Number((await p.modelStatistics("echo_uint8", "", O))[0]?.inference_stats?.success?.count ?? 0);
    await p.infer("echo_uint8", [tensor("INPUT__0", "UINT8", [1, 2, 2, 3], new Uint8Array(12))], {}, O);
    const stats = await p.modelStatistics("echo_uint8", "1", O);
    assert.equal(stats.length, 1);
    assert.equal(stats[0]!.name, "echo_uint8");
    assert.equal(stats[0]!.version, "1");
    assert.equal(Number(stats[0]!.inference_stats.success.count), before + 1);
    const all = await p.modelStatistics("", "", O);
    assert.ok(all.some((s) => s.name === "echo_uint8") && all.some((s) => s.name === "add_int64"));
    await rejectsWith(p.modelStatistics("no_such_model", "", O), "INVALID_ARGUMENT", 400, /requested model 'no_such_model' is not available/);
  });

  test("repository index, ready only or all, with the unloaded model's state and reason", async () => {
    await p.unloadModel("identity_int8", {}, O);
    try {
      const all = await p.repositoryIndex("", false, O);
      assert.deepEqual(all.find((m) => m.name === "identity_int8"), { name: "identity_int8", version: "1", state: "UNAVAILABLE", reason: "unloaded" });
      assert.deepEqual(all.find((m) => m.name === "echo_uint8"), { name: "echo_uint8", version: "1", state: "READY", reason: "" });
      const ready = await p.repositoryIndex("", true, O);
      assert.equal(ready.length, all.length - 1);
      assert.ok(!ready.some((m) => m.name === "identity_int8"));
    } finally {
      await p.loadModel("identity_int8", {}, O);
    }
    await rejectsWith(p.repositoryIndex("other", false, O), "UNIMPLEMENTED", 501, /'repository_name' specification is not supported/);
  });

  for (const [datatype, data] of Object.entries(samples) as [DataType, Tensor["data"]][]) {
    test(`round trip of ${datatype}`, async () => {
      const r = await p.infer(`identity_${datatype.toLowerCase()}`, [tensor("INPUT__0", datatype, [4], data as never)], {}, O);
      assert.equal(r.model, `identity_${datatype.toLowerCase()}`);
      assert.equal(r.version, "1");
      const out = r.outputs.OUTPUT__0!;
      assert.equal(out.datatype, datatype);
      assert.deepEqual(out.shape, [4]);
      same(out.data, data);
      assert.deepEqual(r.sharedMemory, {});
    });
  }

  test("BYTES of several shapes and sizes, empty elements included", async () => {
    const items = [Buffer.alloc(0), Buffer.from("x".repeat(70_000)), Buffer.from([1, 2, 3]), Buffer.from("MiXeD cAsE")];
    const r = await p.infer("bytes_upper", [tensor("INPUT__0", "BYTES", [4], items)], {}, O);
    same(r.outputs.OUTPUT__0!.data, items.map((b) => Buffer.from(b.toString("latin1").replace(/[a-z]/g, (c) => c.toUpperCase()), "latin1")));
  });

  test("a 960x960x3 UINT8 frame in, a [1,84,18900] FP32 tensor out, read in place from the answer", async () => {
    const px = new Uint8Array(960 * 960 * 3).map((_, i) => i % 251);
    const r = await p.infer("yolo_shape_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], {}, O);
    const out = r.outputs.OUTPUT__0!;
    assert.deepEqual(out.shape, [1, 84, 18900]);
    const d = out.data as Float32Array;
    assert.equal(d.length, 84 * 18900);
    for (const i of [0, 1, 12345, d.length - 1]) assert.equal(d[i], Math.fround(px[i % px.length]! / 255 + i));
    // A view of the received answer (JSON header included), not a copy of it.
    assert.ok(d.buffer.byteLength > d.byteLength, "the output is a view of the answer's buffer");
    assert.equal(d.byteOffset % 8, 0, "the output starts 8-byte aligned");
  });

  test("requested outputs: only those named come back; request id and parameters reach the model", async () => {
    const a = tensor("INPUT0", "INT64", [1, 16], BigInt64Array.from({ length: 16 }, (_, i) => BigInt(i) * 1_000_000_000_000n));
    const b = tensor("INPUT1", "INT64", [1, 16], BigInt64Array.from({ length: 16 }, () => 7n));
    const r = await p.infer("add_int64", [a, b], { outputs: ["OUTPUT1"], requestId: "req-42" }, O);
    assert.deepEqual(Object.keys(r.outputs), ["OUTPUT1"]);
    assert.equal(r.id, "req-42");
    assert.deepEqual(Array.from(r.outputs.OUTPUT1!.data as BigInt64Array), Array.from(a.data, (v) => v - 7n));
    const both = await p.infer("add_int64", [a, b], {}, O);
    assert.deepEqual(Object.keys(both.outputs).sort(), ["OUTPUT0", "OUTPUT1"]);
    assert.equal(both.id, "");

    const s = await p.infer("scale_fp32", [tensor("INPUT__0", "FP32", [1, 3], Float32Array.of(1, 2, 3))], { parameters: { scale: 3 } }, O);
    assert.deepEqual(Array.from(s.outputs.OUTPUT__0!.data as Float32Array), [3, 6, 9]);
    await rejectsWith(p.infer("add_int64", [a, b], { outputs: ["NOPE"] }, O), "INVALID_ARGUMENT", 400, /unexpected inference output 'NOPE' for model 'add_int64'/);
  });

  test("the server's queue timeout (serverTimeoutUs) is sent as Triton's `timeout` parameter", async () => {
    const t0 = performance.now();
    await rejectsWith(p.infer("slow", [tensor("INPUT__0", "FP32", [1], Float32Array.of(1))], { serverTimeoutUs: 50_000 }, O), "UNAVAILABLE", 503, /Request timeout expired/);
    assert.ok(performance.now() - t0 < 350);
  });

  test("an expired deadline gives DEADLINE_EXCEEDED within 10% of the deadline, and the connection is reusable", async () => {
    const deadlineMs = 200;
    const t0 = performance.now();
    await rejectsWith(p.infer("slow", [tensor("INPUT__0", "FP32", [1], Float32Array.of(1))], {}, { deadlineMs }), "DEADLINE_EXCEEDED");
    const took = performance.now() - t0;
    assert.ok(Math.abs(took - deadlineMs) <= deadlineMs * 0.1, `took ${took.toFixed(1)} ms for a ${deadlineMs} ms deadline`);
    const r = await p.infer("identity_fp32", [tensor("INPUT__0", "FP32", [1], Float32Array.of(5))], {}, O);
    assert.equal((r.outputs.OUTPUT__0!.data as Float32Array)[0], 5);
  });

  test("a cancelled call gives CANCELLED at once; an aborted signal before the call too", async () => {
    const ac = new AbortController();
    setTimeout(() => ac.abort(), 50);
    const t0 = performance.now();
    await rejectsWith(p.infer("slow", [tensor("INPUT__0", "FP32", [1], Float32Array.of(1))], {}, { deadlineMs: 10_000, signal: ac.signal }), "CANCELLED");
    assert.ok(performance.now() - t0 < 200);
    await rejectsWith(p.serverLive({ deadlineMs: 10_000, signal: AbortSignal.abort() }), "CANCELLED");
  });

  test("an unknown model is NOT_FOUND (404) with Triton's text", async () => {
    const x = tensor("INPUT__0", "FP32", [1], Float32Array.of(1));
    await rejectsWith(p.infer("no_such_model", [x], {}, O), "NOT_FOUND", 404, /^Request for unknown model: 'no_such_model' is not found$/);
    await rejectsWith(p.modelMetadata("no_such_model", "", O), "NOT_FOUND", 404, /Request for unknown model: 'no_such_model' is not found/);
    await rejectsWith(p.modelConfig("no_such_model", "", O), "NOT_FOUND", 404);
    await rejectsWith(p.modelMetadata("echo_uint8", "7", O), "NOT_FOUND", 404, /Request for unknown model: 'echo_uint8' version 7 is not found/);
  });

  test("a wrong shape or datatype is INVALID_ARGUMENT (400) with the server's text", async () => {
    const small = tensor("INPUT__0", "UINT8", [1, 320, 320, 3], new Uint8Array(320 * 320 * 3));
    const e = await rejectsWith(p.infer("yolo_shape_960", [small], {}, O), "INVALID_ARGUMENT", 400);
    assert.match(e.details, /unexpected shape for input 'INPUT__0' for model 'yolo_shape_960'\. Expected \[1,960,960,3\], got \[1,320,320,3\]/);
    await rejectsWith(p.infer("identity_fp32", [tensor("INPUT__0", "INT32", [2], Int32Array.of(1, 2))], {}, O), "INVALID_ARGUMENT", 400, /inference input 'INPUT__0' data-type is 'INT32', but model 'identity_fp32' expects 'FP32'/);
  });

  test("a model that is not ready: not ready, NOT_FOUND without a version, UNAVAILABLE with one", async () => {
    server.setReady("identity_int16", false);
    try {
      assert.equal(await p.modelReady("identity_int16", "", O), false);
      const x = tensor("INPUT__0", "INT16", [1], Int16Array.of(1));
      await rejectsWith(p.infer("identity_int16", [x], {}, O), "NOT_FOUND", 404, /Request for unknown model: 'identity_int16' has no available versions/);
      await rejectsWith(p.infer("identity_int16", [x], { version: "1" }, O), "UNAVAILABLE", 503, /Request for unknown model: 'identity_int16' version 1 is not at ready state/);
    } finally {
      server.setReady("identity_int16", true);
    }
  });

  test("load and unload", async () => {
    await p.unloadModel("identity_uint16", { unloadDependents: true }, O);
    assert.equal(await p.modelReady("identity_uint16", "", O), false);
    await p.loadModel("identity_uint16", {}, O);
    assert.equal(await p.modelReady("identity_uint16", "", O), true);
    const r = await p.infer("identity_uint16", [tensor("INPUT__0", "UINT16", [1], Uint16Array.of(9))], {}, O);
    assert.equal((r.outputs.OUTPUT__0!.data as Uint16Array)[0], 9);
    await rejectsWith(p.loadModel("no_such_model", {}, O), "INTERNAL", 500, /failed to load 'no_such_model', failed to poll from model repository/);
    // Triton answers OK for unloading a model it does not serve.
    await p.unloadModel("no_such_model", {}, O);
  });

  test("system shared memory: register, status, infer from it into it, unregister", async () => {
    const key = `/va_http_test_${process.pid}`;
    const region = SystemSharedMemory.create(key, 4096);
    try {
      const input = Float32Array.of(1.5, -2, 3, 4);
      region.write(128, new Uint8Array(input.buffer));
      await p.registerSystemSharedMemory("http_region", key, 4096, 0, O);
      await rejectsWith(p.registerSystemSharedMemory("http_region", key, 4096, 0, O), "ALREADY_EXISTS", 400, /shared memory region 'http_region' already in manager/);
      assert.deepEqual(await p.systemSharedMemoryStatus("http_region", O), [{ name: "http_region", key, offset: 0, byteSize: 4096 }]);
      assert.deepEqual(await p.systemSharedMemoryStatus("", O), [{ name: "http_region", key, offset: 0, byteSize: 4096 }]);
      const r = await p.infer(
        "identity_fp32",
        [{ name: "INPUT__0", datatype: "FP32", shape: [4], sharedMemory: { region: "http_region", byteSize: 16, offset: 128 } }],
        { outputs: ["OUTPUT__0"], sharedMemoryOutputs: { OUTPUT__0: { region: "http_region", byteSize: 16, offset: 1024 } } },
        O,
      );
      assert.deepEqual(r.outputs, {});
      assert.deepEqual(r.sharedMemory, { OUTPUT__0: { datatype: "FP32", shape: [4] } });
      const back = region.read(1024, 16);
      assert.deepEqual(Array.from(new Float32Array(back.buffer.slice(back.byteOffset, back.byteOffset + 16))), Array.from(input));
      // An input from shared memory with the output in the message, and the other way round.
      const mixed = await p.infer("identity_fp32", [{ name: "INPUT__0", datatype: "FP32", shape: [4], sharedMemory: { region: "http_region", byteSize: 16, offset: 128 } }], {}, O);
      assert.deepEqual(Array.from(mixed.outputs.OUTPUT__0!.data as Float32Array), Array.from(input));
      await rejectsWith(
        p.infer("identity_fp32", [{ name: "INPUT__0", datatype: "FP32", shape: [4], sharedMemory: { region: "nope", byteSize: 16 } }], {}, O),
        "NOT_FOUND",
        404,
        /Unable to find shared memory region: 'nope'/,
      );
      await p.unregisterSystemSharedMemory("http_region", O);
      assert.deepEqual(await p.systemSharedMemoryStatus("", O), []);
      await rejectsWith(p.systemSharedMemoryStatus("http_region", O), "NOT_FOUND", 404, /Unable to find system shared memory region: 'http_region'/);
      // Unregistering all (none left) is fine.
      await p.unregisterSystemSharedMemory("", O);
    } finally {
      region.destroy();
    }
    await rejectsWith(p.registerSystemSharedMemory("gone", "/va_http_test_no_such_key", 64, 0, O), "INTERNAL", 500, /Unable to open shared memory region: '\/va_http_test_no_such_key'/);
  });

  test("injected faults come back with the matching HTTP status and the text", async () => {
    server.injectFault("ModelInfer", grpcStatus.UNAVAILABLE, { message: "Server is stopping" });
    const x = tensor("INPUT__0", "FP32", [1], Float32Array.of(1));
    await rejectsWith(p.infer("identity_fp32", [x], {}, O), "UNAVAILABLE", 503, /Server is stopping/);
    server.injectFault("ModelMetadata", grpcStatus.INTERNAL, { message: "boom" });
    await rejectsWith(p.modelMetadata("identity_fp32", "", O), "INTERNAL", 500, /^boom$/);
    server.injectFault("ServerReady", grpcStatus.PERMISSION_DENIED, { message: "This API is restricted, expecting header 'x-admin'" });
    await rejectsWith(p.serverReady(O), "PERMISSION_DENIED", 403, /This API is restricted/);
  });

  test("an answer larger than maxReceiveMessageBytes is RESOURCE_EXHAUSTED", async () => {
    const small = new HttpProtocol(connection([server.httpAddress!], { maxReceiveMessageBytes: 1000 }));
    try {
      await rejectsWith(small.infer("identity_uint8", [tensor("INPUT__0", "UINT8", [4096], new Uint8Array(4096))], {}, O), "RESOURCE_EXHAUSTED", undefined, /larger than max/);
      assert.equal(await small.serverLive(O), true);
    } finally {
      await small.close();
    }
  });

  test("calls in parallel each get their own answer", async () => {
    const rs = await Promise.all(Array.from({ length: 16 }, (_, i) => p.infer("identity_int32", [tensor("INPUT__0", "INT32", [i + 1], Int32Array.from({ length: i + 1 }, () => i))], {}, O)));
    rs.forEach((r, i) => assert.deepEqual(Array.from(r.outputs.OUTPUT__0!.data as Int32Array), Array(i + 1).fill(i)));
  });

  test("headers are sent with every request", async () => {
    const withHeaders = new HttpProtocol(connection([server.httpAddress!], { headers: { "x-trace": "t1", authorization: "Bearer abc" } }));
    try {
      const n = server.receivedMetadata.length;
      await withHeaders.serverLive(O);
      await withHeaders.modelMetadata("echo_uint8", "", O);
      await withHeaders.infer("echo_uint8", [tensor("INPUT__0", "UINT8", [1, 1, 1, 3], Uint8Array.of(1, 2, 3))], {}, O);
      const seen = server.receivedMetadata.slice(n);
      assert.deepEqual(seen.map((m) => m.method), ["ServerLive", "ModelMetadata", "ModelInfer"]);
      for (const m of seen) {
        assert.equal(m.headers["x-trace"], "t1");
        assert.equal(m.headers.authorization, "Bearer abc");
      }
    } finally {
      await withHeaders.close();
    }
  });
});

test("a server that is down is UNAVAILABLE with the socket's error, for every kind of call", async () => {
  const port = await freePort();
  const p = new HttpProtocol(connection([`127.0.0.1:${port}`]));
  try {
    await rejectsWith(p.serverLive(O), "UNAVAILABLE", 0, /ECONNREFUSED/);
    await rejectsWith(p.serverReady(O), "UNAVAILABLE", undefined, new RegExp(`127\\.0\\.0\\.1:${port}`));
    await rejectsWith(p.infer("m", [tensor("IN", "FP32", [1], Float32Array.of(1))], {}, O), "UNAVAILABLE", undefined, /ECONNREFUSED/);
  } finally {
    await p.close();
  }
});

test("a connection the server closes mid-answer is UNAVAILABLE", async () => {
  const srv = http.createServer((req, res) => {
    res.writeHead(200, { "content-length": 1000, "content-type": "application/json" });
    res.write("{\"name\":");
    setTimeout(() => req.socket.destroy(), 20);
  });
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
  const p = new HttpProtocol(connection([`127.0.0.1:${(srv.address() as AddressInfo).port}`]));
  try {
    await rejectsWith(p.serverMetadata(O), "UNAVAILABLE");
  } finally {
    await p.close();
    srv.close();
  }
});

test("two endpoints are used round robin", async () => {
  const model = identity("FP32", "m");
  const a = await TestServer.start({ models: [{ ...model }], http: true });
  const b = await TestServer.start({ models: [{ ...model }], http: true });
  const p = new HttpProtocol(connection([a.httpAddress!, `http://${b.httpAddress!}`]));
  try {
    assert.equal(p.endpoint, `${a.httpAddress},http://${b.httpAddress}`);
    for (let i = 0; i < 20; i++) {
      const r = await p.infer("m", [tensor("INPUT__0", "FP32", [1], Float32Array.of(i))], {}, O);
      assert.equal((r.outputs.OUTPUT__0!.data as Float32Array)[0], i);
    }
    assert.equal(a.callCount("ModelInfer"), 10);
    assert.equal(b.callCount("ModelInfer"), 10);
  } finally {
    await p.close();
    await a.stop();
    await b.stop();
  }
});

describe("HttpProtocol over TLS with client certificates and an auth header", () => {
  const dir = mkdtempSync(join(tmpdir(), "va-http-tls-"));
  const f = (n: string) => join(dir, n);
  let server: TestServer;
  let port: string;
  let pem: { ca: Buffer; cert: Buffer; key: Buffer };
  before(async () => {
    makeCertificates(dir);
    pem = { ca: readFileSync(f("ca.pem")), cert: readFileSync(f("client.pem")), key: readFileSync(f("client.key")) };
    server = await TestServer.start({
      models: [identity("FP32", "m")],
      tls: { key: readFileSync(f("server.key")), cert: readFileSync(f("server.pem")), ca: pem.ca, requireClientCert: true },
      requiredHeaders: { authorization: "Bearer s3cret" },
      http: true,
    });
    port = server.httpAddress!.split(":").pop()!;
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  for (const url of ["localhost", "https://localhost", "127.0.0.1"]) {
    test(`mutual TLS with the right token works (${url}:port)`, async () => {
      const p = new HttpProtocol(connection([`${url}:${port}`], { tls: pem, headers: { authorization: "Bearer s3cret" } }));
      try {
        assert.equal(await p.serverReady(O), true);
        const r = await p.infer("m", [tensor("INPUT__0", "FP32", [1], Float32Array.of(7))], {}, O);
        assert.equal((r.outputs.OUTPUT__0!.data as Float32Array)[0], 7);
      } finally {
        await p.close();
      }
    });
  }

  test("a wrong or missing token is UNAUTHENTICATED (401), health checks included", async () => {
    const wrong = new HttpProtocol(connection([`localhost:${port}`], { tls: pem, headers: { authorization: "Bearer nope" } }));
    const none = new HttpProtocol(connection([`localhost:${port}`], { tls: pem }));
    try {
      await rejectsWith(wrong.serverReady(O), "UNAUTHENTICATED", 401, /header 'authorization' does not hold the expected credentials/);
      await rejectsWith(wrong.infer("m", [tensor("INPUT__0", "FP32", [1], Float32Array.of(7))], {}, O), "UNAUTHENTICATED", 401);
      await rejectsWith(none.modelMetadata("m", "", O), "UNAUTHENTICATED", 401, /missing required header 'authorization'/);
    } finally {
      await wrong.close();
      await none.close();
    }
  });

  test("no client certificate, an unknown CA, or plaintext: UNAVAILABLE", async () => {
    const cases = [
      new HttpProtocol(connection([`localhost:${port}`], { tls: { ca: pem.ca }, headers: { authorization: "Bearer s3cret" } })),
      new HttpProtocol(connection([`https://localhost:${port}`], { headers: { authorization: "Bearer s3cret" } })),
      new HttpProtocol(connection([`localhost:${port}`], { headers: { authorization: "Bearer s3cret" } })),
    ];
    try {
      for (const p of cases) await rejectsWith(p.serverLive(O), "UNAVAILABLE");
    } finally {
      await Promise.all(cases.map((p) => p.close()));
    }
  });
});

describe("what HttpProtocol sends, and answers the test server does not give", () => {
  interface Seen {
    method: string;
    url: string;
    headers: http.IncomingHttpHeaders;
    body: Buffer;
  }
  const seen: Seen[] = [];
  let answer: (s: Seen) => { status?: number; headers?: Record<string, string | number>; body?: Buffer | string } = () => ({});
  let srv: http.Server;
  let p: HttpProtocol;
  before(async () => {
    srv = http.createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        const s = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
        seen.push(s);
        const a = answer(s);
        const body = Buffer.from(a.body ?? "");
        res.writeHead(a.status ?? 200, { "content-length": body.length, ...a.headers });
        res.end(body);
      });
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    p = new HttpProtocol(connection([`127.0.0.1:${(srv.address() as AddressInfo).port}`], { headers: { "x-api-key": "k" } }));
  });
  after(async () => {
    await p.close();
    srv.close();
  });
  const last = () => seen[seen.length - 1]!;

  test("paths (names URL-encoded, versions), methods and JSON bodies of the control calls", async () => {
    answer = () => ({});
    const calls: [() => Promise<unknown>, string, string, unknown][] = [
      [() => p.modelReady("a b/c", "2", O), "GET", "/v2/models/a%20b%2Fc/versions/2/ready", undefined],
      [() => p.modelConfig("m", "", O), "GET", "/v2/models/m/config", undefined],
      [() => p.modelStatistics("m", "3", O), "GET", "/v2/models/m/versions/3/stats", undefined],
      [() => p.modelStatistics("", "", O), "GET", "/v2/models/stats", undefined],
      [() => p.loadModel("m", { config: '{"max_batch_size":4}' }, O), "POST", "/v2/repository/models/m/load", { parameters: { config: '{"max_batch_size":4}' } }],
      [() => p.loadModel("m", { repository: "r 1" }, O), "POST", "/v2/repository/r%201/models/m/load", {}],
      [() => p.unloadModel("m", { unloadDependents: true }, O), "POST", "/v2/repository/models/m/unload", { parameters: { unload_dependents: true } }],
      [() => p.registerSystemSharedMemory("reg", "/key", 4096, 64, O), "POST", "/v2/systemsharedmemory/region/reg/register", { key: "/key", offset: 64, byte_size: 4096 }],
      [() => p.unregisterSystemSharedMemory("reg", O), "POST", "/v2/systemsharedmemory/region/reg/unregister", {}],
      [() => p.unregisterSystemSharedMemory("", O), "POST", "/v2/systemsharedmemory/unregister", {}],
    ];
    for (const [call, method, url, body] of calls) {
      await call();
      assert.equal(last().method, method, url);
      assert.equal(last().url, url);
      assert.equal(last().headers["x-api-key"], "k");
      if (body === undefined) assert.equal(last().body.length, 0);
      else assert.deepEqual(JSON.parse(last().body.toString()), body);
    }
    answer = () => ({ body: "[]" });
    await p.repositoryIndex("", true, O);
    assert.equal(last().url, "/v2/repository/index");
    assert.deepEqual(JSON.parse(last().body.toString()), { ready: true });
    await p.repositoryIndex("models2", false, O);
    assert.equal(last().url, "/v2/repository/models2/index");
    await p.systemSharedMemoryStatus("reg", O);
    assert.equal(last().url, "/v2/systemsharedmemory/region/reg/status");
  });

  test("an inference request: JSON header, then each tensor's bytes; outputs binary; shared memory as parameters", async () => {
    answer = () => ({ body: JSON.stringify({ model_name: "m", model_version: "1", outputs: [] }) });
    const a = tensor("A", "FP32", [2], Float32Array.of(1, 2));
    const b = tensor("B", "BYTES", [2], [Buffer.from("hi"), Buffer.from("")]);
    await p.infer("m x", [a, { name: "S", datatype: "UINT8", shape: [8], sharedMemory: { region: "r", byteSize: 8, offset: 16 } }, b], { requestId: "id7", parameters: { priority: 2, tag: "t" }, serverTimeoutUs: 1500.4, version: "3" }, O);
    const s = last();
    assert.equal(s.url, "/v2/models/m%20x/versions/3/infer");
    assert.equal(s.headers["content-type"], "application/octet-stream");
    const n = Number(s.headers["inference-header-content-length"]);
    assert.equal(Number(s.headers["content-length"]), s.body.length);
    const head = JSON.parse(s.body.toString("utf8", 0, n));
    assert.deepEqual(head, {
      id: "id7",
      parameters: { priority: 2, tag: "t", timeout: 1500, binary_data_output: true },
      inputs: [
        { name: "A", datatype: "FP32", shape: [2], parameters: { binary_data_size: 8 } },
        { name: "S", datatype: "UINT8", shape: [8], parameters: { shared_memory_region: "r", shared_memory_byte_size: 8, shared_memory_offset: 16 } },
        { name: "B", datatype: "BYTES", shape: [2], parameters: { binary_data_size: 10 } },
      ],
    });
    assert.ok(s.body.subarray(n, n + 8).equals(Buffer.from(a.data.buffer)));
    assert.ok(s.body.subarray(n + 8).equals(Buffer.from([2, 0, 0, 0, 0x68, 0x69, 0, 0, 0, 0])));

    await p.infer("m", [a], { outputs: ["X", "Y"], sharedMemoryOutputs: { Y: { region: "out", byteSize: 64 } } }, O);
    const h2 = JSON.parse(last().body.toString("utf8", 0, Number(last().headers["inference-header-content-length"])));
    assert.equal(last().url, "/v2/models/m/infer");
    assert.deepEqual(h2.parameters, {});
    assert.deepEqual(h2.outputs, [
      { name: "X", parameters: { binary_data: true } },
      { name: "Y", parameters: { shared_memory_region: "out", shared_memory_byte_size: 64 } },
    ]);
  });

  test("outputs as JSON data (a server that ignored binary_data), mixed with binary ones", async () => {
    const bin = Buffer.from(Float32Array.of(1.5, 2.5).buffer);
    const header = JSON.stringify({
      model_name: "m",
      model_version: "2",
      id: "q",
      outputs: [
        { name: "F", datatype: "FP32", shape: [2], parameters: { binary_data_size: 8 } },
        { name: "B", datatype: "BOOL", shape: [3], data: [true, false, true] },
        { name: "I", datatype: "INT64", shape: [2], data: [-5, 9007199254740991] },
        { name: "U", datatype: "UINT16", shape: [2, 1], data: [[1], [65535]] },
        { name: "D", datatype: "FP64", shape: [1], data: [0.1] },
        { name: "S", datatype: "BYTES", shape: [2], data: ["ab", ""] },
      ],
    });
    answer = () => ({ headers: { "inference-header-content-length": Buffer.byteLength(header), "content-type": "application/octet-stream" }, body: Buffer.concat([Buffer.from(header), bin]) });
    const r = await p.infer("m", [tensor("A", "FP32", [2], Float32Array.of(1, 2))], {}, O);
    assert.equal(r.version, "2");
    assert.equal(r.id, "q");
    assert.deepEqual(Array.from(r.outputs.F!.data as Float32Array), [1.5, 2.5]);
    assert.deepEqual(Array.from(r.outputs.B!.data as Uint8Array), [1, 0, 1]);
    assert.deepEqual(Array.from(r.outputs.I!.data as BigInt64Array), [-5n, 9007199254740991n]);
    assert.ok(r.outputs.U!.data instanceof Uint16Array);
    assert.deepEqual(Array.from(r.outputs.U!.data as Uint16Array), [1, 65535]);
    assert.deepEqual(r.outputs.U!.shape, [2, 1]);
    assert.deepEqual(Array.from(r.outputs.D!.data as Float64Array), [0.1]);
    same(r.outputs.S!.data, [Buffer.from("ab"), Buffer.from("")]);

    // No Inference-Header-Content-Length: the whole body is the JSON.
    const plain = JSON.stringify({ model_name: "m", model_version: "1", outputs: [{ name: "I", datatype: "INT32", shape: [2], data: [3, -4] }] });
    answer = () => ({ headers: { "content-type": "application/json" }, body: plain });
    const r2 = await p.infer("m", [tensor("A", "FP32", [2], Float32Array.of(1, 2))], {}, O);
    assert.deepEqual(Array.from(r2.outputs.I!.data as Int32Array), [3, -4]);
  });

  test("binary_data_size past the end of the answer is INTERNAL; an answer that is not JSON keeps its text", async () => {
    const header = JSON.stringify({ model_name: "m", model_version: "1", outputs: [{ name: "F", datatype: "FP32", shape: [4], parameters: { binary_data_size: 16 } }] });
    answer = () => ({ headers: { "inference-header-content-length": Buffer.byteLength(header) }, body: Buffer.concat([Buffer.from(header), Buffer.alloc(8)]) });
    await rejectsWith(p.infer("m", [], {}, O), "INTERNAL", undefined, /binary_data_size 16 runs past the end/);
    answer = () => ({ status: 502, headers: { "content-type": "text/html" }, body: "<html>Bad Gateway</html>" });
    await rejectsWith(p.modelMetadata("m", "", O), "UNAVAILABLE", 502, /Bad Gateway/);
    answer = () => ({ status: 400, headers: { "content-type": "text/plain" }, body: JSON.stringify({ error: "Model version not ready" }) });
    assert.equal(await p.modelReady("m", "", O), false);
  });
});

test("statusCode: Triton's HTTP statuses and texts as its gRPC front's codes", () => {
  const cases: [number, string, string][] = [
    [404, "Request for unknown model: 'm' is not found", "NOT_FOUND"],
    [404, "Request for unknown model: 'm' has no available versions", "NOT_FOUND"],
    [503, "Request for unknown model: 'm' version 1 is not at ready state", "UNAVAILABLE"],
    [400, "[request id: <id_unknown>] unexpected shape for input 'INPUT__0' for model 'x'. Expected [1,640,640,3], got [1,320,320,3]. ", "INVALID_ARGUMENT"],
    [400, "shared memory region 'r' already in manager", "ALREADY_EXISTS"],
    // Triton before 2.3x answered every error with 400.
    [400, "Request for unknown model: 'm' is not found", "NOT_FOUND"],
    [400, "Unable to find shared memory region: 'r'", "NOT_FOUND"],
    [400, "Request for unknown model: 'm' version 1 is not at ready state", "UNAVAILABLE"],
    [400, "Server is stopping", "UNAVAILABLE"],
    [401, "", "UNAUTHENTICATED"],
    [403, "This API is restricted, expecting header 'x'", "PERMISSION_DENIED"],
    [500, "failed to load 'm'", "INTERNAL"],
    [501, "", "UNIMPLEMENTED"],
    [503, "Server is stopping", "UNAVAILABLE"],
    [429, "", "UNAVAILABLE"],
    [502, "", "UNAVAILABLE"],
    [504, "", "UNAVAILABLE"],
    [418, "", "UNKNOWN"],
  ];
  for (const [status, text, code] of cases) assert.equal(statusCode(status, text), code, `${status} ${text}`);
});
