// Writes the sample .npz files that test/python/test_npz_reader.py loads with numpy:
//   node dist/test/artifacts/write-sample.js OUT_DIR [--big]
// Without arguments (as `node --test` runs every file under test/) it does nothing.
// --big (or VIDEO_SDK_NPZ_BIG=1) also writes big.npz: a streamed member over 4 GiB (about 30 s).
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NpzWriter, npyHeader, type NpyDtype } from "../../src/artifacts/npz.js";

/** The values every dtype gets in dtypes.npz; the Python side spells out the same numbers. */
const DTYPE_VALUES: Record<Exclude<NpyDtype, "float16">, (number | bigint | boolean)[]> = {
  bool: [true, false, true, true],
  uint8: [0, 1, 127, 128, 255],
  int8: [-128, -1, 0, 1, 127],
  uint16: [0, 1, 65535],
  int16: [-32768, -1, 0, 32767],
  uint32: [0, 1, 4294967295],
  int32: [-2147483648, -1, 0, 2147483647],
  uint64: [0n, 1n, 18446744073709551615n],
  int64: [-9223372036854775808n, -1n, 0n, 9007199254740993n, 9223372036854775807n],
  float32: [0, -0, 1.5, -2.25, Infinity, -Infinity, Number.NaN, 3.4028234663852886e38, 1.401298464324817e-45],
  float64: [0, -0, 0.1, -1e300, Infinity, -Infinity, Number.NaN, 5e-324, Number.MAX_VALUE],
};

/** Streamed sample: 400 x 256 x 256 float32 (100 MiB), element i = i % 65521. */
const STREAM_ROWS = 400;
const STREAM_ROW = [256, 256];

async function writeDtypes(out: string): Promise<void> {
  const w = await NpzWriter.create(join(out, "dtypes.npz"));
  for (const [dtype, values] of Object.entries(DTYPE_VALUES)) {
    await w.addArray(dtype, dtype as NpyDtype, [values.length], values as number[]);
  }
  // float16 as bit patterns: 1.0, -2.0, +inf, smallest subnormal, 65504 (max).
  await w.addArray("float16", "float16", [5], new Uint16Array([0x3c00, 0xc000, 0x7c00, 0x0001, 0x7bff]));
  await w.addArray("int32_2x3x4", "int32", [2, 3, 4], Int32Array.from({ length: 24 }, (_, i) => i));
  await w.addArray("float64_scalar", "float64", [], [3.25]);
  await w.addArray("uint8_column", "uint8", [3, 1], new Uint8Array([7, 8, 9]));
  await w.addStrings("labels", ["person", "bicycle", "", "ünïcødé 😀"]);
  await w.addStrings("labels_2x2", ["a", "bb", "ccc", "dddd"], [2, 2]);
  await w.addArray("nested/path/name", "int16", [2], [1, -1]);
  await w.close();
}

async function writeEmpty(out: string): Promise<void> {
  const w = await NpzWriter.create(join(out, "empty.npz"));
  await w.addArray("f32_0", "float32", [0], []);
  await w.addArray("i64_0x3", "int64", [0, 3], []);
  await w.addArray("u8_2x0", "uint8", [2, 0], []);
  await w.addStrings("str_0", []);
  const s = await w.beginArray("streamed_0x4", "float64", [null, 4]);
  await s.end();
  const z = await w.beginArray("streamed_5x0", "int32", [null, 0]);
  await z.end(5);
  await w.close();
  // An archive with no arrays at all.
  await (await NpzWriter.create(join(out, "no_arrays.npz"))).close();
}

async function writeStreamed(out: string): Promise<void> {
  const w = await NpzWriter.create(join(out, "streamed.npz"));
  await w.addArray("frame_index", "int64", [STREAM_ROWS], Array.from({ length: STREAM_ROWS }, (_, i) => i));
  const rowLen = STREAM_ROW[0]! * STREAM_ROW[1]!;
  const s = await w.beginArray("depth", "float32", [null, ...STREAM_ROW]);
  const row = new Float32Array(rowLen);
  for (let r = 0; r < STREAM_ROWS; r++) {
    const base = r * rowLen;
    for (let j = 0; j < rowLen; j++) row[j] = (base + j) % 65521;
    await s.write(row);
  }
  const shape = await s.end();
  if (shape[0] !== STREAM_ROWS) throw new Error(`streamed shape ${shape}`);
  // A known leading dimension, written in uneven byte chunks through writeBytes.
  const t = await w.beginArray("timestamps", "float64", [STREAM_ROWS]);
  const ts = Float64Array.from({ length: STREAM_ROWS }, (_, i) => i * 0.2);
  const bytes = new Uint8Array(ts.buffer);
  for (let off = 0; off < bytes.length; off += 1000) await t.writeBytes(bytes.subarray(off, Math.min(bytes.length, off + 1000)));
  await t.end();
  // rgb24 frames of unknown count, as a frame reader would hand them over.
  const f = await w.beginArray("frames", "uint8", [null, 4, 6, 3]);
  for (let k = 0; k < 3; k++) await f.writeBytes(Uint8Array.from({ length: 72 }, (_, i) => (k * 72 + i) % 256));
  await f.end();
  await w.close();
}

async function writeZip64(out: string): Promise<void> {
  // Threshold 64: every member size and every offset past the first takes its ZIP64 field, and the
  // archive ends with the ZIP64 end record and locator.
  const w = await NpzWriter.create(join(out, "zip64_forced.npz"), { zip64Threshold: 64 });
  await w.addArray("a", "float64", [100], Float64Array.from({ length: 100 }, (_, i) => i / 4));
  const s = await w.beginArray("b", "int32", [null, 3]);
  for (let k = 0; k < 10; k++) await s.write(Int32Array.from([k, k * 2, -k]));
  await s.end();
  await w.addArray("c", "uint8", [2], [1, 2]);
  await w.addStrings("d", ["zip", "64"]);
  await w.close();
}

function writeHeaderV2(out: string): void {
  // numpy.save switches to format 2.0 past 65535 header bytes; no real shape gets there, so pad one.
  const header = npyHeader("<i4", [3], 70000);
  writeFileSync(join(out, "header_v2.npy"), Buffer.concat([header, Buffer.from(new Int32Array([1, -2, 3]).buffer)]));
}

/** big.npz: "big" uint8 (4200, 2^20) = 4.4 GB, row r filled with r % 251, then a small "after" array. */
async function writeBig(out: string): Promise<void> {
  const w = await NpzWriter.create(join(out, "big.npz"), { fsync: false });
  const rows = 4200;
  const rowLen = 1 << 20;
  const s = await w.beginArray("big", "uint8", [null, rowLen]);
  const row = new Uint8Array(rowLen);
  for (let r = 0; r < rows; r++) {
    row.fill(r % 251);
    await s.write(row);
  }
  await s.end();
  await w.addArray("after", "int32", [3], [7, 8, 9]);
  await w.close();
}

async function main(): Promise<void> {
  const [out, flag] = process.argv.slice(2);
  if (!out) return; // run by `node --test` without arguments: nothing to do
  mkdirSync(out, { recursive: true });
  await writeDtypes(out);
  await writeEmpty(out);
  await writeStreamed(out);
  await writeZip64(out);
  writeHeaderV2(out);
  if (flag === "--big" || process.env.VIDEO_SDK_NPZ_BIG === "1") await writeBig(out);
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.stack : e);
  process.exit(1);
});
