import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { VideoAnalysisError } from "../errors.js";

/**
 * A POSIX shared-memory region that a Triton server on the same host can read and write. On Linux,
 * shm_open("/name") is the file /dev/shm/name, so Node reaches it with plain file calls. Register it
 * with TritonClient.registerSystemSharedMemory(regionName, region.key, region.byteSize).
 */
export class SystemSharedMemory {
  private fd: number | undefined;

  private constructor(readonly key: string, readonly byteSize: number, fd: number) {
    this.fd = fd;
  }

  /** Creates (or truncates) the region `key` ("/name") of byteSize bytes. */
  static create(key: string, byteSize: number): SystemSharedMemory {
    if (!/^\/[^/]+$/.test(key)) throw new RangeError(`shared memory key must look like "/name", got "${key}"`);
    if (!(Number.isInteger(byteSize) && byteSize > 0)) throw new RangeError(`shared memory byteSize must be a positive integer, got ${byteSize}`);
    let fd: number;
    try {
      fd = openSync(`/dev/shm${key}`, "w+", 0o600);
      ftruncateSync(fd, byteSize);
    } catch (e) {
      throw new VideoAnalysisError("IO_ERROR", `cannot create shared memory ${key} in /dev/shm: ${(e as Error).message}`);
    }
    return new SystemSharedMemory(key, byteSize, fd);
  }

  private handle(): number {
    if (this.fd === undefined) throw new VideoAnalysisError("FAILED_PRECONDITION", `shared memory ${this.key} was destroyed`);
    return this.fd;
  }

  write(offset: number, bytes: Uint8Array): void {
    if (offset < 0 || offset + bytes.byteLength > this.byteSize) throw new RangeError(`write of ${bytes.byteLength} bytes at ${offset} exceeds region ${this.key} of ${this.byteSize} bytes`);
    writeSync(this.handle(), bytes, 0, bytes.byteLength, offset);
  }

  read(offset: number, length: number): Buffer {
    if (offset < 0 || offset + length > this.byteSize) throw new RangeError(`read of ${length} bytes at ${offset} exceeds region ${this.key} of ${this.byteSize} bytes`);
    const out = Buffer.allocUnsafe(length);
    readSync(this.handle(), out, 0, length, offset);
    return out;
  }

  /** Closes and removes the region; unregister it from the server first. */
  destroy(): void {
    if (this.fd === undefined) return;
    closeSync(this.fd);
    this.fd = undefined;
    rmSync(`/dev/shm${this.key}`, { force: true });
  }
}
