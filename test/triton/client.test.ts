import { status as grpcStatus } from "@grpc/grpc-js";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { grpcCodeName, VideoAnalysisError } from "../../src/errors.js";
import { tensor, type DataType } from "../../src/tensor.js";
import { TritonClient } from "../../src/triton/client.js";
import { SystemSharedMemory } from "../../src/triton/shared-memory.js";
import { TestServer, type TestModel } from "../support/test-server.js";
import { DATATYPE_SAMPLES, freePort } from "../support/samples.js";
import { makeCertificates } from "../support/certificates.js";

const identity = (name: string, datatype: DataType, shape: number[]): TestModel => ({
  name,
  inputs: [{ name: "IN", datatype, shape }],
  outputs: [{ name: "OUT", datatype, shape }],
  compute: (x) => ({ OUT: { ...x.IN!, name: "OUT" } }),
});

const samples = DATATYPE_SAMPLES;

const yoloShape = [1, 84, 18900];
const models: TestModel[] = [
  ...Object.keys(samples).map((dt) => identity(`id_${dt.toLowerCase()}`, dt as DataType, [2, 2])),
  {
    name: "yolo_like_960",
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 960, 960, 3] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: yoloShape }],
    compute: (x) => {
      const px = x.INPUT__0!.data as Uint8Array;
      const out = new Float32Array(84 * 18900);
      for (let i = 0; i < out.length; i++) out[i] = px[i % px.length]! / 255 + i;
      return { OUTPUT__0: tensor("OUTPUT__0", "FP32", yoloShape, out) };
    },
  },
  { ...identity("slow", "FP32", [1]), delayMs: 400 },
  {
    name: "fails_on_negative",
    inputs: [{ name: "IN", datatype: "INT32", shape: [1] }],
    outputs: [{ name: "OUT", datatype: "INT32", shape: [1] }],
    compute: (x) => {
      const v = (x.IN!.data as Int32Array)[0]!;
      if (v < 0) throw new Error(`negative input ${v}`);
      return { OUT: tensor("OUT", "INT32", [1], Int32Array.of(v * 2)) };
    },
  },
];

async function rejectsWith(p: Promise<unknown>, check: (e: VideoAnalysisError) => void): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof VideoAnalysisError, `expected VideoAnalysisError, got ${String(e)}`);
    check(e);
    return true;
  });
}

const PROTOCOLS = ["grpc", "http"] as const;
type Protocol = (typeof PROTOCOLS)[number];
const urlOf = (s: TestServer, protocol: Protocol) => (protocol === "grpc" ? s.address : s.httpAddress!);

