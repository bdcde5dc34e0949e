import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { NpzWriter, npyHeader, saveNpz, shapeRepr, toTypedArray } from "../../src/artifacts/npz.js";
import { crc32, crc32Combine, crc32Js, crc32Of, noteCrc32 } from "../../src/checksum.js";
import { AtomicFile, isTempArtifact, removeStaleTempFiles, writeFileAtomic } from "../../src/artifacts/atomic.js";
import { VideoAnalysisError } from "../../src/errors.js";

const dir = mkdtempSync(join(tmpdir(), "va-npz-"));
after(() => rmSync(dir, { recursive: true, force: true }));
let seq = 0;
const fresh = (ext = "npz") => join(dir, `t${seq++}.${ext}`);

// --- a small, independent ZIP reader for the checks --------------------------------------------------

interface Member {
  name: string;
  crc: number;
  size: number;
  offset: number;
  data: Buffer;
  zip64Central: boolean;
  zip64Local: boolean;
}

function readZip(path: string): { members: Member[]; zip64End: boolean } {
  const buf = readFileSync(path);
  const eocd = buf.length - 22;
  assert.equal(buf.readUInt32LE(eocd), 0x06054b50, "end of central directory at the very end");
  let count = buf.readUInt16LE(eocd + 10);
  let cdSize = buf.readUInt32LE(eocd + 12);
  let cdOffset = buf.readUInt32LE(eocd + 16);
  const zip64End = eocd >= 20 && buf.readUInt32LE(eocd - 20) === 0x07064b50;
  if (zip64End) {
    const rec = Number(buf.readBigUInt64LE(eocd - 20 + 8));
    assert.equal(buf.readUInt32LE(rec), 0x06064b50);
    count = Number(buf.readBigUInt64LE(rec + 32));
    cdSize = Number(buf.readBigUInt64LE(rec + 40));
    cdOffset = Number(buf.readBigUInt64LE(rec + 48));
    assert.equal(cdOffset + cdSize, rec, "ZIP64 end record follows the central directory");
  } else {
    assert.equal(cdOffset + cdSize, eocd, "end record follows the central directory");
  }
  const members: Member[] = [];
  let p = cdOffset;
  for (let i = 0; i < count; i++) {
    assert.equal(buf.readUInt32LE(p), 0x02014b50);
    assert.equal(buf.readUInt16LE(p + 10), 0, "stored");
    const crc = buf.readUInt32LE(p + 16);
    let size = buf.readUInt32LE(p + 24);
    assert.equal(buf.readUInt32LE(p + 20), size);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    let offset = buf.readUInt32LE(p + 42);
    const name = buf.toString("utf8", p + 46, p + 46 + nameLen);
    let zip64Central = false;
    for (let x = p + 46 + nameLen; x < p + 46 + nameLen + extraLen; ) {
      const tag = buf.readUInt16LE(x);
      const len = buf.readUInt16LE(x + 2);
      if (tag === 1) {
        zip64Central = true;
        let y = x + 4;
        if (size === 0xffffffff) {
          size = Number(buf.readBigUInt64LE(y));
          y += 16;
        }
        if (offset === 0xffffffff) offset = Number(buf.readBigUInt64LE(y));
      }
      x += 4 + len;
    }
    // Local header: same name; with a ZIP64 extra its 8-byte sizes must agree.
    assert.equal(buf.readUInt32LE(offset), 0x04034b50);
    assert.equal(buf.readUInt32LE(offset + 14), crc, "local CRC");
    const lName = buf.readUInt16LE(offset + 26);
    const lExtra = buf.readUInt16LE(offset + 28);
    assert.equal(buf.toString("utf8", offset + 30, offset + 30 + lName), name);
    const zip64Local = lExtra > 0;
    if (zip64Local) {
      assert.equal(buf.readUInt32LE(offset + 22), 0xffffffff);
      assert.equal(Number(buf.readBigUInt64LE(offset + 30 + lName + 4)), size);
      assert.equal(Number(buf.readBigUInt64LE(offset + 30 + lName + 12)), size);
    } else {
      assert.equal(buf.readUInt32LE(offset + 22), size);
    }
    const start = offset + 30 + lName + lExtra;
    const data = buf.subarray(start, start + size);
    assert.equal(crc32Js(data), crc, `CRC of ${name}`);
    members.push({ name, crc, size, offset, data, zip64Central, zip64Local });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return { members, zip64End };
}

/** Parses an .npy member: version, header dict text, data. */
function readNpy(b: Buffer): { version: number; dict: string; data: Buffer } {
  assert.deepEqual([...b.subarray(0, 6)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]);
  const version = b[6]!;
  const hlen = version === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = version === 1 ? 10 : 12;
  assert.equal((start + hlen) % 64, 0, "data 64-byte aligned");
  assert.equal(b[start + hlen - 1], 0x0a, "header ends with a newline");
  return { version, dict: b.toString("latin1", start, start + hlen).trimEnd(), data: b.subarray(start + hlen) };
}

// --- tests ---------------------------------------------------------------------------------------------

describe("npy header", () => {
  test("numpy.save's exact bytes for (2, 3) float32", () => {
    const h = npyHeader("<f4", [2, 3]);
    const dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }";
    assert.equal(h.length, 128);
    assert.deepEqual([...h.subarray(0, 10)], [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 118, 0]);
    // numpy's spare room: 21 - len("2") spaces after the dict, then padding, then "\n".
    assert.equal(h.toString("latin1", 10, 10 + dict.length), dict);
    assert.equal(h.toString("latin1", 10 + dict.length).trimEnd(), "");
    assert.equal(h[127], 0x0a);
  });

  test("shape repr follows Python's tuple repr", () => {
    assert.equal(shapeRepr([]), "()");
    assert.equal(shapeRepr([5]), "(5,)");
    assert.equal(shapeRepr([3, 4, 0]), "(3, 4, 0)");
  });

  test("the header length does not depend on the leading dimension (streamed arrays rewrite it in place)", () => {
    const base = npyHeader("<f4", [0, 256, 256]).length;
    for (const n of [1, 9, 10, 12345, 2 ** 31, Number.MAX_SAFE_INTEGER]) assert.equal(npyHeader("<f4", [n, 256, 256]).length, base, String(n));
    // A scalar has no growth room.
    assert.equal(readNpy(Buffer.concat([npyHeader("<f8", []), Buffer.alloc(8)])).dict, "{'descr': '<f8', 'fortran_order': False, 'shape': (), }");
  });

  test("format 2.0 past 65535 header bytes: 32-bit length, still 64-byte aligned", () => {
    const h = npyHeader("<i4", [3], 70000);
    assert.equal(h[6], 2);
    const hlen = h.readUInt32LE(8);
    assert.equal(12 + hlen, h.length);
    assert.equal(h.length % 64, 0);
    assert.equal(npyHeader("<i4", [3], 65000)[6], 1);
  });
});

