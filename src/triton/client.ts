import { readFileSync } from "node:fs";
import * as grpc from "@grpc/grpc-js";
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata, TensorSpec } from "../backend/backend.js";
import { ContractCache, checkInputs } from "../backend/contract.js";
import { VideoAnalysisError, grpcCodeName, isGrpcServiceError, type ErrorCode } from "../errors.js";
import { isDataType, type DataType, type Tensor } from "../tensor.js";
import { serviceClientConstructor, type InferenceServiceClient } from "./proto.js";
import { DEFAULT_RETRY, RetriesExhausted, withRetry, type RetryPolicy } from "./retry.js";
import { InferStream } from "./stream.js";
import { resolveTarget } from "./target.js";
import { decodeInferResponse, encodeInferRequest, type InferInput } from "./wire.js";

export interface TlsOptions {
  /** PEM of the CA that signed the server's certificate, or a path to it; the system roots when omitted. */
  ca?: string | Buffer;
  /** Client certificate and key (PEM or paths), for servers that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface TritonClientOptions {
  /** "host:port" of Triton's gRPC endpoint (default port 8001). */
  url?: string;
  /** Several endpoints serving the same models; calls are spread by gRPC's round_robin policy. */
  urls?: string[];
  /** TLS; plaintext when omitted. */
  tls?: TlsOptions | boolean;
  /** Metadata sent with every call, e.g. { authorization: "Bearer ..." }. */
  headers?: Record<string, string>;
  /** Client-side deadline per call in ms (default 60 000); a call's own deadlineMs overrides it. */
  deadlineMs?: number;
  /** Retries of UNAVAILABLE for calls that are safe to repeat. */
  retry?: Partial<RetryPolicy>;
  /**
   * HTTP/2 keepalive ping interval (default 300 000 ms). Triton, by default, tolerates pings without data
   * no more often than every 5 minutes and closes connections that ping faster; lower it only together
   * with tritonserver's --grpc-http2-min-recv-ping-interval-without-data.
   */
  keepaliveTimeMs?: number;
  keepaliveTimeoutMs?: number;
  /** Largest message received (default 1 GiB; a [1,84,18900] FP32 output is 6.4 MB). */
  maxReceiveMessageBytes?: number;
  /** Extra grpc-js channel options. */
  channelOptions?: grpc.ChannelOptions;
}

export interface ServerMetadata {
  name: string;
  version: string;
  extensions: string[];
}

export interface RepositoryModel {
  name: string;
  version: string;
  state: string;
  reason: string;
}

/** Where a call stood when it ended: for retry accounting in errors and logs. */
interface CallContext {
  rpc: string;
  model?: string;
  deadlineMs: number;
}

function pem(v: string | Buffer | undefined): Buffer | null {
  if (v === undefined) return null;
  if (Buffer.isBuffer(v)) return v;
  return v.includes("-----BEGIN") ? Buffer.from(v) : readFileSync(v);
}

const toSpec = (t: { name: string; datatype: string; shape?: string[] }): TensorSpec => ({
  name: t.name,
  datatype: (isDataType(t.datatype) ? t.datatype : "BYTES") as DataType,
  shape: (t.shape ?? []).map(Number),
});

/**
 * A client of Triton's gRPC protocol (inference.GRPCInferenceService), implementing the SDK's
 * InferenceBackend. Create with `await TritonClient.create({ url: "localhost:8001" })`, release with close().
 *
 * @example
 * const triton = await TritonClient.create({ url: "localhost:8001" });
 * const r = await triton.infer("midas_256", [tensor("INPUT__0", "UINT8", [1, 256, 256, 3], pixels)]);
 * r.outputs.OUTPUT__0.shape; // [1, 256, 256]
 */
export class TritonClient implements InferenceBackend {
  readonly kind = "triton" as const;
  private readonly contracts = new ContractCache();
  private readonly retry: RetryPolicy;
  private readonly deadlineMs: number;

  private constructor(
    readonly endpoint: string,
    private readonly stub: InferenceServiceClient,
    private readonly headers: Record<string, string>,
    options: TritonClientOptions,
  ) {
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.deadlineMs = options.deadlineMs ?? 60_000;
  }