for (const protocol of PROTOCOLS) describe(`TritonClient (${protocol}) against the protocol-faithful test server`, () => {
  let server: TestServer;
  let client: TritonClient;
  before(async () => {
    server = await TestServer.start({ models, http: true });
    client = await TritonClient.create({ url: urlOf(server, protocol), protocol });
  });
  after(async () => {
    await client.close();
    await server.stop();
  });

  test("health, server metadata, repository index", async () => {
    assert.equal(await client.serverLive(), true);
    assert.equal(await client.serverReady(), true);
    const md = await client.serverMetadata();
    assert.equal(md.name, "triton");
    const index = await client.repositoryIndex();
    assert.ok(index.some((m) => m.name === "yolo_like_960" && m.state === "READY"));
  });

  for (const [datatype, data] of Object.entries(samples)) {
    test(`round trip of ${datatype}`, async () => {
      const input = tensor("IN", datatype as DataType, [2, 2], data);
      const r = await client.infer(`id_${datatype.toLowerCase()}`, [input]);
      const out = r.outputs.OUT!;
      assert.equal(out.datatype, datatype);
      assert.deepEqual(out.shape, [2, 2]);
      if (datatype === "BYTES") assert.deepEqual((out.data as Uint8Array[]).map((b) => Buffer.from(b).toString("hex")), (data as Uint8Array[]).map((b) => Buffer.from(b).toString("hex")));
      else assert.deepEqual(Array.from(out.data as ArrayLike<unknown>), Array.from(data as ArrayLike<unknown>));
    });
  }

  test("a 960x960x3 UINT8 frame in, a [1,84,18900] FP32 tensor out", async () => {
    const px = new Uint8Array(960 * 960 * 3).map((_, i) => i % 251);
    const r = await client.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)]);
    const out = r.outputs.OUTPUT__0!;
    assert.deepEqual(out.shape, yoloShape);
    const d = out.data as Float32Array;
    assert.equal(d.length, 84 * 18900);
    for (const i of [0, 1, 12345, d.length - 1]) assert.equal(d[i], Math.fround(px[i % px.length]! / 255 + i));
  });

  test("metadata, config and statistics of a model", async () => {
    const md = await client.modelMetadata("yolo_like_960");
    assert.deepEqual(md.inputs, [{ name: "INPUT__0", datatype: "UINT8", shape: [1, 960, 960, 3] }]);
    const config = await client.modelConfig("yolo_like_960");
    assert.equal(config.name, "yolo_like_960");
    assert.equal(config.input?.[0]?.data_type, "TYPE_UINT8");
    const stats = await client.modelStatistics("yolo_like_960");
    assert.ok(Number(stats[0]?.inference_stats?.success?.count ?? 0) >= 1);
  });

  test("an expired deadline gives DEADLINE_EXCEEDED within 10% of the deadline", async () => {
    const deadlineMs = 200;
    const t0 = performance.now();
    await rejectsWith(client.infer("slow", [tensor("IN", "FP32", [1], Float32Array.of(1))], { deadlineMs }), (e) => {
      assert.equal(e.code, "DEADLINE_EXCEEDED");
      assert.match(e.message, /200 ms deadline/);
    });
    const took = performance.now() - t0;
    assert.ok(Math.abs(took - deadlineMs) <= deadlineMs * 0.1, `took ${took.toFixed(1)} ms for a ${deadlineMs} ms deadline`);
  });

  test("an unknown model gives NOT_FOUND naming it", async () => {
    await rejectsWith(client.modelMetadata("no_such_model"), (e) => {
      assert.equal(e.code, "NOT_FOUND");
      assert.equal(e.model, "no_such_model");
      assert.match(e.message, /no_such_model/);
    });
  });

  test("a wrong shape is rejected by the server with INVALID_ARGUMENT", async () => {
    await rejectsWith(client.infer("id_fp32", [tensor("IN", "FP32", [4], new Float32Array(4))]), (e) => {
      assert.equal(e.code, "INVALID_ARGUMENT");
      assert.equal(e.model, "id_fp32");
    });
  });

  test("a contract mismatch names model, tensor, expected and actual", async () => {
    const contract = {
      inputs: [{ name: "INPUT__0", datatype: "UINT8" as const, shape: [1, 640, 640, 3] }],
      outputs: [{ name: "OUTPUT__0", datatype: "FP32" as const, shape: [1, 84, 8400] }],
    };
    const px = new Uint8Array(960 * 960 * 3);
    await rejectsWith(client.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract }), (e) => {
      assert.equal(e.code, "CONTRACT_MISMATCH");
      assert.equal(e.model, "yolo_like_960");
      assert.match(e.message, /input INPUT__0: expected UINT8 \[1,640,640,3\], model has UINT8 \[1,960,960,3\]/);
    });
    // The matching contract passes, and is checked once.
    const ok = { inputs: [{ ...contract.inputs[0]!, shape: [1, 960, 960, 3] }], outputs: [{ ...contract.outputs[0]!, shape: yoloShape }] };
    const r = await client.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract: ok });
    assert.deepEqual(r.outputs.OUTPUT__0!.shape, yoloShape);
  });

  test("a model that is not ready is refused, and load/unload switch it", async () => {
    await client.unloadModel("id_int32");
    assert.equal(await client.modelReady("id_int32"), false);
    await assert.rejects(client.infer("id_int32", [tensor("IN", "INT32", [2, 2], new Int32Array(4))]), VideoAnalysisError);
    await client.loadModel("id_int32");
    assert.equal(await client.modelReady("id_int32"), true);
  });

  test("a cancelled call gives CANCELLED at once", async () => {
    const ac = new AbortController();
    const t0 = performance.now();
    setTimeout(() => ac.abort(), 50);
    await rejectsWith(client.infer("slow", [tensor("IN", "FP32", [1], Float32Array.of(1))], { signal: ac.signal }), (e) => assert.equal(e.code, "CANCELLED"));
    assert.ok(performance.now() - t0 < 300);
    // The client goes on working after a cancel.
    const r = await client.infer("id_fp32", [tensor("IN", "FP32", [2, 2], Float32Array.of(1, 2, 3, 4))]);
    assert.deepEqual(Array.from(r.outputs.OUT!.data as Float32Array), [1, 2, 3, 4]);
  });

  test("a wrong shape's error carries the server's own text", async () => {
    await rejectsWith(client.infer("id_fp32", [tensor("IN", "FP32", [4], new Float32Array(4))]), (e) => {
      assert.match(e.message, /unexpected shape for input 'IN' for model 'id_fp32'/);
    });
  });

  test("the stream delivers results in order and surfaces a server error without closing", { skip: protocol === "http" && "gRPC only" }, async () => {
    const stream = client.stream();
    const values = [1, 2, -3, 4, 5];
    const settled = await Promise.allSettled(values.map((v) => stream.infer("fails_on_negative", [tensor("IN", "INT32", [1], Int32Array.of(v))])));
    await stream.close();
    assert.deepEqual(settled.map((s) => s.status), ["fulfilled", "fulfilled", "rejected", "fulfilled", "fulfilled"]);
    const got = settled.flatMap((s) => (s.status === "fulfilled" ? [(s.value.outputs.OUT!.data as Int32Array)[0]] : []));
    assert.deepEqual(got, [2, 4, 8, 10]);
    const err = (settled[2] as PromiseRejectedResult).reason;
    assert.ok(err instanceof VideoAnalysisError);
    assert.match(err.message, /negative input -3/);
  });

  test("system shared memory: register, infer from it into it, status, unregister", async () => {
    const key = `/va_sdk_test_${process.pid}`;
    const region = SystemSharedMemory.create(key, 64);
    try {
      const input = Float32Array.of(1.5, -2, 3, 4);
      region.write(0, new Uint8Array(input.buffer));
      await client.registerSystemSharedMemory("region0", key, 64);
      assert.deepEqual((await client.systemSharedMemoryStatus()).map((r) => [r.name, r.key, r.byteSize]), [["region0", key, 64]]);
      const r = await client.infer("id_fp32", [{ name: "IN", datatype: "FP32", shape: [2, 2], sharedMemory: { region: "region0", byteSize: 16 } }], {
        outputs: ["OUT"],
        sharedMemoryOutputs: { OUT: { region: "region0", byteSize: 16, offset: 32 } },
      });
      assert.equal(Object.keys(r.outputs).length, 0);
      const back = region.read(32, 16);
      assert.deepEqual(Array.from(new Float32Array(back.buffer, back.byteOffset, 4)), Array.from(input));
      await client.unregisterSystemSharedMemory();
      assert.deepEqual(await client.systemSharedMemoryStatus(), []);
    } finally {
      region.destroy();
    }
  });

  test("sharedMemory system: frames and fixed-shape outputs go through pooled regions, answers equal, regions gone after close", async () => {
    const viaShm = await TritonClient.create({ url: urlOf(server, protocol), protocol, sharedMemory: "system" });
    const contract = { inputs: [{ name: "INPUT__0", datatype: "UINT8" as const, shape: [1, 960, 960, 3] }], outputs: [{ name: "OUTPUT__0", datatype: "FP32" as const, shape: yoloShape }] };
    const px = new Uint8Array(960 * 960 * 3).map((_, i) => (i * 7) % 253);
    let keys: string[] = [];
    try {
      const want = await client.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)]);
      const before = server.callCount("SystemSharedMemoryRegister");
      for (let i = 0; i < 3; i++) {
        const got = await viaShm.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract });
        assert.deepEqual(got.outputs.OUTPUT__0!.shape, yoloShape);
        const bytes = (t: Float32Array) => Buffer.from(t.buffer, t.byteOffset, t.byteLength);
        assert.ok(bytes(got.outputs.OUTPUT__0!.data as Float32Array).equals(bytes(want.outputs.OUTPUT__0!.data as Float32Array)), "same output through shared memory");
      }
      // One input and one output region, made once and reused.
      assert.equal(server.callCount("SystemSharedMemoryRegister") - before, 2);
      keys = (await viaShm.systemSharedMemoryStatus()).map((r) => r.key);
      assert.equal(keys.length, 2);
      for (const k of keys) assert.ok(existsSync(`/dev/shm${k}`));
    } finally {
      await viaShm.close();
    }
    assert.deepEqual(await client.systemSharedMemoryStatus(), []);
    for (const k of keys) assert.equal(existsSync(`/dev/shm${k}`), false);
  });

  test("sharedMemory: a call that failed (its deadline passed) leaves its regions to no other call", async () => {
    const viaShm = await TritonClient.create({ url: urlOf(server, protocol), protocol, sharedMemory: "system" });
    const contract = { inputs: [{ name: "INPUT__0", datatype: "UINT8" as const, shape: [1, 960, 960, 3] }], outputs: [{ name: "OUTPUT__0", datatype: "FP32" as const, shape: yoloShape }] };
    const px = new Uint8Array(960 * 960 * 3);
    try {
      await viaShm.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract });
      const first = (await viaShm.systemSharedMemoryStatus()).map((r) => r.name).sort();
      await assert.rejects(viaShm.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract, deadlineMs: 1 }), (e: unknown) => e instanceof VideoAnalysisError && e.code === "DEADLINE_EXCEEDED");
      await viaShm.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)], { contract });
      const now = (await viaShm.systemSharedMemoryStatus()).map((r) => r.name).sort();
      assert.equal(now.length, 2);
      assert.deepEqual(now.filter((n) => first.includes(n)), [], "the regions of the failed call are not reused");
    } finally {
      await viaShm.close();
    }
  });

  test("sharedMemory auto: a server that cannot register a region is used without, with one warning", async () => {
    const viaShm = await TritonClient.create({ url: urlOf(server, protocol), protocol, sharedMemory: "auto" });
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? "");
    process.on("warning", onWarning);
    try {
      assert.equal(viaShm.sharedMemoryActive, true);
      server.injectFault("SystemSharedMemoryRegister", grpcStatus.INTERNAL, { message: "Unable to open shared memory region" });
      const px = new Uint8Array(960 * 960 * 3);
      const r = await viaShm.infer("yolo_like_960", [tensor("INPUT__0", "UINT8", [1, 960, 960, 3], px)]);
      assert.deepEqual(r.outputs.OUTPUT__0!.shape, yoloShape);
      await new Promise((res) => setImmediate(res));
      assert.equal(viaShm.sharedMemoryActive, false);
      assert.deepEqual(warnings, ["VASDK_SHM_OFF"]);
    } finally {
      process.off("warning", onWarning);
      await viaShm.close();
    }
  });
});