describe("crc32", () => {
  test("check value and incremental use", () => {
    assert.equal(crc32(Buffer.from("123456789")), 0xcbf43926);
    assert.equal(crc32Js(Buffer.from("123456789")), 0xcbf43926);
    assert.equal(crc32(new Uint8Array(0)), 0);
    assert.equal(crc32(new Uint8Array(new ArrayBuffer(0), 0, 0), 12345), 12345);
    const data = randomBytes(100_003);
    assert.equal(crc32(data.subarray(5000), crc32(data.subarray(0, 5000))), crc32(data));
  });

  test("the JavaScript fallback equals zlib's on every length up to 70 and on 1 MB", () => {
    const data = randomBytes(1 << 20);
    for (let n = 0; n <= 70; n++) assert.equal(crc32Js(data.subarray(0, n), 7), crc32(data.subarray(0, n), 7), `length ${n}`);
    assert.equal(crc32Js(data), crc32(data));
  });

  test("crc32Combine(crc(A), crc(B), |B|) = crc(A + B)", () => {
    const data = randomBytes(3 << 20);
    for (const cut of [0, 1, 63, 64, 1000, 1 << 20, data.length - 1, data.length]) {
      const a = data.subarray(0, cut);
      const b = data.subarray(cut);
      assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(data), `cut at ${cut}`);
    }
  });

  test("crc32Combine: a length met again (its kept operator) gives the same as the first time", () => {
    const rows = Array.from({ length: 4 }, () => randomBytes(4099));
    const whole = Buffer.concat(rows);
    let c = 0;
    for (const r of rows) c = crc32Combine(c, crc32(r), r.length);
    assert.equal(c, crc32(whole));
  });

  test("noteCrc32: the noted CRC of a whole buffer is found again; a part of a buffer is neither noted nor found", () => {
    const a = new Float32Array(16).fill(1.5);
    noteCrc32(a, 1234);
    assert.equal(crc32Of(a), 1234);
    assert.equal(crc32Of(new Uint8Array(a.buffer)), 1234);
    assert.equal(crc32Of(a.subarray(1)), undefined);
    const b = new Uint8Array(32);
    noteCrc32(b.subarray(4), 99);
    assert.equal(crc32Of(b), undefined);
  });

  test("crc32Combine with lengths beyond 4 GiB matches appending zeros the slow way", () => {
    // crc(A + Z) where Z is n zero bytes: combine with crc(Z) computed by chunks of zeros.
    const zeros = new Uint8Array(1 << 24);
    const n = 2 ** 32 + 5 * 2 ** 24 + 17;
    let z = 0;
    let left = n;
    while (left > 0) {
      const k = Math.min(left, zeros.length);
      z = crc32(zeros.subarray(0, k), z);
      left -= k;
    }
    const a = crc32(Buffer.from("header"));
    const direct = (() => {
      let c = a;
      let r = n;
      while (r > 0) {
        const k = Math.min(r, zeros.length);
        c = crc32(zeros.subarray(0, k), c);
        r -= k;
      }
      return c;
    })();
    assert.equal(crc32Combine(a, z, n), direct);
  });
});

