import { basename, isAbsolute, relative } from "node:path";
import { VideoAnalysisError } from "../../errors.js";
import type { RunResult } from "../../pipeline/model-manager.js";
import { ProgressReporter } from "../../pipeline/progress.js";
import { probeVideo } from "../../video/metadata.js";
import { numberFlag, parseCommandArgs, required, stopOnSignals, usageError, type Command } from "../command.js";

function kib(bytes: number): string {
  return bytes >= 1 << 20 ? `${(bytes / (1 << 20)).toFixed(1)} MiB` : `${(bytes / 1024).toFixed(1)} KiB`;
}

/** The one JSON object `main --json` prints. */
export function runSummary(r: RunResult): Record<string, unknown> {
  const m = r.manifest;
  return {
    out: r.out,
    manifest: r.manifestPath,
    video: m.video.path,
    analysis: m.analysis,
    frames: m.analysis.frames,
    timings: m.timings,
    artifacts: m.artifacts.map((a) => ({ component: a.component, path: a.path, bytes: a.bytes, frames: a.frames })),
    ...(m.report ? { report: { path: m.report.file, bytes: m.report.bytes } } : {}),
    models_used: m.models_used.map((u) => ({ slot: u.slot, name: u.name, branch: u.branch, size: u.size, backend: u.backend, calls: u.calls, latency_ms: u.latency_ms })),
    /** High-water mark of this process's resident memory (ffmpeg's own not included). */
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    /** CPU seconds of this process so far (ffmpeg's own not included): what the SDK costs the client machine. */
    cpu_s: +((process.cpuUsage().user + process.cpuUsage().system) / 1e6).toFixed(3),
  };
}