for (const protocol of PROTOCOLS) test(`a server that is down gives UNAVAILABLE after the configured retries, with attempts and time (${protocol})`, async () => {
  const port = await freePort();
  const client = await TritonClient.create({ url: `127.0.0.1:${port}`, protocol, retry: { maxAttempts: 4, initialBackoffMs: 50, maxBackoffMs: 200 } });
  try {
    const t0 = performance.now();
    await rejectsWith(client.serverReady(), (e) => {
      assert.equal(e.code, "UNAVAILABLE");
      assert.equal(e.details.attempts, 4);
      assert.ok(typeof e.details.elapsedMs === "number" && e.details.elapsedMs > 0);
      assert.match(e.message, /after 4 attempts in \d+ ms/);
      assert.match(e.message, new RegExp(`127\\.0\\.0\\.1:${port}`));
    });
    // Three backoffs of at least half of 50, 100, 200 ms.
    assert.ok(performance.now() - t0 >= 175);
  } finally {
    await client.close();
  }
});

for (const protocol of PROTOCOLS) test(`several endpoints are spread by round robin (${protocol})`, async () => {
  const a = await TestServer.start({ models: [identity("m", "FP32", [1])], http: true });
  const b = await TestServer.start({ models: [identity("m", "FP32", [1])], http: true });
  const client = await TritonClient.create({ urls: [urlOf(a, protocol), urlOf(b, protocol)], protocol });
  const direct = await Promise.all([TritonClient.create({ url: a.address }), TritonClient.create({ url: b.address })]);
  try {
    for (let i = 0; i < 20; i++) await client.infer("m", [tensor("IN", "FP32", [1], Float32Array.of(i))]);
    const counts = await Promise.all(direct.map(async (c) => Number((await c.modelStatistics("m"))[0]?.inference_stats?.success?.count ?? 0)));
    assert.equal(counts[0]! + counts[1]!, 20);
    assert.ok(counts[0]! >= 5 && counts[1]! >= 5, `calls per endpoint: ${counts}`);
  } finally {
    await Promise.all([client, ...direct].map((c) => c.close()));
    await a.stop();
    await b.stop();
  }
});

