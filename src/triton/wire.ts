import type { InferOptions } from "../backend/backend.js";
import { VideoAnalysisError } from "../errors.js";
import { fromRaw, isDataType, toRaw, type DataType, type Tensor, type TensorData } from "../tensor.js";
import type { InferInput, ProtocolInferOptions, ProtocolInferResult } from "./protocol.js";

// The protocols' common forms of a request and an answer (grpc/codec.ts writes and reads them as
// protobuf, http.ts as JSON and binary data).
/** A request or response parameter (InferParameter); int64s beyond 2^53 as bigint. */
export type ParamValue = boolean | number | bigint | string;

export interface WireInput {
  name: string;
  datatype: string;
  shape: readonly number[];
  parameters?: Record<string, ParamValue>;
}

export interface WireRequest {
  model: string;
  version: string;
  id: string;
  parameters: Record<string, ParamValue>;
  inputs: WireInput[];
  outputs: { name: string; parameters?: Record<string, ParamValue> }[];
  /** raw_input_contents, in input order (inputs in shared memory have none). */
  raw: readonly Uint8Array[];
}

/** Typed contents (InferTensorContents), for a server that answers without raw_output_contents. */
export type WireContents = {
  bool?: boolean[];
  int?: number[];
  int64?: bigint[];
  uint?: number[];
  uint64?: bigint[];
  fp32?: number[];
  fp64?: number[];
  bytes?: Uint8Array[];
};

export interface WireOutput {
  name: string;
  datatype: string;
  shape: number[];
  parameters: Record<string, ParamValue>;
  contents?: WireContents;
}

export interface WireResponse {
  model: string;
  version: string;
  id: string;
  parameters: Record<string, ParamValue>;
  outputs: WireOutput[];
  /** Views of the message, one per output in output order (or none). */
  raw: Buffer[];
}

/** The parameters that place a tensor in a registered shared-memory region (both protocols use these names). */
function shmParameters(s: { region: string; byteSize: number; offset?: number }): Record<string, ParamValue> {
  return {
    shared_memory_region: s.region,
    shared_memory_byte_size: s.byteSize,
    ...(s.offset ? { shared_memory_offset: s.offset } : {}),
  };
}

/**
 * The request's parameters: the caller's, and Triton's `timeout` (microseconds; it bounds queueing on the
 * server, where the client's deadline in ms bounds the whole call: different knobs).
 */
function requestParameters(options: InferOptions): Record<string, ParamValue> {
  const parameters: Record<string, ParamValue> = { ...options.parameters };
  if (options.serverTimeoutUs !== undefined) parameters.timeout = Math.round(options.serverTimeoutUs);
  return parameters;
}

/** An inference request in the protocols' common form; tensor bytes are views of the caller's memory. */
export function inferRequest(model: string, inputs: readonly InferInput[], options: ProtocolInferOptions): WireRequest {
  const raw: Uint8Array[] = [];
  const tensors = inputs.map((t) => {
    if ("sharedMemory" in t) return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: shmParameters(t.sharedMemory) };
    raw.push(toRaw(t));
    return { name: t.name, datatype: t.datatype, shape: t.shape };
  });
  const shmOut = options.sharedMemoryOutputs ?? {};
  const names = options.outputs ?? Object.keys(shmOut);
  return {
    model,
    version: options.version ?? "",
    id: options.requestId ?? "",
    parameters: requestParameters(options),
    inputs: tensors,
    outputs: names.map((name) => (shmOut[name] ? { name, parameters: shmParameters(shmOut[name]) } : { name })),
    raw,
  };
}

// Typed contents (InferTensorContents), for servers that answer without raw contents.
function fromContents(datatype: DataType, shape: number[], c: WireContents, name: string): TensorData {
  switch (datatype) {
    case "BOOL": return Uint8Array.from(c.bool ?? [], (b) => (b ? 1 : 0));
    case "UINT8": return Uint8Array.from(c.uint ?? []);
    case "UINT16": return Uint16Array.from(c.uint ?? []);
    case "UINT32": return Uint32Array.from(c.uint ?? []);
    case "UINT64": return BigUint64Array.from(c.uint64 ?? []);
    case "INT8": return Int8Array.from(c.int ?? []);
    case "INT16": return Int16Array.from(c.int ?? []);
    case "INT32": return Int32Array.from(c.int ?? []);
    case "INT64": return BigInt64Array.from(c.int64 ?? []);
    case "FP32": return Float32Array.from(c.fp32 ?? []);
    case "FP64": return Float64Array.from(c.fp64 ?? []);
    case "BYTES": return c.bytes ?? [];
    default: throw new VideoAnalysisError("INVALID_ARGUMENT", `output ${name}: ${datatype} [${shape}] came without raw contents, which Triton always sends for it`);
  }
}

/**
 * An inference answer as the SDK's result. `raw` holds one entry per output in output order (an empty one
 * for an output written to shared memory), or none when the server answered with typed contents; raw
 * outputs are views of the received message.
 */
export function inferResult(
  model: string,
  res: { model: string; version: string; id: string; outputs: WireOutput[]; raw: readonly Uint8Array[] },
  shmOut: Record<string, unknown> = {},
): ProtocolInferResult {
  const outputs: Record<string, Tensor> = {};
  const sharedMemory: ProtocolInferResult["sharedMemory"] = {};
  for (const [i, o] of res.outputs.entries()) {
    if (!isDataType(o.datatype)) throw new VideoAnalysisError("UNIMPLEMENTED", `output ${o.name} has datatype ${o.datatype}, which the SDK does not know`, { model });
    if (o.name in shmOut || o.parameters.shared_memory_region !== undefined) {
      sharedMemory[o.name] = { datatype: o.datatype, shape: o.shape };
      continue;
    }
    const data = res.raw.length
      ? fromRaw(o.datatype, o.shape, res.raw[i] ?? new Uint8Array(0), `${model} output ${o.name}`)
      : fromContents(o.datatype, o.shape, o.contents ?? {}, o.name);
    outputs[o.name] = { name: o.name, datatype: o.datatype, shape: o.shape, data } as Tensor;
  }
  return { model: res.model || model, version: res.version, id: res.id, outputs, sharedMemory };
}
