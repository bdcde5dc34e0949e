// Short real clips for the batch and queue tests, and `main`'s run of each to compare artifacts with.
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ModelManager } from "../../src/pipeline/model-manager.js";
import { ARTIFACT_FILES } from "../../src/components/builtins.js";
import { ffmpegRun, filesUnder, npzDifferences, EMBEDDED_PROFILE } from "../pipeline/support.js";
import { repoRoot, testdata } from "../support/testdata.js";

export { EMBEDDED_PROFILE };
/** The clips' source: 30 s of cars seen from above (CC-BY-4.0, ../shared/testdata/video). */
export const SOURCE = ["video", "cars_768x432_12fps.mp4"] as const;
/** The analysis rate the tests use (as `--fps 2`): a 1.5 s clip gives 3-4 frames. */
export const FPS = 2;
export const OVERRIDES = { analysis: { fps: FPS } };

/** `n` clips of `seconds` each, cut from the source at 2 s steps and scaled to 320x180 (every family's small branch). */
export function makeClips(dir: string, n: number, seconds = 1.5, prefix = "clip"): string[] {
  return Array.from({ length: n }, (_, i) => {
    const out = join(dir, `${prefix}${String(i).padStart(2, "0")}.mp4`);
    ffmpegRun(["-ss", String((i * 2) % 26), "-t", String(seconds), "-i", testdata(...SOURCE), "-vf", "scale=320:180", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an", out]);
    return out;
  });
}

/** A copy of `src` cut to its first 40 % of bytes: an MP4 without its index. */
export function truncated(src: string, dst: string): string {
  const b = readFileSync(src);
  writeFileSync(dst, b.subarray(0, Math.floor(b.length * 0.4)));
  return dst;
}

/** What `main --fps 2` writes for each video: one ModelManager, as `main` uses it, one run folder each under `dir`. */
export async function mainRuns(videos: string[], dir: string): Promise<Map<string, string>> {
  const mm = await ModelManager.fromProfile(EMBEDDED_PROFILE, { overrides: OVERRIDES });
  const out = new Map<string, string>();
  try {
    for (const [i, v] of videos.entries()) {
      const run = join(dir, `ref${i}`);
      await mm.run(v, { out: run });
      out.set(v, run);
    }
  } finally {
    await mm.close();
  }
  return out;
}

/** Differences between two run folders: their file lists, and every artifact's arrays (numpy, bit for bit). */
export async function runDifferences(a: string, b: string): Promise<string[]> {
  const diffs: string[] = [];
  const fa = filesUnder(a);
  const fb = filesUnder(b);
  if (JSON.stringify(fa) !== JSON.stringify(fb)) diffs.push(`files: ${fa.join(",")} vs ${fb.join(",")}`);
  for (const f of ARTIFACT_FILES) {
    if (!existsSync(join(a, f)) || !existsSync(join(b, f))) continue;
    const d = await npzDifferences(join(a, f), join(b, f));
    if (d.length) diffs.push(`${f}: ${d.join(",")}`);
  }
  const ma = JSON.parse(readFileSync(join(a, "manifest.json"), "utf8"));
  const mb = JSON.parse(readFileSync(join(b, "manifest.json"), "utf8"));
  if (JSON.stringify(ma.analysis) !== JSON.stringify(mb.analysis)) diffs.push("manifest analysis");
  if (JSON.stringify(ma.resolved_model_mapping) !== JSON.stringify(mb.resolved_model_mapping)) diffs.push("manifest resolved_model_mapping");
  return diffs;
}

/**
 * The shipped embedded profile committing after every frame (it commits every 5 s), written into `dir`
 * with its model folder made absolute: a run killed early then has commits to resume from.
 */
export function eagerProfile(dir: string): string {
  const path = join(dir, "eager.yaml");
  writeFileSync(
    path,
    readFileSync(EMBEDDED_PROFILE, "utf8")
      .replace("${VIDEO_SDK_MODELS_DIR:-../models/contract}", join(repoRoot, "models", "contract"))
      .replace(/^output:\n/m, "output:\n  commit_interval_s: 0\n"),
  );
  return path;
}