/** `argv` of `main` as a command line to paste, with --resume (and without --no-keep). */
export function resumeCommand(argv: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", "'\\''")}'`);
  const args = argv.filter((a) => a !== "--no-keep" && a !== "--resume");
  return ["video-analysis", "main", ...args, "--resume"].map(quote).join(" ");
}

/** The human summary printed at the end of `main`. */
export function formatRun(r: RunResult): string {
  const m = r.manifest;
  const v = m.video;
  // Relative to the working folder when the run lies inside it, else as given.
  const relPath = relative(process.cwd(), r.out);
  const rel = relPath === "" ? "." : relPath.startsWith("..") || isAbsolute(relPath) ? r.out : relPath;
  const lines = [
    `video    ${basename(v.path)}: ${v.display_width}x${v.display_height} ${v.codec}, ${+v.frame_rate.toFixed(3)} fps, ${v.duration.toFixed(1)} s`,
    `profile  ${m.profile.name}: analysis ${m.analysis.width}x${m.analysis.height} at ${m.analysis.fps} fps, ${m.models_used[0]?.backend ?? "no"} backend`,
    "models",
  ];
  const w = Math.max(...m.models_used.map((u) => u.slot.length));
  for (const u of m.models_used) {
    const lat = u.latency_ms ? `p50 ${u.latency_ms.p50.toFixed(1)} ms, p95 ${u.latency_ms.p95.toFixed(1)} ms` : "no calls";
    lines.push(`  ${u.slot.padEnd(w)}  ${u.branch}${u.size ? ` (${u.size})` : ""}  ${u.calls} calls, ${lat}`);
  }
  const t = m.timings;
  const d = m.analysis.decode;
  const c = m.analysis.decoding;
  const upTo = c.stopped_early ? " until the run stopped" : "";
  lines.push(
    d.mode === "sparse"
      ? `decoded  ${c.frames_decoded} of ${d.source_frames} source frames${upTo} (sparse: the others are neither analysed nor referenced)`
      : `decoded  ${c.frames_decoded} of ${c.source_frames} source frames${upTo} (every frame: ${d.reason})`,
  );
  lines.push(`wrote    ${rel}/: ${m.analysis.frames} frames in ${(t.wall_ms / 1000).toFixed(1)} s (${t.frames_per_second.toFixed(1)} frames/s)`);
  const pw = Math.max(...m.artifacts.map((a) => a.path.length), "manifest.json".length);
  for (const a of m.artifacts) lines.push(`  ${a.path.padEnd(pw)}  ${kib(a.bytes).padStart(10)}  ${Object.entries(a.arrays).map(([k, x]) => `${k}${JSON.stringify(x.shape)}`).join(" ")}`);
  if (m.report) lines.push(`  ${m.report.file.padEnd(pw)}  ${kib(m.report.bytes).padStart(10)}  ${m.report.thumbnails.picker_frames} frames, ${m.report.thumbnails.track_thumbnails} tracks`);
  lines.push(`  ${"manifest.json".padEnd(pw)}`);
  const s = t.stages_ms;
  lines.push(`stages   busy ms (they overlap): ${Object.entries(s).map(([k, x]) => `${k} ${Math.round(x)}`).join(", ")}`);
  return lines.join("\n");
}

export const mainCommand: Command = {
  name: "main",
  summary: "analyse a video with a profile's components and write the run folder (.npz artifacts + manifest.json)",
  usage: "video-analysis main --video V --profile P [--out DIR] [--quiet] [--json] [--overwrite] [--resume] [--no-keep] [--fps F] [--max-frames N] [--strict]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      video: { type: "string", value: "FILE", description: "the video to analyse (a local file; ffprobe must read it)" },
      profile: { type: "string", value: "FILE", description: "the YAML profile: backend, components, routing (e.g. node_modules/video-analysis-sdk/profiles/embedded_cpu.yaml)" },
      out: { type: "string", value: "DIR", description: "the run folder to write (default: the profile's output.dir)" },
      quiet: { type: "boolean", default: false, description: "print nothing on success (no progress, no summary)" },
      json: { type: "boolean", default: false, description: "print one JSON object with the run's summary instead of the text summary" },
      overwrite: { type: "boolean", default: false, description: "replace a run folder that holds an earlier run" },
      fps: { type: "string", value: "F", description: "analysis frames per second, 0.001 to 1000 (default: the profile's analysis.fps)" },
      "max-frames": { type: "string", value: "N", description: "stop after N analysis frames" },
      resume: { type: "boolean", default: false, description: "go on with the interrupted run in --out from its last commit (same video and profile)" },
      "no-keep": { type: "boolean", default: false, description: "a run that stops (signal, failure) leaves nothing, not its committed frames" },
      strict: { type: "boolean", default: false, description: "decoding errors stop the run (default: counted, warned, recorded in the manifest)" },
    });
    const video = required(this, "video", values.video);
    const profilePath = required(this, "profile", values.profile);
    const overrides: Record<string, unknown> = {};
    if (values.fps !== undefined) overrides.analysis = { fps: numberFlag("fps", values.fps, 1, { min: 0.001, max: 1000 }) };
    const maxFrames = values["max-frames"] === undefined ? undefined : numberFlag("max-frames", values["max-frames"], 1, { min: 1 });
    if (maxFrames !== undefined && !Number.isInteger(maxFrames)) throw usageError(this, `--max-frames must be a whole number, got ${maxFrames}`);

    // Ctrl-C, SIGTERM or SIGHUP stop the run cleanly: ffmpeg is killed, calls cancelled, the frames
    // committed so far kept for --resume (--no-keep: nothing left in --out).
    const stop = stopOnSignals(values.quiet ? undefined : () => `stopping; ${values["no-keep"] ? "the run folder is being cleaned up" : "the committed frames are kept for --resume"}`);

    // ffprobe reads the video while the pipeline's modules load and the profile is read; its errors
    // surface in run(), after the profile's and the output folder's.
    const metadata = probeVideo(video);
    metadata.catch(() => undefined);
    const { ModelManager } = await import("../../pipeline/model-manager.js");
    const reporter = new ProgressReporter(process.stderr, values.json ? "none" : ProgressReporter.modeFor(process.stderr, values.quiet));
    const mm = await ModelManager.fromProfile(profilePath, { overrides });
    try {
      const r = await mm.run(video, {
        metadata,
        ...(values.out !== undefined ? { out: values.out } : {}),
        signal: stop.signal,
        onProgress: (p) => reporter.update(p),
        ...(values.overwrite ? { overwrite: true } : {}),
        ...(values.resume ? { resume: true } : {}),
        ...(values["no-keep"] ? { keep: false } : {}),
        ...(maxFrames !== undefined ? { maxFrames } : {}),
        ...(values.strict ? { strict: true } : {}),
      });
      reporter.done();
      if (values.json) console.log(JSON.stringify(runSummary(r)));
      else if (!values.quiet) console.log(formatRun(r));
      return 0;
    } catch (e) {
      reporter.done();
      // A run that kept its committed frames says how to go on: this very command, with --resume.
      const again = e instanceof VideoAnalysisError && e.details.resumable ? `resume with: ${resumeCommand(argv)}` : undefined;
      if (e instanceof VideoAnalysisError && e.code === "CANCELLED") {
        if (stop.stoppedBy !== "SIGHUP") console.error(`video-analysis: ${e.toString()}${again ? `\n${again}` : ""}`);
        return stop.exitStatus();
      }
      if (again && e instanceof VideoAnalysisError) {
        console.error(`video-analysis: ${e.toString()}\n${again}`);
        return 1;
      }
      throw e;
    } finally {
      stop.release();
      await mm.close();
    }
  },
};
