import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { open } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import { AppendFile } from "../../src/artifacts/append-file.js";
import { AtomicFile } from "../../src/artifacts/atomic.js";

const dir = mkdtempSync(join(tmpdir(), "va-append-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A deterministic pseudo-random generator (the same sequence in every run). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

type Op = { append: Uint8Array } | { patch: Uint8Array; at: number };

/** Appends of 1 byte to 3 MiB, and patches anywhere behind the end (in the file, the block in flight, the buffer, across them). */
function script(seed: number, total: number): { ops: Op[]; expected: Buffer } {
  const r = rng(seed);
  const expected = Buffer.alloc(total);
  const ops: Op[] = [];
  let size = 0;
  while (size < total) {
    const big = r() < 0.3;
    const n = Math.min(total - size, 1 + Math.floor(r() * (big ? 3 << 20 : 5000)));
    const data = Buffer.alloc(n);
    for (let i = 0; i < n; i += 997) data[i] = Math.floor(r() * 256);
    data.fill(Math.floor(r() * 256), 0, Math.min(n, 64));
    ops.push({ append: data });
    data.copy(expected, size);
    size += n;
    if (r() < 0.4) {
      const len = 1 + Math.floor(r() * Math.min(size, 300));
      const at = Math.floor(r() * (size - len + 1));
      const p = Buffer.alloc(len, Math.floor(r() * 256));
      ops.push({ patch: p, at });
      p.copy(expected, at);
    }
  }
  return { ops, expected };
}

async function play(file: { handle: unknown; directHandle: unknown; wrote(n: number): void }, ops: Op[]): Promise<AppendFile> {
  const out = new AppendFile(file as AtomicFile, (action, e) => new Error(`${action}: ${String(e)}`));
  for (const op of ops) {
    if ("append" in op) await out.append(op.append);
    else await out.patch(op.patch, op.at);
  }
  await out.finish();
  await out.release();
  return out;
}

describe("AppendFile", () => {
  for (const direct of [true, false]) {
    test(`${direct ? "O_DIRECT blocks where the file system allows" : "page cache only"}: 11 MiB of appends and patches land exactly`, async () => {
      for (const seed of [1, 2, 3]) {
        const { ops, expected } = script(seed, 11 << 20);
        const path = join(dir, `out-${direct}-${seed}.bin`);
        const f = await AtomicFile.create(path, { direct, fsync: false });
        if (!direct) assert.equal(f.directHandle, undefined);
        const out = await play(f, ops);
        assert.equal(out.size, expected.length);
        await f.commit();
        assert.ok(readFileSync(path).equals(expected), `seed ${seed}: the file differs from what was written`);
      }
    });
  }

  test("a file system that refuses the direct writes (EINVAL): the same bytes through the page cache", async () => {
    const path = join(dir, "refused.bin");
    const handle = await open(path, "w+");
    let refused = 0;
    let buffered = 0;
    const directHandle = {
      write: async () => {
        refused++;
        throw Object.assign(new Error("EINVAL: invalid argument, write"), { code: "EINVAL" });
      },
    };
    const { ops, expected } = script(7, 9 << 20);
    try {
      await play({ handle, directHandle, wrote: (n: number) => (buffered += n) }, ops);
    } finally {
      await handle.close();
    }
    assert.equal(refused, 1, "after one refusal the direct handle is not tried again");
    assert.ok(buffered >= expected.length);
    assert.ok(readFileSync(path).equals(expected));
  });

  test("released mid-write (an aborted writer): its staging memory is not lent again until the write is over", async () => {
    const stageOf = (f: AppendFile) => (f as unknown as { stage: Buffer }).stage;
    const same = (a: Buffer, b: Buffer) => a.buffer === b.buffer && a.byteOffset === b.byteOffset;
    const handle = await open(join(dir, "held.bin"), "w+");
    let open1!: () => void;
    const gate = new Promise<void>((r) => (open1 = r));
    const slowDirect = { write: async (_b: Buffer, _o: number, n: number) => (await gate, { bytesWritten: n }) };
    const quickDirect = { write: async (_b: Buffer, _o: number, n: number) => ({ bytesWritten: n }) };
    try {
      const first = new AppendFile({ handle, directHandle: slowDirect, wrote: () => {} } as unknown as AtomicFile, (_a, e) => e as Error);
      // 5 MiB: the first block's write waits at the gate, so the append waits to reuse that half.
      const writing = first.append(Buffer.alloc(5 << 20, 0xaa));
      await new Promise((r) => setImmediate(r));
      await first.release();
      const second = new AppendFile({ handle, directHandle: quickDirect, wrote: () => {} } as unknown as AtomicFile, (_a, e) => e as Error);
      assert.ok(!same(stageOf(second), stageOf(first)), "a writer got the staging memory of one still writing into it");
      await second.release();
      open1();
      await writing;
      await assert.rejects(first.append(Buffer.alloc(1)), /released/);
      const third = new AppendFile({ handle, directHandle: quickDirect, wrote: () => {} } as unknown as AtomicFile, (_a, e) => e as Error);
      assert.ok(same(stageOf(third), stageOf(first)), "the memory goes back to the pool once the write is over");
      await third.release();
    } finally {
      await handle.close();
    }
  });

  test("another write error is the writer's error, not a silent fallback", async () => {
    const handle = await open(join(dir, "nospace.bin"), "w+");
    const directHandle = { write: async () => Promise.reject(Object.assign(new Error("ENOSPC: no space left on device"), { code: "ENOSPC" })) };
    try {
      await assert.rejects(play({ handle, directHandle, wrote: () => {} }, [{ append: Buffer.alloc(5 << 20) }]), /^Error: write: Error: ENOSPC/);
    } finally {
      await handle.close();
    }
  });
});
