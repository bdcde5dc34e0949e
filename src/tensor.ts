import { endianness } from "node:os";
import { VideoAnalysisError } from "./errors.js";

/** Triton's datatype names (KServe v2). */
export const DATATYPES = [
  "BOOL", "UINT8", "UINT16", "UINT32", "UINT64", "INT8", "INT16", "INT32", "INT64",
  "FP16", "BF16", "FP32", "FP64", "BYTES",
] as const;
export type DataType = (typeof DATATYPES)[number];

/**
 * How each datatype is held in memory. FP16 and BF16 are kept as their raw 16-bit patterns
 * (Node 20 has no Float16Array); `toFloat32` converts them. BOOL is one byte per element, 0 or 1.
 * BYTES is an array of byte strings.
 */
export interface TensorDataMap {
  BOOL: Uint8Array;
  UINT8: Uint8Array;
  UINT16: Uint16Array;
  UINT32: Uint32Array;
  UINT64: BigUint64Array;
  INT8: Int8Array;
  INT16: Int16Array;
  INT32: Int32Array;
  INT64: BigInt64Array;
  FP16: Uint16Array;
  BF16: Uint16Array;
  FP32: Float32Array;
  FP64: Float64Array;
  BYTES: Uint8Array[];
}
export type TensorData = TensorDataMap[DataType];
export type NumericDataType = Exclude<DataType, "BYTES">;

export interface Tensor<D extends DataType = DataType> {
  name: string;
  datatype: D;
  shape: number[];
  data: TensorDataMap[D];
}

type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView & { length: number };
  new (length: number): ArrayBufferView & { length: number };
  BYTES_PER_ELEMENT: number;
};

const CTORS: Record<NumericDataType, TypedArrayCtor> = {
  BOOL: Uint8Array, UINT8: Uint8Array, UINT16: Uint16Array, UINT32: Uint32Array, UINT64: BigUint64Array,
  INT8: Int8Array, INT16: Int16Array, INT32: Int32Array, INT64: BigInt64Array,
  FP16: Uint16Array, BF16: Uint16Array, FP32: Float32Array, FP64: Float64Array,
};

// Triton's raw tensor contents are little-endian; typed arrays use the host's order. Every platform
// Node supports for this SDK (x64, arm64) is little-endian, and views below rely on it.
if (endianness() !== "LE") throw new Error("video-analysis-sdk needs a little-endian host");

export function isDataType(s: string): s is DataType {
  return (DATATYPES as readonly string[]).includes(s);
}

/** Bytes per element, or undefined for BYTES (variable length). */
export function elementSize(datatype: DataType): number | undefined {
  return datatype === "BYTES" ? undefined : CTORS[datatype].BYTES_PER_ELEMENT;
}

export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Build a tensor, checking that the data's type and length agree with datatype and shape. */
export function tensor<D extends DataType>(name: string, datatype: D, shape: number[], data: TensorDataMap[D]): Tensor<D> {
  const count = elementCount(shape);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) {
    throw new RangeError(`tensor ${name}: shape [${shape}] must hold non-negative integers`);
  }
  if (datatype === "BYTES") {
    if (!Array.isArray(data)) throw new TypeError(`tensor ${name}: BYTES data must be an array of Uint8Array`);
  } else if (!(data instanceof (CTORS[datatype as NumericDataType] as unknown as Function))) {
    throw new TypeError(`tensor ${name}: ${datatype} data must be a ${CTORS[datatype as NumericDataType].name}`);
  }
  if ((data as { length: number }).length !== count) {
    throw new RangeError(`tensor ${name}: shape [${shape}] holds ${count} elements but data has ${(data as { length: number }).length}`);
  }
  return { name, datatype, shape, data };
}

/**
 * The tensor's contents as Triton's raw little-endian bytes. Numeric tensors are returned as a view
 * of the same memory (no copy); BYTES elements are serialised with a 4-byte little-endian length prefix.
 */
