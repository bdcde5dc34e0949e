import { open, readFile, readdir, rename, rm, rmdir, stat, unlink } from "node:fs/promises";
import { hostname } from "node:os";
import { dirname, join, relative, resolve, sep } from "node:path";
import { ioError, makeFolders, removeStaleTempFiles } from "../artifacts/atomic.js";
import { MANIFEST_FILE } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";
import { isProcessAlive } from "../pid.js";
import { JOURNAL_FILE, partialPath, readJournal, removeJournal, type JournalData } from "./journal.js";

/** The lock a run holds on its folder while it runs: which process, on which host, since when. */
export const LOCK_FILE = ".video-analysis.lock";

interface LockInfo {
  pid: number;
  host: string;
  started_at: string;
}

async function readLock(path: string): Promise<LockInfo | undefined> {
  try {
    const info = JSON.parse(await readFile(path, "utf8")) as LockInfo;
    return typeof info.pid === "number" && typeof info.host === "string" ? info : undefined;
  } catch {
    return undefined;
  }
}

/** A lock whose process is gone: one of this host whose pid no longer runs. */
const stale = (l: LockInfo) => l.host === hostname() && l.pid !== process.pid && !isProcessAlive(l.pid);

function inUse(dir: string, l: LockInfo | undefined): VideoAnalysisError {
  const who = l ? `process ${l.pid} on ${l.host} since ${l.started_at}` : "another process (its lock is being written)";
  return new VideoAnalysisError(
    "ALREADY_EXISTS",
    `output folder ${dir} is in use by ${who}; wait for that run or choose another --out (if no such run exists, delete ${join(dir, LOCK_FILE)})`,
    { details: { file: join(dir, LOCK_FILE), ...(l ? { pid: l.pid, host: l.host } : {}) } },
  );
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * A run's output folder. The rules that keep a failed run from looking complete:
 * - one run at a time: a run holds `.video-analysis.lock` (pid, host, start) from prepare() to
 *   release(); a second run into the folder gets ALREADY_EXISTS naming the first; a lock whose process is
 *   gone (same host, pid not running) is taken over, with a warning;
 * - a folder that already holds a run (its manifest or any artifact) is refused unless `overwrite`;
 *   with `overwrite` the old run stays whole until the new one commits: then the old manifest goes first,
 *   the new artifacts are renamed over the old ones, and old artifacts the new run does not write go;
 * - artifacts are written under temporary names and renamed into place one by one at the end, and
 *   manifest.json is written last (a folder is complete exactly when it has the manifest);
 * - on failure `discard()` deletes whatever this run renamed into place and the folders it created
 *   (if they are empty), so nothing of the run is left.
 *
 * @example
 * await RunFolder.check("runs/people", false).catch((e: VideoAnalysisError) => console.log(e.code)); // ALREADY_EXISTS: a run is there
 * const folder = await RunFolder.prepare("runs/new", false); // created, and locked for this process
 * console.log(folder.dir);
 * await folder.release();
 */
export class RunFolder {
  private readonly created: string[] = [];
  private readonly committed: string[] = [];

  private constructor(
    readonly dir: string,
    /** Every file the run's components may write, relative to the folder (Component.files and optionalFiles). */
    private readonly files: readonly string[],
  ) {}

  /** An interrupted run this one resumes (prepare with `resume`, when the folder holds one). */
  interrupted: JournalData | undefined;

  /**
   * Checks the folder without touching it: ALREADY_EXISTS when another run holds it, when it holds a
   * run and overwrite is off, or when it holds an interrupted run and neither resume nor overwrite is on.
   */
  static async check(dir: string, overwrite: boolean, resume = false, files: readonly string[] = []): Promise<void> {
    const abs = resolve(dir);
    let st;
    try {
      st = await stat(abs);
    } catch {
      return;
    }
    if (!st.isDirectory()) throw new VideoAnalysisError("ALREADY_EXISTS", `output ${abs} exists and is not a folder; choose another --out`, { details: { file: abs } });
    if (await exists(join(abs, LOCK_FILE))) {
      const l = await readLock(join(abs, LOCK_FILE));
      if (!l || !stale(l)) throw inUse(abs, l);
    }
    await RunFolder.checkContents(abs, overwrite, resume, files);
  }

  /**
   * Creates the folder (and the components' subfolders on demand later) and takes its lock. With
   * `resume`, an interrupted run's journal is read (`interrupted`); otherwise one there is removed
   * (overwrite), with its files.
   */
  static async prepare(dir: string, overwrite: boolean, resume = false, files: readonly string[] = []): Promise<RunFolder> {
    await RunFolder.check(dir, overwrite, resume, files);
    const f = new RunFolder(resolve(dir), files);
    await f.mkdirs(f.dir);
    await f.lock();
    try {
      // Under the lock: another run may have finished into the folder since the check above.
      await RunFolder.checkContents(f.dir, overwrite, resume, files);
      const j = resume ? await readJournal(f.dir) : undefined;
      if (j) {
        f.interrupted = j;
      } else {
        // Starting afresh: an interrupted run's journal and the files of runs that never committed go.
        await removeJournal(f.dir);
        for (const name of files) await rm(partialPath(join(f.dir, name)), { force: true });
      }
      await removeStaleTempFiles(f.dir);
    } catch (e) {
      await f.discard();
      throw e;
    }
    return f;
  }

  private static async checkContents(abs: string, overwrite: boolean, resume: boolean, files: readonly string[]): Promise<void> {
    if (await exists(join(abs, JOURNAL_FILE))) {
      if (resume || overwrite) return;
      const j = await readJournal(abs).catch(() => undefined);
      const what = j ? `an interrupted run of ${j.video.path} (${j.frames} frames committed)` : "an interrupted run";
      throw new VideoAnalysisError("ALREADY_EXISTS", `output folder ${abs} holds ${what}; pass --resume to continue it (run's { resume: true }), or --overwrite to start over`, {
        details: { file: join(abs, JOURNAL_FILE), ...(j ? { frames_committed: j.frames, video: j.video.path } : {}) },
      });
    }
    if (overwrite) return;
    for (const name of [MANIFEST_FILE, ...files]) {
      if (await exists(join(abs, name))) {
        throw new VideoAnalysisError("ALREADY_EXISTS", `output folder ${abs} already holds a ${name === MANIFEST_FILE ? "complete " : ""}run (${name})${resume ? ", nothing to resume" : ""}; choose another --out, or pass --overwrite (output.overwrite: true in the profile) to replace it`, { details: { file: join(abs, name) } });
      }
    }
  }

  private locked = false;

  /** Creates the lock file exclusively; takes over a stale one. */
  private async lock(): Promise<void> {
    const path = join(this.dir, LOCK_FILE);
    for (let attempt = 0; ; attempt++) {
      try {
        const h = await open(path, "wx", 0o644);
        try {
          await h.writeFile(JSON.stringify({ pid: process.pid, host: hostname(), started_at: new Date().toISOString() } satisfies LockInfo));
        } finally {
          await h.close();
        }
        this.locked = true;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw ioError(path, "create the lock file", e);
      }
      const held = await readLock(path);
      if (attempt > 0 || !held || !stale(held)) throw inUse(this.dir, held);
      // Moved aside and read back before it is deleted: a run that took the same stale lock over first may
      // have put its own lock there meanwhile, which is put back, and this run stops.
      const aside = `${path}.stale-${process.pid}`;
      try {
        await rename(path, aside);
      } catch {
        throw inUse(this.dir, await readLock(path));
      }
      const moved = await readLock(aside);
      if (!moved || moved.pid !== held.pid || moved.started_at !== held.started_at) {
        await rename(aside, path).catch(() => undefined);
        throw inUse(this.dir, moved);
      }
      await rm(aside, { force: true });
      process.emitWarning(`took over the lock of ${this.dir} from process ${held.pid} (${held.host}, since ${held.started_at}), which is no longer running`, { code: "VASDK_STALE_LOCK" });
    }
  }

  /** Gives the folder back (after the manifest is written, or by discard()). Never throws. */
  async release(): Promise<void> {
    if (!this.locked) return;
    this.locked = false;
    await rm(join(this.dir, LOCK_FILE), { force: true }).catch(() => undefined);
  }

  /**
   * Just before the new artifacts are renamed into place: an old run's manifest goes first, so the folder
   * never claims to hold a complete run that is half old and half new.
   */
  async retireOldManifest(): Promise<void> {
    try {
      await unlink(join(this.dir, MANIFEST_FILE));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(join(this.dir, MANIFEST_FILE), "delete", e);
    }
  }

  /** After the new artifacts are in place: the old run's artifacts that this run did not write again. */
  async removeOldArtifacts(): Promise<void> {
    const mine = new Set(this.committed);
    for (const name of this.files) {
      const p = join(this.dir, name);
      if (mine.has(p)) continue;
      try {
        await unlink(p);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(p, "delete", e);
      }
    }
  }

  /** Makes the folder of `path` (inside the run folder), remembering which folders this run created. */
  async ensureParent(path: string): Promise<void> {
    const parent = dirname(resolve(path));
    await this.mkdirs(parent);
    await removeStaleTempFiles(parent);
  }

  private async mkdirs(dir: string): Promise<void> {
    this.created.push(...(await makeFolders(dir)));
  }

  /** Records a file this run renamed into place (deleted again by discard()). */
  committedFile(path: string): void {
    this.committed.push(resolve(path));
  }

  /** Deletes what this run put in place and the empty folders it created, and gives the lock back. Never throws. */
  async discard(): Promise<void> {
    for (const p of this.committed.reverse()) await rm(p, { force: true }).catch(() => undefined);
    this.committed.length = 0;
    await this.release();
    for (const d of [...this.created].reverse()) {
      // Only folders inside or equal to the run folder's own chain, and only when empty.
      try {
        if ((await readdir(d)).length === 0) await rmdir(d);
      } catch {
        /* not empty or gone */
      }
    }
  }

  /** A path inside the folder, for messages. */
  rel(path: string): string {
    return relative(this.dir, path).split(sep).join("/");
  }
}
