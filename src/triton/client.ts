import { readFileSync } from "node:fs";
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata } from "../backend/backend.js";
import { ContractCache, checkInputs } from "../backend/contract.js";
import { VideoAnalysisError, type ErrorCode } from "../errors.js";
import type { Tensor } from "../tensor.js";
import { GrpcProtocol } from "./grpc/protocol.js";
import { InferStream } from "./grpc/stream.js";
import { TransportError, type CallOptions, type ConnectionOptions, type InferInput, type Protocol, type ProtocolName, type RepositoryModel, type ServerMetadata, type SharedMemoryOutputs } from "./protocol.js";
import { OutageGuard, type OutageRecord, type OutageState } from "./outage.js";
import { SharedMemoryPool, SharedMemoryUnavailable, isLocalEndpoint, type SharedMemoryMode } from "./shm-pool.js";
import { DEFAULT_RETRY, RetriesExhausted, withRetry, type RetryPolicy } from "./retry.js";

export type { ProtocolName, RepositoryModel, ServerMetadata, SharedMemoryOutputs } from "./protocol.js";
export type { SharedMemoryMode } from "./shm-pool.js";
export type { OutageRecord, OutageState } from "./outage.js";

export interface TlsOptions {
  /** PEM of the CA that signed the server's certificate, or a path to it; the system roots when omitted. */
  ca?: string | Buffer;
  /** Client certificate and key (PEM or paths), for servers that require mutual TLS. */
  cert?: string | Buffer;
  key?: string | Buffer;
}

export interface TritonClientOptions {
  /**
   * "grpc" (default): Triton's gRPC protocol, port 8001 by default. "http": its HTTP/REST protocol
   * (KServe v2 with the binary tensor extension), port 8000 by default.
   */
  protocol?: ProtocolName;
  /** "host:port" of Triton's endpoint for the protocol. */
  url?: string;
  /** Several endpoints serving the same models; calls are spread over them round robin. */
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
  /**
   * gRPC: how long a new connection may wait for the server's first answer (its HTTP/2 settings) before it
   * is given up as UNAVAILABLE (default 10 000 ms): a port that accepts connections and says nothing is
   * found out at once, not at the end of a call's deadline.
   */
  connectTimeoutMs?: number;
  /**
   * How long infer() rides out a server that went away after answering (killed, restarted, a model
   * unloaded and loaded again): its calls wait until the server and their model are READY again and are
   * made again, up to this many ms from the start of the outage (default 0: fail at once). `outages` lists
   * them; `onOutage` hears the waiting (for progress), and undefined when it ends.
   */
  outageBudgetMs?: number;
  /** Largest message received (default 1 GiB; a [1,84,18900] FP32 output is 6.4 MB). */
  maxReceiveMessageBytes?: number;
  /**
   * How infer() moves tensors of 64 KiB or more: "off" (default) in the messages; "system" through POSIX
   * shared memory regions that the client makes, registers and reuses (the server must run on this
   * host); "auto": "system" when every URL is a loopback address and the server registers a region,
   * else "off". Outputs go through shared memory when the call's contract fixes their shape.
   */
  sharedMemory?: SharedMemoryMode;
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

/**
 * A client of Triton's gRPC or HTTP/REST protocol, implementing the SDK's InferenceBackend. Create with
 * `await TritonClient.create({ url: "localhost:8001" })`, release with close().
 *
 * @example
 * const triton = await TritonClient.create({ url: process.env.TRITON_GRPC_URL ?? "localhost:8001" });
 * try {
 *   const { image, info } = letterbox(await readImageRgb("bus.jpg"), 640);
 *   // yolo11x_640: the catalog's YOLO ensemble, UINT8 NHWC pixels in (it normalises on the server)
 *   const r = await triton.infer("yolo11x_640", [tensor("INPUT__0", "UINT8", [1, 640, 640, 3], image.data)]);
 *   const out = r.outputs.OUTPUT__0!;
 *   const dets = decodeYolo(toFloat32(out), out.shape, { conf: 0.25 }, info).withClassNames(COCO80_NAMES);
 *   console.log(dets.toRecords().map((d) => d.className)); // [ "person", "bus", "person", "person", "person" ] with YOLO11n
 * } finally {
 *   await triton.close();
 * }
 */
export class TritonClient implements InferenceBackend {
  readonly kind = "triton" as const;
  private readonly contracts = new ContractCache();
  private readonly retry: RetryPolicy;
  private readonly deadlineMs: number;
  readonly endpoint: string;
  private shm: SharedMemoryPool | undefined;
  private readonly retiredPools: SharedMemoryPool[] = [];
  private readonly shmMode: SharedMemoryMode;
  private readonly outage: OutageGuard | undefined;
  /** Hears a wait for the server (outageBudgetMs), and undefined when it ends. */
  onOutage: ((s: OutageState | undefined) => void) | undefined;
  /** Models that answered an inference through this client: only their failures can be an outage. */
  private readonly answered = new Set<string>();

