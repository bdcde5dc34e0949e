import type { InferOptions, InferResult } from "../backend/backend.js";
import { VideoAnalysisError } from "../errors.js";
import { fromRaw, isDataType, toRaw, type DataType, type Tensor, type TensorData } from "../tensor.js";

/** An input whose bytes already sit in a registered shared-memory region. */
export interface SharedMemoryTensor {
  name: string;
  datatype: DataType;
  shape: number[];
  sharedMemory: { region: string; byteSize: number; offset?: number };
}
export type InferInput = Tensor | SharedMemoryTensor;

type Param = { bool_param?: boolean; int64_param?: string; string_param?: string; double_param?: number };

function param(v: string | number | boolean): Param {
  if (typeof v === "boolean") return { bool_param: v };
  if (typeof v === "string") return { string_param: v };
  return Number.isInteger(v) ? { int64_param: String(v) } : { double_param: v };
}

function shmParams(s: { region: string; byteSize: number; offset?: number }): Record<string, Param> {
  return {
    shared_memory_region: { string_param: s.region },
    shared_memory_byte_size: { int64_param: String(s.byteSize) },
    ...(s.offset ? { shared_memory_offset: { int64_param: String(s.offset) } } : {}),
  };
}

/**
 * An inference.ModelInferRequest as proto-loader takes it. Tensor bytes go in raw_input_contents as views
 * of the caller's memory: protobuf's writer copies them once into the message, and nothing else does.
 */
export function encodeInferRequest(
  model: string,
  inputs: readonly InferInput[],
  options: InferOptions & { sharedMemoryOutputs?: Record<string, { region: string; byteSize: number; offset?: number }> },
) {
  const parameters: Record<string, Param> = {};
  for (const [k, v] of Object.entries(options.parameters ?? {})) parameters[k] = param(v);
  // Triton's `timeout` request parameter is in microseconds and bounds queueing on the server; the
  // client's deadline (ms) bounds the whole call. They are different knobs.
  if (options.serverTimeoutUs !== undefined) parameters.timeout = { int64_param: String(Math.round(options.serverTimeoutUs)) };
  const raw: Uint8Array[] = [];
  const tensors = inputs.map((t) => {
    if ("sharedMemory" in t) return { name: t.name, datatype: t.datatype, shape: t.shape, parameters: shmParams(t.sharedMemory) };
    raw.push(toRaw(t));
    return { name: t.name, datatype: t.datatype, shape: t.shape };
  });
  const shmOut = options.sharedMemoryOutputs ?? {};
  const names = options.outputs ?? Object.keys(shmOut);
  return {
    model_name: model,
    model_version: options.version ?? "",
    id: options.requestId ?? "",
    parameters,
    inputs: tensors,
    outputs: names.map((name) => (shmOut[name] ? { name, parameters: shmParams(shmOut[name]) } : { name })),
    raw_input_contents: raw,
  };
}

// Typed `contents` fields of InferTensorContents, for servers that answer without raw contents.
function fromContents(datatype: DataType, shape: number[], c: Record<string, any[]>, name: string): TensorData {
  const pick = (k: string) => (c[k] ?? []) as any[];
  switch (datatype) {
    case "BOOL": return Uint8Array.from(pick("bool_contents"), (b) => (b ? 1 : 0));
    case "UINT8": return Uint8Array.from(pick("uint_contents"));
    case "UINT16": return Uint16Array.from(pick("uint_contents"));
    case "UINT32": return Uint32Array.from(pick("uint_contents"));
    case "UINT64": return BigUint64Array.from(pick("uint64_contents"), BigInt);
    case "INT8": return Int8Array.from(pick("int_contents"));
    case "INT16": return Int16Array.from(pick("int_contents"));
    case "INT32": return Int32Array.from(pick("int_contents"));
    case "INT64": return BigInt64Array.from(pick("int64_contents"), BigInt);
    case "FP32": return Float32Array.from(pick("fp32_contents"));
    case "FP64": return Float64Array.from(pick("fp64_contents"));
    case "BYTES": return pick("bytes_contents").map((b: Buffer) => new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    default: throw new VideoAnalysisError("INVALID_ARGUMENT", `output ${name}: ${datatype} [${shape}] came without raw contents, which Triton always sends for it`);
  }
}

/** An inference.ModelInferResponse as the SDK's result; raw outputs are views of the received message. */
export function decodeInferResponse(model: string, res: any, shmOut: Record<string, unknown> = {}): InferResult & { sharedMemory: Record<string, { datatype: DataType; shape: number[] }> } {
  const outputs: Record<string, Tensor> = {};
  const sharedMemory: Record<string, { datatype: DataType; shape: number[] }> = {};
  // Triton sends one raw_output_contents entry per output, in output order (an empty one for an output
  // written to shared memory), or none at all when it answers with typed contents.
  const raws: Buffer[] = res.raw_output_contents ?? [];
  const outs = (res.outputs ?? []) as { name: string; datatype: string; shape?: string[]; parameters?: Record<string, unknown>; contents?: Record<string, any[]> }[];
  for (const [i, o] of outs.entries()) {
    const shape = (o.shape ?? []).map(Number);
    if (!isDataType(o.datatype)) throw new VideoAnalysisError("UNIMPLEMENTED", `output ${o.name} has datatype ${o.datatype}, which the SDK does not know`, { model });
    if (o.name in shmOut || o.parameters?.shared_memory_region) {
      sharedMemory[o.name] = { datatype: o.datatype, shape };
      continue;
    }
    const data = raws.length ? fromRaw(o.datatype, shape, raws[i] ?? Buffer.alloc(0), `${model} output ${o.name}`) : fromContents(o.datatype, shape, o.contents ?? {}, o.name);
    outputs[o.name] = { name: o.name, datatype: o.datatype, shape, data } as Tensor;
  }
  return { model: res.model_name || model, version: res.model_version ?? "", id: res.id ?? "", outputs, sharedMemory };
}
