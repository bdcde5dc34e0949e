import { closeSync, ftruncateSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";
import { VideoAnalysisError } from "../errors.js";

interface NativeShm {
  map(key: string, byteSize: number, create: boolean): ArrayBuffer;
  unlink(key: string): void;
  /** src into dst; large copies with streaming stores (native/shm.c says why). Absent from addons built before it. */
  copy?(dst: Uint8Array, src: Uint8Array): void;
}

/** Below this (a 320x320x3 frame is 307 KB) TypedArray.set measured as fast or faster. */
const NATIVE_COPY_MIN = 1024 * 1024;

let native: { addon?: NativeShm; reason?: string } | undefined;
let warned = false;

/** The addon (dist/native/shm.node, built by scripts/build-native.mjs), or why it is not there. */
function loadNative(): { addon?: NativeShm; reason?: string } {
  if (native) return native;
  if (process.env.VIDEO_SDK_SHM_NATIVE === "0") return (native = { reason: "VIDEO_SDK_SHM_NATIVE=0" });
  try {
    native = { addon: createRequire(import.meta.url)("../../native/shm.node") as NativeShm };
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    native = {
      reason:
        err.code === "MODULE_NOT_FOUND"
          ? `dist/native/shm.node is missing: it is built by npm run build and at install, and a C compiler (cc) is needed; build it with "node ${fileURLToPath(new URL("../../../scripts/build-native.mjs", import.meta.url))}"`
          : `dist/native/shm.node did not load: ${err.message}`,
    };
  }
  return native;
}

/**
 * A POSIX shared-memory region that a Triton server on the same host reads and writes. It is mapped into
 * this process (a small addon of the SDK's: shm_open + mmap), so `bytes` is the region itself: a frame
 * written there is what the server reads, and outputs are read in place. Register it with
 * TritonClient.registerSystemSharedMemory(regionName, region.key, region.byteSize).
 *
 * Where the addon could not be built (no C compiler at install), the region is reached through file
 * calls on /dev/shm<key> instead: one copy more per tensor and a system call, and no `bytes`; a warning
 * says so once (nativeStatus() tells why). VIDEO_SDK_SHM_NATIVE=0 asks for the file calls.
 *
 * Mapped regions have their pages reserved at create (a full /dev/shm is an IO_ERROR there, not a
 * SIGBUS on a later write). Another process shrinking the file under a live mapping (creating the same
 * key again with a smaller size) would still make access past its new end fatal: keys are this process's.
 *
 * @example
 * const triton = await TritonClient.create({ url: process.env.TRITON_GRPC_URL ?? "localhost:8001" }); // a server on this host
 * const bytes = 640 * 640 * 3;
 * const region = SystemSharedMemory.create("/my_frames", bytes);
 * try {
 *   region.write(0, letterbox(await readImageRgb("bus.jpg"), 640).image.data); // the frame, where the server reads it
 *   await triton.registerSystemSharedMemory("my_frames", region.key, bytes);
 *   const input = { name: "INPUT__0", datatype: "UINT8" as const, shape: [1, 640, 640, 3], sharedMemory: { region: "my_frames", byteSize: bytes } };
 *   const r = await triton.infer("yolo11x_640", [input]);
 *   console.log(r.outputs.OUTPUT__0?.shape); // [ 1, 84, 8400 ]
 * } finally {
 *   await triton.unregisterSystemSharedMemory("my_frames");
 *   region.destroy();
 *   await triton.close();
 * }
 */
export class SystemSharedMemory {
  private fd: number | undefined;
  private mapping: Buffer | undefined;
  private destroyed = false;

  private constructor(readonly key: string, readonly byteSize: number, mapping: Buffer | undefined, fd: number | undefined) {
    this.mapping = mapping;
    this.fd = fd;
  }

  /** Whether regions are mapped (the addon loaded), and if not why. */
  static nativeStatus(): { mapped: boolean; reason?: string } {
    const n = loadNative();
    return n.addon ? { mapped: true } : { mapped: false, reason: n.reason };
  }

  /** Creates (or truncates) the region `key` ("/name") of byteSize bytes. */
  static create(key: string, byteSize: number): SystemSharedMemory {
    if (!/^\/[^/]+$/.test(key)) throw new RangeError(`shared memory key must look like "/name", got "${key}"`);
    if (!(Number.isInteger(byteSize) && byteSize > 0)) throw new RangeError(`shared memory byteSize must be a positive integer, got ${byteSize}`);
    const n = loadNative();
    if (n.addon) {
      try {
        return new SystemSharedMemory(key, byteSize, Buffer.from(n.addon.map(key, byteSize, true)), undefined);
      } catch (e) {
        // The addon's message names the key, the step and the errno text.
        throw new VideoAnalysisError("IO_ERROR", (e as Error).message, { cause: e });
      }
    }
    if (!warned) {
      warned = true;
      process.emitWarning(`shared memory: the native mapping is not available (${n.reason}); reading and writing /dev/shm through file calls, one extra copy per tensor`, { code: "VASDK_SHM_FALLBACK" });
    }
    let fd: number | undefined;
    try {
      fd = openSync(`/dev/shm${key}`, "w+", 0o600);
      ftruncateSync(fd, byteSize);
    } catch (e) {
      if (fd !== undefined) closeSync(fd);
      throw new VideoAnalysisError("IO_ERROR", `cannot create shared memory ${key} in /dev/shm: ${(e as Error).message}`);
    }
    return new SystemSharedMemory(key, byteSize, undefined, fd);
  }

  /** Whether the region is mapped into this process (else reached through file calls). */
  get mapped(): boolean {
    return this.mapping !== undefined;
  }

  /** The whole region, when mapped: write a frame straight into it. */
  get bytes(): Buffer | undefined {
    this.check(0, 0);
    return this.mapping;
  }

  private check(offset: number, length: number): void {
    if (this.destroyed) throw new VideoAnalysisError("FAILED_PRECONDITION", `shared memory ${this.key} was destroyed`);
    if (!(offset >= 0 && length >= 0 && offset + length <= this.byteSize)) throw new RangeError(`${length} bytes at ${offset} exceed region ${this.key} of ${this.byteSize} bytes`);
  }

  /**
   * Copies `bytes` into the region at `offset`. Mapped, a large copy skips the cache on its way in (the
   * server reads it from another core): about half the CPU of TypedArray.set for a 960x960x3 frame on a
   * busy machine, the same on an idle one.
   */
  write(offset: number, bytes: Uint8Array): void {
    this.check(offset, bytes.byteLength);
    const copy = loadNative().addon?.copy;
    if (this.mapping && copy && bytes.byteLength >= NATIVE_COPY_MIN) {
      copy(this.mapping.subarray(offset, offset + bytes.byteLength), bytes.constructor === Uint8Array || Buffer.isBuffer(bytes) ? bytes : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength));
    } else if (this.mapping) this.mapping.set(bytes, offset);
    else this.io("write", () => writeSync(this.fd!, bytes, 0, bytes.byteLength, offset));
  }

  private io(what: string, call: () => number): number {
    try {
      return call();
    } catch (e) {
      throw new VideoAnalysisError("IO_ERROR", `cannot ${what} shared memory ${this.key} in /dev/shm: ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * `length` bytes at `offset`: a view of the region when mapped (no copy; it sees later writes), else a
   * copy read from the file (writing to it then does not reach the region).
   */
  view(offset: number, length: number): Buffer {
    this.check(offset, length);
    if (this.mapping) return this.mapping.subarray(offset, offset + length);
    const out = Buffer.allocUnsafe(length);
    const got = this.io("read", () => readSync(this.fd!, out, 0, length, offset));
    if (got < length) out.fill(0, got); // a file shortened by someone else: no stale memory
    return out;
  }

  /** As view(): a view when mapped, a copy otherwise. */
  read(offset: number, length: number): Buffer {
    return this.view(offset, length);
  }

  /**
   * Removes the region's name (unregister it from the server first) and drops this object's reference to
   * the mapping; later calls throw FAILED_PRECONDITION. Views taken earlier stay readable and writable
   * (never a crash): the memory is unmapped, and its pages given back, once the garbage collector has
   * collected the last of them and the event loop has turned (the addon's finalizer runs then).
   */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    const mapped = this.mapping !== undefined;
    this.mapping = undefined;
    if (this.fd !== undefined) closeSync(this.fd);
    this.fd = undefined;
    if (mapped) loadNative().addon!.unlink(this.key);
    else rmSync(`/dev/shm${this.key}`, { force: true });
  }
}
