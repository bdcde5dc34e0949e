import type { InferOptions, InferResult, ModelMetadata } from "../backend/backend.js";
import type { ErrorCode } from "../errors.js";
import type { DataType, Tensor } from "../tensor.js";

/**
 * The wire under TritonClient: Triton's gRPC protocol or its HTTP/REST one (KServe v2 with the binary
 * tensor extension). A protocol makes one attempt of one call and reports what happened; TritonClient
 * adds the contract check, retries, deadlines per call and the wording of errors, the same for both.
 */
export type ProtocolName = "grpc" | "http";

/** An input whose bytes already sit in a registered shared-memory region. */
export interface SharedMemoryTensor {
  name: string;
  datatype: DataType;
  shape: number[];
  sharedMemory: { region: string; byteSize: number; offset?: number };
}
export type InferInput = Tensor | SharedMemoryTensor;

export interface CallOptions {
  /** Milliseconds the call may take, from now; the protocol fails it with DEADLINE_EXCEEDED after. */
  deadlineMs: number;
  /** Cancels the call (CANCELLED). */
  signal?: AbortSignal;
}

/**
 * One failed attempt as the transport saw it: a status name, Triton's own text, and the wire's status
 * number (gRPC status, or HTTP status for the REST protocol). UNAVAILABLE means the request did not
 * reach a server or the connection broke, and is the only code TritonClient retries.
 */
export class TransportError extends Error {
  constructor(
    readonly code: ErrorCode,
    readonly details: string,
    readonly status?: { grpc?: number; http?: number },
  ) {
    super(details);
  }
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

export interface SharedMemoryRegionStatus {
  name: string;
  key: string;
  offset: number;
  byteSize: number;
}

/** Outputs to be written into registered shared memory instead of returned in the message. */
export type SharedMemoryOutputs = Record<string, { region: string; byteSize: number; offset?: number }>;

export type ProtocolInferOptions = InferOptions & { sharedMemoryOutputs?: SharedMemoryOutputs };

/** An inference answer; outputs written to shared memory are listed in `sharedMemory`, not `outputs`. */
export type ProtocolInferResult = InferResult & { sharedMemory: Record<string, { datatype: DataType; shape: number[] }> };

export interface Protocol {
  readonly name: ProtocolName;
  /** The endpoints, as given ("host:port" joined by ","). */
  readonly endpoint: string;
  serverLive(o: CallOptions): Promise<boolean>;
  serverReady(o: CallOptions): Promise<boolean>;
  modelReady(model: string, version: string, o: CallOptions): Promise<boolean>;
  serverMetadata(o: CallOptions): Promise<ServerMetadata>;
  modelMetadata(model: string, version: string, o: CallOptions): Promise<ModelMetadata>;
  /** inference.ModelConfig as a plain object, field names as in model_config.proto. */
  modelConfig(model: string, version: string, o: CallOptions): Promise<Record<string, any>>;
  /** ModelStatisticsResponse's model_stats, field names as in the .proto. */
  modelStatistics(model: string, version: string, o: CallOptions): Promise<Record<string, any>[]>;
  repositoryIndex(repository: string, ready: boolean, o: CallOptions): Promise<RepositoryModel[]>;
  loadModel(model: string, options: { config?: string; repository?: string }, o: CallOptions): Promise<void>;
  unloadModel(model: string, options: { unloadDependents?: boolean; repository?: string }, o: CallOptions): Promise<void>;
  registerSystemSharedMemory(name: string, key: string, byteSize: number, offset: number, o: CallOptions): Promise<void>;
  unregisterSystemSharedMemory(name: string, o: CallOptions): Promise<void>;
  systemSharedMemoryStatus(name: string, o: CallOptions): Promise<SharedMemoryRegionStatus[]>;
  infer(model: string, inputs: readonly InferInput[], options: ProtocolInferOptions, o: CallOptions): Promise<ProtocolInferResult>;
  close(): Promise<void>;
}

/** What a protocol connects with, resolved by TritonClient.create. */
export interface ConnectionOptions {
  /** "host:port" endpoints (URL schemes such as grpc:// or http:// are accepted and dropped); calls go round robin over them. */
  urls: string[];
  /** PEM contents; plaintext when undefined. */
  tls?: { ca?: Buffer; cert?: Buffer; key?: Buffer };
  /** Sent with every call (auth tokens...). */
  headers: Record<string, string>;
  /** Connection keepalive ping interval and how long a ping may go unanswered. */
  keepaliveTimeMs: number;
  keepaliveTimeoutMs: number;
  /** Largest answer accepted, in bytes. */
  maxReceiveMessageBytes: number;
  /** How long a new connection may wait for the server's first answer (gRPC: its HTTP/2 settings). */
  connectTimeoutMs: number;
}