  static async create(options: TritonClientOptions): Promise<TritonClient> {
    if (typeof options !== "object" || options === null) throw new TypeError("TritonClient.create: options must be an object");
    const urls = options.urls ?? (options.url ? [options.url] : []);
    if (options.deadlineMs !== undefined && !(options.deadlineMs > 0)) {
      throw new RangeError(`TritonClient.create: deadlineMs must be > 0, got ${options.deadlineMs}`);
    }
    if (options.retry?.maxAttempts !== undefined && !(Number.isInteger(options.retry.maxAttempts) && options.retry.maxAttempts >= 1)) {
      throw new RangeError(`TritonClient.create: retry.maxAttempts must be an integer >= 1, got ${options.retry.maxAttempts}`);
    }
    const { target, authority } = await resolveTarget(urls);
    const tls = options.tls === true ? {} : options.tls || undefined;
    let creds: grpc.ChannelCredentials;
    try {
      creds = tls ? grpc.credentials.createSsl(pem(tls.ca), pem(tls.key), pem(tls.cert)) : grpc.credentials.createInsecure();
    } catch (e) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `TLS settings could not be read: ${(e as Error).message}; check the ca/cert/key paths in the profile`);
    }
    const channelOptions: grpc.ChannelOptions = {
      "grpc.max_receive_message_length": options.maxReceiveMessageBytes ?? 1 << 30,
      "grpc.max_send_message_length": -1,
      "grpc.keepalive_time_ms": options.keepaliveTimeMs ?? 300_000,
      "grpc.keepalive_timeout_ms": options.keepaliveTimeoutMs ?? 20_000,
      "grpc.service_config": JSON.stringify({ loadBalancingConfig: [{ round_robin: {} }] }),
      // HTTP/2's default 64 KiB receive window makes the server stop and wait for window updates many
      // times per output tensor (a [1,84,18900] FP32 output is 6.4 MB); a window that holds whole
      // outputs roughly halved 1-3 MB round trips in bench transport.
      "grpc-node.flow_control_window": 16 << 20,
      ...(authority ? { "grpc.default_authority": authority, "grpc.ssl_target_name_override": authority.replace(/:\d+$/, "") } : {}),
      ...options.channelOptions,
    };
    const Ctor = serviceClientConstructor();
    const stub = new Ctor(target, creds, channelOptions) as InferenceServiceClient;
    return new TritonClient(urls.join(","), stub, options.headers ?? {}, options);
  }

  private metadata(): grpc.Metadata {
    const md = new grpc.Metadata();
    for (const [k, v] of Object.entries(this.headers)) md.set(k, v);
    return md;
  }

  /** One unary RPC with deadline, headers, cancellation and (when safe) retries of UNAVAILABLE. */
  private async unary<T>(rpc: string, request: object, opts: { model?: string; safe?: boolean; deadlineMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const ctx: CallContext = { rpc, model: opts.model, deadlineMs: opts.deadlineMs ?? this.deadlineMs };
    opts.signal?.throwIfAborted();
    try {
      const r = await withRetry(
        () =>
          new Promise<T>((resolve, reject) => {
            const call = this.stub[rpc](request, this.metadata(), { deadline: Date.now() + ctx.deadlineMs }, (err: grpc.ServiceError | null, res: T) =>
              err ? reject(err) : resolve(res),
            ) as grpc.ClientUnaryCall;
            opts.signal?.addEventListener("abort", () => call.cancel(), { once: true });
          }),
        this.retry,
        opts.safe ?? true,
        opts.signal,
      );
      return r.value;
    } catch (e) {
      throw this.toError(e, ctx);
    }
  }

  /** A grpc-js failure as the SDK's error, with a sentence that says what to do. */
  toError(e: unknown, ctx: CallContext): VideoAnalysisError {
    let attempts = 1;
    let elapsedMs: number | undefined;
    if (e instanceof RetriesExhausted) {
      attempts = e.attempts;
      elapsedMs = Math.round(e.elapsedMs);
      e = e.last;
    }
    if (e instanceof VideoAnalysisError) return e;
    if (!isGrpcServiceError(e)) {
      return new VideoAnalysisError("INTERNAL", `${ctx.rpc} failed: ${(e as Error)?.message ?? String(e)}`, { model: ctx.model, cause: e });
    }
    const code: ErrorCode = grpcCodeName(e.code);
    // Triton answers some refusals (a wrong shape on ModelInfer) with no message at all.
    if (!e.details && code === "INVALID_ARGUMENT") {
      e.details = "the server refused the request without saying why; compare the inputs' names, datatypes and shapes with the model's metadata";
    }
    const tried = attempts > 1 ? ` after ${attempts} attempts in ${elapsedMs} ms` : "";
    const what: Partial<Record<ErrorCode, string>> = {
      UNAVAILABLE: `Triton at ${this.endpoint} is unavailable (${e.details})${tried}; check that tritonserver is running and that the URL points at its gRPC port (8001 by default)`,
      DEADLINE_EXCEEDED: `${ctx.rpc} did not finish within its ${ctx.deadlineMs} ms deadline${tried}; raise the deadline (deadline_ms in the profile) or look at the server's load`,
      UNAUTHENTICATED: `the server refused the credentials (${e.details}); check the headers (auth token) in the profile`,
      PERMISSION_DENIED: `the server refused the call (${e.details}); check the headers (auth token) in the profile`,
      NOT_FOUND: `${e.details}; check the model name against the server's repository (video-analysis smoke lists it)`,
      CANCELLED: `${ctx.rpc} was cancelled`,
      RESOURCE_EXHAUSTED: `${e.details}; the message may exceed a size limit (maxReceiveMessageBytes, or the server's)`,
    };
    return new VideoAnalysisError(code, what[code] ?? `${ctx.rpc}: ${e.details}`, {
      model: ctx.model,
      cause: e,
      details: { grpcStatus: e.code, rpc: ctx.rpc, attempts, ...(elapsedMs !== undefined ? { elapsedMs } : {}) },
    });
  }

  async serverLive(): Promise<boolean> {
    return (await this.unary<{ live?: boolean }>("ServerLive", {})).live ?? false;
  }

  async serverReady(): Promise<boolean> {
    return (await this.unary<{ ready?: boolean }>("ServerReady", {})).ready ?? false;
  }

  async modelReady(model: string, version = ""): Promise<boolean> {
    return (await this.unary<{ ready?: boolean }>("ModelReady", { name: model, version }, { model })).ready ?? false;
  }

  async serverMetadata(): Promise<ServerMetadata> {
    const r = await this.unary<{ name?: string; version?: string; extensions?: string[] }>("ServerMetadata", {});
    return { name: r.name ?? "", version: r.version ?? "", extensions: r.extensions ?? [] };
  }

  async modelMetadata(model: string, version = ""): Promise<ModelMetadata> {
    const r = await this.unary<any>("ModelMetadata", { name: model, version }, { model });
    return {
      name: r.name ?? model,
      versions: r.versions ?? [],
      platform: r.platform ?? "",
      inputs: (r.inputs ?? []).map(toSpec),
      outputs: (r.outputs ?? []).map(toSpec),
    };
  }

  /** The model's configuration (inference.ModelConfig as a plain object, field names as in the .proto). */
  async modelConfig(model: string, version = ""): Promise<Record<string, any>> {
    return (await this.unary<{ config?: Record<string, any> }>("ModelConfig", { name: model, version }, { model })).config ?? {};
  }

  /** Per-model statistics (inference.ModelStatisticsResponse's model_stats); all models when name is empty. */
  async modelStatistics(model = "", version = ""): Promise<Record<string, any>[]> {
    return (await this.unary<{ model_stats?: Record<string, any>[] }>("ModelStatistics", { name: model, version }, { model: model || undefined })).model_stats ?? [];
  }

  async repositoryIndex(options: { ready?: boolean; repository?: string } = {}): Promise<RepositoryModel[]> {
    const r = await this.unary<{ models?: Partial<RepositoryModel>[] }>("RepositoryIndex", { repository_name: options.repository ?? "", ready: options.ready ?? false });
    return (r.models ?? []).map((m) => ({ name: m.name ?? "", version: m.version ?? "", state: m.state ?? "", reason: m.reason ?? "" }));
  }

  /** Loads (or reloads) a model; works when tritonserver runs with --model-control-mode=explicit. */
  async loadModel(model: string, options: { config?: string; repository?: string } = {}): Promise<void> {
    const parameters = options.config ? { config: { string_param: options.config } } : {};
    await this.unary("RepositoryModelLoad", { repository_name: options.repository ?? "", model_name: model, parameters }, { model, safe: false, deadlineMs: Math.max(this.deadlineMs, 300_000) });
  }

  async unloadModel(model: string, options: { unloadDependents?: boolean; repository?: string } = {}): Promise<void> {
    const parameters = options.unloadDependents ? { unload_dependents: { bool_param: true } } : {};
    await this.unary("RepositoryModelUnload", { repository_name: options.repository ?? "", model_name: model, parameters }, { model, safe: false });
  }

  /**
   * Registers a POSIX shared-memory region (see SystemSharedMemory) under `name`, so inputs and outputs
   * can name it instead of travelling in the message. Keep `offset` 0 and place tensors with their own
   * offsets: tritonserver 2.51 applies a non-zero registered offset twice (seen in the integration tests).
   */
  async registerSystemSharedMemory(name: string, key: string, byteSize: number, offset = 0): Promise<void> {
    await this.unary("SystemSharedMemoryRegister", { name, key, offset: String(offset), byte_size: String(byteSize) }, { safe: false });
  }

  /** Unregisters one region, or all of them when name is omitted. */
  async unregisterSystemSharedMemory(name = ""): Promise<void> {
    await this.unary("SystemSharedMemoryUnregister", { name });
  }

  async systemSharedMemoryStatus(name = ""): Promise<{ name: string; key: string; offset: number; byteSize: number }[]> {
    const r = await this.unary<{ regions?: Record<string, { name: string; key: string; offset?: string; byte_size?: string }> }>("SystemSharedMemoryStatus", { name });
    return Object.values(r.regions ?? {}).map((x) => ({ name: x.name, key: x.key, offset: Number(x.offset ?? 0), byteSize: Number(x.byte_size ?? 0) }));
  }

  async infer(model: string, inputs: InferInput[], options: InferOptions & { sharedMemoryOutputs?: SharedMemoryOutputs } = {}): Promise<InferResult> {
    if (options.contract) {
      await this.contracts.ensure(model, options.version, options.contract, () => this.modelMetadata(model, options.version ?? ""));
      checkInputs(model, options.contract, inputs.filter((t): t is Tensor => "data" in t));
    }
    const request = encodeInferRequest(model, inputs, options);
    // Inference on a stateless model is safe to repeat; a request that is part of a sequence is not.
    const safe = !("sequence_id" in request.parameters);
    const res = await this.unary<any>("ModelInfer", request, { model, safe, deadlineMs: options.deadlineMs, signal: options.signal });
    return decodeInferResponse(model, res, options.sharedMemoryOutputs);
  }

  /**
   * Opens a ModelStreamInfer stream: requests go out as they are given, results come back in order,
   * a failed request rejects its own promise without closing the stream.
   */
  stream(options: { deadlineMs?: number } = {}): InferStream {
    const call = this.stub.ModelStreamInfer(this.metadata(), options.deadlineMs ? { deadline: Date.now() + options.deadlineMs } : {}) as grpc.ClientDuplexStream<unknown, any>;
    return new InferStream(call, (e) => this.toError(e, { rpc: "ModelStreamInfer", deadlineMs: options.deadlineMs ?? 0 }));
  }

  async close(): Promise<void> {
    this.stub.close();
  }
}

/** Outputs to be written into registered shared memory instead of returned in the message. */
export type SharedMemoryOutputs = Record<string, { region: string; byteSize: number; offset?: number }>;
