import { mkdir, readdir, rm, rmdir, stat, unlink } from "node:fs/promises";
import { dirname, join, relative, resolve, sep } from "node:path";
import { ioError, removeStaleTempFiles } from "../artifacts/atomic.js";
import { MANIFEST_FILE } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";

/** Every file a run can write, relative to its folder (SPEC section 4). */
export const ARTIFACT_FILES = [
  "core_clip/embeddings.npz",
  "core_depth_midas/depth.npz",
  "core_optical_flow/flow.npz",
  "core_object_detections/detections.npz",
  "scene/places.npz",
] as const;

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
 * - a folder that already holds a run (its manifest or any artifact) is refused unless `overwrite`;
 *   with `overwrite` the old manifest is deleted first, then the old artifacts, before anything is written;
 * - artifacts are written under temporary names and renamed into place one by one at the end, and
 *   manifest.json is written last (a folder is complete exactly when it has the manifest);
 * - on failure `discard()` deletes whatever this run renamed into place and the folders it created
 *   (if they are empty), so nothing of the run is left.
 */
export class RunFolder {
  private readonly created: string[] = [];
  private readonly committed: string[] = [];

  private constructor(readonly dir: string) {}

  /** Checks the folder without touching it: ALREADY_EXISTS when it holds a run and overwrite is off. */
  static async check(dir: string, overwrite: boolean): Promise<void> {
    const abs = resolve(dir);
    let st;
    try {
      st = await stat(abs);
    } catch {
      return;
    }
    if (!st.isDirectory()) throw new VideoAnalysisError("ALREADY_EXISTS", `output ${abs} exists and is not a folder; choose another --out`, { details: { file: abs } });
    if (overwrite) return;
    for (const f of [MANIFEST_FILE, ...ARTIFACT_FILES]) {
      if (await exists(join(abs, f))) {
        throw new VideoAnalysisError(
          "ALREADY_EXISTS",
          `output folder ${abs} already holds a run (${f}); choose another --out, or pass --overwrite (output.overwrite: true in the profile) to replace it`,
          { details: { file: join(abs, f) } },
        );
      }
    }
  }

  /** Creates the folder (and the components' subfolders on demand later); clears an old run when overwriting. */
  static async prepare(dir: string, overwrite: boolean): Promise<RunFolder> {
    await RunFolder.check(dir, overwrite);
    const f = new RunFolder(resolve(dir));
    await f.mkdirs(f.dir);
    if (overwrite) {
      // The old manifest first: from this moment the folder no longer claims to hold a complete run.
      for (const name of [MANIFEST_FILE, ...ARTIFACT_FILES]) {
        try {
          await unlink(join(f.dir, name));
        } catch (e) {
          if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw ioError(join(f.dir, name), "delete", e);
        }
      }
    }
    await removeStaleTempFiles(f.dir);
    return f;
  }

  /** Makes the folder of `path` (inside the run folder), remembering which folders this run created. */
  async ensureParent(path: string): Promise<void> {
    const parent = dirname(resolve(path));
    await this.mkdirs(parent);
    await removeStaleTempFiles(parent);
  }

  private async mkdirs(dir: string): Promise<void> {
    const missing: string[] = [];
    for (let d = dir; !(await exists(d)); d = dirname(d)) {
      missing.unshift(d);
      if (dirname(d) === d) break;
    }
    try {
      await mkdir(dir, { recursive: true });
    } catch (e) {
      throw ioError(dir, "create the folder", e);
    }
    this.created.push(...missing);
  }

  /** Records a file this run renamed into place (deleted again by discard()). */
  committedFile(path: string): void {
    this.committed.push(resolve(path));
  }

  /** Deletes what this run put in place and the empty folders it created. Never throws. */
  async discard(): Promise<void> {
    for (const p of this.committed.reverse()) await rm(p, { force: true }).catch(() => undefined);
    this.committed.length = 0;
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
