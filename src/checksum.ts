/**
 * CRC-32 (ZIP's: reflected 0xEDB88320) for the npz writer: zlib's when Node has it, a JavaScript
 * fallback, zlib's combination of two CRCs, and a note of the CRC of whole buffers whose bytes were
 * checksummed elsewhere (the embedded backend's worker does it for the depth and flow maps it answers,
 * off the main thread).
 */
import * as zlib from "node:zlib";

const CRC_TABLES = (() => {
  // Slicing-by-8 tables for the fallback on Node versions without zlib.crc32 (added in 20.15 / 22.2).
  const t = new Int32Array(8 * 256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) for (let k = 1; k < 8; k++) t[k * 256 + n] = (t[(k - 1) * 256 + n]! >>> 8) ^ t[t[(k - 1) * 256 + n]! & 0xff]!;
  return t;
})();

/** CRC-32 in JavaScript (slicing-by-8). Exported for tests; crc32() uses zlib's when Node has it. */
export function crc32Js(data: Uint8Array, prev = 0): number {
  const t = CRC_TABLES;
  let c = ~prev;
  let i = 0;
  const n = data.length;
  for (; i + 8 <= n; i += 8) {
    const a = c ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24));
    c =
      t[7 * 256 + (a & 0xff)]! ^ t[6 * 256 + ((a >>> 8) & 0xff)]! ^ t[5 * 256 + ((a >>> 16) & 0xff)]! ^ t[4 * 256 + (a >>> 24)]! ^
      t[3 * 256 + data[i + 4]!]! ^ t[2 * 256 + data[i + 5]!]! ^ t[256 + data[i + 6]!]! ^ t[data[i + 7]!]!;
  }
  for (; i < n; i++) c = t[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}

const zlibCrc32 = (zlib as { crc32?: (data: Uint8Array, value?: number) => number }).crc32;

/** CRC-32 of `data`, continuing from `prev` (the CRC of the bytes before it). */
export function crc32(data: Uint8Array, prev = 0): number {
  // Node 20's zlib.crc32 returns 0, not `prev`, for an empty view of a zero-length ArrayBuffer.
  if (data.byteLength === 0) return prev >>> 0;
  return zlibCrc32 ? zlibCrc32(data, prev) >>> 0 : crc32Js(data, prev);
}

function gf2Times(mat: Uint32Array, vec: number): number {
  let sum = 0;
  for (let i = 0; vec !== 0; i++, vec >>>= 1) if (vec & 1) sum ^= mat[i]!;
  return sum >>> 0;
}

function gf2Square(square: Uint32Array, mat: Uint32Array): void {
  for (let n = 0; n < 32; n++) square[n] = gf2Times(mat, mat[n]!);
}

// The operator that appends len2 zero bytes to a CRC, for lengths met more than once (rows of a map).
const shifts = new Map<number, Uint32Array | null>();

/**
 * CRC-32 of A followed by B, from crc(A), crc(B) and B's length (zlib's crc32_combine). `len2` may
 * exceed 2^32. A length met again gets its operator kept, so rows of one size combine in 32 steps.
 */
export function crc32Combine(crc1: number, crc2: number, len2: number): number {
  if (len2 <= 0) return crc1 >>> 0;
  let op = shifts.get(len2);
  if (op === undefined) {
    if (shifts.size >= 16) shifts.delete(shifts.keys().next().value as number);
    shifts.set(len2, null);
    return (zeroShift(crc1, len2) ^ crc2) >>> 0;
  }
  if (op === null) {
    op = new Uint32Array(32);
    for (let i = 0; i < 32; i++) op[i] = zeroShift((1 << i) >>> 0, len2);
    shifts.set(len2, op);
  }
  return (gf2Times(op, crc1 >>> 0) ^ crc2) >>> 0;
}

/** `crc1` extended by `len2` zero bytes, as far as the CRC register goes (zlib's matrix squaring). */
function zeroShift(crc1: number, len2: number): number {
  const even = new Uint32Array(32);
  const odd = new Uint32Array(32);
  odd[0] = 0xedb88320;
  for (let n = 1, row = 1; n < 32; n++, row <<= 1) odd[n] = row;
  gf2Square(even, odd); // two zero bits
  gf2Square(odd, even); // four zero bits
  let c = crc1 >>> 0;
  let len = len2;
  for (;;) {
    gf2Square(even, odd);
    if (len % 2 === 1) c = gf2Times(even, c);
    len = Math.floor(len / 2);
    if (len === 0) break;
    gf2Square(odd, even);
    if (len % 2 === 1) c = gf2Times(odd, c);
    len = Math.floor(len / 2);
    if (len === 0) break;
  }
  return c >>> 0;
}

// CRC-32s of whole buffers, noted by whoever computed them; a buffer that moves to another thread (a
// transfer) is a new object here, so a note never outlives the bytes it describes.
const noted = new WeakMap<ArrayBufferLike, number>();

/** Notes the CRC-32 of all of `view`'s buffer (only a view of the whole buffer is noted). */
export function noteCrc32(view: ArrayBufferView, crc: number): void {
  if (view.byteOffset === 0 && view.byteLength === view.buffer.byteLength) noted.set(view.buffer, crc >>> 0);
}

/** The noted CRC-32 of `view`'s bytes when the view is its whole buffer, else undefined. */
export function crc32Of(view: ArrayBufferView): number | undefined {
  return view.byteOffset === 0 && view.byteLength === view.buffer.byteLength ? noted.get(view.buffer) : undefined;
}
