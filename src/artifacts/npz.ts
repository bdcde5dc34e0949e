/**
 * A streaming writer of NumPy `.npz` files: a ZIP archive of `.npy` members, stored (no compression).
 *
 * Layout decisions:
 * - Each member is written once, front to back, straight into the (temporary) output file; only the
 *   local ZIP header and the `.npy` header are patched in place at the member's end (positional writes),
 *   so arrays of any size stream through a 1 MiB buffer, and no data is read back.
 * - The `.npy` header is byte-for-byte what `numpy.save` writes: format 1.0 (2.0 past 65535 bytes), keys
 *   sorted, `fortran_order: False`, and numpy's own spare room of spaces for the leading dimension to grow
 *   to 21 digits. That spare room is what lets a streamed array whose row count is only known at the end
 *   rewrite its shape without moving the data: the header length does not depend on the row count.
 * - The CRC-32 of a streamed member is the CRC of the final `.npy` header combined (crc32Combine, zlib's
 *   algorithm) with the CRC of the data, computed as the data passed; no re-reading.
 * - ZIP64: a member whose size is unknown when it starts gets a ZIP64 extra field in its local header
 *   (room for 8-byte sizes), as CPython's zipfile does for such streams; the central directory uses ZIP64
 *   fields only for the values that need them, and the end of the archive gets the ZIP64 end record and
 *   locator when the entry count, the directory size or its offset need them. The 4 GiB limit is a
 *   parameter (`zip64Threshold`) so tests can exercise every ZIP64 record with small files.
 * - Atomic: written under `<name>.tmp-<pid>-<hex>` and renamed by close(); abort() deletes it. A killed
 *   process leaves only that temporary file, which also lacks the ZIP end record.
 *
 * Example:
 * ```ts
 * const w = await NpzWriter.create("out/depth.npz");
 * await w.addArray("frame_index", "int64", [3], [0, 1, 2]);
 * await w.addArray("timestamp", "float64", [3], new Float64Array([0, 0.2, 0.4]));
 * const s = await w.beginArray("depth", "float32", [null, 256, 256]);
 * for (const map of maps) await s.write(map);          // Float32Array(65536) each
 * await s.end();                                       // shape (3, 256, 256)
 * await w.close();                                     // np.load("out/depth.npz")["depth"].shape == (3, 256, 256)
 * ```
 */
import { endianness } from "node:os";
import { crc32, crc32Combine, crc32Of } from "../checksum.js";
import { AppendFile } from "./append-file.js";
import { VideoAnalysisError } from "../errors.js";
import { AtomicFile, ioError } from "./atomic.js";

if (endianness() !== "LE") throw new Error("video-analysis-sdk needs a little-endian host");

// ---------------------------------------------------------------------------------------------------
// dtypes

export type NpyDtype =
  | "bool" | "uint8" | "int8" | "uint16" | "int16" | "uint32" | "int32" | "uint64" | "int64"
  | "float16" | "float32" | "float64";

/** The typed array that holds each dtype (float16 as its raw 16-bit patterns, bool as 0/1 bytes). */
export interface NpyDataMap {
  bool: Uint8Array;
  uint8: Uint8Array;
  int8: Int8Array;
  uint16: Uint16Array;
  int16: Int16Array;
  uint32: Uint32Array;
  int32: Int32Array;
  uint64: BigUint64Array;
  int64: BigInt64Array;
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
}

/** numpy's `descr` for each dtype (little-endian). */
export const NPY_DESCR: Readonly<Record<NpyDtype, string>> = {
  bool: "|b1", uint8: "|u1", int8: "|i1", uint16: "<u2", int16: "<i2", uint32: "<u4", int32: "<i4",
  uint64: "<u8", int64: "<i8", float16: "<f2", float32: "<f4", float64: "<f8",
};

type Ctor = { new (n: number): ArrayBufferView & ArrayLike<number | bigint>; BYTES_PER_ELEMENT: number };
const CTOR: Readonly<Record<NpyDtype, Ctor>> = {
  bool: Uint8Array, uint8: Uint8Array, int8: Int8Array, uint16: Uint16Array, int16: Int16Array,
  uint32: Uint32Array, int32: Int32Array, uint64: BigUint64Array, int64: BigInt64Array,
  float16: Uint16Array, float32: Float32Array, float64: Float64Array,
};

const INT_RANGE: Partial<Record<NpyDtype, [number, number]>> = {
  uint8: [0, 255], int8: [-128, 127], uint16: [0, 65535], int16: [-32768, 32767],
  uint32: [0, 4294967295], int32: [-2147483648, 2147483647],
};

export function isNpyDtype(s: unknown): s is NpyDtype {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(NPY_DESCR, s);
}

