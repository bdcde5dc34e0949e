/**
 * Reads the `.npz` files a run writes (and numpy's own `np.savez`): a ZIP of stored (uncompressed) `.npy`
 * members. The central directory is read once; a member is read whole (`array`) or one row at a time
 * (`row`) with positional reads, so a depth or flow map of any length is never held whole.
 */
import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { VideoAnalysisError } from "../errors.js";
import { halfToFloat } from "../tensor.js";
import { pageAlignedMemory } from "../wasm/assemble.js";

/** A numeric array as read: float16 widened to float32, int64 to float64 (exact up to 2^53), bool as 0/1. */
export interface NpyArray {
  dtype: string;
  shape: number[];
  data: Float32Array | Float64Array | Int32Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array;
}

interface Member {
  name: string;
  /** Offset of the .npy header (the member's data in the ZIP). */
  offset: number;
  size: number;
  method: number;
}

interface Header {
  descr: string;
  shape: number[];
  fortran: boolean;
  /** Offset of the array's first byte in the file. */
  dataOffset: number;
}

export interface NpzOpenOptions {
  /**
   * Read rows of 1 MiB to 64 MiB (depth and flow maps) around the page cache (O_DIRECT), where the file
   * system takes it: `main` writes them that way (profile `output.direct_io`), so they are seldom
   * cached, and a reader of a long run then neither pays the kernel for filling the cache nor fills it
   * (render: 0.2-0.4 CPU s less for a minute's maps at 2 fps read cold). Elsewhere, while another read
   * of the same reader is under way, or where a direct read fails, rows are read as usual. Default false.
   */
  direct?: boolean;
}

/** Direct reads: from, to and lengths in whole blocks of this size (4 KiB covers 512-byte devices too). */
const DIRECT_ALIGN = 4096;
const DIRECT_MIN = 1 << 20;
const DIRECT_MAX = 64 << 20;

const bad = (path: string, what: string) =>
  new VideoAnalysisError("DATA_LOSS", `${path} is not a readable .npz (${what}); re-create the run folder`, { details: { file: path } });

/**
 * An open .npz. Close it with close().
 *
 * @example
 * const npz = await NpzReader.open("detections.npz"); // a run's detections artifact
 * try {
 *   console.log((await npz.strings("class_names")).values[0]); // "person"
 *   const box = await npz.array("box"); // { dtype: "<f4", shape: [ N, 4 ], data: Float32Array }
 *   console.log(box.shape, await npz.row("box", 0)); // [ 2, 4 ] and the first box
 * } finally {
 *   await npz.close();
 * }
 */
export class NpzReader {
  private readonly headers = new Map<string, Header>();
  /** The O_DIRECT handle (opened at the first large read; null: not possible here) and its page-aligned staging. */
  private direct: Promise<FileHandle | null> | undefined;
  private staging: Uint8Array | undefined;
  private stagingBusy = false;
  private closed = false;
  private direct_ = 0;

  private constructor(
    readonly path: string,
    private readonly fh: FileHandle,
    private readonly members: Map<string, Member>,
    private readonly options: NpzOpenOptions,
  ) {}

  /** Opens `path`: NOT_FOUND when it is absent, DATA_LOSS when it is not a ZIP of .npy members. */
  static async open(path: string, options: NpzOpenOptions = {}): Promise<NpzReader> {
    let fh: FileHandle;
    try {
      fh = await open(path, "r");
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ENOENT") throw new VideoAnalysisError("NOT_FOUND", `${path} does not exist`, { details: { file: path } });
      throw new VideoAnalysisError("IO_ERROR", `cannot read ${path} (${code ?? (e as Error).message})`, { details: { file: path }, cause: e });
    }
    try {
      return new NpzReader(path, fh, await readDirectory(path, fh), options);
    } catch (e) {
      await fh.close();
      throw e;
    }
  }

  /** Names of the arrays (without `.npy`). */
  get names(): string[] {
    return [...this.members.keys()];
  }

  has(name: string): boolean {
    return this.members.has(name);
  }

  /** Shape and dtype of an array, without its data. */
  async info(name: string): Promise<{ descr: string; shape: number[] }> {
    const h = await this.header(name);
    return { descr: h.descr, shape: h.shape };
  }

