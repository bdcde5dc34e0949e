import { closeSync, fstatSync, openSync, readSync, writeSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import * as grpc from "@grpc/grpc-js";
import * as protoLoader from "@grpc/proto-loader";
import type { TensorSpec } from "../../src/backend/backend.js";
import type { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import { VideoAnalysisError } from "../../src/errors.js";
import { elementCount, elementSize, fromRaw, isDataType, toRaw, type DataType, type Tensor } from "../../src/tensor.js";
import { repoRoot } from "./testdata.js";

/**
 * A protocol-faithful stand-in for tritonserver, started in-process by the tests: grpc-js serving
 * inference.GRPCInferenceService (and grpc.health.v1.Health) from the .proto files in proto/, backed by
 * plain TypeScript functions and, optionally, by the embedded onnxruntime backend.
 *
 * Where a client depends on it, it answers as Triton does (server/src/grpc and core/src of
 * triton-inference-server): the same status codes and message texts for unknown and unready models and
 * for malformed requests, raw contents in the order of the outputs, the ModelStreamInferResponse wrapper
 * with error_message for a failed stream request (the stream stays open), system shared memory through
 * POSIX shm files, and a CPU-only build's answers to CUDA shared memory.
 *
 * @example
 * const server = await TestServer.start({ models: [echo] });
 * const client = await TritonClient.create({ url: server.address });
 * ...
 * await server.stop();
 */

/** Request parameters as a model sees them (int64/uint64 as number when exact, else bigint). */
export type ParamValue = boolean | number | bigint | string;

export interface ComputeContext {
  /** The request's `parameters`, including Triton's own (`timeout`, `priority`, ...). */
  parameters: Record<string, ParamValue>;
  /** Aborted when the client cancels or its deadline passes. */
  signal: AbortSignal;
  /** The request's `id`. */
  requestId: string;
  /** The outputs that will be sent back, in the model's order. */
  requestedOutputs: string[];
}

export interface TestModel {
  name: string;
  /**
   * ModelConfig's platform; empty by default, as for Triton python-backend models, which these stand in
   * for (backend "python"; ModelMetadata then reports "python").
   */
  platform?: string;
  /** Positive integer strings; ["1"] by default. The highest is the one served when no version is asked for. */
  versions?: string[];
  /** Fixed shapes, or -1 for a dimension of any size. max_batch_size is 0: shapes include the batch. */
  inputs: TensorSpec[];
  outputs: TensorSpec[];
  /** READY at start unless false (then UNAVAILABLE with reason "unloaded", as after an unload). */
  ready?: boolean;
  /** Must return every output the request asks for, with the datatype of its spec. */
  compute(inputs: Record<string, Tensor>, ctx: ComputeContext): Promise<Record<string, Tensor>> | Record<string, Tensor>;
  /**
   * Time spent before compute, for deadline tests. A request `timeout` parameter (µs) shorter than it
   * fails after `timeout` with UNAVAILABLE "Request timeout expired", as Triton's scheduler queue does.
   */
  delayMs?: number;
}

export interface TestServerOptions {
  models?: TestModel[];
  /** Serves the backend's models too (platform onnxruntime_onnx). */
  embedded?: EmbeddedBackend;
  /** 0 (any free port) by default. */
  port?: number;
  /** "127.0.0.1" by default; "localhost" binds every address the name resolves to. */
  host?: string;
  /** PEM; requireClientCert asks for a client certificate signed by `ca` (mutual TLS). */
  tls?: { key: Buffer | string; cert: Buffer | string; ca?: Buffer | string; requireClientCert?: boolean };
  /**
   * Metadata every call must carry, e.g. { authorization: "Bearer x" }; a call without it fails with
   * UNAUTHENTICATED, as an authenticating proxy in front of Triton answers.
   */
  requiredHeaders?: Record<string, string>;
  /**
   * Also serve Triton's HTTP/REST protocol (KServe v2, binary tensor extension) on another port
   * (TestServer.httpAddress), with the same models, TLS, required headers and faults (by gRPC method name).
   */
  http?: boolean;
  /** ServerMetadata's version; "0.0.0-test" by default. */
  serverVersion?: string;
  /** false answers shared-memory registration as Triton started without --allow-client-shm. Default true. */
  allowClientSharedMemory?: boolean;
}

/** Per model version, what ModelStatistics reports. */
export interface ModelStats {
  successCount: number;
  successNs: number;
  failCount: number;
  failNs: number;
  computeNs: number;
  inferenceCount: number;
  executionCount: number;
  lastInferenceMs: number;
}

/** A failure with the gRPC status Triton would answer. */
class RpcError extends Error {
  constructor(readonly code: grpc.status, message: string) {
    super(message);
  }
}
const rpcError = (code: grpc.status, message: string) => new RpcError(code, message);
const { INVALID_ARGUMENT, NOT_FOUND, UNAVAILABLE, INTERNAL, ALREADY_EXISTS, UNIMPLEMENTED, UNAUTHENTICATED, CANCELLED } = grpc.status;

// ---- messages as proto-loader gives and takes them (keepCase, longs as strings, enums as names) ----

interface InferParameterMsg {
  parameter_choice?: "bool_param" | "int64_param" | "string_param" | "double_param" | "uint64_param";
  bool_param?: boolean;
  int64_param?: string;
  string_param?: string;
  double_param?: number;
  uint64_param?: string;
}
type Params = Record<string, InferParameterMsg>;
interface ContentsMsg {
  bool_contents?: boolean[];
  int_contents?: number[];
  int64_contents?: string[];
  uint_contents?: number[];
  uint64_contents?: string[];
  fp32_contents?: number[];
  fp64_contents?: number[];
  bytes_contents?: Buffer[];
}
interface InferRequestMsg {
  model_name?: string;
  model_version?: string;
  id?: string;
  parameters?: Params;
  inputs?: { name?: string; datatype?: string; shape?: string[]; parameters?: Params; contents?: ContentsMsg }[];
  outputs?: { name?: string; parameters?: Params }[];
  raw_input_contents?: Buffer[];
}
interface InferResponseMsg {
  model_name: string;
  model_version: string;
  id: string;
  outputs: { name: string; datatype: string; shape: number[] }[];
  raw_output_contents: Uint8Array[];
}

const PROTO_DIR = join(repoRoot, "proto");
const LOADER_OPTIONS: protoLoader.Options = { keepCase: true, longs: String, enums: String, defaults: false, oneofs: true, includeDirs: [PROTO_DIR] };
let services: { inference: grpc.ServiceDefinition; health: grpc.ServiceDefinition } | undefined;

function loadServices() {
  if (!services) {
    const pkg = grpc.loadPackageDefinition(protoLoader.loadSync(["grpc_service.proto", "health.proto"], LOADER_OPTIONS)) as any;
    services = {
      inference: (pkg.inference.GRPCInferenceService as grpc.ServiceClientConstructor).service,
      health: (pkg.grpc.health.v1.Health as grpc.ServiceClientConstructor).service,
    };
  }
  return services;
}

const CONFIG_TYPE: Record<DataType, string> = {
  BOOL: "TYPE_BOOL", UINT8: "TYPE_UINT8", UINT16: "TYPE_UINT16", UINT32: "TYPE_UINT32", UINT64: "TYPE_UINT64",
  INT8: "TYPE_INT8", INT16: "TYPE_INT16", INT32: "TYPE_INT32", INT64: "TYPE_INT64",
  FP16: "TYPE_FP16", BF16: "TYPE_BF16", FP32: "TYPE_FP32", FP64: "TYPE_FP64", BYTES: "TYPE_STRING",
};

const RESERVED_SHM_PREFIX = "triton_python_backend_shm_region_";
const dims = (d: readonly number[]) => `[${d.join(",")}]`;

function int64(v: string | undefined): number | bigint {
  const b = BigInt(v ?? "0");
  return b >= BigInt(Number.MIN_SAFE_INTEGER) && b <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(b) : b;
}

function paramValue(p: InferParameterMsg): ParamValue | undefined {
  switch (p.parameter_choice) {
    case "bool_param": return p.bool_param ?? false;
    case "int64_param": return int64(p.int64_param);
    case "uint64_param": return int64(p.uint64_param);
    case "string_param": return p.string_param ?? "";
    case "double_param": return p.double_param ?? 0;
    default: return undefined;
  }
}

/** Triton's version string parsing: "" is the latest ready version (-1). */
function parseVersion(s: string): number {
  if (s === "") return -1;
  const m = /^\s*([+-]?\d+)/.exec(s);
  if (!m) {
    throw rpcError(INVALID_ARGUMENT, `failed to get model version from specified version string '${s}' (details: stol), version should be an integral value > 0`);
  }
  const v = Number(m[1]);
  if (v < 0) throw rpcError(INVALID_ARGUMENT, `invalid model version specified '${s}' , version should be an integral value > 0`);
  return v;
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(rpcError(CANCELLED, "the request was cancelled"));
    const t = setTimeout(() => {
      signal.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(t);
      reject(rpcError(CANCELLED, "the request was cancelled"));
    };
    signal.addEventListener("abort", onAbort, { once: true });
  });
}

/** Typed `contents` to raw little-endian bytes, with the checks of Triton's gRPC front end. */
function contentsToRaw(c: ContentsMsg, datatype: string, input: string, model: string): Buffer {
  let found: { kind: string; raw: Buffer } | undefined;
  const take = (kind: string, raw: () => Buffer) => {
    if (found) {
      throw rpcError(INVALID_ARGUMENT, `unexpected explicit tensor data for input tensor '${input}' for model '${model}', binary data was already supplied.`);
    }
    if (kind !== datatype) {
      throw rpcError(INVALID_ARGUMENT, `unexpected explicit tensor data for input tensor '${input}' for model '${model}' of type '${kind}', expected datatype '${datatype}'`);
    }
    found = { kind, raw: raw() };
  };
  const typed = (a: ArrayBufferView) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
  // Narrow integer types travel widened; Triton keeps their low-order bytes.
  const intKind = datatype === "INT8" || datatype === "INT16" ? datatype : "INT32";
  const uintKind = datatype === "UINT8" || datatype === "UINT16" ? datatype : "UINT32";
  const narrow: Record<string, (v: number[]) => ArrayBufferView> = {
    INT8: (v) => Int8Array.from(v), INT16: (v) => Int16Array.from(v), INT32: (v) => Int32Array.from(v),
    UINT8: (v) => Uint8Array.from(v), UINT16: (v) => Uint16Array.from(v), UINT32: (v) => Uint32Array.from(v),
  };
  if (c.bool_contents?.length) take("BOOL", () => Buffer.from(c.bool_contents!.map((b) => (b ? 1 : 0))));
  if (c.int_contents?.length) take(intKind, () => typed(narrow[intKind]!(c.int_contents!)));
  if (c.int64_contents?.length) take("INT64", () => typed(BigInt64Array.from(c.int64_contents!, BigInt)));
  if (c.uint_contents?.length) take(uintKind, () => typed(narrow[uintKind]!(c.uint_contents!)));
  if (c.uint64_contents?.length) take("UINT64", () => typed(BigUint64Array.from(c.uint64_contents!, BigInt)));
  if (c.fp32_contents?.length) take("FP32", () => typed(Float32Array.from(c.fp32_contents!)));
  if (c.fp64_contents?.length) take("FP64", () => typed(Float64Array.from(c.fp64_contents!)));
  if (c.bytes_contents?.length) {
    take("BYTES", () => toRaw({ name: input, datatype: "BYTES", shape: [c.bytes_contents!.length], data: c.bytes_contents! }) as Buffer);
  }
  return found?.raw ?? Buffer.alloc(0);
}

/** Triton's shared_memory_* tensor parameters; undefined when the tensor does not use shared memory. */
function shmParams(params: Params | undefined, tensor: string): { region: string; offset: number; byteSize: number } | undefined {
  const p = params ?? {};
  const region = p.shared_memory_region;
  const offset = p.shared_memory_offset;
  const size = p.shared_memory_byte_size;
  if (region && region.parameter_choice !== "string_param") {
    throw rpcError(INVALID_ARGUMENT, `invalid value type for 'shared_memory_region' parameter for tensor '${tensor}', expected string_param.`);
  }
  if (offset) {
    if (!region) throw rpcError(INVALID_ARGUMENT, `'shared_memory_offset' can not be specified without 'shared_memory_region' parameter for tensor '${tensor}'`);
    if (offset.parameter_choice !== "int64_param") {
      throw rpcError(INVALID_ARGUMENT, `invalid value type for 'shared_memory_offset' parameter for tensor '${tensor}', expected int64_param.`);
    }
  }
  if (size) {
    if (!region) throw rpcError(INVALID_ARGUMENT, `'shared_memory_byte_size' can not be specified without 'shared_memory_region' parameter for tensor '${tensor}'`);
    if (size.parameter_choice !== "int64_param") {
      throw rpcError(INVALID_ARGUMENT, `invalid value type for 'shared_memory_byte_size' parameter for tensor '${tensor}', expected int64_param.`);
    }
  } else if (region) {
    throw rpcError(INVALID_ARGUMENT, `'shared_memory_byte_size' must be specified along with 'shared_memory_region' parameter for tensor '${tensor}'`);
  }
  if (!region) return undefined;
  return { region: region.string_param ?? "", offset: Number(offset?.int64_param ?? 0), byteSize: Number(size!.int64_param ?? 0) };
}

/** Triton's check of BYTES contents: 4-byte little-endian lengths, exactly `count` elements. */
function checkBytes(raw: Uint8Array, count: number, input: string, model: string, log: string): void {
  const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
  let o = 0;
  let seen = 0;
  while (o < raw.byteLength) {
    const left = raw.byteLength - o;
    if (left < 4) {
      throw rpcError(INVALID_ARGUMENT, `${log}incomplete string length indicator for inference input '${input}' for model '${model}', expecting 4 bytes but only ${left} bytes available. Please make sure the string length indicator is in one buffer.`);
    }
    const len = view.getUint32(o, true);
    seen++;
    if (seen > count) {
      throw rpcError(INVALID_ARGUMENT, `${log}unexpected number of string elements ${seen} for inference input '${input}' for model '${model}', expecting ${count}`);
    }
    o += 4;
    if (len > raw.byteLength - o) {
      // Triton lets this through to the backend; a test server is better off saying so here.
      throw rpcError(INVALID_ARGUMENT, `${log}string element ${seen - 1} of inference input '${input}' for model '${model}' claims ${len} bytes but only ${raw.byteLength - o} remain`);
    }
    o += len;
  }
  if (seen !== count) {
    throw rpcError(INVALID_ARGUMENT, `${log}expected ${count} string elements for inference input '${input}' for model '${model}', got ${seen}`);
  }
}

const shapeFits = (spec: readonly number[], shape: readonly number[]) =>
  spec.length === shape.length && spec.every((d, i) => d === -1 || d === shape[i]);

interface Entry {
  model: TestModel;
  /** Ascending integer versions. */
  versions: number[];
  ready: boolean;
  reason: string;
  backend: string;
}

interface ShmRegion {
  name: string;
  key: string;
  offset: number;
  byteSize: number;
}

type UnaryHandler = (request: any, call: grpc.ServerUnaryCall<any, any>) => unknown;

export class TestServer {
  /** "127.0.0.1:PORT" (the host given to start, and the bound port). */
  readonly address: string;
  /** "127.0.0.1:PORT" of the HTTP/REST front, when started with `http: true`. */
  httpAddress: string | undefined;
  private httpServer: http.Server | undefined;
  /** The headers of every call received, oldest first (the last 1000). */
  readonly receivedMetadata: { method: string; headers: Record<string, string> }[] = [];
  private readonly models = new Map<string, Entry>();
  private readonly statsByKey = new Map<string, ModelStats>();
  private readonly calls = new Map<string, number>();
  private readonly faults = new Map<string, { code: grpc.status; message: string }[]>();
  private readonly shm = new Map<string, ShmRegion>();
  private readonly logSettings: Record<string, ParamValue> = {
    log_file: "", log_info: true, log_warning: true, log_error: true, log_verbose_level: 0, log_format: "default",
  };
  private stopped = false;

  private constructor(
    private readonly server: grpc.Server,
    readonly port: number,
    host: string,
    private readonly options: TestServerOptions,
  ) {
    this.address = `${host}:${port}`;
  }

  /** Starts serving; resolves once the port is bound. */
  static async start(options: TestServerOptions = {}): Promise<TestServer> {
    const server = new grpc.Server({
      "grpc.max_receive_message_length": -1,
      "grpc.max_send_message_length": -1,
    });
    const host = options.host ?? "127.0.0.1";
    const creds = options.tls
      ? grpc.ServerCredentials.createSsl(
          options.tls.ca ? Buffer.from(options.tls.ca) : null,
          [{ private_key: Buffer.from(options.tls.key), cert_chain: Buffer.from(options.tls.cert) }],
          options.tls.requireClientCert ?? false,
        )
      : grpc.ServerCredentials.createInsecure();
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync(`${host}:${options.port ?? 0}`, creds, (e, p) => (e ? reject(e) : resolve(p))),
    );
    const self = new TestServer(server, port, host, options);
    try {
      for (const m of options.models ?? []) self.add(m, "python");
      if (options.embedded) await self.addEmbedded(options.embedded);
    } catch (e) {
      server.forceShutdown();
      throw e;
    }
    self.register();
    if (options.http) await self.startHttp(host);
    return self;
  }

  private add(model: TestModel, backend: string): void {
    if (this.models.has(model.name)) throw new RangeError(`TestServer: model ${model.name} is given twice`);
    const versions = (model.versions ?? ["1"]).map((v) => {
      if (!/^[1-9]\d*$/.test(v)) throw new RangeError(`TestServer: model ${model.name}: versions must be positive integers, got "${v}"`);
      return Number(v);
    });
    for (const t of [...model.inputs, ...model.outputs]) {
      if (!isDataType(t.datatype)) throw new RangeError(`TestServer: model ${model.name}: tensor ${t.name} has unknown datatype ${t.datatype}`);
    }
    const ready = model.ready ?? true;
    this.models.set(model.name, { model, versions: versions.sort((a, b) => a - b), ready, reason: ready ? "" : "unloaded", backend });
  }

  private async addEmbedded(embedded: EmbeddedBackend): Promise<void> {
    for (const name of embedded.modelNames) {
      const md = await embedded.modelMetadata(name);
      this.add(
        {
          name,
          platform: md.platform,
          inputs: md.inputs,
          outputs: md.outputs,
          compute: async (inputs, ctx) => (await embedded.infer(name, Object.values(inputs), { outputs: ctx.requestedOutputs, signal: ctx.signal })).outputs,
        },
        "onnxruntime",
      );
    }
  }

  // ---- controls for tests ----

  /** Marks a model READY, or UNAVAILABLE with `reason` ("unloaded" unless given, as after an unload). */
  setReady(model: string, ready: boolean, reason = "unloaded"): void {
    const e = this.models.get(model);
    if (!e) throw new RangeError(`TestServer: no model named ${model}`);
    e.ready = ready;
    e.reason = ready ? "" : reason;
  }

  /** Makes the next `times` calls of `method` (e.g. "ModelInfer") fail with `code`. */
  injectFault(method: string, code: grpc.status, options: { times?: number; message?: string } = {}): void {
    const q = this.faults.get(method) ?? [];
    for (let i = 0; i < (options.times ?? 1); i++) q.push({ code, message: options.message ?? `injected ${grpc.status[code]}` });
    this.faults.set(method, q);
  }

  /** How many calls of `method` arrived (including refused ones). */
  callCount(method: string): number {
    return this.calls.get(method) ?? 0;
  }

  /** What ModelStatistics reports for a model version (the latest when version is omitted). */
  stats(model: string, version?: string): ModelStats {
    const e = this.models.get(model);
    if (!e) throw new RangeError(`TestServer: no model named ${model}`);
    return { ...this.statsFor(model, version ? Number(version) : e.versions[e.versions.length - 1]!) };
  }

  /** Stops serving: waits up to a second for calls in flight, then cuts them off. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    if (this.httpServer) {
      this.httpServer.closeAllConnections();
      await new Promise<void>((resolve) => this.httpServer!.close(() => resolve()));
    }
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.server.forceShutdown();
        resolve();
      }, 1000);
      this.server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  // ---- the HTTP/REST front (KServe v2 as tritonserver's http_server.cc serves it) ----

  private async startHttp(host: string): Promise<void> {
    const tls = this.options.tls;
    const handler = (req: http.IncomingMessage, res: http.ServerResponse) => {
      const chunks: Buffer[] = [];
      // A client that goes away before its answer cancels the call (its deadline passed, or it was aborted).
      const ac = new AbortController();
      res.on("close", () => {
        if (!res.writableFinished) ac.abort();
      });
      req.on("data", (c: Buffer) => chunks.push(c));
      req.on("end", () => {
        this.serveHttp(req, Buffer.concat(chunks), ac.signal).then(
          ({ status, body, headers }) => {
            res.writeHead(status, { "content-length": body.length, ...headers });
            res.end(body);
          },
          (e: unknown) => {
            const { code, details } = toStatus(e);
            const body = Buffer.from(JSON.stringify({ error: details }));
            if (!res.headersSent) res.writeHead(httpStatus(code), { "content-type": "application/json", "content-length": body.length });
            res.end(body);
          },
        );
      });
    };
    const server = tls
      ? https.createServer({ key: tls.key, cert: tls.cert, ...(tls.ca ? { ca: tls.ca } : {}), requestCert: tls.requireClientCert ?? false, rejectUnauthorized: tls.requireClientCert ?? false }, handler)
      : http.createServer(handler);
    server.keepAliveTimeout = 65_000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(0, host, () => resolve());
    });
    this.httpServer = server;
    this.httpAddress = `${host}:${(server.address() as AddressInfo).port}`;
  }

  /**
   * One REST call: the gRPC method it stands for goes through admit() (headers, faults) and the same
   * handlers; answers as tritonserver 2.51's HTTP front gives them (checked against it): errors as
   * {"error": text} with http_server.cc's statuses, "Model version not ready" (400) for a model that is
   * not ready, empty bodies for repository and shared-memory control, 404 "Not Found" for paths it does
   * not route (a version that is not a number among them), outputs as binary data when the request asks
   * (`binary_data` per output, else `binary_data_output`), else as JSON `data`.
   */
  private async serveHttp(req: http.IncomingMessage, body: Buffer, signal: AbortSignal): Promise<{ status: number; body: Buffer; headers?: Record<string, string | number> }> {
    const url = new URL(req.url ?? "/", "http://x");
    const seg = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    const json = (v: unknown, status = 200) => ({ status, body: Buffer.from(JSON.stringify(v)), headers: { "content-type": "application/json" } });
    const empty = (status = 200) => ({ status, body: Buffer.alloc(0), headers: { "content-type": "application/json" } });
    const jsonBody = () => {
      try {
        return (body.length ? JSON.parse(body.toString("utf8")) : {}) as Record<string, any>;
      } catch (e) {
        throw rpcError(INVALID_ARGUMENT, `failed to parse the request JSON buffer: ${(e as Error).message}`);
      }
    };
    const admit = (method: string) => {
      const md = new grpc.Metadata();
      for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string" && !["host", "connection", "content-length", "content-type", "inference-header-content-length"].includes(k)) md.set(k, v);
      const refused = this.admit(method, md);
      if (refused) throw refused;
    };
    const notFound = () => rpcError(NOT_FOUND, "Not Found");
    if (seg[0] !== "v2") throw notFound();
    // /v2/models/<m>[/versions/<v>][/action]; Triton routes only numeric versions.
    if (seg[1] === "models" && seg.length >= 3 && seg[2] !== "stats") {
      const name = seg[2]!;
      const versioned = seg[3] === "versions";
      const version = versioned ? seg[4] ?? "" : "";
      if (versioned && !/^\d+$/.test(version)) throw notFound();
      const action = seg[versioned ? 5 : 3];
      if (seg.length > (versioned ? 6 : 4)) throw notFound();
      switch (action) {
        case "ready":
          admit("ModelReady");
          if (!this.modelReady(name, version)) throw rpcError(INVALID_ARGUMENT, "Model version not ready");
          return empty();
        case "config":
          admit("ModelConfig");
          return json(this.modelConfig(name, version));
        case "stats":
          admit("ModelStatistics");
          return json(this.modelStatistics(name, version));
        case "infer":
          if (req.method !== "POST") throw rpcError(INVALID_ARGUMENT, "Method Not Allowed");
          admit("ModelInfer");
          return this.httpInfer(name, version, req, body, signal);
        case undefined:
          admit("ModelMetadata");
          return json(this.modelMetadata(name, version));
        default:
          throw notFound();
      }
    }
    const route = `${req.method} /${seg.join("/")}`;
    if (route === "GET /v2/health/live") return admit("ServerLive"), { status: 200, body: Buffer.alloc(0) };
    if (route === "GET /v2/health/ready") return admit("ServerReady"), { status: this.serverReady() ? 200 : 400, body: Buffer.alloc(0) };
    if (route === "GET /v2") {
      admit("ServerMetadata");
      return json({ name: "triton", version: this.options.serverVersion ?? "0.0.0-test", extensions: ["model_repository", "model_configuration", "system_shared_memory", "binary_tensor_data", "parameters", "statistics"] });
    }
    if (route === "GET /v2/models/stats") return admit("ModelStatistics"), json(this.modelStatistics("", ""));
    // /v2/repository[/<repository>]/index and /v2/repository[/<repository>]/models/<m>/(load|unload)
    if (seg[1] === "repository" && req.method === "POST") {
      const named = seg[2] !== "index" && seg[2] !== "models";
      const repo = named ? seg[2] ?? "" : "";
      const rest = seg.slice(named ? 3 : 2);
      if (rest.length === 1 && rest[0] === "index") {
        admit("RepositoryIndex");
        const { models } = this.repositoryIndex(repo, jsonBody().ready === true);
        // Triton leaves out an empty reason.
        return json(models.map((m) => (m.reason ? m : { name: m.name, version: m.version, state: m.state })));
      }
      if (rest.length === 3 && rest[0] === "models" && (rest[2] === "load" || rest[2] === "unload")) {
        admit(rest[2] === "load" ? "RepositoryModelLoad" : "RepositoryModelUnload");
        jsonBody();
        if (rest[2] === "load") this.load(repo, rest[1]!);
        else this.unload(repo, rest[1]!);
        return empty();
      }
    }
    if (seg[1] === "systemsharedmemory") {
      const region = seg[2] === "region" ? seg[3] ?? "" : "";
      const action = seg[region ? 4 : 2];
      if (seg.length !== (region ? 5 : 3)) throw notFound();
      if (action === "status" && req.method === "GET") {
        admit("SystemSharedMemoryStatus");
        const st = this.shmStatus(region) as { regions: Record<string, { name: string; key: string; offset: number; byte_size: number }> };
        return json(Object.values(st.regions));
      }
      if (action === "register" && req.method === "POST" && region) {
        admit("SystemSharedMemoryRegister");
        const b = jsonBody();
        this.shmRegister(region, b.key ?? "", Number(b.offset ?? 0), Number(b.byte_size ?? 0));
        return empty();
      }
      if (action === "unregister" && req.method === "POST") {
        admit("SystemSharedMemoryUnregister");
        this.shmUnregister(region);
        return empty();
      }
    }
    throw notFound();
  }

  /** POST .../infer: the binary tensor extension (a JSON header, then the inputs' bytes), or plain JSON. */
  private async httpInfer(name: string, version: string, req: http.IncomingMessage, body: Buffer, signal: AbortSignal): Promise<{ status: number; body: Buffer; headers: Record<string, string | number> }> {
    const declared = req.headers["inference-header-content-length"];
    const n = declared === undefined ? body.length : Number(declared);
    if (!(n >= 0 && n <= body.length)) throw rpcError(INVALID_ARGUMENT, `Inference-Header-Content-Length ${declared} does not fit a request body of ${body.length} bytes`);
    let head: { id?: string; parameters?: Record<string, unknown>; inputs?: any[]; outputs?: any[] };
    try {
      head = JSON.parse(body.toString("utf8", 0, n));
    } catch (e) {
      throw rpcError(INVALID_ARGUMENT, `failed to parse the request JSON buffer: ${(e as Error).message}`);
    }
    const toParams = (p: Record<string, unknown> = {}): Params =>
      Object.fromEntries(Object.entries(p).map(([k, v]): [string, InferParameterMsg] => [k,
        typeof v === "boolean" ? { parameter_choice: "bool_param", bool_param: v }
        : typeof v === "string" ? { parameter_choice: "string_param", string_param: v }
        : Number.isInteger(v) ? { parameter_choice: "int64_param", int64_param: String(v) }
        : { parameter_choice: "double_param", double_param: Number(v) }]));
    let at = n;
    const raw: Buffer[] = [];
    const inputs = (head.inputs ?? []).map((t) => {
      const { binary_data_size, ...rest } = (t.parameters ?? {}) as Record<string, unknown>;
      if (binary_data_size !== undefined) {
        const size = Number(binary_data_size);
        if (at + size > body.length) {
          throw rpcError(INVALID_ARGUMENT, `unexpected additional input data for model '${name}'`);
        }
        raw.push(body.subarray(at, at + size));
        at += size;
      } else if (t.data !== undefined) {
        // JSON data, in input order among the binary inputs (Triton's HTTP front accepts both in one request).
        raw.push(contentsToRaw(jsonContents(t.datatype, (t.data as unknown[]).flat(Infinity)), t.datatype, t.name, name));
      }
      return { name: t.name, datatype: t.datatype, shape: (t.shape ?? []).map(String), parameters: toParams(rest) };
    });
    if (at !== body.length) throw rpcError(INVALID_ARGUMENT, `unexpected additional input data for model '${name}'`);
    const { binary_data_output, ...reqParams } = (head.parameters ?? {}) as Record<string, unknown>;
    const binaryByDefault = binary_data_output === true;
    const binaryOut = new Map<string, boolean>();
    const outputs = (head.outputs ?? []).map((o) => {
      const { binary_data, ...rest } = (o.parameters ?? {}) as Record<string, unknown>;
      binaryOut.set(o.name, binary_data === undefined ? binaryByDefault : binary_data === true);
      return { name: o.name, parameters: toParams(rest) };
    });
    const r = await this.infer({ model_name: name, model_version: version, id: head.id ?? "", parameters: toParams(reqParams), inputs, outputs, raw_input_contents: raw }, signal);
    const shmNames = new Set(outputs.filter((o) => o.parameters.shared_memory_region).map((o) => o.name));
    const binary: Buffer[] = [];
    const outJson = r.outputs.map((o, i) => {
      const bytes = r.raw_output_contents[i]!;
      if (shmNames.has(o.name)) return { name: o.name, datatype: o.datatype, shape: o.shape };
      if (binaryOut.get(o.name) ?? binaryByDefault) {
        binary.push(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
        return { name: o.name, datatype: o.datatype, shape: o.shape, parameters: { binary_data_size: bytes.byteLength } };
      }
      if (o.datatype === "FP16" || o.datatype === "BF16") {
        throw rpcError(INVALID_ARGUMENT, `sending ${o.datatype} data via JSON is not supported. Please use the binary data format for output`);
      }
      return { name: o.name, datatype: o.datatype, shape: o.shape, data: jsonData(o.datatype as DataType, o.shape, bytes) };
    });
    // 64-bit integers are written exactly, as rapidjson does (JSON.stringify cannot write a bigint).
    const text = JSON.stringify({ ...(r.id ? { id: r.id } : {}), model_name: r.model_name, model_version: r.model_version, outputs: outJson }, (_k, v) => (typeof v === "bigint" ? `\u0000${v}` : v)).replace(/"\\u0000(-?\d+)"/g, "$1");
    const header = Buffer.from(text);
    if (binary.length === 0) return { status: 200, body: header, headers: { "content-type": "application/json" } };
    return { status: 200, body: Buffer.concat([header, ...binary]), headers: { "content-type": "application/octet-stream", "inference-header-content-length": header.length } };
  }

  // ---- plumbing ----

  private statsFor(model: string, version: number): ModelStats {
    const key = `${model}\u0000${version}`;
    let s = this.statsByKey.get(key);
    if (!s) {
      s = { successCount: 0, successNs: 0, failCount: 0, failNs: 0, computeNs: 0, inferenceCount: 0, executionCount: 0, lastInferenceMs: 0 };
      this.statsByKey.set(key, s);
    }
    return s;
  }

  /** Header recording, required headers and injected faults: what every call goes through first. */
  private admit(method: string, metadata: grpc.Metadata): RpcError | undefined {
    this.calls.set(method, (this.calls.get(method) ?? 0) + 1);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata.getMap())) headers[k] = Buffer.isBuffer(v) ? v.toString("base64") : v;
    this.receivedMetadata.push({ method, headers });
    if (this.receivedMetadata.length > 1000) this.receivedMetadata.shift();
    for (const [k, want] of Object.entries(this.options.requiredHeaders ?? {})) {
      const got = metadata.get(k.toLowerCase())[0];
      if (got === undefined) return rpcError(UNAUTHENTICATED, `missing required header '${k.toLowerCase()}'`);
      if (String(got) !== want) return rpcError(UNAUTHENTICATED, `header '${k.toLowerCase()}' does not hold the expected credentials`);
    }
    const fault = this.faults.get(method)?.shift();
    if (fault) return rpcError(fault.code, fault.message);
    return undefined;
  }

  private unary(method: string, handler: UnaryHandler): grpc.handleUnaryCall<any, any> {
    return (call, callback) => {
      const refused = this.admit(method, call.metadata);
      if (refused) return callback({ code: refused.code, details: refused.message });
      Promise.resolve()
        .then(() => handler(call.request ?? {}, call))
        .then(
          (res) => callback(null, res),
          (e: unknown) => callback(toStatus(e)),
        );
    };
  }

  private register(): void {
    const { inference, health } = loadServices();
    const impl: grpc.UntypedServiceImplementation = {
      ServerLive: this.unary("ServerLive", () => ({ live: true })),
      ServerReady: this.unary("ServerReady", () => ({ ready: this.serverReady() })),
      ModelReady: this.unary("ModelReady", (r) => ({ ready: this.modelReady(r.name ?? "", r.version ?? "") })),
      ServerMetadata: this.unary("ServerMetadata", () => ({
        name: "triton",
        version: this.options.serverVersion ?? "0.0.0-test",
        // The protocol extensions this server implements (Triton lists more: classification, sequence, trace...).
        extensions: ["model_repository", "model_configuration", "system_shared_memory", "binary_tensor_data", "parameters", "statistics", "logging"],
      })),
      ModelMetadata: this.unary("ModelMetadata", (r) => this.modelMetadata(r.name ?? "", r.version ?? "")),
      ModelConfig: this.unary("ModelConfig", (r) => ({ config: this.modelConfig(r.name ?? "", r.version ?? "") })),
      ModelStatistics: this.unary("ModelStatistics", (r) => this.modelStatistics(r.name ?? "", r.version ?? "")),
      RepositoryIndex: this.unary("RepositoryIndex", (r) => this.repositoryIndex(r.repository_name ?? "", r.ready ?? false)),
      RepositoryModelLoad: this.unary("RepositoryModelLoad", (r) => this.load(r.repository_name ?? "", r.model_name ?? "")),
      RepositoryModelUnload: this.unary("RepositoryModelUnload", (r) => this.unload(r.repository_name ?? "", r.model_name ?? "")),
      ModelInfer: this.unary("ModelInfer", (r, call) => {
        const ac = new AbortController();
        call.on("cancelled", () => ac.abort());
        return this.infer(r, ac.signal);
      }),
      ModelStreamInfer: (call: grpc.ServerDuplexStream<any, any>) => this.streamInfer(call),
      SystemSharedMemoryStatus: this.unary("SystemSharedMemoryStatus", (r) => this.shmStatus(r.name ?? "")),
      SystemSharedMemoryRegister: this.unary("SystemSharedMemoryRegister", (r) => this.shmRegister(r.name ?? "", r.key ?? "", Number(r.offset ?? 0), Number(r.byte_size ?? 0))),
      SystemSharedMemoryUnregister: this.unary("SystemSharedMemoryUnregister", (r) => this.shmUnregister(r.name ?? "")),
      // A CPU-only tritonserver: nothing can be registered, so status lists nothing and unregister has nothing to do.
      CudaSharedMemoryStatus: this.unary("CudaSharedMemoryStatus", (r) => {
        if (r.name) throw rpcError(NOT_FOUND, `Unable to find cuda shared memory region: '${r.name}'`);
        return { regions: {} };
      }),
      CudaSharedMemoryRegister: this.unary("CudaSharedMemoryRegister", (r) => {
        throw rpcError(INVALID_ARGUMENT, `failed to register CUDA shared memory region: '${r.name ?? ""}', GPUs not supported`);
      }),
      CudaSharedMemoryUnregister: this.unary("CudaSharedMemoryUnregister", () => ({})),
      TraceSetting: this.unary("TraceSetting", () => {
        throw rpcError(UNAVAILABLE, "the server does not support trace");
      }),
      LogSettings: this.unary("LogSettings", (r) => this.updateLogSettings(r.settings ?? {})),
    };
    this.server.addService(inference, impl);
    this.server.addService(health, {
      Check: this.unary("Check", () => ({ status: this.serverReady() ? "SERVING" : "NOT_SERVING" })),
    });
  }

  // ---- health and metadata ----

  /** Triton's strict readiness: every model is READY, or was unloaded on purpose. */
  private serverReady(): boolean {
    return [...this.models.values()].every((e) => e.ready || e.reason === "unloaded");
  }

  private modelReady(name: string, version: string): boolean {
    // Triton reports ready=false (not an error) for unknown and unready models.
    try {
      this.lookup(name, version);
      return true;
    } catch {
      return false;
    }
  }

  /** Triton's model lookup: the status codes and texts a client sees for unknown or unready models. */
  private lookup(name: string, versionString: string): { entry: Entry; version: number } {
    const v = parseVersion(versionString);
    const entry = this.models.get(name);
    if (!entry) throw rpcError(NOT_FOUND, `Request for unknown model: '${name}' is not found`);
    if (v === -1) {
      if (!entry.ready) throw rpcError(NOT_FOUND, `Request for unknown model: '${name}' has no available versions`);
      return { entry, version: entry.versions[entry.versions.length - 1]! };
    }
    if (!entry.versions.includes(v)) throw rpcError(NOT_FOUND, `Request for unknown model: '${name}' version ${v} is not found`);
    if (!entry.ready) throw rpcError(UNAVAILABLE, `Request for unknown model: '${name}' version ${v} is not at ready state`);
    return { entry, version: v };
  }

  private modelMetadata(name: string, versionString: string) {
    const { entry } = this.lookup(name, versionString);
    const meta = (t: TensorSpec) => ({ name: t.name, datatype: t.datatype, shape: t.shape });
    return {
      name,
      versions: versionString ? [String(parseVersion(versionString))] : entry.versions.map(String),
      platform: platformOf(entry).metadata,
      inputs: entry.model.inputs.map(meta),
      outputs: entry.model.outputs.map(meta),
    };
  }

  private modelConfig(name: string, versionString: string) {
    const { entry } = this.lookup(name, versionString);
    return {
      name,
      platform: platformOf(entry).config,
      backend: entry.backend,
      version_policy: { latest: { num_versions: 1 } },
      max_batch_size: 0,
      input: entry.model.inputs.map((t) => ({ name: t.name, data_type: CONFIG_TYPE[t.datatype], format: "FORMAT_NONE", dims: t.shape })),
      output: entry.model.outputs.map((t) => ({ name: t.name, data_type: CONFIG_TYPE[t.datatype], dims: t.shape })),
      instance_group: [{ name: name, kind: "KIND_CPU", count: 1 }],
      default_model_filename: entry.backend === "onnxruntime" ? "model.onnx" : "model.py",
    };
  }

  private modelStatistics(name: string, versionString: string) {
    const v = parseVersion(versionString);
    const pick: [string, number][] = [];
    if (!name) {
      for (const [n, e] of this.models) if (e.ready) for (const ver of e.versions) pick.push([n, ver]);
    } else {
      const e = this.models.get(name);
      if (!e?.ready) throw rpcError(INVALID_ARGUMENT, `requested model '${name}' is not available`);
      if (v !== -1 && !e.versions.includes(v)) throw rpcError(INVALID_ARGUMENT, `requested model version is not available for model '${name}'`);
      for (const ver of v === -1 ? e.versions : [v]) pick.push([name, ver]);
    }
    const d = (count: number, ns: number) => ({ count, ns });
    return {
      model_stats: pick.map(([n, ver]) => {
        const s = this.statsFor(n, ver);
        return {
          name: n,
          version: String(ver),
          last_inference: s.lastInferenceMs,
          inference_count: s.inferenceCount,
          execution_count: s.executionCount,
          inference_stats: {
            success: d(s.successCount, s.successNs),
            fail: d(s.failCount, s.failNs),
            queue: d(s.successCount, 0),
            compute_input: d(s.executionCount, 0),
            compute_infer: d(s.executionCount, s.computeNs),
            compute_output: d(s.executionCount, 0),
            cache_hit: d(0, 0),
            cache_miss: d(0, 0),
          },
          batch_stats: [],
          memory_usage: [],
          response_stats: {},
        };
      }),
    };
  }

  // ---- repository ----

  private repositoryIndex(repository: string, readyOnly: boolean) {
    if (repository) throw rpcError(UNIMPLEMENTED, "'repository_name' specification is not supported");
    const models: { name: string; version: string; state: string; reason: string }[] = [];
    for (const [name, e] of [...this.models].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))) {
      if (readyOnly && !e.ready) continue;
      for (const v of e.versions) models.push({ name, version: String(v), state: e.ready ? "READY" : "UNAVAILABLE", reason: e.reason });
    }
    return { models };
  }

  private load(repository: string, name: string) {
    if (repository) throw rpcError(UNIMPLEMENTED, "'repository_name' specification is not supported");
    const e = this.models.get(name);
    if (!e) throw rpcError(INTERNAL, `failed to load '${name}', failed to poll from model repository`);
    e.ready = true;
    e.reason = "";
    return {};
  }

  private unload(repository: string, name: string) {
    if (repository) throw rpcError(UNIMPLEMENTED, "'repository_name' specification is not supported");
    // Triton answers OK for a model it does not serve.
    const e = this.models.get(name);
    if (e) {
      e.ready = false;
      e.reason = "unloaded";
    }
    return {};
  }

  private updateLogSettings(settings: Record<string, { parameter_choice?: string; bool_param?: boolean; uint32_param?: number; string_param?: string }>) {
    for (const [k, s] of Object.entries(settings)) {
      if (!(k in this.logSettings)) throw rpcError(INVALID_ARGUMENT, `Logging setting '${k}' is not supported`);
      const v = s.parameter_choice === "bool_param" ? s.bool_param : s.parameter_choice === "uint32_param" ? s.uint32_param : s.string_param;
      if (v !== undefined) this.logSettings[k] = v;
    }
    const out: Record<string, object> = {};
    for (const [k, v] of Object.entries(this.logSettings)) {
      out[k] = typeof v === "boolean" ? { bool_param: v } : typeof v === "number" ? { uint32_param: v } : { string_param: String(v) };
    }
    return { settings: out };
  }

  // ---- system shared memory ----

  private shmFile(key: string): string {
    return `/dev/shm/${key.replace(/^\/+/, "")}`;
  }

  private shmAllowed(): void {
    if (this.options.allowClientSharedMemory === false) {
      throw rpcError(UNIMPLEMENTED, "Client shared memory is disabled. Start the server with '--allow-client-shm=true' to enable.");
    }
  }

  private shmStatus(name: string) {
    const regions: Record<string, object> = {};
    const show = (r: ShmRegion) => ({ name: r.name, key: r.key, offset: r.offset, byte_size: r.byteSize });
    if (name) {
      const r = this.shm.get(name);
      if (!r) throw rpcError(NOT_FOUND, `Unable to find system shared memory region: '${name}'`);
      regions[name] = show(r);
    } else {
      for (const r of this.shm.values()) regions[r.name] = show(r);
    }
    return { regions };
  }

  private shmRegister(name: string, key: string, offset: number, byteSize: number) {
    this.shmAllowed();
    const bare = key.replace(/^\/+/, "");
    if (!bare) throw rpcError(INVALID_ARGUMENT, `cannot register shared memory region '${name}' - invalid shm key '${key}'`);
    if (bare.startsWith(RESERVED_SHM_PREFIX)) {
      throw rpcError(INVALID_ARGUMENT, `cannot register shared memory region '${name}' with key '${key}' as the key contains the reserved prefix '${RESERVED_SHM_PREFIX}'`);
    }
    if (this.shm.has(name)) throw rpcError(ALREADY_EXISTS, `shared memory region '${name}' already in manager`);
    let size: number;
    try {
      const fd = openSync(this.shmFile(key), "r+");
      size = fstatSync(fd).size;
      closeSync(fd);
    } catch {
      throw rpcError(INTERNAL, `Unable to open shared memory region: '${key}'`);
    }
    if (offset + byteSize > size) throw rpcError(INVALID_ARGUMENT, `failed to register shared memory region '${name}': invalid args`);
    this.shm.set(name, { name, key, offset, byteSize });
    return {};
  }

  private shmUnregister(name: string) {
    this.shmAllowed();
    // Unregistering a region that is not registered is not an error in Triton.
    if (name) this.shm.delete(name);
    else this.shm.clear();
    return {};
  }

  /** The region's bounds checks, as Triton makes them; returns the file offset. */
  private shmLocate(p: { region: string; offset: number; byteSize: number }): { file: string; position: number } {
    const r = this.shm.get(p.region);
    if (!r) throw rpcError(NOT_FOUND, `Unable to find shared memory region: '${p.region}'`);
    if (p.offset >= r.byteSize) throw rpcError(INVALID_ARGUMENT, `Invalid offset for shared memory region: '${p.region}'`);
    if (p.offset + p.byteSize > r.byteSize) throw rpcError(INVALID_ARGUMENT, `Invalid offset + byte size for shared memory region: '${p.region}'`);
    return { file: this.shmFile(r.key), position: r.offset + p.offset };
  }

  private shmRead(p: { region: string; offset: number; byteSize: number }): Buffer {
    const { file, position } = this.shmLocate(p);
    const out = Buffer.allocUnsafe(p.byteSize);
    const fd = openSync(file, "r");
    try {
      readSync(fd, out, 0, p.byteSize, position);
    } finally {
      closeSync(fd);
    }
    return out;
  }

  private shmWrite(p: { region: string; offset: number; byteSize: number }, bytes: Uint8Array): void {
    const { file, position } = this.shmLocate(p);
    const fd = openSync(file, "r+");
    try {
      writeSync(fd, bytes, 0, bytes.byteLength, position);
    } finally {
      closeSync(fd);
    }
  }

  // ---- inference ----

  private async infer(req: InferRequestMsg, signal: AbortSignal): Promise<InferResponseMsg> {
    const modelName = req.model_name ?? "";
    const { entry, version } = this.lookup(modelName, req.model_version ?? "");
    const stats = this.statsFor(modelName, version);
    const t0 = process.hrtime.bigint();
    try {
      const res = await this.run(entry, version, req, signal, stats);
      const ns = Number(process.hrtime.bigint() - t0);
      stats.successCount++;
      stats.successNs += ns;
      stats.inferenceCount++;
      stats.executionCount++;
      stats.lastInferenceMs = Date.now();
      return res;
    } catch (e) {
      stats.failCount++;
      stats.failNs += Number(process.hrtime.bigint() - t0);
      throw e;
    }
  }

  /** One request, in the order Triton checks it: parameters, tensors and their data, then the model's contract. */
  private async run(entry: Entry, version: number, req: InferRequestMsg, signal: AbortSignal, stats: ModelStats): Promise<InferResponseMsg> {
    const model = entry.model;
    const name = model.name;
    const id = req.id ?? "";
    const log = `[request id: ${id || "<id_unknown>"}] `;

    // Request parameters.
    const parameters: Record<string, ParamValue> = {};
    for (const [k, p] of Object.entries(req.parameters ?? {})) {
      if (k === "timeout" && p.parameter_choice !== "int64_param") {
        throw rpcError(INVALID_ARGUMENT, "invalid value type for 'timeout' parameter, expected int64_param.");
      }
      const v = paramValue(p);
      if (v === undefined) throw rpcError(INVALID_ARGUMENT, `invalid value type for '${k}' parameter, expected int64_param, bool_param, or string_param.`);
      parameters[k] = v;
    }

    // Tensors named in the request.
    const inputs = req.inputs ?? [];
    const seenIn = new Set<string>();
    for (const io of inputs) {
      const n = io.name ?? "";
      if (seenIn.has(n)) throw rpcError(INVALID_ARGUMENT, `${log}input '${n}' already exists in request`);
      seenIn.add(n);
    }
    const requested = (req.outputs ?? []).map((o) => o.name ?? "");
    const seenOut = new Set<string>();
    for (const n of requested) {
      if (seenOut.has(n)) throw rpcError(INVALID_ARGUMENT, `${log}output '${n}' already exists in request`);
      seenOut.add(n);
    }

    // Input data: shared memory, typed contents, or the next raw_input_contents entry.
    const raws = req.raw_input_contents ?? [];
    let rawIndex = 0;
    const data = inputs.map((io) => {
      const n = io.name ?? "";
      const shm = shmParams(io.parameters, n);
      if (shm) {
        if (io.contents) throw rpcError(INVALID_ARGUMENT, `unexpected 'content' provided when using shared memory for input tensor '${n}' for model '${name}'`);
        return this.shmRead(shm);
      }
      if (io.contents && raws.length > 0) {
        throw rpcError(INVALID_ARGUMENT, `contents field must not be specified when using raw_input_contents for '${n}' for model '${name}'`);
      }
      if (io.contents) return contentsToRaw(io.contents, io.datatype ?? "", n, name);
      if (rawIndex < raws.length) return raws[rawIndex++]!;
      throw rpcError(INVALID_ARGUMENT, `unable to find data for input tensor '${n}' for model '${name}' in request.`);
    });
    const shmOut = new Map<string, { region: string; offset: number; byteSize: number }>();
    for (const o of req.outputs ?? []) {
      const p = shmParams(o.parameters, o.name ?? "");
      if (p) {
        this.shmLocate(p);
        shmOut.set(o.name ?? "", p);
      }
    }

    // The model's contract (Triton's request normalisation).
    for (const n of requested) {
      if (!model.outputs.some((t) => t.name === n)) throw rpcError(INVALID_ARGUMENT, `unexpected inference output '${n}' for model '${name}'`);
    }
    if (inputs.length !== model.inputs.length) {
      const missing = model.inputs.filter((t) => !seenIn.has(t.name)).map((t) => `'${t.name}'`);
      const got = inputs.map((t) => `'${t.name ?? ""}'`);
      // Triton builds these lists by trimming a trailing comma, so an empty "missing" list prints as "]".
      const missingList = missing.length ? `[${missing.join(",")}]` : "]";
      throw rpcError(
        INVALID_ARGUMENT,
        `${log}expected ${model.inputs.length} inputs but got ${inputs.length} inputs for model '${name}'. Got input(s) [${got.join(",")}], but missing required input(s) ${missingList}. Please provide all required input(s).`,
      );
    }
    const specs = inputs.map((io) => {
      const spec = model.inputs.find((t) => t.name === io.name);
      if (!spec) throw rpcError(INVALID_ARGUMENT, `unexpected inference input '${io.name ?? ""}' for model '${name}'`);
      return spec;
    });
    const tensors: Record<string, Tensor> = {};
    inputs.forEach((io, i) => {
      const spec = specs[i]!;
      const n = spec.name;
      const shape = (io.shape ?? []).map(Number);
      if (io.datatype !== spec.datatype) {
        throw rpcError(INVALID_ARGUMENT, `${log}inference input '${n}' data-type is '${isDataType(io.datatype ?? "") ? io.datatype : "<invalid>"}', but model '${name}' expects '${spec.datatype}'`);
      }
      // Dimension by dimension, as Triton walks them: a -1 in the request is refused where it is reached.
      let fits = spec.shape.length === shape.length;
      for (let d = 0; fits && d < shape.length; d++) {
        if (shape[d] === -1) {
          throw rpcError(INVALID_ARGUMENT, `${log}All input dimensions should be specified for input '${n}' for model '${name}', got ${dims(shape)}`);
        }
        fits = spec.shape[d] === -1 || spec.shape[d] === shape[d];
      }
      if (!fits || shape.some((d) => d < 0)) {
        throw rpcError(INVALID_ARGUMENT, `${log}unexpected shape for input '${n}' for model '${name}'. Expected ${dims(spec.shape)}, got ${dims(shape)}. `);
      }
      const raw = data[i]!;
      if (spec.datatype === "BYTES") {
        checkBytes(raw, elementCount(shape), n, name, log);
      } else {
        const expected = elementCount(shape) * elementSize(spec.datatype)!;
        if (raw.byteLength !== expected) {
          throw rpcError(INVALID_ARGUMENT, `${log}input byte size mismatch for input '${n}' for model '${name}'. Expected ${expected}, got ${raw.byteLength}`);
        }
      }
      tensors[n] = { name: n, datatype: spec.datatype, shape, data: fromRaw(spec.datatype, shape, raw, n) } as Tensor;
    });
    const wanted = model.outputs.filter((t) => requested.length === 0 || seenOut.has(t.name));

    // Scheduling delay, with the request's queue timeout (µs) as Triton's scheduler honours it.
    if (model.delayMs) {
      const timeoutUs = parameters.timeout;
      if (typeof timeoutUs === "number" && timeoutUs > 0 && timeoutUs < model.delayMs * 1000) {
        await sleep(timeoutUs / 1000, signal);
        throw rpcError(UNAVAILABLE, "Request timeout expired");
      }
      await sleep(model.delayMs, signal);
    }

    const c0 = process.hrtime.bigint();
    let produced: Record<string, Tensor>;
    try {
      produced = await model.compute(tensors, { parameters, signal, requestId: id, requestedOutputs: wanted.map((t) => t.name) });
    } catch (e) {
      if (e instanceof RpcError) throw e;
      if (e instanceof VideoAnalysisError && e.code in grpc.status) throw rpcError(grpc.status[e.code as keyof typeof grpc.status] as grpc.status, e.message);
      throw rpcError(INTERNAL, (e as Error)?.message ?? String(e));
    }
    stats.computeNs += Number(process.hrtime.bigint() - c0);

    // Outputs in the model's order; one raw entry per output, empty for those written to shared memory.
    const outputs: InferResponseMsg["outputs"] = [];
    const rawOut: Uint8Array[] = [];
    for (const spec of wanted) {
      const t = produced[spec.name];
      if (!t) throw rpcError(INTERNAL, `test model '${name}' did not produce output '${spec.name}'`);
      if (t.datatype !== spec.datatype || !shapeFits(spec.shape, t.shape)) {
        throw rpcError(INTERNAL, `test model '${name}' produced output '${spec.name}' as ${t.datatype} ${dims(t.shape)}, its spec says ${spec.datatype} ${dims(spec.shape)}`);
      }
      const raw = toRaw(t);
      outputs.push({ name: spec.name, datatype: t.datatype, shape: t.shape });
      const shm = shmOut.get(spec.name);
      if (shm) {
        if (raw.byteLength > shm.byteSize) {
          throw rpcError(INTERNAL, `shared memory size specified with the request for output '${spec.name}' (${shm.byteSize} bytes) should be at least ${raw.byteLength} bytes to hold the results`);
        }
        this.shmWrite(shm, raw);
        rawOut.push(Buffer.alloc(0));
      } else {
        rawOut.push(raw);
      }
    }
    return { model_name: name, model_version: String(version), id, outputs, raw_output_contents: rawOut };
  }

  /**
   * ModelStreamInfer: requests are answered one at a time, in order. A failed request is answered with
   * error_message (and its id) and the stream goes on, as Triton does for models that are not decoupled.
   */
  private streamInfer(call: grpc.ServerDuplexStream<InferRequestMsg, unknown>): void {
    const refused = this.admit("ModelStreamInfer", call.metadata);
    if (refused) {
      call.emit("error", { code: refused.code, details: refused.message });
      return;
    }
    const ac = new AbortController();
    call.on("cancelled", () => ac.abort());
    let queue = Promise.resolve();
    const write = (msg: object) =>
      new Promise<void>((resolve) => {
        if (call.cancelled || call.writableEnded) return resolve();
        if (call.write(msg)) resolve();
        else call.once("drain", resolve);
      });
    call.on("data", (req: InferRequestMsg) => {
      queue = queue.then(async () => {
        if (ac.signal.aborted) return;
        try {
          await write({ infer_response: await this.infer(req, ac.signal) });
        } catch (e) {
          await write({ error_message: toStatus(e).details, infer_response: { id: req.id ?? "" } });
        }
      });
    });
    call.on("end", () => {
      void queue.then(() => {
        if (!call.cancelled && !call.writableEnded) call.end();
      });
    });
    call.on("error", () => ac.abort());
  }
}

