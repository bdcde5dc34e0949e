import { VideoAnalysisError } from "../../errors.js";
import { VIDEO_EXTENSIONS } from "../../batch/inputs.js";
import { numberFlag, parseCommandArgs, required, stopOnSignals, usageError, type Command, type OptionSpecs } from "../command.js";

/** A whole-number flag. */
export function intFlag(flag: string, value: string | undefined, fallback: number, min: number): number {
  const n = numberFlag(flag, value, fallback, { min });
  if (!Number.isInteger(n)) throw usageError(undefined, `--${flag} must be a whole number, got "${value}"`);
  return n;
}

/** The options every command that takes many videos shares. */
export const INPUT_OPTIONS = {
  profile: { type: "string", value: "FILE", description: "the YAML profile every video is analysed with (required)" },
  out: { type: "string", value: "DIR", description: "the folder that gets one run folder per video (required)" },
  list: { type: "string", multiple: true, value: "FILE", description: "a file naming videos, one path a line (# starts a comment; relative to the list's folder)" },
  ext: { type: "string", value: "LIST", description: `extensions a folder is searched for, comma-separated (default ${VIDEO_EXTENSIONS.map((e) => e.slice(1)).join(",")})` },
  fps: { type: "string", value: "F", description: "analysis frames per second for every video (default: the profile's analysis.fps)" },
  json: { type: "boolean", default: false, description: "print one JSON object with the result instead of text" },
  quiet: { type: "boolean", default: false, description: "print nothing on success (no progress, no summary)" },
} as const satisfies OptionSpecs;

export function inputOptions(values: { ext?: string | undefined; list?: string[] | undefined; fps?: string | undefined }) {
  return {
    ...(values.ext ? { extensions: values.ext.split(",").map((e) => e.trim()).filter(Boolean) } : {}),
    ...(values.list ? { lists: values.list } : {}),
    overrides: values.fps !== undefined ? { analysis: { fps: numberFlag("fps", values.fps, 1, { min: 0.001 }) } } : {},
  };
}

export const batchCommand: Command = {
  name: "batch",
  summary: "analyse many videos (files, folders, globs, --list files) into one run folder each under --out",
  usage:
    "video-analysis batch --profile P --out DIR [--jobs N] [--retries N] [--list FILE]... [--ext mp4,mov] [--fps F] [--json] [--quiet] <videos, folders or 'globs'...>",
  async run(argv) {
    const { values, positionals } = parseCommandArgs(this, argv, {
      ...INPUT_OPTIONS,
      jobs: { type: "string", value: "N", description: "videos analysed at once (default: Triton min(4, cores); embedded 2 on 8 or more cores, else 1)" },
      retries: { type: "string", value: "N", description: "attempts after the first for a video that fails (default 1)" },
    }, true);
    const profilePath = required(this, "profile", values.profile);
    const out = required(this, "out", values.out);
    const { overrides, ...expand } = inputOptions(values);
    if (positionals.length === 0 && !values.list) throw usageError(this, "no videos: name files, folders or globs, or --list FILE");
    const jobs = values.jobs === undefined ? undefined : intFlag("jobs", values.jobs, 1, 1);
    const retries = intFlag("retries", values.retries, 1, 0);

    const { expandInputs } = await import("../../batch/inputs.js");
    const expanded = await expandInputs(positionals, expand);
    const { ModelManager } = await import("../../pipeline/model-manager.js");
    const { runBatch, formatBatchProgress, BATCH_FILE } = await import("../../batch/batch.js");

    // One Ctrl-C/SIGTERM stops the running videos (their committed frames kept for a resume) and writes batch.json; a second exits.
    const stop = stopOnSignals(values.quiet ? undefined : () => "stopping the batch");

    const tty = process.stderr.isTTY && !values.json;
    const show = !values.quiet && !values.json;
    let last = 0;
    let lastSettled = -1;
    const mm = await ModelManager.fromProfile(profilePath, { overrides });
    try {
      const report = await runBatch(mm, positionals, {
        out, retries, expanded, signal: stop.signal, ...(jobs ? { jobs } : {}),
        onProgress: (p) => {
          if (!show) return;
          const now = performance.now();
          const settled = p.done + p.skipped + p.failed;
          const line = formatBatchProgress(p);
          // A line redrawn in place on a terminal (10 a second at most); elsewhere one every 5 s and each video's end.
          if (tty) {
            if (now - last >= 100 || settled === p.total) process.stderr.write(`\r${line}\x1b[K`);
            else return;
          } else {
            if (settled === lastSettled && now - last < 5000) return;
            lastSettled = settled;
            process.stderr.write(`${line}\n`);
          }
          last = now;
        },
      });
      if (show && tty) process.stderr.write("\n");
      const failed = report.videos.filter((v) => v.status === "failed");
      if (values.json) {
        console.log(JSON.stringify({ out: report.out, batch_file: `${report.out}/${BATCH_FILE}`, counts: report.counts, wall_ms: report.wall_ms, video_seconds_per_second: report.video_seconds_per_second, jobs: report.jobs, failed: failed.map((f) => ({ video: f.video, attempts: f.attempts, error: f.error })) }));
      } else if (!values.quiet) {
        const c = report.counts;
        console.log(`batch    ${report.videos.length} videos: ${c.done} analysed, ${c.skipped} skipped (complete), ${c.failed} failed, in ${(report.wall_ms / 1000).toFixed(1)} s with ${report.jobs} at once (${report.video_seconds_per_second.toFixed(2)} video-s per s)`);
        for (const f of failed) console.log(`failed   ${f.video} after ${f.attempts} attempt${f.attempts === 1 ? "" : "s"}: [${f.error?.code}] ${f.error?.message}`);
        console.log(`wrote    ${report.out}/${BATCH_FILE}`);
      }
      return failed.length === 0 ? 0 : 1;
    } catch (e) {
      if (show && tty) process.stderr.write("\n");
      if (e instanceof VideoAnalysisError && e.code === "CANCELLED" && stop.stoppedBy) {
        if (stop.stoppedBy !== "SIGHUP") console.error(`video-analysis: ${e.toString()}`);
        return stop.exitStatus();
      }
      throw e;
    } finally {
      stop.release();
      await mm.close();
    }
  },
};
