// NpzReader reads back what NpzWriter writes (every dtype, strings, streamed rows, ZIP64 records) and
// refuses what it cannot read with a coded error naming the file.
import assert from "node:assert/strict";
import { constants, writeFileSync } from "node:fs";
import { open, rename, rm } from "node:fs/promises";
import { join } from "node:path";
import { after, test } from "node:test";
import { NpzWriter, saveNpz } from "../../src/artifacts/npz.js";
import { NpzReader, readNpz } from "../../src/artifacts/npz-reader.js";
import { isVideoAnalysisError } from "../../src/errors.js";
import { floatToHalf } from "../../src/tensor.js";
import { tempDir } from "../video/fixtures.js";

const tmp = tempDir("va-npz-reader-");
after(() => tmp.cleanup());

for (const zip64Threshold of [undefined, 64]) {
  test(`every dtype, strings and a streamed array read back${zip64Threshold ? " (every ZIP64 record)" : ""}`, async () => {
    const path = join(tmp.dir, `all-${zip64Threshold ?? "plain"}.npz`);
    const w = await NpzWriter.create(path, zip64Threshold ? { zip64Threshold } : {});
    await w.addArray("i64", "int64", [3], [1, -2, 2 ** 40]);
    await w.addArray("f32", "float32", [2, 2], [1.5, -2, 3, 4]);
    await w.addArray("f16", "float16", [3], Uint16Array.from([0.5, -1, 65504], floatToHalf));
    await w.addArray("u8", "uint8", [2], [0, 255]);
    await w.addArray("b", "bool", [2], [true, false]);
    await w.addStrings("names", ["person", "a café ☕", ""], [3]);
    const s = await w.beginArray("maps", "float32", [null, 2, 3]);
    for (let i = 0; i < 4; i++) await s.write(Float32Array.from({ length: 6 }, (_, k) => i * 10 + k));
    await s.end();
    await w.close();

    const all = await readNpz(path);
    assert.deepEqual(Array.from((all.i64 as { data: Float64Array }).data), [1, -2, 2 ** 40]);
    assert.deepEqual(all.f32, { dtype: "<f4", shape: [2, 2], data: Float32Array.from([1.5, -2, 3, 4]) });
    assert.deepEqual(Array.from((all.f16 as { data: Float32Array }).data), [0.5, -1, 65504]);
    assert.deepEqual(Array.from((all.u8 as { data: Uint8Array }).data), [0, 255]);
    assert.deepEqual(Array.from((all.b as { data: Uint8Array }).data), [1, 0]);
    assert.deepEqual((all.names as { strings: string[] }).strings, ["person", "a café ☕", ""]);
    const r = await NpzReader.open(path);
    try {
      assert.deepEqual((await r.info("maps")).shape, [4, 2, 3]);
      assert.deepEqual(Array.from((await r.row("maps", 2)).data), [20, 21, 22, 23, 24, 25]);
      await assert.rejects(r.row("maps", 4), RangeError);
      // Rows read into the previous row's buffer (as the renderer reads its maps): same values, same memory.
      const first = (await r.row("maps", 1)).data;
      const again = (await r.row("maps", 3, first.buffer)).data;
      assert.equal(again.buffer, first.buffer);
      assert.deepEqual(Array.from(again), [30, 31, 32, 33, 34, 35]);
      // A buffer of another size is not used.
      assert.notEqual((await r.row("maps", 0, new ArrayBuffer(8))).data.buffer.byteLength, 8);
      await assert.rejects(r.array("nope"), (e: unknown) => isVideoAnalysisError(e) && e.code === "NOT_FOUND" && e.message.includes("maps"));
    } finally {
      await r.close();
    }
  });
}