describe("NpzWriter", () => {
  test("arrays in memory and streamed: a valid ZIP of numpy.save-identical members", async () => {
    const path = fresh();
    const w = await NpzWriter.create(path);
    await w.addArray("frame_index", "int64", [3], [0, 1, 2]);
    await w.addArray("score", "float32", [2, 2], new Float32Array([0.5, 1, 1.5, 2]));
    await w.addStrings("labels", ["person", "car"]);
    const s = await w.beginArray("depth", "float32", [null, 2, 3]);
    for (let i = 0; i < 4; i++) await s.write(new Float32Array(6).fill(i));
    assert.deepEqual(await s.end(), [4, 2, 3]);
    await w.close();
    assert.deepEqual(w.arrayNames, ["frame_index", "score", "labels", "depth"]);

    const { members, zip64End } = readZip(path);
    assert.equal(zip64End, false);
    assert.deepEqual(members.map((m) => m.name), ["frame_index.npy", "score.npy", "labels.npy", "depth.npy"]);
    const npy = Object.fromEntries(members.map((m) => [m.name, readNpy(m.data)]));
    assert.equal(npy["frame_index.npy"]!.dict, "{'descr': '<i8', 'fortran_order': False, 'shape': (3,), }");
    assert.deepEqual([...new BigInt64Array(new Uint8Array(npy["frame_index.npy"]!.data).buffer)], [0n, 1n, 2n]);
    assert.equal(npy["labels.npy"]!.dict, "{'descr': '<U6', 'fortran_order': False, 'shape': (2,), }");
    assert.equal(npy["depth.npy"]!.dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (4, 2, 3), }");
    assert.deepEqual([...new Float32Array(new Uint8Array(npy["depth.npy"]!.data).buffer)], [0, 1, 2, 3].flatMap((i) => Array(6).fill(i)));
    // Streamed members carry a ZIP64 local extra (their size was unknown); the central one is plain.
    assert.equal(members[3]!.zip64Local, true);
    assert.equal(members[3]!.zip64Central, false);
    assert.equal(members[0]!.zip64Local, false);
  });

  test("a lowered ZIP64 threshold puts every ZIP64 record in a small file", async () => {
    const path = fresh();
    const w = await NpzWriter.create(path, { zip64Threshold: 200 });
    await w.addArray("a", "float64", [40], new Float64Array(40));
    await w.addArray("b", "uint8", [2], [1, 2]);
    await w.close();
    const { members, zip64End } = readZip(path);
    assert.equal(zip64End, true); // the central directory's offset is >= 200
    assert.equal(members[0]!.zip64Local, true); // 448 bytes >= 200
    assert.equal(members[0]!.zip64Central, true);
    assert.equal(members[1]!.zip64Local, false); // 130 bytes < 200, but its offset is >= 200:
    assert.equal(members[1]!.zip64Central, true);
  });

  test("known leading dimension, uneven raw byte chunks", async () => {
    const path = fresh();
    const w = await NpzWriter.create(path);
    const s = await w.beginArray("ts", "float64", [5]);
    const bytes = new Uint8Array(Float64Array.from([0, 0.2, 0.4, 0.6, 0.8]).buffer);
    for (const [a, b] of [[0, 3], [3, 17], [17, 40]] as const) await s.writeBytes(bytes.subarray(a, b));
    assert.deepEqual(await s.end(), [5]);
    await w.close();
    const m = readZip(path).members[0]!;
    assert.deepEqual([...new Float64Array(new Uint8Array(readNpy(m.data).data).buffer)], [0, 0.2, 0.4, 0.6, 0.8]);
    assert.equal(m.zip64Local, false);
  });

  test("atomic: only the temporary file exists until close(); abort() leaves nothing", async () => {
    const path = fresh();
    const w = await NpzWriter.create(path);
    await w.addArray("x", "uint8", [1], [1]);
    assert.equal(existsSync(path), false);
    assert.equal(existsSync(w.tempPath), true);
    assert.ok(isTempArtifact(w.tempPath) && !w.tempPath.endsWith(".npz"), w.tempPath);
    await w.close();
    assert.equal(existsSync(path), true);
    assert.equal(existsSync(w.tempPath), false);

    const path2 = fresh();
    const w2 = await NpzWriter.create(path2);
    const s = await w2.beginArray("y", "float32", [null]);
    await s.write(new Float32Array(10));
    await w2.abort();
    await w2.abort();
    assert.equal(existsSync(path2), false);
    assert.equal(existsSync(w2.tempPath), false);
    await assert.rejects(w2.addArray("z", "uint8", [0], []), /aborted/);
  });

  test("wrong input is refused with TypeError / RangeError naming the array", async () => {
    const w = await NpzWriter.create(fresh());
    await assert.rejects(w.addArray("a", "float32", [2, 2], [1, 2, 3]), (e: unknown) => e instanceof RangeError && /"a" has 3 elements/.test(e.message));
    await assert.rejects(w.addArray("a", "int8", [1], [300]), RangeError);
    await assert.rejects(w.addArray("a", "int32", [1], [1.5]), TypeError);
    await assert.rejects(w.addArray("a", "float16", [1], [1]), TypeError);
    await assert.rejects(w.addArray("a", "complex64" as never, [1], [1]), TypeError);
    await assert.rejects(w.addArray("a", "uint8", [-1], []), RangeError);
    await assert.rejects(w.addArray("../evil", "uint8", [0], []), RangeError);
    await w.addArray("a", "uint8", [0], []);
    await assert.rejects(w.addArray("a", "uint8", [0], []), /already has an array named "a"/);
    const s = await w.beginArray("s", "int32", [null, 2]);
    await assert.rejects(s.write(new Float32Array(2) as never), TypeError);
    await assert.rejects(w.addArray("b", "uint8", [0], []), /end the streamed array "s"/);
    await assert.rejects(w.close(), /has not been ended/);
    await s.write(new Int32Array(3));
    await assert.rejects(s.end(), /not a whole number of 8-byte rows/);
    // A broken member cannot be finished: the writer only aborts now.
    await assert.rejects(w.close(), /failed/);
    await w.abort();
    assert.equal(readdirSync(dir).filter((n) => n.includes(".tmp-")).length, 0);
  });

  test("toTypedArray converts values and keeps exact typed arrays as they are", () => {
    const f = new Float32Array([1, 2]);
    assert.equal(toTypedArray("float32", f), f);
    assert.deepEqual([...toTypedArray("int64", [1, -2, 3n])], [1n, -2n, 3n]);
    assert.deepEqual([...toTypedArray("bool", [true, false, 2])], [1, 0, 1]);
    assert.deepEqual([...toTypedArray("int32", new Uint8Array([200, 1]))], [200, 1]);
    assert.throws(() => toTypedArray("uint64", [-1]), RangeError);
  });

  test("saveNpz writes a small archive in one call", async () => {
    const path = fresh();
    await saveNpz(path, { x: { dtype: "float64", shape: [2], data: [1, 2] }, names: { strings: ["a", "b"] } });
    assert.deepEqual(readZip(path).members.map((m) => m.name), ["x.npy", "names.npy"]);
  });

  test("a missing output folder is an IO_ERROR naming the file", async () => {
    const p = join(dir, "no", "such", "dir", "x.npz");
    await assert.rejects(NpzWriter.create(p), (e: unknown) => e instanceof VideoAnalysisError && e.code === "IO_ERROR" && e.message.includes(p));
  });

  test("a process killed mid-write leaves only a temporary file, which is no valid archive", async () => {
    const sub = mkdtempSync(join(dir, "killed-"));
    const target = join(sub, "depth.npz");
    const npzModule = new URL("../../src/artifacts/npz.js", import.meta.url).href;
    const script = `
      const { NpzWriter } = await import(${JSON.stringify(npzModule)});
      const w = await NpzWriter.create(${JSON.stringify(target)});
      await w.addArray("frame_index", "int64", [2], [0, 1]);
      const s = await w.beginArray("depth", "float32", [null, 64, 64]);
      await s.write(new Float32Array(64 * 64 * 40));
      process.stdout.write("writing\\n");
      setInterval(() => {}, 1000);`;
    const child = spawn(process.execPath, ["--input-type=module", "-e", script], { stdio: ["ignore", "pipe", "inherit"] });
    await new Promise<void>((res, rej) => {
      child.stdout.on("data", (d: Buffer) => d.toString().includes("writing") && res());
      child.on("exit", () => rej(new Error("writer exited early")));
    });
    child.kill("SIGKILL");
    await new Promise((res) => child.on("exit", res));
    const names = readdirSync(sub);
    assert.equal(names.length, 1);
    assert.ok(isTempArtifact(names[0]!) && names[0]!.startsWith("depth.npz.tmp-"), names[0]);
    assert.ok(!names.some((n) => n.endsWith(".npz")));
    const bytes = readFileSync(join(sub, names[0]!));
    assert.equal(bytes.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06])), -1, "no end of central directory record");
    assert.deepEqual(await removeStaleTempFiles(sub), names);
    assert.deepEqual(readdirSync(sub), []);
  });
});

