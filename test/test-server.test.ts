/**
 * The test server at the protocol level, beneath the SDK's client: what the client tests do not reach
 * (typed `contents`, the stream wrapper's ids, Triton's codes for unready versions, the server-side
 * timeout, the health service, models served from the embedded backend).
 */
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import { join } from "node:path";
import { EmbeddedBackend } from "../src/embedded/embedded-backend.js";
import { addInt64, bytesUpper, identity, scaleFp32, testModels } from "./support/test-models.js";
import { TestServer } from "./support/test-server.js";
import { repoRoot, skipUnlessTestdata, testdata } from "./support/testdata.js";

const options: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [join(repoRoot, "proto")] };
const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(["grpc_service.proto", "health.proto"], options)) as any;

type Stub = Record<string, any> & grpc.Client;
const stubs = (address: string) => ({
  inference: new pkg.inference.GRPCInferenceService(address, grpc.credentials.createInsecure()) as Stub,
  health: new pkg.grpc.health.v1.Health(address, grpc.credentials.createInsecure()) as Stub,
});
const call = (stub: Stub, method: string, req: object): Promise<any> =>
  new Promise((resolve, reject) => stub[method](req, (e: grpc.ServiceError | null, r: unknown) => (e ? reject(e) : resolve(r))));
const rejectsWith = (p: Promise<unknown>, code: grpc.status, details: string | RegExp) =>
  assert.rejects(p, (e: grpc.ServiceError) => {
    assert.equal(grpc.status[e.code], grpc.status[code]);
    if (typeof details === "string") assert.equal(e.details, details);
    else assert.match(e.details, details);
    return true;
  });

