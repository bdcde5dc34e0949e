/**
 * inference.ModelInferRequest written and ModelInferResponse read by hand (field numbers from
 * proto/grpc_service.proto). A general protobuf library copies every tensor into the message it builds and
 * again out of the message it reads; here the request is a small header followed by the tensors' own
 * memory, and the response's tensors are views of the received message.
 */
import { VideoAnalysisError } from "../../errors.js";
import type { ParamValue, WireContents, WireOutput, WireRequest, WireResponse } from "../wire.js";

// Wire types.
const VARINT = 0;
const I64 = 1;
const LEN = 2;
const I32 = 5;


/** A protobuf writer into a growing buffer; bytes fields may be left out and given as separate parts. */
class Writer {
  buf = Buffer.allocUnsafe(512);
  pos = 0;

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.buf.length * 2, this.pos + n));
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(b: number): void {
    this.ensure(1);
    this.buf[this.pos++] = b;
  }

  varint(v: number): void {
    this.ensure(10);
    if (v < 0) return this.varint64(BigInt(v));
    while (v > 0x7f) {
      this.buf[this.pos++] = (v % 128) | 0x80;
      v = Math.floor(v / 128);
    }
    this.buf[this.pos++] = v;
  }

  varint64(v: bigint): void {
    this.ensure(10);
    let u = BigInt.asUintN(64, v);
    while (u > 0x7fn) {
      this.buf[this.pos++] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    this.buf[this.pos++] = Number(u);
  }

  tag(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }

  /** A string field; an empty one is left out (proto3's default) unless `always` (a oneof member). */
  string(field: number, s: string, always = false): void {
    if (!s && !always) return;
    const n = Buffer.byteLength(s);
    this.tag(field, LEN);
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(s, this.pos, "utf8");
  }

  /** A nested message: written by `body`, its length patched in afterwards (reserving 5 bytes would waste them). */
  message(field: number, body: () => void): void {
    this.tag(field, LEN);
    const lenAt = this.pos;
    this.ensure(1);
    this.pos += 1;
    const start = this.pos;
    body();
    const len = this.pos - start;
    if (len < 128) {
      this.buf[lenAt] = len;
      return;
    }
    // Lengths of 128 or more take more than one byte: move the body along.
    let extra = 0;
    for (let v = len; v > 0x7f; v = Math.floor(v / 128)) extra++;
    this.ensure(extra);
    this.buf.copy(this.buf, start + extra, start, start + len);
    const end = this.pos + extra;
    this.pos = lenAt;
    this.varint(len);
    this.pos = end;
  }

  params(field: number, params: Record<string, ParamValue> | undefined): void {
    if (!params) return;
    for (const [k, v] of Object.entries(params)) {
      this.message(field, () => {
        this.string(1, k);
        this.message(2, () => {
          if (typeof v === "boolean") {
            this.tag(1, VARINT);
            this.byte(v ? 1 : 0);
          } else if (typeof v === "string") {
            this.string(3, v, true);
          } else if (typeof v === "bigint") {
            this.tag(2, VARINT);
            this.varint64(v);
          } else if (Number.isInteger(v)) {
            this.tag(2, VARINT);
            this.varint(v);
          } else {
            this.tag(4, I64);
            this.ensure(8);
            this.buf.writeDoubleLE(v, this.pos);
            this.pos += 8;
          }
        });
      });
    }
  }
}

/**
 * The request as parts to send in order: gRPC's 5-byte message prefix and the protobuf header in one
 * buffer, then each tensor's bytes as given (preceded by its field tag and length). The tensors are
 * not copied.
 */
export function encodeModelInferRequest(r: WireRequest): Uint8Array[] {
  const w = new Writer();
  w.pos = 5;
  w.string(1, r.model);
  w.string(2, r.version);
  w.string(3, r.id);
  w.params(4, r.parameters);
  for (const t of r.inputs) {
    w.message(5, () => {
      w.string(1, t.name);
      w.string(2, t.datatype);
      if (t.shape.length) {
        w.message(3, () => {
          for (const d of t.shape) w.varint(d);
        });
      }
      w.params(4, t.parameters);
    });
  }
  for (const o of r.outputs) {
    w.message(6, () => {
      w.string(1, o.name);
      w.params(2, o.parameters);
    });
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const raw of r.raw) {
    w.tag(7, LEN);
    w.varint(raw.byteLength);
    parts.push(w.buf.subarray(0, w.pos));
    total += w.pos;
    if (raw.byteLength) {
      parts.push(raw);
      total += raw.byteLength;
    }
    // The next tag starts a buffer of its own (the tensor sits between them).
    w.buf = Buffer.allocUnsafe(16);
    w.pos = 0;
  }
  if (w.pos) {
    parts.push(w.buf.subarray(0, w.pos));
    total += w.pos;
  }
  const len = total - 5;
  const head = parts[0] as Buffer;
  head[0] = 0;
  head.writeUInt32BE(len, 1);
  return parts;
}