describe("NpzWriter and noted CRCs", () => {
  test("a streamed row whose CRC was noted is not read again: the noted value is what the member gets", async () => {
    const rows = [new Float32Array(256).map((_, i) => i), new Float32Array(256).map((_, i) => -i)];
    const good = fresh();
    const w = await NpzWriter.create(good);
    const s = await w.beginArray("depth", "float32", [null, 16, 16]);
    noteCrc32(rows[1]!, crc32(new Uint8Array(rows[1]!.buffer)));
    for (const r of rows) await s.write(r);
    await s.end();
    await w.close();
    // readZip checks every member's CRC against its bytes.
    assert.equal(readZip(good).members.length, 1);
    // A wrong note shows in the archive: proof that it was used, not recomputed.
    const bad = fresh();
    const w2 = await NpzWriter.create(bad);
    const s2 = await w2.beginArray("depth", "float32", [null, 16, 16]);
    const third = new Float32Array(256).fill(7);
    noteCrc32(third, 0xdeadbeef);
    await s2.write(third);
    await s2.end();
    await w2.close();
    assert.throws(() => readZip(bad), /CRC of depth.npy/);
  });
});

describe("writeFileAtomic", () => {
  test("writes, replaces and leaves no temporary file", async () => {
    const p = fresh("json");
    await writeFileAtomic(p, '{"a":1}');
    await writeFileAtomic(p, '{"a":2}');
    assert.equal(readFileSync(p, "utf8"), '{"a":2}');
    assert.equal(readdirSync(dir).filter((n) => n.includes(".tmp-")).length, 0);
  });
});

