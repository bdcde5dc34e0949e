import type { DataType, Tensor } from "../tensor.js";

/** One tensor of a model's interface: -1 in shape means a dynamic dimension. */
export interface TensorSpec {
  name: string;
  datatype: DataType;
  shape: number[];
}

/** What a model takes and gives, as the caller expects it or as the server reports it. */
export interface ModelContract {
  inputs: TensorSpec[];
  outputs: TensorSpec[];
}

export interface ModelMetadata extends ModelContract {
  name: string;
  versions: string[];
  platform: string;
}

export interface InferOptions {
  /** Model version; the server's default policy when omitted. */
  version?: string;
  /** Names of the outputs wanted; all when omitted. */
  outputs?: string[];
  /**
   * The contract the caller expects. Checked against the model's metadata before the first inference
   * on that model (once per backend), so a wrong model stops with CONTRACT_MISMATCH, not garbage.
   */
  contract?: ModelContract;
  /** Client-side deadline for this call in milliseconds (Triton backend). */
  deadlineMs?: number;
  /** Triton's server-side queue/compute `timeout` parameter, in microseconds (Triton backend). */
  serverTimeoutUs?: number;
  signal?: AbortSignal;
  requestId?: string;
  /** Request parameters for Triton (sequence_id, sequence_start, priority, ...); ignored in-process. */
  parameters?: Record<string, string | number | boolean>;
  /**
   * Outputs that go to an artifact as they are: the embedded backend computes their CRC-32 on its worker
   * and notes it (checksum.ts noteCrc32), so the npz writer does not read them again on this thread.
   * A backend that cannot ignores it.
   */
  checksums?: boolean;
}

export interface InferResult {
  model: string;
  version: string;
  id: string;
  outputs: Record<string, Tensor>;
}

/**
 * The one interface every way of running a model implements: the Triton gRPC client and the embedded
 * onnxruntime backend. Components talk to this and never learn which one serves them.
 */
export interface InferenceBackend {
  readonly kind: "triton" | "embedded";
  /** Where the models live: the gRPC target, or "embedded" for in-process models. */
  readonly endpoint: string;
  infer(model: string, inputs: Tensor[], options?: InferOptions): Promise<InferResult>;
  modelMetadata(model: string, version?: string): Promise<ModelMetadata>;
  modelReady(model: string, version?: string): Promise<boolean>;
  /** Optional: the model's configuration as the server holds it (Triton's ModelConfig, as JSON). */
  modelConfig?(model: string, version?: string): Promise<Record<string, any>>;
  /**
   * Optional: hands back output data of earlier answers that the caller no longer reads, for the backend
   * to answer into again (the embedded backend does; a Triton answer is a view of its message). The
   * arrays must not be touched afterwards.
   */
  recycle?(data: readonly ArrayBufferView[]): void;
  /** Releases connections and sessions. The backend is unusable afterwards. */
  close(): Promise<void>;
}