for (const protocol of PROTOCOLS) describe(`TLS with client certificates, and auth headers (${protocol})`, () => {
  const dir = mkdtempSync(join(tmpdir(), "va-tls-"));
  const f = (n: string) => join(dir, n);
  let server: TestServer;
  before(async () => {
    makeCertificates(dir);
    server = await TestServer.start({
      models: [identity("m", "FP32", [1])],
      tls: { key: readFileSync(f("server.key")), cert: readFileSync(f("server.pem")), ca: readFileSync(f("ca.pem")), requireClientCert: true },
      requiredHeaders: { authorization: "Bearer s3cret" },
      http: true,
    });
  });
  after(async () => {
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const port = () => urlOf(server, protocol).split(":").pop();

  test("mutual TLS with the right token works", async () => {
    const c = await TritonClient.create({
      url: `localhost:${port()}`,
      protocol,
      tls: { ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") },
      headers: { authorization: "Bearer s3cret" },
    });
    try {
      const r = await c.infer("m", [tensor("IN", "FP32", [1], Float32Array.of(7))]);
      assert.equal((r.outputs.OUT!.data as Float32Array)[0], 7);
    } finally {
      await c.close();
    }
  });

  test("a wrong token gives UNAUTHENTICATED", async () => {
    const c = await TritonClient.create({ url: `localhost:${port()}`, protocol, tls: { ca: f("ca.pem"), cert: f("client.pem"), key: f("client.key") }, headers: { authorization: "Bearer nope" } });
    try {
      await rejectsWith(c.serverReady(), (e) => assert.equal(e.code, "UNAUTHENTICATED"));
    } finally {
      await c.close();
    }
  });

  test("plaintext against a TLS server fails as UNAVAILABLE, not with a stack trace", async () => {
    const c = await TritonClient.create({ url: `localhost:${port()}`, protocol, retry: { maxAttempts: 1 } });
    try {
      await rejectsWith(c.serverReady(), (e) => assert.equal(e.code, "UNAVAILABLE"));
    } finally {
      await c.close();
    }
  });
});

test("grpcCodeName: the SDK's own table agrees with grpc-js's status numbers", () => {
  for (const [name, code] of Object.entries(grpcStatus)) {
    if (typeof code === "number" && code !== 0) assert.equal(grpcCodeName(code), name);
  }
  assert.equal(grpcCodeName(99), "UNKNOWN");
});

test("a port that accepts connections and never answers is given up after connectTimeoutMs, as UNAVAILABLE", async () => {
  const sockets: import("node:net").Socket[] = [];
  const silent = createServer((s) => sockets.push(s));
  await new Promise<void>((res) => silent.listen(0, "127.0.0.1", () => res()));
  const port = (silent.address() as { port: number }).port;
  const client = await TritonClient.create({ url: `127.0.0.1:${port}`, connectTimeoutMs: 300, deadlineMs: 60_000, retry: { maxAttempts: 1 } });
  try {
    const t0 = performance.now();
    await rejectsWith(client.serverReady(), (e) => {
      assert.equal(e.code, "UNAVAILABLE");
      assert.match(e.message, /no answer from 127\.0\.0\.1:\d+ within 300 ms of connecting/);
    });
    assert.ok(performance.now() - t0 < 2000);
  } finally {
    await client.close();
    for (const s of sockets) s.destroy();
    silent.close();
  }
});

describe("riding out a server outage (outageBudgetMs)", () => {
  const model = identity("m", "FP32", [1]);
  const call = (c: TritonClient, v: number) => c.infer("m", [tensor("IN", "FP32", [1], Float32Array.of(v))]);

  test("the server stopped and started again on its port: the call waits, then answers; the outage is recorded", async () => {
    let server = await TestServer.start({ models: [model] });
    const states: string[] = [];
    const client = await TritonClient.create({ url: server.address, outageBudgetMs: 20_000, retry: { maxAttempts: 2, initialBackoffMs: 20 } });
    client.onOutage = (s) => states.push(s ? s.waitingFor : "over");
    try {
      assert.equal((await call(client, 1)).outputs.OUT!.data[0], 1);
      await server.stop();
      const pending = call(client, 2);
      await new Promise((r) => setTimeout(r, 700));
      server = await TestServer.start({ models: [model], port: server.port });
      assert.equal((await pending).outputs.OUT!.data[0], 2);
      assert.equal(client.outages.length, 1);
      const o = client.outages[0]!;
      assert.equal(o.recovered, true);
      assert.deepEqual(o.models, ["m"]);
      assert.equal(o.calls_retried, 1);
      assert.ok(o.seconds >= 0.5, `${o.seconds} s`);
      assert.ok(states.some((s) => /server unreachable/.test(s)), states.join(" | "));
      assert.equal(states.at(-1), "over");
    } finally {
      await client.close();
      await server.stop();
    }
  });

  for (const protocol of PROTOCOLS) {
    test(`a model unloaded and loaded again (${protocol}): calls wait for it and go on`, async () => {
      const server = await TestServer.start({ models: [model], http: true });
      const client = await TritonClient.create({ url: urlOf(server, protocol), protocol, outageBudgetMs: 20_000 });
      try {
        await call(client, 1);
        server.setReady("m", false);
        const pending = Promise.all([call(client, 2), call(client, 3)]);
        await new Promise((r) => setTimeout(r, 600));
        server.setReady("m", true);
        assert.deepEqual((await pending).map((r) => r.outputs.OUT!.data[0]), [2, 3]);
        assert.equal(client.outages.length, 1);
        assert.equal(client.outages[0]!.calls_retried, 2);
      } finally {
        await client.close();
        await server.stop();
      }
    });
  }

  test("a call that keeps failing while the server says it is ready gives up after the budget (no endless rounds)", async () => {
    const server = await TestServer.start({ models: [model], http: true });
    const client = await TritonClient.create({ url: server.httpAddress!, protocol: "http", outageBudgetMs: 800, retry: { maxAttempts: 1 } });
    try {
      await call(client, 1);
      server.injectFault("ModelInfer", grpcStatus.UNAVAILABLE, { times: 1000, message: "a proxy says no" });
      const t0 = performance.now();
      await rejectsWith(call(client, 2), (e) => assert.match(e.message, /a proxy says no/));
      assert.ok(performance.now() - t0 < 5000);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  test("past the budget the call fails with UNAVAILABLE saying how long it waited and for what", async () => {
    const server = await TestServer.start({ models: [model] });
    const client = await TritonClient.create({ url: server.address, outageBudgetMs: 600, retry: { maxAttempts: 1 } });
    try {
      await call(client, 1);
      server.setReady("m", false);
      const t0 = performance.now();
      await rejectsWith(call(client, 2), (e) => {
        assert.equal(e.code, "UNAVAILABLE");
        assert.match(e.message, /did not come back within the outage budget of 1 s \(backend\.triton\.outage_budget_s\): model m not ready/);
      });
      assert.ok(performance.now() - t0 < 3000);
      assert.equal(client.outages[0]!.recovered, false);
    } finally {
      await client.close();
      await server.stop();
    }
  });

  test("a model that never answered, or a server never reached, fails at once", async () => {
    const server = await TestServer.start({ models: [model, identity("other", "FP32", [1])] });
    const client = await TritonClient.create({ url: server.address, outageBudgetMs: 20_000, retry: { maxAttempts: 1 } });
    try {
      await rejectsWith(call(client, 1).then(() => client.infer("nope", [tensor("IN", "FP32", [1], Float32Array.of(1))])), (e) => assert.equal(e.code, "NOT_FOUND"));
      assert.deepEqual(client.outages, []);
    } finally {
      await client.close();
      await server.stop();
    }
    const port = await freePort();
    const down = await TritonClient.create({ url: `127.0.0.1:${port}`, outageBudgetMs: 20_000, retry: { maxAttempts: 1 } });
    try {
      const t0 = performance.now();
      await rejectsWith(call(down, 1), (e) => assert.equal(e.code, "UNAVAILABLE"));
      assert.ok(performance.now() - t0 < 1000);
    } finally {
      await down.close();
    }
  });
});