describe("AtomicFile", () => {
  /** An AtomicFile whose datasync calls are counted and can be made to fail. */
  async function counted(fail = false): Promise<{ f: AtomicFile; syncs: () => number }> {
    const f = await AtomicFile.create(fresh("bin"));
    let n = 0;
    const real = f.handle.datasync.bind(f.handle);
    f.handle.datasync = async () => {
      n++;
      await real();
      if (fail) throw Object.assign(new Error("EIO: i/o error, fdatasync"), { code: "EIO" });
    };
    return { f, syncs: () => n };
  }

  test("a large file is flushed in the background every 64 MiB written, one flush at a time", async () => {
    const { f, syncs } = await counted();
    await f.handle.write(Buffer.from("data"));
    f.wrote(32 << 20);
    assert.equal(syncs(), 0);
    f.wrote(32 << 20);
    assert.equal(syncs(), 1);
    // While that flush runs, more writing starts no second one.
    f.wrote(64 << 20);
    assert.equal(syncs(), 1);
    await f.commit();
    assert.equal(readFileSync(f.path, "utf8"), "data");
  });

  test("a failed background flush fails commit() with IO_ERROR and leaves no file", async () => {
    const { f } = await counted(true);
    f.wrote(64 << 20);
    await assert.rejects(f.commit(), (e: unknown) => e instanceof VideoAnalysisError && e.code === "IO_ERROR" && /EIO/.test(e.message));
    assert.ok(!existsSync(f.path) && !existsSync(f.tempPath));
  });

  test("without fsync nothing is flushed", async () => {
    const f = await AtomicFile.create(fresh("bin"), { fsync: false });
    let n = 0;
    f.handle.datasync = async () => void n++;
    f.wrote(256 << 20);
    await f.commit();
    assert.equal(n, 0);
  });
});