  /** A numeric array, whole. */
  async array(name: string): Promise<NpyArray> {
    const h = await this.header(name);
    const n = h.shape.reduce((a, b) => a * b, 1);
    return { dtype: h.descr, shape: h.shape, data: await this.elements(h, 0, n) };
  }

  /**
   * Row `i` of an array along its first axis (e.g. one depth map). `reuse`: a buffer of the same size
   * to read into (the previous row's `data.buffer`, say), for a caller that reads many rows one after
   * another without allocating each; ignored where the dtype is converted (float16, int64).
   */
  async row(name: string, i: number, reuse?: ArrayBufferLike): Promise<NpyArray> {
    const h = await this.header(name);
    const rows = h.shape[0] ?? 0;
    if (!(Number.isInteger(i) && i >= 0 && i < rows)) throw new RangeError(`NpzReader.row: ${name} has ${rows} rows, asked for ${i}`);
    const per = h.shape.slice(1).reduce((a, b) => a * b, 1);
    return { dtype: h.descr, shape: h.shape.slice(1), data: await this.elements(h, i * per, per, reuse) };
  }

  /** A unicode array ('<U<n>') as strings. */
  async strings(name: string): Promise<{ shape: number[]; values: string[] }> {
    const h = await this.header(name);
    const m = /^<U(\d+)$/.exec(h.descr);
    if (!m) throw bad(this.path, `${name} is ${h.descr}, not a unicode array`);
    const width = Number(m[1]);
    const n = h.shape.reduce((a, b) => a * b, 1);
    const buf = await this.bytes(h.dataOffset, n * width * 4, name);
    const values: string[] = [];
    for (let i = 0; i < n; i++) {
      let s = "";
      for (let k = 0; k < width; k++) {
        const cp = buf.readUInt32LE((i * width + k) * 4);
        if (cp === 0) break;
        s += String.fromCodePoint(cp);
      }
      values.push(s);
    }
    return { shape: h.shape, values };
  }

  /** Rows read with O_DIRECT so far (NpzOpenOptions.direct). */
  get directReads(): number {
    return this.direct_;
  }

  async close(): Promise<void> {
    this.closed = true;
    const direct = await this.direct?.catch(() => null);
    await Promise.all([this.fh.close(), direct?.close()]);
  }