export function itemSize(dtype: NpyDtype): number {
  return CTOR[dtype].BYTES_PER_ELEMENT;
}

/** Values accepted by addArray: the dtype's typed array as is, or any array of numbers/bigints/booleans. */
export type NpyInput<D extends NpyDtype = NpyDtype> = NpyDataMap[D] | ArrayLike<number | bigint | boolean>;

/** Converts values to the dtype's typed array, refusing what would change a value (TypeError/RangeError). */
export function toTypedArray<D extends NpyDtype>(dtype: D, values: NpyInput<D>): NpyDataMap[D] {
  const C = CTOR[dtype];
  if (values instanceof C && !(dtype === "bool" && (values as Uint8Array).some((v) => v > 1))) return values as NpyDataMap[D];
  if (dtype === "float16") throw new TypeError("npz: float16 data must be a Uint16Array of IEEE half-precision bit patterns");
  const n = values.length;
  const out = new C(n) as unknown as { [i: number]: number | bigint; length: number };
  for (let i = 0; i < n; i++) {
    const v = values[i] as number | bigint | boolean;
    if (dtype === "bool") {
      out[i] = v ? 1 : 0;
    } else if (dtype === "int64" || dtype === "uint64") {
      const b = typeof v === "bigint" ? v : typeof v === "number" && Number.isInteger(v) ? BigInt(v) : undefined;
      if (b === undefined) throw new TypeError(`npz: ${dtype} value at ${i} is not an integer: ${String(v)}`);
      if (dtype === "uint64" ? b < 0n || b >= 1n << 64n : b < -(1n << 63n) || b >= 1n << 63n)
        throw new RangeError(`npz: ${dtype} value at ${i} is out of range: ${b}`);
      out[i] = b;
    } else {
      const x = typeof v === "bigint" ? Number(v) : Number(v);
      const range = INT_RANGE[dtype];
      if (range) {
        if (!Number.isInteger(x)) throw new TypeError(`npz: ${dtype} value at ${i} is not an integer: ${String(v)}`);
        if (x < range[0] || x > range[1]) throw new RangeError(`npz: ${dtype} value at ${i} is out of range [${range[0]}, ${range[1]}]: ${x}`);
      }
      out[i] = x;
    }
  }
  return out as unknown as NpyDataMap[D];
}

// ---------------------------------------------------------------------------------------------------
// .npy header

const NPY_MAGIC = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]); // \x93NUMPY
const ARRAY_ALIGN = 64;
const GROWTH_AXIS_MAX_DIGITS = 21;

/** Python's repr of a shape tuple: (), (5,), (3, 4). */
export function shapeRepr(shape: readonly number[]): string {
  if (shape.length === 1) return `(${shape[0]},)`;
  return `(${shape.join(", ")})`;
}

/**
 * The `.npy` header numpy.save writes for an array of `descr` and `shape` (C order). Format 1.0, or 2.0
 * when the header does not fit 1.0's 16-bit length. `extraSpaces` (tests only) pads the dictionary.
 */
