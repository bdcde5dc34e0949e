import { randomBytes } from "node:crypto";
import { mkdir, open, readdir, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { basename, dirname, join, resolve } from "node:path";
import { VideoAnalysisError } from "../errors.js";
import { openDirect } from "./append-file.js";
import { isProcessAlive } from "../pid.js";

/**
 * Artifacts are written under a temporary name in their own folder and renamed into place when complete
 * (rename within one file system is atomic). The temporary name, `<name>.tmp-<pid>-<random hex>`, keeps
 * the final extension out of the end of the name, so `*.npz` / `*.json` never match a half-written file,
 * and says which process wrote it.
 */
export function tempPathFor(path: string): string {
  const abs = resolve(path);
  return join(dirname(abs), `${basename(abs)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

const TEMP_RE = /\.tmp-(\d+)-[0-9a-f]{8}$/;

/** True for a name made by tempPathFor. */
export function isTempArtifact(name: string): boolean {
  return TEMP_RE.test(name);
}

/** An IO_ERROR naming the file, with the system's reason and what to do. */
export function ioError(path: string, action: string, e: unknown): VideoAnalysisError {
  if (e instanceof VideoAnalysisError) return e;
  const err = e as NodeJS.ErrnoException;
  const code = err?.code;
  const hint =
    code === "ENOSPC" ? "free some disk space" :
    code === "EACCES" || code === "EPERM" || code === "EROFS" ? "check the folder's permissions" :
    code === "ENOENT" ? "create the output folder first" :
    "check the output folder";
  return new VideoAnalysisError("IO_ERROR", `Cannot ${action} ${path} (${code ?? err?.message ?? String(e)}); ${hint}.`, {
    details: { file: path, errno: code },
    cause: e,
  });
}

/**
 * Makes `dir` and its missing parents, one mkdir at a time, and returns the folders it created (outermost
 * first). Not `mkdir({ recursive: true })`: Node's loops forever on a file system that refuses new folders
 * with ENOENT (e.g. /proc). Any failure is an IO_ERROR naming the folder.
 */
export async function makeFolders(dir: string): Promise<string[]> {
  const missing: string[] = [];
  for (let d = resolve(dir); ; d = dirname(d)) {
    const st = await stat(d).catch((e: NodeJS.ErrnoException) => {
      if (e.code === "ENOENT" || e.code === "ENOTDIR") return undefined;
      throw ioError(d, "use the folder", e);
    });
    if (st?.isDirectory()) break;
    if (st) throw new VideoAnalysisError("IO_ERROR", `Cannot create the folder ${dir}: ${d} is a file, not a folder; choose another path.`, { details: { file: d, errno: "ENOTDIR" } });
    missing.unshift(d);
    if (dirname(d) === d) break;
  }
  const created: string[] = [];
  for (const d of missing) {
    try {
      await mkdir(d);
      created.push(d);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "EEXIST") continue;
      if (code === "ENOENT") {
        // The parent exists (made or found above), yet the file system says ENOENT: it takes no new folders.
        throw new VideoAnalysisError("IO_ERROR", `Cannot create the folder ${d}: ${dirname(d)} does not take new folders (ENOENT); choose a folder on a writable file system.`, {
          details: { file: d, errno: code },
          cause: e,
        });
      }
      throw ioError(d, "create the folder", e);
    }
  }
  return created;
}

export interface AtomicFileOptions {
  /** fsync the file before the rename and the folder after it (default true), so a crash cannot leave
   * a renamed but empty file. */
  fsync?: boolean;
  /** Also open the file for O_DIRECT writes where the file system allows it (`directHandle`; see AppendFile). */
  direct?: boolean;
  /**
   * Write under this name instead of a fresh `<name>.tmp-<pid>-<hex>`: a run that commits as it goes
   * (journal.ts) keeps its files under stable names, so a later process can resume them. An existing
   * file of that name is truncated.
   */
  tempPath?: string;
}

/** With fsync on, a large file is flushed to disk in the background every this many bytes written. */
const FLUSH_EVERY = 64 << 20;

/**
 * A file written under a temporary name and renamed to `path` by commit(); abort() deletes it.
 * A process killed in between leaves only the temporary file.
 */
export class AtomicFile {
  private done = false;
  private unflushed = 0;
  private flushing: Promise<void> | undefined;
  private flushError: unknown;

  private constructor(
    /** The final path. */
    readonly path: string,
    /** Where the bytes are written until commit(). */
    readonly tempPath: string,
    readonly handle: FileHandle,
    private readonly fsync: boolean,
    /** The same file opened with O_DIRECT, when asked for and possible. */
    readonly directHandle: FileHandle | undefined,
  ) {}

  static async create(path: string, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    if (typeof path !== "string" || path === "") throw new TypeError("AtomicFile.create: path must be a non-empty string");
    const abs = resolve(path);
    const temp = options.tempPath ? resolve(options.tempPath) : tempPathFor(abs);
    let handle: FileHandle;
    try {
      handle = await open(temp, options.tempPath ? "w" : "wx", 0o644);
    } catch (e) {
      throw ioError(abs, "create", e);
    }
    const direct = options.direct ? await openDirect(temp) : undefined;
    return new AtomicFile(abs, temp, handle, options.fsync ?? true, direct);
  }

  /**
   * Opens the temporary file `tempPath` of an interrupted run again, cut back to its committed `size`
   * (bytes past it were written after the last commit). DATA_LOSS when it is shorter than that.
   */
  static async reopen(path: string, tempPath: string, size: number, options: AtomicFileOptions = {}): Promise<AtomicFile> {
    const abs = resolve(path);
    const temp = resolve(tempPath);
    let handle: FileHandle;
    try {
      handle = await open(temp, "r+");
      const st = await handle.stat();
      if (st.size < size) {
        await handle.close();
        throw new VideoAnalysisError("DATA_LOSS", `${temp} holds ${st.size} bytes but the run's journal committed ${size}; the interrupted run cannot be resumed: start it again with --overwrite`, { details: { file: temp } });
      }
      await handle.truncate(size);
    } catch (e) {
      throw ioError(temp, "reopen", e);
    }
    const direct = options.direct ? await openDirect(temp) : undefined;
    return new AtomicFile(abs, temp, handle, options.fsync ?? true, direct);
  }

  get finished(): boolean {
    return this.done;
  }

  /**
   * Notes `bytes` more written to the handle. With fsync on, every FLUSH_EVERY bytes a datasync starts in
   * the background, so the disk takes the file while it is being made and commit()'s fsync finds little
   * left to write (a minute of 1080p made a gigabyte of depth and flow, whose one fsync at the end took
   * a third of a second).
   */
  wrote(bytes: number): void {
    if (!this.fsync || this.done) return;
    this.unflushed += bytes;
    if (this.unflushed < FLUSH_EVERY || this.flushing) return;
    this.unflushed = 0;
    this.flushing = this.handle
      .datasync()
      .catch((e: unknown) => {
        this.flushError ??= e;
      })
      .finally(() => {
        this.flushing = undefined;
      });
  }

  /** Flushes, closes and renames the file into place. */
  async commit(): Promise<void> {
    if (this.done) throw new Error(`AtomicFile: ${this.path} was already committed or aborted`);
    this.done = true;
    try {
      await this.flushing;
      if (this.flushError) throw this.flushError;
      if (this.fsync) await this.handle.sync();
      await this.directHandle?.close();
      await this.handle.close();
      await rename(this.tempPath, this.path);
    } catch (e) {
      await this.directHandle?.close().catch(() => {});
      await this.handle.close().catch(() => {});
      await unlink(this.tempPath).catch(() => {});
      throw ioError(this.path, "write", e);
    }
    if (this.fsync) {
      // Make the rename itself durable; not every platform can fsync a folder, which is harmless.
      try {
        const dir = await open(dirname(this.path), "r");
        await dir.sync().finally(() => dir.close());
      } catch {
        /* best effort */
      }
    }
  }

  /** Closes the temporary file and leaves it where it is (a stopped run kept for resuming). */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.flushing;
    await this.directHandle?.close().catch(() => {});
    await this.handle.close().catch(() => {});
  }

  /** Closes and deletes the temporary file. Safe to call more than once and after a failed commit. */
  async abort(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.flushing;
    await this.directHandle?.close().catch(() => {});
    await this.handle.close().catch(() => {});
    await unlink(this.tempPath).catch(() => {});
  }
}

/** Writes `data` to `path` atomically (temporary file, fsync, rename). For manifest.json and the like. */
export async function writeFileAtomic(path: string, data: string | Uint8Array, options: AtomicFileOptions = {}): Promise<void> {
  const f = await AtomicFile.create(path, options);
  try {
    await f.handle.writeFile(data);
  } catch (e) {
    await f.abort();
    throw ioError(f.path, "write", e);
  }
  await f.commit();
}

/**
 * Deletes temporary files in `dir` left by processes that no longer run (killed mid-write).
 * Returns the names removed. Files of running processes (this one included) are kept.
 */
export async function removeStaleTempFiles(dir: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return removed;
  }
  for (const name of names) {
    const m = TEMP_RE.exec(name);
    if (!m) continue;
    const pid = Number(m[1]);
    if (pid === process.pid || isProcessAlive(pid)) continue;
    try {
      await unlink(join(dir, name));
      removed.push(name);
    } catch {
      /* gone already */
    }
  }
  return removed;
}