describe("test server, protocol level", () => {
  let server: TestServer;
  let s: ReturnType<typeof stubs>;
  before(async () => {
    server = await TestServer.start({
      models: [...testModels(), { ...identity("FP32", "slow"), delayMs: 300 }, { ...identity("INT32", "two_versions"), versions: ["1", "3"] }],
    });
    s = stubs(server.address);
  });
  after(async () => {
    s.inference.close();
    s.health.close();
    await server.stop();
  });

  test("typed contents are accepted as Triton accepts them, narrow integers included", async () => {
    const r = await call(s.inference, "ModelInfer", {
      model_name: addInt64.name,
      inputs: [
        { name: "INPUT0", datatype: "INT64", shape: [1, 16], contents: { int64_contents: Array.from({ length: 16 }, (_, i) => String(i)) } },
        { name: "INPUT1", datatype: "INT64", shape: [1, 16], contents: { int64_contents: Array(16).fill("9007199254740993") } },
      ],
    });
    assert.deepEqual(r.outputs.map((o: any) => o.name), ["OUTPUT0", "OUTPUT1"]);
    assert.equal(new BigInt64Array(Uint8Array.from(r.raw_output_contents[0]).buffer)[1], 9007199254740994n);

    const u8 = await call(s.inference, "ModelInfer", {
      model_name: "identity_uint8",
      inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [3], contents: { uint_contents: [1, 128, 255] } }],
    });
    assert.deepEqual([...u8.raw_output_contents[0]], [1, 128, 255]);

    const str = await call(s.inference, "ModelInfer", {
      model_name: bytesUpper.name,
      inputs: [{ name: "INPUT__0", datatype: "BYTES", shape: [2], contents: { bytes_contents: [Buffer.from("ab"), Buffer.from("")] } }],
    });
    assert.deepEqual([...str.raw_output_contents[0]], [2, 0, 0, 0, 65, 66, 0, 0, 0, 0]);
  });

  test("malformed requests get Triton's INVALID_ARGUMENT texts", async () => {
    const m = scaleFp32.name;
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: m, inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, 2], contents: { int_contents: [1, 2] } }] }),
      grpc.status.INVALID_ARGUMENT,
      `unexpected explicit tensor data for input tensor 'INPUT__0' for model '${m}' of type 'INT32', expected datatype 'FP32'`,
    );
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: m, inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, 2] }] }),
      grpc.status.INVALID_ARGUMENT,
      `unable to find data for input tensor 'INPUT__0' for model '${m}' in request.`,
    );
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: m, id: "7", inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, 2] }], raw_input_contents: [Buffer.alloc(12)] }),
      grpc.status.INVALID_ARGUMENT,
      `[request id: 7] input byte size mismatch for input 'INPUT__0' for model '${m}'. Expected 8, got 12`,
    );
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: m, inputs: [{ name: "X", datatype: "FP32", shape: [1, 2] }], raw_input_contents: [Buffer.alloc(8)] }),
      grpc.status.INVALID_ARGUMENT,
      `unexpected inference input 'X' for model '${m}'`,
    );
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: m, inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1, 2] }], outputs: [{ name: "NOPE" }], raw_input_contents: [Buffer.alloc(8)] }),
      grpc.status.INVALID_ARGUMENT,
      `unexpected inference output 'NOPE' for model '${m}'`,
    );
    await rejectsWith(
      call(s.inference, "ModelInfer", { model_name: "bytes_upper", inputs: [{ name: "INPUT__0", datatype: "BYTES", shape: [2] }], raw_input_contents: [Buffer.from([1, 0, 0, 0, 65])] }),
      grpc.status.INVALID_ARGUMENT,
      "[request id: <id_unknown>] expected 2 string elements for inference input 'INPUT__0' for model 'bytes_upper', got 1",
    );
  });

  test("unready models and versions answer as Triton's model lookup does", async () => {
    const m = "two_versions";
    const meta = await call(s.inference, "ModelMetadata", { name: m });
    assert.deepEqual(meta.versions, ["1", "3"]);
    await rejectsWith(call(s.inference, "ModelMetadata", { name: m, version: "2" }), grpc.status.NOT_FOUND, `Request for unknown model: '${m}' version 2 is not found`);
    server.setReady(m, false, "failed to load");
    try {
      assert.ok(!(await call(s.inference, "ModelReady", { name: m })).ready);
      await rejectsWith(call(s.inference, "ModelMetadata", { name: m }), grpc.status.NOT_FOUND, `Request for unknown model: '${m}' has no available versions`);
      await rejectsWith(call(s.inference, "ModelConfig", { name: m, version: "3" }), grpc.status.UNAVAILABLE, `Request for unknown model: '${m}' version 3 is not at ready state`);
      // Strict readiness: a model that failed (not one unloaded on purpose) makes the server unready.
      assert.ok(!(await call(s.inference, "ServerReady", {})).ready);
      assert.equal((await call(s.health, "Check", { service: "" })).status, "NOT_SERVING");
    } finally {
      server.setReady(m, true);
    }
    assert.equal((await call(s.inference, "ServerReady", {})).ready, true);
    assert.equal((await call(s.health, "Check", {})).status, "SERVING");
    await rejectsWith(call(s.inference, "ModelInfer", { model_name: m, model_version: "x" }), grpc.status.INVALID_ARGUMENT, /failed to get model version from specified version string 'x'/);
  });

  test("the stream answers a failed request with error_message and its id, and goes on", async () => {
    const stream = s.inference.ModelStreamInfer() as grpc.ClientDuplexStream<object, any>;
    const replies: any[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on("data", (m) => replies.push(m));
      stream.on("end", resolve);
      stream.on("error", reject);
    });
    const req = (id: string, v: number) => ({
      model_name: "fails_on_negative", id,
      inputs: [{ name: "INPUT__0", datatype: "INT32", shape: [1] }],
      raw_input_contents: [Buffer.from(Int32Array.of(v).buffer)],
    });
    stream.write(req("a", 1));
    stream.write(req("b", -1));
    stream.write({ model_name: "no_such_model", id: "c" });
    stream.write(req("d", 2));
    stream.end();
    await done;
    assert.deepEqual(replies.map((r) => [r.infer_response?.id, r.error_message ?? ""]), [
      ["a", ""],
      ["b", "negative input -1"],
      ["c", "Request for unknown model: 'no_such_model' is not found"],
      ["d", ""],
    ]);
  });

  test("the request `timeout` parameter (µs) bounds the wait as Triton's queue does", async () => {
    const req = (timeout: number) => ({
      model_name: "slow",
      parameters: { timeout: { int64_param: String(timeout) } },
      inputs: [{ name: "INPUT__0", datatype: "FP32", shape: [1] }],
      raw_input_contents: [Buffer.alloc(4)],
    });
    const t0 = performance.now();
    await rejectsWith(call(s.inference, "ModelInfer", req(50_000)), grpc.status.UNAVAILABLE, "Request timeout expired");
    assert.ok(performance.now() - t0 < 250);
    assert.equal((await call(s.inference, "ModelInfer", req(1_000_000))).outputs[0].name, "OUTPUT__0");
  });

  test("injected faults, call counts and recorded headers", async () => {
    server.injectFault("ServerLive", grpc.status.UNAVAILABLE, { times: 2 });
    const before = server.callCount("ServerLive");
    const md = new grpc.Metadata();
    md.set("x-trace", "t1");
    const live = () => new Promise<any>((res, rej) => s.inference.ServerLive({}, md, (e: any, r: any) => (e ? rej(e) : res(r))));
    await rejectsWith(live(), grpc.status.UNAVAILABLE, "injected UNAVAILABLE");
    await rejectsWith(live(), grpc.status.UNAVAILABLE, "injected UNAVAILABLE");
    assert.equal((await live()).live, true);
    assert.equal(server.callCount("ServerLive") - before, 3);
    assert.equal(server.receivedMetadata.at(-1)?.headers["x-trace"], "t1");
  });

  test("a CPU-only server: CUDA shared memory cannot be registered", async () => {
    await rejectsWith(
      call(s.inference, "CudaSharedMemoryRegister", { name: "g", raw_handle: Buffer.alloc(64), device_id: "0", byte_size: "64" }),
      grpc.status.INVALID_ARGUMENT,
      "failed to register CUDA shared memory region: 'g', GPUs not supported",
    );
    assert.deepEqual((await call(s.inference, "CudaSharedMemoryStatus", {})).regions ?? {}, {});
  });
});

test("models of the embedded backend are served too", { skip: skipUnlessTestdata("models", "yolo11n_int8_320.onnx") }, async () => {
  const embedded = await EmbeddedBackend.create({ models: { yolo11n_320: testdata("models", "yolo11n_int8_320.onnx") }, intraOpNumThreads: 1 });
  const server = await TestServer.start({ embedded });
  const { inference } = stubs(server.address);
  try {
    const meta = await call(inference, "ModelMetadata", { name: "yolo11n_320" });
    assert.equal(meta.platform, "onnxruntime_onnx");
    assert.deepEqual(meta.inputs, [{ name: "images", datatype: "FP32", shape: ["1", "3", "320", "320"] }]);
    const r = await call(inference, "ModelInfer", {
      model_name: "yolo11n_320",
      inputs: [{ name: "images", datatype: "FP32", shape: [1, 3, 320, 320] }],
      raw_input_contents: [Buffer.alloc(3 * 320 * 320 * 4)],
    });
    assert.deepEqual(r.outputs, [{ name: "output0", datatype: "FP32", shape: ["1", "84", "2100"] }]);
    assert.equal(r.raw_output_contents[0].length, 84 * 2100 * 4);
  } finally {
    inference.close();
    await server.stop();
    await embedded.close();
  }
});