describe("NpzWriter checkpoint and resume (a run that commits as it goes)", () => {
  const dir = mkdtempSync(join(tmpdir(), "va-npz-resume-"));
  after(() => rmSync(dir, { recursive: true, force: true }));

  for (const direct of [false, true]) {
    test(`a streamed array committed mid-way, more written and lost, resumed by another writer: the same file (direct ${direct})`, async () => {
      const rows = Array.from({ length: 9 }, (_, i) => Float32Array.from({ length: 300_000 }, (_, k) => Math.sin(i * 1000 + k)));
      const straight = await NpzWriter.create(join(dir, `straight-${direct}.npz`), { direct });
      const s0 = await straight.beginArray("depth", "float32", [null, 300_000]);
      for (const r of rows) await s0.write(r);
      await s0.end();
      await straight.addArray("frame_index", "int64", [9], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      await straight.close();

      const path = join(dir, `resumed-${direct}.npz`);
      const w1 = await NpzWriter.create(path, { direct, tempPath: `${path}.partial` });
      const s1 = await w1.beginArray("depth", "float32", [null, 300_000]);
      for (const r of rows.slice(0, 4)) await s1.write(r);
      const state = JSON.parse(JSON.stringify(await w1.checkpoint()));
      // Written after the commit, then the process "dies": these bytes must not survive.
      await s1.write(rows[4]!);
      await s1.write(new Float32Array(300_000).fill(7));
      await w1.suspend();
      assert.equal(existsSync(`${path}.partial`), true);

      const w2 = await NpzWriter.resume(path, `${path}.partial`, state, { direct });
      const s2 = await w2.beginArray("depth", "float32", [null, 300_000]);
      for (const r of rows.slice(4)) await s2.write(r);
      assert.deepEqual(await s2.end(), [9, 300_000]);
      await w2.addArray("frame_index", "int64", [9], [0, 1, 2, 3, 4, 5, 6, 7, 8]);
      await w2.close();
      assert.equal(existsSync(`${path}.partial`), false);
      const a = readZip(join(dir, `straight-${direct}.npz`)).members;
      const b = readZip(path).members;
      assert.deepEqual(b.map((m) => m.name), a.map((m) => m.name));
      b.forEach((m, i) => {
        assert.equal(m.crc, a[i]!.crc, m.name);
        assert.ok(m.data.equals(a[i]!.data), m.name);
      });
    });
  }

  test("a resume finds its file shorter than the commit: DATA_LOSS naming it", async () => {
    const path = join(dir, "short.npz");
    const w = await NpzWriter.create(path, { direct: false, tempPath: `${path}.partial` });
    const s = await w.beginArray("x", "uint8", [null, 4]);
    await s.write(new Uint8Array(400));
    const state = await w.checkpoint();
    await w.suspend();
    await (await import("node:fs/promises")).truncate(`${path}.partial`, 100);
    await assert.rejects(NpzWriter.resume(path, `${path}.partial`, state), (e: unknown) => e instanceof VideoAnalysisError && e.code === "DATA_LOSS" && e.message.includes("short.npz.partial"));
  });
});