export function npyHeader(descr: string, shape: readonly number[], extraSpaces = 0): Buffer {
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeRepr(shape)}, }`;
  if (shape.length > 0) dict += " ".repeat(Math.max(0, GROWTH_AXIS_MAX_DIGITS - String(shape[0]).length));
  dict += " ".repeat(extraSpaces);
  const text = Buffer.from(dict, "latin1");
  const hlen = text.length + 1; // + "\n"
  let version = 1;
  let prefixLen = NPY_MAGIC.length + 2 + 2;
  let padlen = ARRAY_ALIGN - ((prefixLen + hlen) % ARRAY_ALIGN);
  if (hlen + padlen > 0xffff) {
    version = 2;
    prefixLen = NPY_MAGIC.length + 2 + 4;
    padlen = ARRAY_ALIGN - ((prefixLen + hlen) % ARRAY_ALIGN);
  }
  const out = Buffer.alloc(prefixLen + hlen + padlen, 0x20);
  NPY_MAGIC.copy(out, 0);
  out[6] = version;
  out[7] = 0;
  if (version === 1) out.writeUInt16LE(hlen + padlen, 8);
  else out.writeUInt32LE(hlen + padlen, 8);
  text.copy(out, prefixLen);
  out[out.length - 1] = 0x0a;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// ZIP records (CRC-32s from ../checksum.ts)

const SIG_LOCAL = 0x04034b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_EOCD = 0x06054b50;
const SIG_ZIP64_EOCD = 0x06064b50;
const SIG_ZIP64_LOCATOR = 0x07064b50;
const FLAG_UTF8 = 0x0800;
const U32_MAX = 0xffffffff;
const U16_MAX = 0xffff;
const LOCAL_HEADER = 30;
const ZIP64_LOCAL_EXTRA = 20; // tag, size, uncompressed (8), compressed (8)

interface Entry {
  name: Buffer;
  flags: number;
  crc: number;
  size: number;
  offset: number;
  zip64Local: boolean;
}

function dosDateTime(d: Date): { time: number; date: number } {
  const year = Math.max(1980, d.getFullYear());
  return {
    time: (d.getHours() << 11) | (d.getMinutes() << 5) | (d.getSeconds() >> 1),
    date: ((year - 1980) << 9) | ((d.getMonth() + 1) << 5) | d.getDate(),
  };
}

export interface NpzWriterOptions {
  /**
   * Sizes and offsets at or above this use ZIP64 fields (default 0xFFFFFFFF, the format's limit).
   * Lower it only to test the ZIP64 records with small files.
   */
  zip64Threshold?: number;
  /** fsync before the rename (default true). */
  fsync?: boolean;
  /** Write in O_DIRECT blocks where the file system allows (default true; see AppendFile). */
  direct?: boolean;
  /** Write under this name instead of a fresh temporary one (AtomicFileOptions.tempPath). */
  tempPath?: string;
}

/**
 * Where an npz being written stands at a commit (NpzWriter.checkpoint): enough to open the file again in
 * another process and go on writing as if it had never stopped (NpzWriter.resume). JSON-safe.
 */
export interface NpzState {
  size: number;
  when: { time: number; date: number };
  entries: Array<{ name: string; flags: number; crc: number; size: number; offset: number; zip64Local: boolean }>;
  /** The streamed array open at the commit. */
  stream?: { entry: number; name: string; dtype: NpyDtype; dims: number[]; known: boolean; bytes: number; crc: number; headerPos: number; headerLen: number };
}

/** Leading dimension not known yet: `null` (or -1) as the first entry of beginArray's shape. */
export type StreamShape = readonly (number | null)[];

function checkShape(shape: readonly (number | null)[], allowUnknownLeading: boolean, what: string): void {
  if (!Array.isArray(shape)) throw new TypeError(`${what}: shape must be an array of integers`);
  if (shape.length > 64) throw new RangeError(`${what}: shape has ${shape.length} dimensions; numpy allows at most 64`);
  shape.forEach((d, i) => {
    if (i === 0 && allowUnknownLeading && (d === null || d === -1)) return;
    if (typeof d !== "number" || !Number.isSafeInteger(d)) throw new TypeError(`${what}: shape[${i}] must be an integer, got ${String(d)}`);
    if (d < 0) throw new RangeError(`${what}: shape[${i}] must be >= 0, got ${d}`);
  });
}

function product(dims: readonly number[]): number {
  return dims.reduce((a, b) => a * b, 1);
}

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

/**
 * The npz writer. Create with NpzWriter.create(); finish with close() or abort().
 *
 * @example
 * const w = await NpzWriter.create("boxes.npz"); // written under a temporary name until close()
 * await w.addArray("box", "float32", [2, 4], Float32Array.of(0, 0, 10, 10, 5, 5, 20, 20));
 * await w.addStrings("label", ["car", "bus"]);
 * await w.close(); // np.load("boxes.npz") reads it
 * console.log((await readNpz("boxes.npz"))["label"]); // { dtype: "<U3", shape: [ 2 ], strings: [ "car", "bus" ] }
 */
export class NpzWriter {
  /** Final path of the archive. */
  readonly path: string;
  /** Where it is written until close(). */
  readonly tempPath: string;

  private readonly file: AtomicFile;
  private readonly threshold: number;
  private when: { time: number; date: number };
  private readonly entries: Entry[] = [];
  private readonly names = new Set<string>();
  private readonly out: AppendFile;
  private open: NpyArrayStream | undefined;
  /** A resumed writer's open stream, handed out by the beginArray() that started it. */
  private restored: NpyArrayStream | undefined;
  private busy = false;
  private state: "open" | "closed" | "aborted" | "failed" = "open";

  private constructor(file: AtomicFile, options: NpzWriterOptions) {
    this.file = file;
    this.out = new AppendFile(file, (action, e) => ioError(file.path, action, e));
    this.path = file.path;
    this.tempPath = file.tempPath;
    this.threshold = options.zip64Threshold ?? U32_MAX;
    this.when = dosDateTime(new Date());
  }

  /** Opens `<path>.tmp-<pid>-<hex>` for writing in the same folder. IO_ERROR naming the file on failure. */
  static async create(path: string, options: NpzWriterOptions = {}): Promise<NpzWriter> {
    const t = options.zip64Threshold;
    if (t !== undefined && !(Number.isSafeInteger(t) && t >= 1 && t <= U32_MAX))
      throw new RangeError(`NpzWriter.create: zip64Threshold must be an integer in [1, ${U32_MAX}], got ${String(t)}`);
    const file = await AtomicFile.create(path, {
      direct: options.direct ?? true,
      ...(options.fsync === undefined ? {} : { fsync: options.fsync }),
      ...(options.tempPath ? { tempPath: options.tempPath } : {}),
    });
    return new NpzWriter(file, options);
  }

  /**
   * Opens the temporary file of an interrupted run again at the state a commit saved (checkpoint()): the
   * bytes past it are cut off, and a streamed array open then is open again (beginArray() with the same
   * name, dtype and shape returns it without writing anything).
   */
  static async resume(path: string, tempPath: string, state: NpzState, options: NpzWriterOptions = {}): Promise<NpzWriter> {
    const file = await AtomicFile.reopen(path, tempPath, state.size, { direct: options.direct ?? true, ...(options.fsync === undefined ? {} : { fsync: options.fsync }) });
    const w = new NpzWriter(file, options);
    try {
      await w.out.resumeAt(state.size);
    } catch (e) {
      await w.abort();
      throw e;
    }
    w.when = { ...state.when };
    for (const e of state.entries) {
      w.entries.push({ ...e, name: Buffer.from(e.name, "utf8") });
      w.names.add(e.name.replace(/\.npy$/, ""));
    }
    const st = state.stream;
    if (st) {
      const stream = new NpyArrayStream(w, st.name, st.dtype, st.dims, st.known, w.entries[st.entry]!, st.headerPos, st.headerLen);
      stream.restore(st.bytes, st.crc);
      w.open = stream;
      w.restored = stream;
    }
    return w;
  }

  /**
   * Makes everything written so far durable and returns where the file stands, for a run's journal.
   * Between calls only (nothing being written).
   */
  async checkpoint(): Promise<NpzState> {
    await this.run(() => this.out.sync());
    const o = this.open;
    return {
      size: this.size,
      when: { ...this.when },
      entries: this.entries.map((e) => ({ ...e, name: e.name.toString("utf8") })),
      ...(o ? { stream: { entry: this.entries.length - 1, ...o.state() } } : {}),
    };
  }

  /** Closes the temporary file and keeps it (a stopped run kept for resuming); the writer is done. */
  async suspend(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "aborted";
    if (this.open) this.open.detach();
    this.open = undefined;
    await this.out.release();
    await this.file.close();
  }

  /** Names of the arrays written so far, in order. */
  get arrayNames(): string[] {
    return this.entries.map((e) => e.name.toString("utf8").replace(/\.npy$/, ""));
  }

  /** Bytes written so far (the archive's size once closed). */
  get size(): number {
    return this.out.size;
  }

  /** Writes a whole array held in memory. `data` has product(shape) elements (see NpyInput). */
  async addArray<D extends NpyDtype>(name: string, dtype: D, shape: readonly number[], data: NpyInput<D>): Promise<void> {
    if (!isNpyDtype(dtype)) throw new TypeError(`NpzWriter.addArray: unknown dtype ${String(dtype)}; one of ${Object.keys(NPY_DESCR).join(", ")}`);
    checkShape(shape, false, "NpzWriter.addArray");
    const typed = toTypedArray(dtype, data);
    const n = product(shape);
    if (typed.length !== n)
      throw new RangeError(`NpzWriter.addArray: "${name}" has ${typed.length} elements but shape ${shapeRepr(shape)} needs ${n}`);
    await this.addMember(name, npyHeader(NPY_DESCR[dtype], shape), bytesOf(typed));
  }

  /** Writes an array of strings as numpy's fixed-width unicode ('<U<n>', UTF-32LE, n = longest string). */
  async addStrings(name: string, values: readonly string[], shape: readonly number[] = [values.length]): Promise<void> {
    checkShape(shape, false, "NpzWriter.addStrings");
    if (product(shape) !== values.length)
      throw new RangeError(`NpzWriter.addStrings: "${name}" has ${values.length} strings but shape ${shapeRepr(shape)} needs ${product(shape)}`);
    const points = values.map((s) => {
      if (typeof s !== "string") throw new TypeError(`NpzWriter.addStrings: "${name}" holds a non-string: ${String(s)}`);
      return Array.from(s, (ch) => ch.codePointAt(0)!);
    });
    const width = points.reduce((m, p) => Math.max(m, p.length), 1);
    const data = new Uint32Array(values.length * width);
    points.forEach((p, i) => data.set(p, i * width));
    await this.addMember(name, npyHeader(`<U${width}`, shape), bytesOf(data));
  }

  /**
   * Starts a streamed array: write its data in C order with write()/writeBytes(), then end(). The leading
   * dimension may be `null` (or -1): it is then worked out at end() from the bytes written. Only one
   * streamed array can be open at a time, and nothing else can be added while it is.
   */
  async beginArray<D extends NpyDtype>(name: string, dtype: D, shape: StreamShape): Promise<NpyArrayStream<D>> {
    if (!isNpyDtype(dtype)) throw new TypeError(`NpzWriter.beginArray: unknown dtype ${String(dtype)}; one of ${Object.keys(NPY_DESCR).join(", ")}`);
    checkShape(shape, true, "NpzWriter.beginArray");
    if (shape.length === 0) throw new RangeError("NpzWriter.beginArray: a streamed array needs at least one dimension; use addArray for scalars");
    const r = this.restored;
    if (r && r.name === name) {
      this.restored = undefined;
      const dims = shape.map((d) => (d === null || d === -1 ? 0 : d));
      if (r.dtype !== dtype || JSON.stringify(r.state().dims) !== JSON.stringify(dims))
        throw new VideoAnalysisError("FAILED_PRECONDITION", `${this.tempPath}: the resumed array "${name}" was ${r.dtype} ${shapeRepr(r.state().dims)}, now ${dtype} ${shapeRepr(dims)}`);
      return r as unknown as NpyArrayStream<D>;
    }
    const known = shape[0] !== null && shape[0] !== -1;
    const dims = shape.map((d) => (d === null || d === -1 ? 0 : d));
    const header = npyHeader(NPY_DESCR[dtype], dims);
    const expected = known ? header.length + product(dims) * itemSize(dtype) : undefined;
    const nameBytes = this.checkName(name);
    const { entry, headerPos } = await this.run(async () => {
      const entry = await this.startMember(name, nameBytes, expected);
      const headerPos = this.size;
      await this.append(header); // rewritten at end() with the final shape: the same length
      return { entry, headerPos };
    });
    const stream = new NpyArrayStream<D>(this, name, dtype, dims, known, entry, headerPos, header.length);
    this.open = stream;
    return stream;
  }

  /** Writes the central directory and renames the archive into place. */
  async close(): Promise<void> {
    if (this.open) throw new Error(`NpzWriter.close: the streamed array "${this.open.name}" of ${this.path} has not been ended`);
    await this.run(async () => {
      const cdOffset = this.size;
      for (const e of this.entries) await this.append(this.centralHeader(e));
      const cdSize = this.size - cdOffset;
      const count = this.entries.length;
      const t = this.threshold;
      const zip64 = count >= U16_MAX || cdSize >= t || cdOffset >= t;
      if (zip64) {
        const eocd64Offset = this.size;
        const r = Buffer.alloc(56);
        r.writeUInt32LE(SIG_ZIP64_EOCD, 0);
        r.writeBigUInt64LE(44n, 4); // size of the rest of this record
        r.writeUInt16LE(45, 12); // version made by
        r.writeUInt16LE(45, 14); // version needed
        r.writeUInt32LE(0, 16); // this disk
        r.writeUInt32LE(0, 20); // disk with the central directory
        r.writeBigUInt64LE(BigInt(count), 24);
        r.writeBigUInt64LE(BigInt(count), 32);
        r.writeBigUInt64LE(BigInt(cdSize), 40);
        r.writeBigUInt64LE(BigInt(cdOffset), 48);
        const loc = Buffer.alloc(20);
        loc.writeUInt32LE(SIG_ZIP64_LOCATOR, 0);
        loc.writeUInt32LE(0, 4);
        loc.writeBigUInt64LE(BigInt(eocd64Offset), 8);
        loc.writeUInt32LE(1, 16); // total disks
        await this.append(r);
        await this.append(loc);
      }
      const end = Buffer.alloc(22);
      end.writeUInt32LE(SIG_EOCD, 0);
      end.writeUInt16LE(Math.min(count, U16_MAX), 8);
      end.writeUInt16LE(Math.min(count, U16_MAX), 10);
      end.writeUInt32LE(cdSize >= t ? U32_MAX : cdSize, 12);
      end.writeUInt32LE(cdOffset >= t ? U32_MAX : cdOffset, 16);
      await this.append(end);
      await this.out.finish();
      await this.out.release();
      await this.file.commit();
      this.state = "closed";
    });
  }

  /** Deletes the temporary file; nothing appears at `path`. Safe to call at any time, more than once. */
  async abort(): Promise<void> {
    if (this.state === "closed") return;
    this.state = "aborted";
    if (this.open) this.open.detach();
    this.open = undefined;
    await this.out.release();
    await this.file.abort();
  }

  // --- internals shared with NpyArrayStream ----------------------------------------------------------

  /**
   * Runs one write at a time. Arguments are checked before this, so a failure here (I/O) leaves a partly
   * written archive: the writer is then only good for abort().
   */
  async run<T>(op: () => Promise<T>): Promise<T> {
    this.checkUsable();
    this.busy = true;
    try {
      return await op();
    } catch (e) {
      this.state = "failed";
      throw e;
    } finally {
      this.busy = false;
    }
  }

  checkStream(stream: NpyArrayStream): void {
    if (this.open !== stream) throw new Error(`NpzWriter: the streamed array "${stream.name}" is not open`);
  }

  private checkUsable(): void {
    if (this.state !== "open") throw new Error(`NpzWriter: ${this.path} is ${this.state}; no more writes`);
    if (this.busy) throw new Error(`NpzWriter: ${this.path} is busy; await the previous call first`);
  }

  private checkName(name: string): Buffer {
    this.checkUsable();
    if (typeof name !== "string" || name === "") throw new TypeError("NpzWriter: an array name must be a non-empty string");
    if (/[\0\\]/.test(name) || name.startsWith("/") || name.split("/").some((p) => p === "" || p === "." || p === ".."))
      throw new RangeError(`NpzWriter: array name ${JSON.stringify(name)} is not a safe ZIP member name`);
    if (this.names.has(name)) throw new RangeError(`NpzWriter: ${this.path} already has an array named ${JSON.stringify(name)}`);
    if (this.open) throw new Error(`NpzWriter: end the streamed array "${this.open.name}" before adding "${name}"`);
    const bytes = Buffer.from(`${name}.npy`, "utf8");
    if (bytes.length > U16_MAX) throw new RangeError("NpzWriter: array name too long");
    return bytes;
  }

  private async addMember(name: string, header: Buffer, data: Uint8Array): Promise<void> {
    const size = header.length + data.byteLength;
    const nameBytes = this.checkName(name);
    await this.run(async () => {
      const entry = await this.startMember(name, nameBytes, size, crc32(data, crc32(header)));
      await this.append(header);
      await this.append(data);
      entry.size = size;
    });
  }

  /**
   * Writes a local header. With `size` known, it is final (CRC given, or patched by finishMember). With
   * `size` undefined, it carries a ZIP64 extra field so any size can be patched in at the end.
   */
  private async startMember(name: string, nameBytes: Buffer, size: number | undefined, crc = 0): Promise<Entry> {
    const offset = this.size;
    const zip64Local = size === undefined || size >= this.threshold;
    const flags = /[^\x20-\x7e]/.test(name) ? FLAG_UTF8 : 0;
    const h = Buffer.alloc(LOCAL_HEADER + nameBytes.length + (zip64Local ? ZIP64_LOCAL_EXTRA : 0));
    h.writeUInt32LE(SIG_LOCAL, 0);
    h.writeUInt16LE(zip64Local ? 45 : 20, 4);
    h.writeUInt16LE(flags, 6);
    h.writeUInt16LE(0, 8); // stored
    h.writeUInt16LE(this.when.time, 10);
    h.writeUInt16LE(this.when.date, 12);
    h.writeUInt32LE(crc, 14);
    const s = size ?? 0;
    h.writeUInt32LE(zip64Local ? U32_MAX : s, 18);
    h.writeUInt32LE(zip64Local ? U32_MAX : s, 22);
    h.writeUInt16LE(nameBytes.length, 26);
    h.writeUInt16LE(zip64Local ? ZIP64_LOCAL_EXTRA : 0, 28);
    nameBytes.copy(h, LOCAL_HEADER);
    if (zip64Local) {
      const x = LOCAL_HEADER + nameBytes.length;
      h.writeUInt16LE(0x0001, x);
      h.writeUInt16LE(16, x + 2);
      h.writeBigUInt64LE(BigInt(s), x + 4);
      h.writeBigUInt64LE(BigInt(s), x + 12);
    }
    await this.append(h);
    const entry: Entry = { name: nameBytes, flags, crc, size: s, offset, zip64Local };
    this.entries.push(entry);
    this.names.add(name);
    return entry;
  }

  /** Patches a streamed member's local header and .npy header once its shape, size and CRC are known. @internal */
  async finishMember(entry: Entry, headerPos: number, header: Buffer, dataCrc: number, dataLen: number): Promise<void> {
    const size = header.length + dataLen;
    const crc = crc32Combine(crc32(header), dataCrc, dataLen);
    if (!entry.zip64Local && size >= this.threshold) throw new Error("NpzWriter: internal error, member grew past its declared size");
    entry.crc = crc;
    entry.size = size;
    await this.patch(header, headerPos);
    const fix = Buffer.alloc(4);
    fix.writeUInt32LE(crc, 0);
    await this.patch(fix, entry.offset + 14);
    if (entry.zip64Local) {
      const x = Buffer.alloc(16);
      x.writeBigUInt64LE(BigInt(size), 0);
      x.writeBigUInt64LE(BigInt(size), 8);
      await this.patch(x, entry.offset + LOCAL_HEADER + entry.name.length + 4);
    }
    this.open = undefined;
  }

  /** A streamed array failed: its member is broken, so the writer is only good for abort() now. */
  release(stream: NpyArrayStream): void {
    if (this.open === stream) this.open = undefined;
    if (this.state === "open") this.state = "failed";
  }

  private centralHeader(e: Entry): Buffer {
    const t = this.threshold;
    const bigSize = e.size >= t;
    const bigOffset = e.offset >= t;
    const extraLen = (bigSize ? 16 : 0) + (bigOffset ? 8 : 0);
    const extra = extraLen ? 4 + extraLen : 0;
    const zip64 = extra > 0 || e.zip64Local;
    const h = Buffer.alloc(46 + e.name.length + extra);
    h.writeUInt32LE(SIG_CENTRAL, 0);
    h.writeUInt16LE((3 << 8) | 45, 4); // made by: Unix, spec 4.5
    h.writeUInt16LE(zip64 ? 45 : 20, 6);
    h.writeUInt16LE(e.flags, 8);
    h.writeUInt16LE(0, 10);
    h.writeUInt16LE(this.when.time, 12);
    h.writeUInt16LE(this.when.date, 14);
    h.writeUInt32LE(e.crc, 16);
    h.writeUInt32LE(bigSize ? U32_MAX : e.size, 20);
    h.writeUInt32LE(bigSize ? U32_MAX : e.size, 24);
    h.writeUInt16LE(e.name.length, 28);
    h.writeUInt16LE(extra, 30);
    h.writeUInt16LE(0, 32); // comment
    h.writeUInt16LE(0, 34); // disk
    h.writeUInt16LE(0, 36); // internal attributes
    h.writeUInt32LE((0o100644 << 16) >>> 0, 38); // regular file, rw-r--r--
    h.writeUInt32LE(bigOffset ? U32_MAX : e.offset, 42);
    e.name.copy(h, 46);
    if (extra) {
      let x = 46 + e.name.length;
      h.writeUInt16LE(0x0001, x);
      h.writeUInt16LE(extraLen, x + 2);
      x += 4;
      if (bigSize) {
        h.writeBigUInt64LE(BigInt(e.size), x);
        h.writeBigUInt64LE(BigInt(e.size), x + 8);
        x += 16;
      }
      if (bigOffset) h.writeBigUInt64LE(BigInt(e.offset), x);
    }
    return h;
  }

  /** Appends bytes at the end of the archive. */
  async append(data: Uint8Array): Promise<void> {
    await this.out.append(data);
  }

  private async patch(data: Uint8Array, position: number): Promise<void> {
    await this.out.patch(data, position);
  }
}

/**
 * A streamed array being written; see NpzWriter.beginArray.
 *
 * @example
 * const w = await NpzWriter.create("path.npz");
 * const xy = await w.beginArray("xy", "float32", [null, 2]); // rows streamed as they come; the row count is written at end()
 * for (let t = 0; t < 3; t++) await xy.write(Float32Array.of(t, 2 * t));
 * console.log(await xy.end()); // [ 3, 2 ]
 * await w.close();
 */
export class NpyArrayStream<D extends NpyDtype = NpyDtype> {
  private bytes = 0;
  private crc = 0;
  private finished = false;

  /** @internal Created by NpzWriter.beginArray. */
  constructor(
    private readonly writer: NpzWriter,
    readonly name: string,
    readonly dtype: D,
    private readonly dims: number[],
    private readonly leadingKnown: boolean,
    private readonly entry: Entry,
    private readonly headerPos: number,
    private readonly headerLen: number,
  ) {}

  /** @internal Where a resumed stream stood at its commit. */
  restore(bytes: number, crc: number): void {
    this.bytes = bytes;
    this.crc = crc;
  }

  /** @internal For NpzWriter.checkpoint. */
  state(): { name: string; dtype: NpyDtype; dims: number[]; known: boolean; bytes: number; crc: number; headerPos: number; headerLen: number } {
    return { name: this.name, dtype: this.dtype, dims: [...this.dims], known: this.leadingKnown, bytes: this.bytes, crc: this.crc, headerPos: this.headerPos, headerLen: this.headerLen };
  }

  /** Bytes of array data written so far. */
  get bytesWritten(): number {
    return this.bytes;
  }

  /** Appends elements: a typed array of the stream's dtype (Uint8Array for bool), in C order. */
  async write(chunk: NpyDataMap[D]): Promise<void> {
    const C = CTOR[this.dtype];
    if (!(chunk instanceof C))
      throw new TypeError(`NpyArrayStream.write: "${this.name}" is ${this.dtype}; pass a ${C.name} (or raw bytes to writeBytes)`);
    await this.writeBytes(bytesOf(chunk));
  }

  /** Appends raw little-endian bytes of elements (e.g. rgb24 frames into a uint8 array). */
  async writeBytes(bytes: Uint8Array): Promise<void> {
    if (!(bytes instanceof Uint8Array)) throw new TypeError(`NpyArrayStream.writeBytes: "${this.name}" needs a Uint8Array`);
    this.writer.checkStream(this);
    if (this.finished) throw new Error(`NpyArrayStream: "${this.name}" has ended`);
    await this.writer.run(async () => {
      const writing = this.writer.append(bytes);
      // A CRC noted by whoever made the bytes is combined in; else it is computed while they are written.
      const known = crc32Of(bytes);
      this.crc = known === undefined ? crc32(bytes, this.crc) : crc32Combine(this.crc, known, bytes.byteLength);
      await writing;
      this.bytes += bytes.byteLength;
    });
  }

  /**
   * Finishes the array and returns its shape. With the leading dimension unknown it is the number of
   * whole rows written (`leadingDim` must be given when a row has zero elements); with it known, the data
   * must fill the shape exactly. A mismatch is a RangeError and leaves the writer good only for abort().
   */
  async end(leadingDim?: number): Promise<number[]> {
    this.writer.checkStream(this);
    if (this.finished) throw new Error(`NpyArrayStream: "${this.name}" has ended`);
    const item = itemSize(this.dtype);
    const rowBytes = product(this.dims.slice(1)) * item;
    let lead: number;
    const fail = (msg: string) => {
      this.finished = true;
      this.writer.release(this);
      return new RangeError(`NpyArrayStream.end: "${this.name}" ${msg}`);
    };
    if (this.leadingKnown) {
      lead = this.dims[0]!;
      if (leadingDim !== undefined && leadingDim !== lead) throw fail(`was declared with ${lead} rows, end() was given ${leadingDim}`);
    } else if (rowBytes === 0) {
      if (leadingDim === undefined) throw fail("has rows of zero elements; pass the row count to end()");
      lead = leadingDim;
    } else {
      if (this.bytes % rowBytes !== 0) throw fail(`got ${this.bytes} bytes, not a whole number of ${rowBytes}-byte rows`);
      lead = this.bytes / rowBytes;
      if (leadingDim !== undefined && leadingDim !== lead) throw fail(`holds ${lead} rows, end() was given ${leadingDim}`);
    }
    if (lead * rowBytes !== this.bytes)
      throw fail(`got ${this.bytes} bytes; shape ${shapeRepr([lead, ...this.dims.slice(1)])} needs ${lead * rowBytes}`);
    const shape = [lead, ...this.dims.slice(1)];
    const header = npyHeader(NPY_DESCR[this.dtype], shape);
    if (header.length !== this.headerLen) throw fail("header length changed (leading dimension beyond 21 digits)");
    await this.writer.run(() => this.writer.finishMember(this.entry, this.headerPos, header, this.crc, this.bytes));
    this.finished = true;
    return shape;
  }

  /** @internal The writer was aborted. */
  detach(): void {
    this.finished = true;
  }
}

/**
 * Writes a small npz in one call: `await saveNpz(path, { x: { dtype: "float32", shape: [2], data: [1, 2] } })`.
 *
 * @example
 * await saveNpz("scores.npz", {
 *   score: { dtype: "float32", shape: [3], data: Float32Array.of(0.9, 0.5, 0.1) },
 *   label: { strings: ["person", "bus", "car"] },
 * });
 * console.log(Object.keys(await readNpz("scores.npz"))); // [ "score", "label" ]
 */
export async function saveNpz(
  path: string,
  arrays: Record<string, { dtype: NpyDtype; shape: readonly number[]; data: NpyInput } | { strings: readonly string[]; shape?: readonly number[] }>,
  options: NpzWriterOptions = {},
): Promise<void> {
  const w = await NpzWriter.create(path, options);
  try {
    for (const [name, a] of Object.entries(arrays)) {
      if ("strings" in a) await w.addStrings(name, a.strings, a.shape);
      else await w.addArray(name, a.dtype, a.shape, a.data);
    }
    await w.close();
  } catch (e) {
    await w.abort();
    throw e;
  }
}