  private constructor(private readonly protocol: Protocol, options: TritonClientOptions, urls: string[]) {
    this.endpoint = protocol.endpoint;
    this.retry = { ...DEFAULT_RETRY, ...options.retry };
    this.deadlineMs = options.deadlineMs ?? 60_000;
    this.shmMode = options.sharedMemory ?? "off";
    if (this.shmMode === "system" || (this.shmMode === "auto" && isLocalEndpoint(urls))) this.shm = new SharedMemoryPool(protocol);
    const budget = options.outageBudgetMs ?? 0;
    if (budget > 0) this.outage = new OutageGuard(this.endpoint, budget, (models) => this.missing(models), (st) => this.onOutage?.(st));
  }

  /** Outages ridden out (or not) so far. */
  get outages(): OutageRecord[] {
    return this.outage?.records ?? [];
  }

  /** What keeps the server or these models from serving, or undefined when all are READY. */
  private async missing(models: string[]): Promise<string | undefined> {
    // A model is named with its version ("m\u0000v") when the call asked for one.
    const o = { deadlineMs: 2_000 };
    if (!(await this.protocol.serverReady(o).catch(() => false))) {
      // Ready is false while any model loads; live and the models wanted READY is enough to go on.
      if (!(await this.protocol.serverLive(o))) return "server not live";
    }
    for (const key of models) {
      const [m, v = ""] = key.split("\u0000");
      if (!(await this.protocol.modelReady(m!, v, o))) return `model ${m}${v ? ` version ${v}` : ""} not ready`;
    }
    return undefined;
  }

  /**
   * A failure that an outage explains: the server away (UNAVAILABLE) after this client had answers, or a
   * model that answered before now unknown or not ready (unloaded, or the server restarting).
   */
  private isOutage(e: unknown, model: string): boolean {
    if (!(e instanceof VideoAnalysisError) || this.answered.size === 0) return false;
    return e.code === "UNAVAILABLE" || (e.code === "NOT_FOUND" && this.answered.has(model));
  }

  /** Whether infer() sends large tensors through system shared memory (it may turn off in "auto" mode). */
  get sharedMemoryActive(): boolean {
    return this.shm !== undefined;
  }

  /** "grpc" or "http". */
  get protocolName(): ProtocolName {
    return this.protocol.name;
  }