export function toRaw(t: Tensor): Uint8Array {
  if (t.datatype === "BYTES") {
    const items = t.data as Uint8Array[];
    let total = 0;
    for (const it of items) total += 4 + it.length;
    const out = Buffer.allocUnsafe(total);
    let o = 0;
    for (const it of items) {
      out.writeUInt32LE(it.length, o);
      out.set(it, o + 4);
      o += 4 + it.length;
    }
    return out;
  }
  const v = t.data as ArrayBufferView;
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * Typed data from raw little-endian bytes. When the bytes are aligned for the element type the result
 * is a view of them (no copy); otherwise one copy is made, since typed arrays need alignment.
 */
export function fromRaw<D extends DataType>(datatype: D, shape: readonly number[], raw: Uint8Array, name = "tensor"): TensorDataMap[D] {
  const count = elementCount(shape);
  if (datatype === "BYTES") {
    const items: Uint8Array[] = [];
    const view = new DataView(raw.buffer, raw.byteOffset, raw.byteLength);
    let o = 0;
    while (o < raw.byteLength) {
      if (o + 4 > raw.byteLength) throw new VideoAnalysisError("INVALID_ARGUMENT", `${name}: BYTES contents end inside a length prefix at byte ${o}`);
      const len = view.getUint32(o, true);
      if (o + 4 + len > raw.byteLength) throw new VideoAnalysisError("INVALID_ARGUMENT", `${name}: BYTES element at byte ${o} claims ${len} bytes, past the end`);
      items.push(raw.subarray(o + 4, o + 4 + len));
      o += 4 + len;
    }
    if (items.length !== count) throw new VideoAnalysisError("INVALID_ARGUMENT", `${name}: shape [${shape}] needs ${count} BYTES elements, contents hold ${items.length}`);
    return items as TensorDataMap[D];
  }
  const ctor = CTORS[datatype as NumericDataType];
  const size = ctor.BYTES_PER_ELEMENT;
  if (raw.byteLength !== count * size) {
    throw new VideoAnalysisError("INVALID_ARGUMENT", `${name}: ${datatype} [${shape}] needs ${count * size} bytes, got ${raw.byteLength}`);
  }
  if (raw.byteOffset % size === 0) return new ctor(raw.buffer, raw.byteOffset, count) as unknown as TensorDataMap[D];
  const copy = new ctor(count);
  new Uint8Array(copy.buffer).set(raw);
  return copy as unknown as TensorDataMap[D];
}

/** IEEE half-precision bits to number. */
export function halfToFloat(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const f = h & 0x3ff;
  if (e === 0) return s * f * 2 ** -24;
  if (e === 31) return f ? NaN : s * Infinity;
  return s * (1 + f / 1024) * 2 ** (e - 15);
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Number to IEEE half-precision bits, rounding to nearest even. */
export function floatToHalf(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    let h = mant >>> shift;
    const rem = mant & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++;
  return sign | h;
}

/** bfloat16 bits to number, and back (round to nearest even). */
export function bf16ToFloat(h: number): number {
  u32[0] = h << 16;
  return f32[0]!;
}
export function floatToBf16(x: number): number {
  f32[0] = x;
  const b = u32[0]!;
  if ((b & 0x7f800000) === 0x7f800000 && b & 0x7fffff) return (b >>> 16) | 0x40;
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

/** Numeric tensor data as Float32Array (FP16/BF16 decoded; FP32 returned as is). */
export function toFloat32(t: Tensor): Float32Array {
  switch (t.datatype) {
    case "FP32": return t.data as Float32Array;
    case "FP16": return Float32Array.from(t.data as Uint16Array, halfToFloat);
    case "BF16": return Float32Array.from(t.data as Uint16Array, bf16ToFloat);
    case "BYTES": throw new TypeError(`tensor ${t.name}: BYTES cannot be read as numbers`);
    default: return Float32Array.from(t.data as ArrayLike<number | bigint>, Number);
  }
}