/** Triton leaves the config's platform empty for backends like python; metadata then names the backend. */
function platformOf(e: Entry): { config: string; metadata: string } {
  const p = e.backend === "onnxruntime" ? "onnxruntime_onnx" : e.model.platform && e.model.platform !== e.backend ? e.model.platform : "";
  return { config: p, metadata: p || e.backend };
}

function toStatus(e: unknown): { code: grpc.status; details: string } {
  if (e instanceof RpcError) return { code: e.code, details: e.message };
  return { code: INTERNAL, details: (e as Error)?.message ?? String(e) };
}

/** tritonserver's HTTP status for an error (http_server.cc HttpCodeFromError); 401/403/429 stand for a proxy's. */
function httpStatus(code: grpc.status): number {
  switch (code) {
    case NOT_FOUND: return 404;
    case UNAVAILABLE: return 503;
    case INTERNAL: return 500;
    case UNIMPLEMENTED: return 501;
    case UNAUTHENTICATED: return 401;
    case grpc.status.PERMISSION_DENIED: return 403;
    case grpc.status.RESOURCE_EXHAUSTED: return 429;
    // INVALID_ARGUMENT, ALREADY_EXISTS, CANCELLED, UNKNOWN and everything else.
    default: return 400;
  }
}

/** An output as the JSON `data` of Triton's HTTP answer (WriteDataToJson): numbers, booleans, strings. */
function jsonData(datatype: DataType, shape: number[], raw: Uint8Array): unknown[] {
  const data = fromRaw(datatype, shape, raw, "output");
  if (datatype === "BOOL") return Array.from(data as Uint8Array, (b) => b !== 0);
  if (datatype === "BYTES") return (data as Uint8Array[]).map((b) => Buffer.from(b).toString("utf8"));
  return Array.from(data as ArrayLike<number | bigint>);
}

/** JSON `data` of an input as InferTensorContents, the way the gRPC front gets typed contents. */
function jsonContents(datatype: string, data: unknown[]): ContentsMsg {
  switch (datatype) {
    case "BOOL": return { bool_contents: data.map(Boolean) };
    case "INT8": case "INT16": case "INT32": return { int_contents: data.map(Number) };
    case "UINT8": case "UINT16": case "UINT32": return { uint_contents: data.map(Number) };
    case "INT64": return { int64_contents: data.map(String) };
    case "UINT64": return { uint64_contents: data.map(String) };
    case "FP32": return { fp32_contents: data.map(Number) };
    case "FP64": return { fp64_contents: data.map(Number) };
    case "BYTES": return { bytes_contents: data.map((v) => Buffer.from(String(v))) };
    default: throw rpcError(INVALID_ARGUMENT, `sending ${datatype} data via JSON is not supported`);
  }
}
