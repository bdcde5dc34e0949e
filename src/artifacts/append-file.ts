import { constants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { pageAlignedMemory } from "../wasm/assemble.js";
import type { AtomicFile } from "./atomic.js";

/**
 * A file written front to back, with small patches behind the end (the npz writer's headers). Where the
 * file system takes O_DIRECT (Linux: ext4, xfs, btrfs...), appended bytes are gathered in page-aligned
 * memory and written in 2 MiB blocks that bypass the page cache. A run's artifacts are about a gigabyte a
 * minute of video; copied into the page cache they cost the kernel 0.2 to 2.4 CPU-seconds per gigabyte
 * here (the high end when the cache has to grow into fresh memory), plus the writeback, while direct
 * writes cost 0.15 (measured with 950 MiB in 2 MiB writes). The tail that does not fill a block, and the
 * patches, go through the page cache. Elsewhere (tmpfs, macOS, Windows) everything does, 1 MiB at a time.
 */

/** Direct writes need memory, file offsets and lengths aligned to the device's block size: 2 MiB blocks are. */
const BLOCK = 2 << 20;
const SLICE = 2 * BLOCK;
const SLICES_PER_MEMORY = 8;

/**
 * Page-aligned staging memory (pageAlignedMemory), cut into slices that writers borrow and give back;
 * it stays for the process's life. Undefined without WebAssembly.
 */
const freeSlices: Buffer[] = [];

function takeSlice(): Buffer | undefined {
  if (freeSlices.length === 0) {
    const memory = pageAlignedMemory(SLICE * SLICES_PER_MEMORY);
    if (!memory) return undefined;
    const all = Buffer.from(memory);
    for (let i = 0; i < SLICES_PER_MEMORY; i++) freeSlices.push(all.subarray(i * SLICE, (i + 1) * SLICE));
  }
  return freeSlices.pop()!;
}

/** Opens `path` (already created) a second time for direct writes; undefined where that is not possible. */
export async function openDirect(path: string): Promise<FileHandle | undefined> {
  const direct = (constants as Record<string, number | undefined>).O_DIRECT;
  if (direct === undefined) return undefined;
  try {
    return await open(path, constants.O_WRONLY | direct);
  } catch {
    return undefined; // e.g. EINVAL on tmpfs
  }
}

const BUFFERED_SIZE = 1 << 20;

export class AppendFile {
  /** Staging: two blocks, one filling while the other is written. Buffered mode: one 1 MiB buffer. */
  private readonly stage: Buffer;
  private half = 0;
  private bufLen = 0;
  /** File position of the current buffer's first byte (a multiple of BLOCK in direct mode). */
  private bufPos = 0;
  /** The block write in flight (of the other half). */
  private pending: Promise<void> | undefined;
  private direct: FileHandle | undefined;
  /** Calls under way: the staging memory goes back to the pool only once none is (a writer may be aborted mid-write). */
  private ops = 0;
  private released = false;
  private returned = false;

  constructor(
    private readonly file: AtomicFile,
    private readonly onError: (action: string, e: unknown) => Error,
  ) {
    const slice = file.directHandle ? takeSlice() : undefined;
    this.direct = slice && file.directHandle;
    this.stage = slice ?? Buffer.allocUnsafe(BUFFERED_SIZE);
  }

  /** Bytes appended so far. */
  get size(): number {
    return this.bufPos + this.bufLen;
  }

  private get capacity(): number {
    return this.stage.length === SLICE ? BLOCK : BUFFERED_SIZE;
  }

  private current(): Buffer {
    return this.stage.length === SLICE ? this.stage.subarray(this.half * BLOCK, (this.half + 1) * BLOCK) : this.stage;
  }

  append(data: Uint8Array): Promise<void> {
    return this.op(() => this.appendNow(data));
  }

  private async appendNow(data: Uint8Array): Promise<void> {
    if (this.stage.length !== SLICE && data.byteLength >= BUFFERED_SIZE / 2) {
      // Buffered mode: a large piece goes to the file as it is, uncopied.
      await this.flush();
      await this.writeAt(data, this.bufPos);
      this.bufPos += data.byteLength;
      return;
    }
    let off = 0;
    while (off < data.byteLength) {
      const n = Math.min(this.capacity - this.bufLen, data.byteLength - off);
      this.current().set(data.subarray(off, off + n), this.bufLen);
      this.bufLen += n;
      off += n;
      if (this.bufLen === this.capacity) await this.flush();
    }
  }

  /** Writes out the current buffer (a whole block in direct mode) and starts an empty one. */
  private async flush(): Promise<void> {
    if (this.bufLen === 0) return;
    const buf = this.current().subarray(0, this.bufLen);
    const pos = this.bufPos;
    if (this.stage.length === SLICE) {
      // The other half must be on disk before it is filled again.
      await this.settle();
      const writing = this.writeBlock(buf, pos);
      // Awaited by the next flush, patch or finish; until then a failure must not count as unhandled.
      writing.catch(() => undefined);
      this.pending = writing;
      this.half ^= 1;
    } else await this.writeAt(buf, pos);
    this.bufPos += this.bufLen;
    this.bufLen = 0;
  }

  private async writeBlock(buf: Buffer, pos: number): Promise<void> {
    if (this.direct && buf.length === BLOCK) {
      try {
        let done = 0;
        while (done < buf.length) done += (await this.direct.write(buf, done, buf.length - done, pos + done)).bytesWritten;
        return;
      } catch (e) {
        // A file system that opened with O_DIRECT but refuses these writes: the page cache from now on.
        if ((e as NodeJS.ErrnoException).code !== "EINVAL") throw this.onError("write", e);
        this.direct = undefined;
      }
    }
    await this.writeAt(buf, pos);
  }

  private async settle(): Promise<void> {
    const p = this.pending;
    this.pending = undefined;
    await p;
  }

  /** Overwrites bytes already appended: in the buffer if they are still there, else in the file. */
  patch(data: Uint8Array, position: number): Promise<void> {
    return this.op(() => this.patchNow(data, position));
  }

  private async patchNow(data: Uint8Array, position: number): Promise<void> {
    if (position + data.byteLength > this.size) throw new Error("AppendFile: internal error, patch beyond the end");
    // The first `behind` bytes lie before the buffer: in the file (or in the block being written).
    const behind = Math.max(0, Math.min(data.byteLength, this.bufPos - position));
    if (behind < data.byteLength) this.current().set(data.subarray(behind), position + behind - this.bufPos);
    if (behind > 0) {
      await this.settle();
      await this.writeAt(data.subarray(0, behind), position);
    }
  }

  /**
   * Makes every byte appended so far durable, for a run's commit: the block in flight is awaited, the
   * partial buffer goes to the file through the page cache (and stays in the buffer, to be written again
   * whole), then datasync.
   */
  sync(): Promise<void> {
    return this.op(async () => {
      await this.settle();
      if (this.bufLen > 0) await this.writeAt(this.current().subarray(0, this.bufLen), this.bufPos);
      try {
        await this.file.handle.datasync();
      } catch (e) {
        throw this.onError("sync", e);
      }
    });
  }

  /**
   * Continues a file that holds `size` good bytes (a resumed run's committed length; the file was
   * truncated to it). In direct mode the partial last block is read back into the buffer, so blocks stay
   * aligned.
   */
  resumeAt(size: number): Promise<void> {
    return this.op(async () => {
      if (this.size !== 0) throw new Error("AppendFile: resumeAt on a file already written to");
      const tail = this.stage.length === SLICE ? size % BLOCK : 0;
      this.bufPos = size - tail;
      if (tail > 0) {
        try {
          const { bytesRead } = await this.file.handle.read(this.current(), 0, tail, this.bufPos);
          if (bytesRead !== tail) throw new Error(`read ${bytesRead} of ${tail} bytes`);
        } catch (e) {
          throw this.onError("read back", e);
        }
      }
      this.bufLen = tail;
    });
  }

  /** Writes everything out (the last partial block through the page cache). */
  finish(): Promise<void> {
    return this.op(async () => {
      await this.settle();
      if (this.bufLen > 0) await this.writeAt(this.current().subarray(0, this.bufLen), this.bufPos);
      this.bufPos += this.bufLen;
      this.bufLen = 0;
    });
  }

  /**
   * Gives the staging memory back to the pool, once no call is under way and no block is being written
   * from it (after finish(), or when the file is abandoned, even mid-write). No call is taken after this.
   */
  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    if (this.ops === 0) await this.giveBack();
  }

  private async op(f: () => Promise<void>): Promise<void> {
    if (this.released) throw new Error("AppendFile: released; no more writes");
    this.ops++;
    try {
      await f();
    } finally {
      if (--this.ops === 0 && this.released) await this.giveBack();
    }
  }

  private async giveBack(): Promise<void> {
    if (this.returned) return;
    this.returned = true;
    await this.pending?.catch(() => undefined);
    this.pending = undefined;
    if (this.stage.length === SLICE) freeSlices.push(this.stage);
  }

  private async writeAt(data: Uint8Array, position: number): Promise<void> {
    try {
      let done = 0;
      while (done < data.byteLength) {
        const { bytesWritten } = await this.file.handle.write(data, done, data.byteLength - done, position + done);
        done += bytesWritten;
        this.file.wrote(bytesWritten);
      }
    } catch (e) {
      throw this.onError("write", e);
    }
  }
}
