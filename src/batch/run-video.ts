import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile, readdir } from "node:fs/promises";
import { join, resolve } from "node:path";
import { MANIFEST_FILE, sdkVersion, type Manifest } from "../artifacts/manifest.js";
import { VideoAnalysisError } from "../errors.js";
import { JOURNAL_FILE } from "../pipeline/journal.js";
import type { ModelManager } from "../pipeline/model-manager.js";
import type { RunResult } from "../pipeline/video-run.js";
import type { Progress } from "../pipeline/progress.js";
import type { Profile } from "../profiles/schema.js";

/** What became of one video: analysed now, or found complete in its run folder and left alone. */
export interface VideoOutcome {
  status: "done" | "skipped";
  /** The run folder (absolute). */
  runDir: string;
  frames: number;
  /** The video's duration, seconds (from its manifest). */
  videoSeconds: number;
  /** Wall time of this run (0 for a skipped one). */
  wallMs: number;
  /** Set for "done": the run's result. */
  result?: RunResult;
}

export interface RunVideoOptions {
  signal?: AbortSignal;
  onProgress?: (p: Progress) => void;
}

/**
 * A fingerprint of what a profile computes: sha256 of its validated form with keys sorted, `output` left
 * out (where and whether to overwrite do not change results) and header values (tokens) left out, as the
 * manifest masks them. The same video under the same fingerprint and SDK version gives the same artifacts.
 */
export function profileFingerprint(profile: Profile): string {
  const { output: _output, ...rest } = structuredClone(profile);
  if (rest.backend.triton) rest.backend.triton.headers = Object.fromEntries(Object.keys(rest.backend.triton.headers).map((k) => [k, "***"]));
  return createHash("sha256").update(canonicalJson(rest)).digest("hex");
}

function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(",")}]`;
  if (v && typeof v === "object") {
    return `{${Object.keys(v as object).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined).map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`).join(",")}}`;
  }
  return JSON.stringify(v) ?? "null";
}

/** The manifest in `runDir`, undefined when there is none (the folder holds no complete run). */
async function readManifest(runDir: string): Promise<Manifest | undefined> {
  let text: string;
  try {
    text = await readFile(join(runDir, MANIFEST_FILE), "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new VideoAnalysisError("IO_ERROR", `cannot read ${join(runDir, MANIFEST_FILE)} (${(e as NodeJS.ErrnoException).code ?? String(e)}); check the folder`, { details: { file: join(runDir, MANIFEST_FILE) } });
  }
  try {
    return JSON.parse(text) as Manifest;
  } catch {
    throw new VideoAnalysisError("DATA_LOSS", `${join(runDir, MANIFEST_FILE)} is not valid JSON; delete the run folder ${runDir} to analyse the video again`, { details: { file: join(runDir, MANIFEST_FILE) } });
  }
}

async function isEmptyOrAbsent(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length === 0;
  } catch {
    return true;
  }
}

/**
 * The one way `batch` and `worker` analyse a video into its run folder:
 * - a folder whose manifest is of this video, this profile (fingerprint) and this SDK version is complete:
 *   skipped, nothing is read or written;
 * - a manifest of another video, profile or SDK version: ALREADY_EXISTS (never replaced behind the user's back);
 * - a folder holding an interrupted run's journal is resumed from its last commit (`resume`); leftovers
 *   of a run killed before its first commit are replaced by a run from the first frame (`overwrite`);
 * - otherwise a fresh run.
 */
export async function runVideo(mm: ModelManager, video: string, runDir: string, options: RunVideoOptions = {}): Promise<VideoOutcome> {
  const abs = resolve(runDir);
  const manifest = await readManifest(abs);
  if (manifest) {
    const fp = manifestFingerprint(manifest);
    const same = manifest.video?.path === resolve(video) && fp === profileFingerprint(mm.profile) && manifest.sdk?.version === sdkVersion().version;
    if (!same) {
      throw new VideoAnalysisError(
        "ALREADY_EXISTS",
        `run folder ${abs} holds a complete run of ${manifest.video?.path ?? "another video"} made with ${manifest.profile?.name ?? "another profile"} (SDK ${manifest.sdk?.version}); ` +
          `it is not this video's run under this profile and SDK version: delete it, or write this batch to another --out`,
        { details: { file: join(abs, MANIFEST_FILE), video } },
      );
    }
    return { status: "skipped", runDir: abs, frames: manifest.analysis.frames, videoSeconds: manifest.video.duration, wallMs: 0 };
  }
  const leftovers = !(await isEmptyOrAbsent(abs)) && !existsSync(join(abs, JOURNAL_FILE));
  const t0 = performance.now();
  const result = await mm.run(video, {
    out: abs,
    ...(options.signal ? { signal: options.signal } : {}),
    ...(options.onProgress ? { onProgress: options.onProgress } : {}),
    resume: true,
    ...(leftovers ? { overwrite: true } : {}),
  });
  return { status: "done", runDir: abs, frames: result.manifest.analysis.frames, videoSeconds: result.manifest.video.duration, wallMs: performance.now() - t0, result };
}

/** The fingerprint of the profile a manifest records (its profile with `output` as recorded). */
function manifestFingerprint(m: Manifest): string | undefined {
  return m.profile ? profileFingerprint(m.profile) : undefined;
}