/** gRPC's 5-byte prefix and a message made by a general serializer, for the other calls. */
export function frame(message: Uint8Array): Uint8Array[] {
  const head = Buffer.allocUnsafe(5);
  head[0] = 0;
  head.writeUInt32BE(message.byteLength, 1);
  return [head, message];
}

class Reader {
  constructor(readonly buf: Buffer, public pos: number, public end: number) {}

  more(): boolean {
    return this.pos < this.end;
  }

  fail(what: string): never {
    throw new VideoAnalysisError("INTERNAL", `the server's ModelInferResponse could not be read (${what} at byte ${this.pos}); the message is malformed`);
  }

  varint(): number {
    const start = this.pos;
    let v = 0;
    let mul = 1;
    // Seven bytes hold 49 bits, exact in a double; longer ones (negative int64s take ten) go through BigInt.
    for (let i = 0; i < 7; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
    this.pos = start;
    return Number(BigInt.asIntN(64, this.varint64()));
  }

  varint64(): bigint {
    let v = 0n;
    let shift = 0n;
    for (let i = 0; i < 10; i++) {
      if (this.pos >= this.end) this.fail("truncated varint");
      const b = this.buf[this.pos++]!;
      v |= BigInt(b & 0x7f) << shift;
      if (!(b & 0x80)) return BigInt.asUintN(64, v);
      shift += 7n;
    }
    return this.fail("varint longer than 10 bytes");
  }

  bytes(): Buffer {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail("length past the end");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  string(): string {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail("length past the end");
    const s = this.buf.toString("utf8", this.pos, this.pos + n);
    this.pos += n;
    return s;
  }

  /** A nested message's reader; this one moves past it. */
  sub(): Reader {
    const n = this.varint();
    if (n < 0 || this.pos + n > this.end) this.fail("length past the end");
    const r = new Reader(this.buf, this.pos, this.pos + n);
    this.pos += n;
    return r;
  }

  skip(wire: number): void {
    switch (wire) {
      case VARINT: this.varint64(); break;
      case I64: this.pos += 8; break;
      case LEN: {
        const n = this.varint();
        if (n < 0) this.fail("negative length");
        this.pos += n;
        break;
      }
      case I32: this.pos += 4; break;
      default: this.fail(`wire type ${wire}`);
    }
    if (this.pos > this.end) this.fail("length past the end");
  }

  /** A repeated scalar field, packed (LEN) or one element (other wire types). */
  repeated<T>(wire: number, one: () => T, into: T[]): void {
    if (wire !== LEN) {
      into.push(one());
      return;
    }
    const n = this.varint();
    const stop = this.pos + n;
    if (n < 0 || stop > this.end) this.fail("length past the end");
    const end = this.end;
    this.end = stop;
    while (this.pos < stop) into.push(one());
    this.end = end;
  }
}

function readParam(r: Reader): ParamValue {
  let v: ParamValue = "";
  while (r.more()) {
    const t = r.varint();
    switch (t) {
      case (1 << 3) | VARINT: v = r.varint() !== 0; break;
      case (2 << 3) | VARINT: { const b = BigInt.asIntN(64, r.varint64()); v = Number.isSafeInteger(Number(b)) ? Number(b) : b; break; }
      case (3 << 3) | LEN: v = r.string(); break;
      case (4 << 3) | I64: v = r.buf.readDoubleLE(r.pos); r.pos += 8; break;
      case (5 << 3) | VARINT: { const b = r.varint64(); v = Number.isSafeInteger(Number(b)) ? Number(b) : b; break; }
      default: r.skip(t & 7);
    }
  }
  return v;
}

function readMapEntry(r: Reader, into: Record<string, ParamValue>): void {
  let key = "";
  let value: ParamValue = "";
  while (r.more()) {
    const t = r.varint();
    if (t === ((1 << 3) | LEN)) key = r.string();
    else if (t === ((2 << 3) | LEN)) value = readParam(r.sub());
    else r.skip(t & 7);
  }
  into[key] = value;
}

function readContents(r: Reader): WireContents {
  const c: Required<WireContents> = { bool: [], int: [], int64: [], uint: [], uint64: [], fp32: [], fp64: [], bytes: [] };
  while (r.more()) {
    const t = r.varint();
    const wire = t & 7;
    switch (t >>> 3) {
      case 1: r.repeated(wire, () => r.varint() !== 0, c.bool); break;
      case 2: r.repeated(wire, () => Number(BigInt.asIntN(32, r.varint64())), c.int); break;
      case 3: r.repeated(wire, () => BigInt.asIntN(64, r.varint64()), c.int64); break;
      case 4: r.repeated(wire, () => r.varint(), c.uint); break;
      case 5: r.repeated(wire, () => r.varint64(), c.uint64); break;
      case 6: r.repeated(wire, () => { const v = r.buf.readFloatLE(r.pos); r.pos += 4; return v; }, c.fp32); break;
      case 7: r.repeated(wire, () => { const v = r.buf.readDoubleLE(r.pos); r.pos += 8; return v; }, c.fp64); break;
      case 8: c.bytes.push(r.bytes()); break;
      default: r.skip(wire);
    }
  }
  return c;
}

function readOutput(r: Reader): WireOutput {
  const o: WireOutput = { name: "", datatype: "", shape: [], parameters: {} };
  while (r.more()) {
    const t = r.varint();
    switch (t) {
      case (1 << 3) | LEN: o.name = r.string(); break;
      case (2 << 3) | LEN: o.datatype = r.string(); break;
      case (3 << 3) | LEN:
      case (3 << 3) | VARINT: r.repeated(t & 7, () => r.varint(), o.shape); break;
      case (4 << 3) | LEN: readMapEntry(r.sub(), o.parameters); break;
      case (5 << 3) | LEN: o.contents = readContents(r.sub()); break;
      default: r.skip(t & 7);
    }
  }
  return o;
}

function readResponse(r: Reader): WireResponse {
  const res: WireResponse = { model: "", version: "", id: "", parameters: {}, outputs: [], raw: [] };
  while (r.more()) {
    const t = r.varint();
    switch (t) {
      case (1 << 3) | LEN: res.model = r.string(); break;
      case (2 << 3) | LEN: res.version = r.string(); break;
      case (3 << 3) | LEN: res.id = r.string(); break;
      case (4 << 3) | LEN: readMapEntry(r.sub(), res.parameters); break;
      case (5 << 3) | LEN: res.outputs.push(readOutput(r.sub())); break;
      case (6 << 3) | LEN: res.raw.push(r.bytes()); break;
      default: r.skip(t & 7);
    }
  }
  return res;
}

/** A ModelInferResponse message (without gRPC's prefix); raw contents are views of `msg`. */
export function decodeModelInferResponse(msg: Buffer): WireResponse {
  return readResponse(new Reader(msg, 0, msg.length));
}

/** A ModelStreamInferResponse: Triton's error text for a failed request, or its response. */
export function decodeModelStreamInferResponse(msg: Buffer): { error?: string; response?: WireResponse } {
  const r = new Reader(msg, 0, msg.length);
  const out: { error?: string; response?: WireResponse } = {};
  while (r.more()) {
    const t = r.varint();
    if (t === ((1 << 3) | LEN)) out.error = r.string() || undefined;
    else if (t === ((2 << 3) | LEN)) out.response = readResponse(r.sub());
    else r.skip(t & 7);
  }
  return out;
}

/**
 * Where the first raw_output_contents' bytes start in a ModelInferResponse, from the message's first
 * bytes (`head`), or -1 when `head` ends before them. The receiver places the message so that this
 * offset is 8-byte aligned, and the output becomes a typed array over the message without a copy.
 */
export function firstRawOffset(head: Buffer): number {
  // A scan that never throws: `head` usually ends inside some field, which is no error here.
  let pos = 0;
  const varint = (): number => {
    let v = 0;
    let mul = 1;
    for (let i = 0; i < 8 && pos < head.length; i++) {
      const b = head[pos++]!;
      v += (b & 0x7f) * mul;
      if (!(b & 0x80)) return v;
      mul *= 128;
    }
    return -1;
  };
  while (pos < head.length) {
    const t = varint();
    if (t < 0) return -1;
    const wire = t & 7;
    if (t === ((6 << 3) | LEN)) return varint() < 0 || pos > head.length ? -1 : pos;
    if (wire === VARINT) {
      if (varint() < 0) return -1;
    } else if (wire === LEN) {
      const n = varint();
      if (n < 0) return -1;
      pos += n;
    } else if (wire === I64) pos += 8;
    else if (wire === I32) pos += 4;
    else return -1;
  }
  return -1;
}