  private async header(name: string): Promise<Header> {
    const cached = this.headers.get(name);
    if (cached) return cached;
    const m = this.members.get(name);
    if (!m) throw new VideoAnalysisError("NOT_FOUND", `${this.path} has no array "${name}" (it has ${this.names.join(", ")})`, { details: { file: this.path } });
    if (m.method !== 0) throw bad(this.path, `${name} is compressed (method ${m.method}); only stored members are read`);
    // The local header's name and extra lengths can differ from the central directory's.
    const local = await this.bytes(m.offset, 30, name);
    if (local.readUInt32LE(0) !== 0x04034b50) throw bad(this.path, `no local header for ${name}`);
    const start = m.offset + 30 + local.readUInt16LE(26) + local.readUInt16LE(28);
    const pre = await this.bytes(start, 12, name);
    if (pre.readUInt32BE(0) !== 0x934e554d || pre[4] !== 0x50 || pre[5] !== 0x59) throw bad(this.path, `${name} is not a .npy member`);
    const v = pre[6]!;
    const hlen = v === 1 ? pre.readUInt16LE(8) : pre.readUInt32LE(8);
    const prefix = v === 1 ? 10 : 12;
    const text = (await this.bytes(start + prefix, hlen, name)).toString("latin1");
    const descr = /'descr':\s*'([^']+)'/.exec(text)?.[1];
    const shapeText = /'shape':\s*\(([^)]*)\)/.exec(text)?.[1];
    if (!descr || shapeText === undefined) throw bad(this.path, `${name} has an unreadable .npy header`);
    const fortran = /'fortran_order':\s*True/.test(text);
    if (fortran) throw bad(this.path, `${name} is in Fortran order`);
    const shape = shapeText.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
    const h: Header = { descr, shape, fortran, dataOffset: start + prefix + hlen };
    this.headers.set(name, h);
    return h;
  }

  private async bytes(position: number, length: number, what: string): Promise<Buffer> {
    const buf = Buffer.allocUnsafe(length);
    await this.readInto(buf, position, what);
    return buf;
  }

  private async readInto(buf: Uint8Array, position: number, what: string): Promise<void> {
    if (this.options.direct && buf.byteLength >= DIRECT_MIN && buf.byteLength <= DIRECT_MAX && (await this.readDirect(buf, position))) return;
    let got = 0;
    while (got < buf.byteLength) {
      const { bytesRead } = await this.fh.read(buf, got, buf.byteLength - got, position + got);
      if (bytesRead === 0) throw bad(this.path, `${what} is cut short`);
      got += bytesRead;
    }
  }

  /**
   * `buf` read with O_DIRECT: the whole blocks around it into page-aligned staging, then copied out (the
   * arrays' data need not start on a block). False where that is not possible or fails (the caller then
   * reads as usual, and reports what is wrong with the file), or while another read holds the staging.
   */
  private async readDirect(buf: Uint8Array, position: number): Promise<boolean> {
    // The staging is claimed before anything is awaited: a second read at the same time reads as usual.
    if (this.stagingBusy || this.closed) return false;
    this.stagingBusy = true;
    try {
      this.direct ??= this.openDirect();
      const fh = await this.direct;
      if (!fh || this.closed) return false;
      const from = position - (position % DIRECT_ALIGN);
      const length = Math.ceil((position + buf.byteLength - from) / DIRECT_ALIGN) * DIRECT_ALIGN;
      if (!this.staging || this.staging.byteLength < length) {
        const memory = pageAlignedMemory(Math.ceil(length / 65536) * 65536);
        if (!memory) return false;
        this.staging = new Uint8Array(memory);
      }
      const staging = this.staging;
      let got = 0;
      while (got < length) {
        const { bytesRead } = await fh.read(staging, got, length - got, from + got);
        got += bytesRead;
        // The end of the file (a block cut short): no further direct read at an unaligned offset.
        if (bytesRead === 0 || got % DIRECT_ALIGN !== 0) break;
      }
      if (got < position - from + buf.byteLength) return false;
      buf.set(staging.subarray(position - from, position - from + buf.byteLength));
      this.direct_++;
      return true;
    } catch {
      // EINVAL where the device wants another alignment, say, or no memory for the staging: plain reads
      // from now on.
      const fh = await this.direct?.catch(() => null);
      this.direct = Promise.resolve(null);
      await fh?.close().catch(() => undefined);
      return false;
    } finally {
      this.stagingBusy = false;
    }
  }

  /**
   * A second, O_DIRECT handle on the file this reader has open, or null: opened by path, so it must be the
   * same file still (not one renamed over it since, as `main --overwrite` does).
   */
  private async openDirect(): Promise<FileHandle | null> {
    const flag = (constants as Record<string, number | undefined>).O_DIRECT;
    if (flag === undefined) return null;
    const fh = await open(this.path, constants.O_RDONLY | flag).catch(() => null);
    if (!fh) return null;
    const [a, b] = await Promise.all([this.fh.stat(), fh.stat()]).catch(() => [undefined, undefined]);
    if (a && b && a.dev === b.dev && a.ino === b.ino) return fh;
    await fh.close().catch(() => undefined);
    return null;
  }

  private async elements(h: Header, first: number, count: number, reuse?: ArrayBufferLike): Promise<NpyArray["data"]> {
    const d = h.descr.replace(/^[|<=]/, "");
    const size = Number(d.slice(1));
    // Read straight into a buffer of its own (offset 0, so aligned for any typed array view).
    const ab = reuse && reuse.byteLength === count * size ? reuse : new ArrayBuffer(count * size);
    await this.readInto(new Uint8Array(ab), h.dataOffset + first * size, "array data");
    switch (d) {
      case "f4": return new Float32Array(ab);
      case "f8": return new Float64Array(ab);
      case "f2": return Float32Array.from(new Uint16Array(ab), halfToFloat);
      case "i8": return Float64Array.from(new BigInt64Array(ab), Number);
      case "u8": return Float64Array.from(new BigUint64Array(ab), Number);
      case "i4": return new Int32Array(ab);
      case "u4": return new Uint32Array(ab);
      case "i2": return new Int16Array(ab);
      case "u2": return new Uint16Array(ab);
      case "i1": return new Int8Array(ab);
      case "u1":
      case "b1": return new Uint8Array(ab);
      default: throw bad(this.path, `dtype ${h.descr} is not read`);
    }
  }
}