test("direct reads (O_DIRECT where the file system takes it, as render reads the maps): the same rows as plain reads, also read at the same time or after another file was renamed over the path", async () => {
  // Rows of a little over 1 MiB behind a small member: neither their start nor their length is block-aligned.
  const dirs = [tmp.dir, ...(process.platform === "linux" ? ["/dev/shm"] : [])];
  for (const dir of dirs) {
    const path = join(dir, `direct-${process.pid}.npz`);
    const w = await NpzWriter.create(path);
    await w.addArray("first", "uint8", [3], [1, 2, 3]);
    const n = (1 << 18) + 3;
    const s = await w.beginArray("maps", "float32", [null, n]);
    for (let i = 0; i < 4; i++) await s.write(Float32Array.from({ length: n }, (_, k) => i * 1e6 + k));
    await s.end();
    await w.close();
    const flag = (constants as Record<string, number | undefined>).O_DIRECT;
    const takesDirect = flag !== undefined && (await open(path, constants.O_RDONLY | flag).then((f) => f.close().then(() => true), () => false));
    const plain = await NpzReader.open(path);
    const direct = await NpzReader.open(path, { direct: true });
    try {
      for (let i = 0; i < 4; i++) {
        const want = (await plain.row("maps", i)).data;
        const got = (await direct.row("maps", i)).data;
        assert.equal(got.length, n);
        assert.ok(Buffer.from(got.buffer, got.byteOffset, got.byteLength).equals(Buffer.from(want.buffer, want.byteOffset, want.byteLength)), `${dir}: row ${i}`);
      }
      // Small reads never go direct; rows do where the file system takes it.
      assert.deepEqual(Array.from((await direct.array("first")).data), [1, 2, 3]);
      assert.equal(direct.directReads, takesDirect ? 4 : 0, `${dir}: O_DIRECT ${takesDirect ? "taken" : "refused"}`);
      assert.equal(plain.directReads, 0);
      // Rows read at the same time (one staging: the others read as usual): each its own values.
      const together = await Promise.all([3, 0, 2, 1, 3, 2].map((i) => direct.row("maps", i)));
      together.forEach((r, k) => assert.equal(r.data[5], [3, 0, 2, 1, 3, 2][k]! * 1e6 + 5, `${dir}: concurrent read ${k}`));
      // Another file renamed over the path: the open reader still reads its own file, direct or not.
      const other = join(dir, `direct-other-${process.pid}.npz`);
      const w2 = await NpzWriter.create(other);
      await w2.addArray("first", "uint8", [3], [9, 9, 9]);
      const s2 = await w2.beginArray("maps", "float32", [null, n]);
      for (let i = 0; i < 4; i++) await s2.write(new Float32Array(n).fill(-1));
      await s2.end();
      await w2.close();
      const fresh = await NpzReader.open(path, { direct: true });
      try {
        await rename(other, path);
        assert.equal((await fresh.row("maps", 1)).data[7], 1e6 + 7);
        assert.equal(fresh.directReads, 0, "a direct handle on the file renamed over it is not used");
      } finally {
        await fresh.close();
      }
    } finally {
      await Promise.all([plain.close(), direct.close()]);
      await rm(path, { force: true });
    }
  }
});

test("a file that is not a finished npz: DATA_LOSS naming it; a missing one: NOT_FOUND", async () => {
  const bad = join(tmp.dir, "bad.npz");
  writeFileSync(bad, "not a zip at all");
  await assert.rejects(NpzReader.open(bad), (e: unknown) => isVideoAnalysisError(e) && e.code === "DATA_LOSS" && e.message.includes(bad));
  const cut = join(tmp.dir, "cut.npz");
  await saveNpz(cut, { x: { dtype: "float32", shape: [1000], data: new Float32Array(1000) } });
  const { readFileSync } = await import("node:fs");
  writeFileSync(cut, readFileSync(cut).subarray(0, 2000));
  await assert.rejects(NpzReader.open(cut), (e: unknown) => isVideoAnalysisError(e) && e.code === "DATA_LOSS");
  await assert.rejects(NpzReader.open(join(tmp.dir, "absent.npz")), (e: unknown) => isVideoAnalysisError(e) && e.code === "NOT_FOUND");
});
