import type { InferOptions } from "../backend/backend.js";
import { VideoAnalysisError } from "../errors.js";
import { fromRaw, isDataType, toRaw, type DataType, type Tensor, type TensorData } from "../tensor.js";
import type { ParamValue, WireContents, WireOutput, WireRequest } from "./grpc/codec.js";
import type { ProtocolInferOptions, ProtocolInferResult } from "./protocol.js";

export type { ParamValue } from "./grpc/codec.js";

/** An input whose bytes already sit in a registered shared-memory region. */
export interface SharedMemoryTensor {
  name: string;
  datatype: DataType;
  shape: number[];
  sharedMemory: { region: string; byteSize: number; offset?: number };
}
export type InferInput = Tensor | SharedMemoryTensor;

/** The parameters that place a tensor in a registered shared-memory region (both protocols use these names). */
export function shmParameters(s: { region: string; byteSize: number; offset?: number }): Record<string, ParamValue> {
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
export function requestParameters(options: InferOptions): Record<string, ParamValue> {
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