/** The ZIP central directory: member name -> where its data starts. ZIP64 sizes and offsets included. */
async function readDirectory(path: string, fh: FileHandle): Promise<Map<string, Member>> {
  const { size } = await fh.stat();
  const tail = Math.min(size, 65557 + 20 + 56);
  const buf = Buffer.alloc(tail);
  await fh.read(buf, 0, tail, size - tail);
  let eocd = -1;
  for (let i = tail - 22; i >= 0; i--) if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  if (eocd < 0) throw bad(path, "no ZIP end record: an unfinished or foreign file");
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  const loc = eocd - 20;
  if (loc >= 0 && buf.readUInt32LE(loc) === 0x07064b50) {
    const at = Number(buf.readBigUInt64LE(loc + 8));
    const r = Buffer.alloc(56);
    await fh.read(r, 0, 56, at);
    if (r.readUInt32LE(0) !== 0x06064b50) throw bad(path, "broken ZIP64 end record");
    count = Number(r.readBigUInt64LE(32));
    cdSize = Number(r.readBigUInt64LE(40));
    cdOffset = Number(r.readBigUInt64LE(48));
  }
  if (cdOffset + cdSize > size) throw bad(path, "central directory past the end of the file");
  const cd = Buffer.alloc(cdSize);
  await fh.read(cd, 0, cdSize, cdOffset);
  const members = new Map<string, Member>();
  let p = 0;
  for (let k = 0; k < count; k++) {
    if (p + 46 > cd.length || cd.readUInt32LE(p) !== 0x02014b50) throw bad(path, "broken central directory");
    const method = cd.readUInt16LE(p + 10);
    let csize = cd.readUInt32LE(p + 20);
    let usize = cd.readUInt32LE(p + 24);
    const nlen = cd.readUInt16LE(p + 28);
    const xlen = cd.readUInt16LE(p + 30);
    const clen = cd.readUInt16LE(p + 32);
    let offset = cd.readUInt32LE(p + 42);
    const name = cd.toString("utf8", p + 46, p + 46 + nlen);
    // ZIP64 extra: the fields that are 0xFFFFFFFF above, in order.
    let x = p + 46 + nlen;
    const xend = x + xlen;
    while (x + 4 <= xend) {
      const tag = cd.readUInt16LE(x);
      const len = cd.readUInt16LE(x + 2);
      if (tag === 0x0001) {
        let q = x + 4;
        if (usize === 0xffffffff) { usize = Number(cd.readBigUInt64LE(q)); q += 8; }
        if (csize === 0xffffffff) { csize = Number(cd.readBigUInt64LE(q)); q += 8; }
        if (offset === 0xffffffff) offset = Number(cd.readBigUInt64LE(q));
      }
      x += 4 + len;
    }
    if (name.endsWith(".npy")) members.set(name.slice(0, -4), { name, offset, size: usize, method });
    p += 46 + nlen + xlen + clen;
  }
  return members;
}

/**
 * Reads every numeric array and string array of a small .npz at once.
 *
 * @example
 * const arrays = await readNpz("detections.npz"); // a run's detections artifact
 * console.log(Object.keys(arrays)); // [ "frame_index", "timestamp", "source_frame_index", "track_id", "class_id", "score", "box", "class_names", ... ]
 */
export async function readNpz(path: string): Promise<Record<string, NpyArray | { dtype: string; shape: number[]; strings: string[] }>> {
  const r = await NpzReader.open(path);
  try {
    const out: Record<string, NpyArray | { dtype: string; shape: number[]; strings: string[] }> = {};
    for (const name of r.names) {
      const { descr } = await r.info(name);
      if (/^<U/.test(descr)) {
        const s = await r.strings(name);
        out[name] = { dtype: descr, shape: s.shape, strings: s.values };
      } else out[name] = await r.array(name);
    }
    return out;
  } finally {
    await r.close();
  }
}