  static async create(options: TritonClientOptions): Promise<TritonClient> {
    if (typeof options !== "object" || options === null) throw new TypeError("TritonClient.create: options must be an object");
    const urls = options.urls ?? (options.url ? [options.url] : []);
    if (urls.length === 0) throw new VideoAnalysisError("INVALID_ARGUMENT", "no Triton URL given; set backend.triton.url (or urls) in the profile");
    const protocol = options.protocol ?? "grpc";
    if (options.sharedMemory !== undefined && !["auto", "system", "off"].includes(options.sharedMemory)) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `TritonClient.create: sharedMemory must be "auto", "system" or "off", got ${JSON.stringify(options.sharedMemory)}`);
    }
    if (protocol !== "grpc" && protocol !== "http") throw new VideoAnalysisError("INVALID_ARGUMENT", `TritonClient.create: protocol must be "grpc" or "http", got ${JSON.stringify(protocol)}`);
    if (options.deadlineMs !== undefined && !(options.deadlineMs > 0)) {
      throw new RangeError(`TritonClient.create: deadlineMs must be > 0, got ${options.deadlineMs}`);
    }
    if (options.retry?.maxAttempts !== undefined && !(Number.isInteger(options.retry.maxAttempts) && options.retry.maxAttempts >= 1)) {
      throw new RangeError(`TritonClient.create: retry.maxAttempts must be an integer >= 1, got ${options.retry.maxAttempts}`);
    }
    const tls = options.tls === true ? {} : options.tls || undefined;
    let tlsPem: ConnectionOptions["tls"];
    try {
      tlsPem = tls ? { ca: pem(tls.ca) ?? undefined, cert: pem(tls.cert) ?? undefined, key: pem(tls.key) ?? undefined } : undefined;
    } catch (e) {
      throw new VideoAnalysisError("INVALID_ARGUMENT", `TLS settings could not be read: ${(e as Error).message}; check the ca/cert/key paths in the profile`);
    }
    const conn: ConnectionOptions = {
      urls,
      tls: tlsPem,
      headers: options.headers ?? {},
      keepaliveTimeMs: options.keepaliveTimeMs ?? 300_000,
      keepaliveTimeoutMs: options.keepaliveTimeoutMs ?? 20_000,
      maxReceiveMessageBytes: options.maxReceiveMessageBytes ?? 1 << 30,
      connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    };
    const wire: Protocol = protocol === "grpc" ? new GrpcProtocol(conn) : new (await import("./http.js")).HttpProtocol(conn);
    return new TritonClient(wire, options, urls);
  }

  /** One call with deadline, cancellation and (when safe) retries of UNAVAILABLE. */
  private async unary<T>(rpc: string, run: (o: { deadlineMs: number; signal?: AbortSignal }) => Promise<T>, opts: { model?: string; safe?: boolean; deadlineMs?: number; signal?: AbortSignal } = {}): Promise<T> {
    const ctx: CallContext = { rpc, model: opts.model, deadlineMs: opts.deadlineMs ?? this.deadlineMs };
    opts.signal?.throwIfAborted();
    try {
      const r = await withRetry(() => run({ deadlineMs: ctx.deadlineMs, signal: opts.signal }), this.retry, opts.safe ?? true, opts.signal);
      return r.value;
    } catch (e) {
      throw this.toError(e, ctx);
    }
  }

  /** A failed call as the SDK's error, with a sentence that says what to do. @internal */
  toError(e: unknown, ctx: CallContext): VideoAnalysisError {
    let attempts = 1;
    let elapsedMs: number | undefined;
    if (e instanceof RetriesExhausted) {
      attempts = e.attempts;
      elapsedMs = Math.round(e.elapsedMs);
      e = e.last;
    }
    if (e instanceof VideoAnalysisError) return e;
    if (!(e instanceof TransportError)) {
      return new VideoAnalysisError("INTERNAL", `${ctx.rpc} failed: ${(e as Error)?.message ?? String(e)}`, { model: ctx.model, cause: e });
    }
    const code: ErrorCode = e.code;
    // Triton answers some refusals (a wrong shape on gRPC ModelInfer in some versions) with no message at all.
    const details = e.details || (code === "INVALID_ARGUMENT" ? "the server refused the request without saying why; compare the inputs' names, datatypes and shapes with the model's metadata" : "no message");
    const tried = attempts > 1 ? ` after ${attempts} attempts in ${elapsedMs} ms` : "";
    const port = this.protocol.name === "grpc" ? "its gRPC port (8001 by default)" : "its HTTP port (8000 by default)";
    const what: Partial<Record<ErrorCode, string>> = {
      UNAVAILABLE: `Triton at ${this.endpoint} is unavailable (${details})${tried}; check that tritonserver is running and that the URL points at ${port}`,
      DEADLINE_EXCEEDED: `${ctx.rpc} did not finish within its ${ctx.deadlineMs} ms deadline${tried}; raise the deadline (deadline_ms in the profile) or look at the server's load`,
      UNAUTHENTICATED: `the server refused the credentials (${details}); check the headers (auth token) in the profile`,
      PERMISSION_DENIED: `the server refused the call (${details}); check the headers (auth token) in the profile`,
      NOT_FOUND: `${details}; check the model name against the server's repository (video-analysis smoke lists it)`,
      ...(ctx.rpc === "ModelInfer" && e.details ? { INVALID_ARGUMENT: `${ctx.rpc}: ${details}; the inputs must match the model's metadata (names, datatypes, shapes: TritonClient.modelMetadata)` } : {}),
      CANCELLED: `${ctx.rpc} was cancelled`,
      RESOURCE_EXHAUSTED: `${details}; the message may exceed a size limit (maxReceiveMessageBytes, or the server's)`,
    };
    return new VideoAnalysisError(code, what[code] ?? `${ctx.rpc}: ${details}`, {
      model: ctx.model,
      cause: e,
      details: {
        ...(e.status?.grpc !== undefined ? { grpcStatus: e.status.grpc } : {}),
        ...(e.status?.http !== undefined ? { httpStatus: e.status.http } : {}),
        protocol: this.protocol.name,
        rpc: ctx.rpc,
        ...(e.details ? {} : { serverMessage: false }),
        attempts,
        ...(elapsedMs !== undefined ? { elapsedMs } : {}),
      },
    });
  }

  async serverLive(): Promise<boolean> {
    return this.unary("ServerLive", (o) => this.protocol.serverLive(o));
  }

  async serverReady(): Promise<boolean> {
    return this.unary("ServerReady", (o) => this.protocol.serverReady(o));
  }

  async modelReady(model: string, version = ""): Promise<boolean> {
    return this.unary("ModelReady", (o) => this.protocol.modelReady(model, version, o), { model });
  }

  async serverMetadata(): Promise<ServerMetadata> {
    return this.unary("ServerMetadata", (o) => this.protocol.serverMetadata(o));
  }

  async modelMetadata(model: string, version = ""): Promise<ModelMetadata> {
    return this.unary("ModelMetadata", (o) => this.protocol.modelMetadata(model, version, o), { model });
  }

  /** The model's configuration (inference.ModelConfig as a plain object, field names as in the .proto). */
  async modelConfig(model: string, version = ""): Promise<Record<string, any>> {
    return this.unary("ModelConfig", (o) => this.protocol.modelConfig(model, version, o), { model });
  }

  /** Per-model statistics (inference.ModelStatisticsResponse's model_stats); all models when name is empty. */
  async modelStatistics(model = "", version = ""): Promise<Record<string, any>[]> {
    return this.unary("ModelStatistics", (o) => this.protocol.modelStatistics(model, version, o), { model: model || undefined });
  }

  async repositoryIndex(options: { ready?: boolean; repository?: string } = {}): Promise<RepositoryModel[]> {
    return this.unary("RepositoryIndex", (o) => this.protocol.repositoryIndex(options.repository ?? "", options.ready ?? false, o));
  }

  /** Loads (or reloads) a model; works when tritonserver runs with --model-control-mode=explicit. */
  async loadModel(model: string, options: { config?: string; repository?: string } = {}): Promise<void> {
    await this.unary("RepositoryModelLoad", (o) => this.protocol.loadModel(model, options, o), { model, safe: false, deadlineMs: Math.max(this.deadlineMs, 300_000) });
  }

  async unloadModel(model: string, options: { unloadDependents?: boolean; repository?: string } = {}): Promise<void> {
    await this.unary("RepositoryModelUnload", (o) => this.protocol.unloadModel(model, options, o), { model, safe: false });
  }

  /**
   * Registers a POSIX shared-memory region (see SystemSharedMemory) under `name`, so inputs and outputs
   * can name it instead of travelling in the message. Keep `offset` 0 and place tensors with their own
   * offsets: tritonserver 2.51 applies a non-zero registered offset twice (seen in the integration tests).
   */
  async registerSystemSharedMemory(name: string, key: string, byteSize: number, offset = 0): Promise<void> {
    await this.unary("SystemSharedMemoryRegister", (o) => this.protocol.registerSystemSharedMemory(name, key, byteSize, offset, o), { safe: false });
  }

  /** Unregisters one region, or all of them when name is omitted. */
  async unregisterSystemSharedMemory(name = ""): Promise<void> {
    await this.unary("SystemSharedMemoryUnregister", (o) => this.protocol.unregisterSystemSharedMemory(name, o));
  }

  async systemSharedMemoryStatus(name = ""): Promise<{ name: string; key: string; offset: number; byteSize: number }[]> {
    return this.unary("SystemSharedMemoryStatus", (o) => this.protocol.systemSharedMemoryStatus(name, o));
  }

  async infer(model: string, inputs: InferInput[], options: InferOptions & { sharedMemoryOutputs?: SharedMemoryOutputs } = {}): Promise<InferResult> {
    if (options.contract) {
      await this.contracts.ensure(model, options.version, options.contract, () => this.modelMetadata(model, options.version ?? ""));
      checkInputs(model, options.contract, inputs.filter((t): t is Tensor => "data" in t));
    }
    // Inference on a stateless model is safe to repeat; a request that is part of a sequence is not.
    const safe = options.parameters?.sequence_id === undefined;
    // One call rides out outages for at most the budget in all, however many times the server goes away.
    let waitingSince: number | undefined;
    for (;;) {
      const pool = !options.sharedMemoryOutputs && !inputs.some((t) => "sharedMemory" in t) ? this.shm : undefined;
      const run = pool ? (o: CallOptions) => this.inferShm(pool, model, inputs, options, o) : (o: CallOptions) => this.protocol.infer(model, inputs, options, o);
      try {
        const r = await this.unary("ModelInfer", run, { model, safe, deadlineMs: options.deadlineMs, signal: options.signal });
        this.answered.add(model);
        return r;
      } catch (e) {
        if (e instanceof VideoAnalysisError && e.details.serverMessage === false) throw await this.explainRefusal(e, model, inputs, options.version);
        if (!this.outage || !safe || !this.isOutage(e, model)) throw e;
        waitingSince ??= performance.now();
        if (performance.now() - waitingSince > this.outage.budgetMs) throw e;
        await this.outage.wait(options.version ? `${model}\u0000${options.version}` : model, (e as Error).message, options.signal);
        // The model may have come back with other tensors: its contract is checked again.
        this.contracts.clear();
        if (options.contract) {
          await this.contracts.ensure(model, options.version, options.contract, () => this.modelMetadata(model, options.version ?? ""));
        }
      }
    }
  }

  /**
   * Triton 2.51 refuses a wrong shape in a request of a sequence (a unary ModelInfer) with a status and
   * no message: the inputs are then compared with the model's metadata here, and the error says which
   * one the server could not take. The error stands as it was when the metadata cannot be read.
   */
  private async explainRefusal(e: VideoAnalysisError, model: string, inputs: InferInput[], version = ""): Promise<VideoAnalysisError> {
    let meta: ModelMetadata;
    try {
      meta = await this.modelMetadata(model, version);
    } catch {
      return e;
    }
    try {
      checkInputs(model, { inputs: meta.inputs, outputs: [] }, inputs.map((t) => ("data" in t ? t : { ...t, data: new Uint8Array(0) })) as Tensor[]);
    } catch (found) {
      return new VideoAnalysisError(e.code, `the server refused the request without a message; against the model's metadata: ${(found as Error).message}`, { model, cause: e, details: e.details });
    }
    return e;
  }

  private async inferShm(pool: SharedMemoryPool, model: string, inputs: InferInput[], options: InferOptions, o: CallOptions): Promise<InferResult> {
    try {
      return await pool.infer(model, inputs, options, o);
    } catch (e) {
      if (!(e instanceof SharedMemoryUnavailable)) throw e;
      if (this.shmMode === "system") {
        throw new VideoAnalysisError("FAILED_PRECONDITION", `system shared memory with Triton at ${this.endpoint} could not be set up: ${e.reason}; the server must run on this host and see its /dev/shm (or set shared_memory to off)`, { model, cause: e });
      }
      // "auto": say once what is lost, and go on with tensors in the messages. Calls still using the
      // pool's regions finish with them; the pool is closed with the client.
      if (this.shm === pool) {
        this.shm = undefined;
        this.retiredPools.push(pool);
        process.emitWarning(`shared memory with Triton at ${this.endpoint} is off for this client: ${e.reason}; tensors travel in the messages`, { code: "VASDK_SHM_OFF" });
      }
      return this.protocol.infer(model, inputs, options, o);
    }
  }

  /**
   * Opens a ModelStreamInfer stream (gRPC only): requests go out as they are given, results come back in
   * order, a failed request rejects its own promise without closing the stream.
   */
  stream(options: { deadlineMs?: number } = {}): InferStream {
    if (!(this.protocol instanceof GrpcProtocol)) {
      throw new VideoAnalysisError("UNIMPLEMENTED", "ModelStreamInfer is part of Triton's gRPC protocol only; create the client with protocol \"grpc\" for streams");
    }
    return new InferStream(this.protocol.channel, options.deadlineMs ?? 0, (e) => this.toError(e, { rpc: "ModelStreamInfer", deadlineMs: options.deadlineMs ?? 0 }));
  }

  async close(): Promise<void> {
    for (const pool of [this.shm, ...this.retiredPools.splice(0)]) await pool?.close({ deadlineMs: 5_000 });
    this.shm = undefined;
    await this.protocol.close();
  }
}
