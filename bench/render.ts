/**
 * `video-analysis bench render`: what seeing a run costs.
 *
 * - Render speed against ffmpeg alone: the same frames of the people video decoded, (drawn,) and encoded
 *   with the same x264 settings (x264Args: preset, crf, threads left to x264 on both sides); `ratio` is
 *   ffmpeg alone's wall time over render's (goal >= 0.7), both whole processes (Node's start included), at
 *   the analysis rate and at the source rate, runs interleaved: the median, min and max of the --repeat
 *   pairs. `cpu_ratio` is the same with CPU seconds (render's process and its two ffmpegs, from bash's
 *   `times`): on a shared machine the wall time mostly measures the neighbours.
 * - Text: an SVG overlay composited by sharp per frame against the glyph atlas (font.ts).
 * - A 10-minute run (the people video looped into /tmp with ffmpeg, analysed by `main` with the embedded
 *   profile and the real YOLO11n at --fps): report.html's size and the time to write it; then that run
 *   rendered at the source rate with this process's peak RSS sampled (memory stays flat).
 * - --report-cost: what report.html costs `main` on bench pipeline's 60 s 1080p30 input (embedded profile,
 *   contract models, 5 fps): main with and without the report (alternated, twice each), writeReport
 *   alone, and the reader's decode alone as the report asks for it (the analysed frames again, full size).
 */
import { spawn } from "node:child_process";
import { existsSync, mkdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { VideoAnalysisError } from "../src/errors.js";
import { ModelManager } from "../src/pipeline/model-manager.js";
import { x264Args } from "../src/render/overlay.js";
import { renderRun } from "../src/render/render.js";
import { writeReport } from "../src/report/report.js";
import { ffmpegFileUrl, ffmpegPath } from "../src/video/ffmpeg-tools.js";
import { selectExpression } from "../src/video/frame-plan.js";
import { probeVideo } from "../src/video/metadata.js";
import { repoRoot, testdata } from "../test/support/testdata.js";
import { benchVideo, childrenCpuSeconds } from "./pipeline.js";
import { percentile, printTable } from "./stats.js";

const PROFILE = join(repoRoot, "profiles", "embedded_cpu.yaml");

function need(...parts: string[]): string {
  const p = testdata(...parts);
  if (!existsSync(p)) throw new VideoAnalysisError("NOT_FOUND", `the render benchmark needs the shared test data: ${p} is absent (set VIDEO_SDK_TESTDATA)`);
  return p;
}

function ffmpeg(args: string[]): Promise<number> {
  return timed(ffmpegPath(), ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", ...args]).then((r) => r.wallMs);
}

const sh = (a: string) => `'${a.replace(/'/g, "'\\''")}'`;

/**
 * Runs a command under bash and reads bash's `times`: the wall time and the CPU seconds of the command
 * and every process it started (ffmpeg's decoder and encoder included), which on a shared machine says
 * more than the wall time. The command's stdout is returned.
 */
function timed(cmd: string, args: string[]): Promise<{ wallMs: number; cpuS: number; stdout: string }> {
  const t0 = performance.now();
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", `${[cmd, ...args].map(sh).join(" ")} || exit 1; times`], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    p.stdout.on("data", (d) => (out += String(d)));
    p.stderr.on("data", (d) => (err += String(d)));
    p.on("error", reject);
    p.on("close", (code) => {
      if (code !== 0) return reject(new Error(`${cmd} failed (${code}): ${err}`));
      const lines = out.trimEnd().split("\n");
      // `times`: the shell's own user/system, then its children's: "0m1.234s 0m0.100s".
      const m = /(\d+)m([\d.]+)s (\d+)m([\d.]+)s/.exec(lines.at(-1)!);
      const cpuS = m ? Number(m[1]) * 60 + Number(m[2]) + Number(m[3]) * 60 + Number(m[4]) : Number.NaN;
      resolve({ wallMs: performance.now() - t0, cpuS, stdout: lines.slice(0, -2).join("\n") });
    });
  });
}

async function analyse(video: string, out: string, fps: number, maxFrames?: number) {
  rmSync(out, { recursive: true, force: true });
  const mm = await ModelManager.fromProfile(PROFILE, {
    overrides: { analysis: { fps }, backend: { embedded: { models: { yolo11n_640: need("models", "yolo11n_int8_640.onnx") } } } },
  });
  try {
    const t0 = performance.now();
    const r = await mm.run(video, { out, ...(maxFrames ? { maxFrames } : {}) });
    return { ...r, ms: performance.now() - t0 };
  } finally {
    await mm.close();
  }
}

/** Wall and CPU seconds of `f` (this process and its children that ended: ffmpeg, ffprobe). */
async function measured<T>(f: () => Promise<T>): Promise<{ value: T; s: number; cpuS: number }> {
  const cpu = () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6 + (childrenCpuSeconds() ?? Number.NaN);
  };
  const t0 = performance.now();
  const c0 = cpu();
  const value = await f();
  return { value, s: +((performance.now() - t0) / 1000).toFixed(2), cpuS: +(cpu() - c0).toFixed(2) };
}

/**
 * The report's cost to `main`: its second decode of the video (the picker's and the track crops' frames)
 * against the run itself, on the 60 s 1080p30 input of bench pipeline.
 */
async function reportCost(work: string, log: (s: string) => void): Promise<Array<Record<string, unknown>>> {
  const cache = process.env.VIDEO_SDK_BENCH_CACHE ?? join(tmpdir(), "video-analysis-bench");
  const video = await benchVideo(cache, 60);
  const fps = 5;
  const rows: Array<Record<string, unknown>> = [];
  const main = async (report: boolean, i: number) => {
    const out = join(work, `report-cost-${report}-${i}`);
    rmSync(out, { recursive: true, force: true });
    const mm = await ModelManager.fromProfile(PROFILE, { overrides: { analysis: { fps }, output: { report } } });
    try {
      return await measured(() => mm.run(video, { out }));
    } finally {
      await mm.close();
    }
  };
  let runDir = "";
  for (let i = 0; i < 2; i++)
    for (const report of [false, true]) {
      const m = await main(report, i);
      if (report) runDir = m.value.out;
      rows.push({ what: `main, report ${report ? "on" : "off"}`, s: m.s, cpu_s: m.cpuS });
      log(`report cost: ${JSON.stringify(rows.at(-1))}`);
    }
  const { readFrames } = await import("../src/video/frame-reader.js");
  for (let i = 0; i < 2; i++) {
    const r = await measured(() => writeReport(runDir));
    rows.push({ what: "writeReport alone", s: r.s, cpu_s: r.cpuS });
    const d = await measured(async () => {
      let n = 0;
      const reader = readFrames(video, { fps });
      for await (const f of reader) {
        n++;
        reader.recycle(f.data);
      }
      return n;
    });
    rows.push({ what: `its decode alone (${d.value} frames, full size, rgb24)`, s: d.s, cpu_s: d.cpuS });
    log(`report cost: ${JSON.stringify(rows.slice(-2))}`);
  }
  return rows;
}

/**
 * The two ways of drawing the labels' text, on the same 768x432 frame with the same six labels: an SVG
 * overlay composited by sharp on every frame, against the glyph atlas (rendered by sharp once) blended in JS.
 */
async function textCost(frames = 100): Promise<Record<string, number>> {
  const { default: sharp } = await import("sharp");
  const { GlyphFont } = await import("../src/render/font.js");
  const { drawBox, labelFontSize, lineThickness } = await import("../src/render/annotate.js");
  const W = 768;
  const H = 432;
  const base = new Uint8Array(W * H * 3).fill(100);
  const boxes = Array.from({ length: 6 }, (_, i) => ({ x1: 20 + i * 120, y1: 60, x2: 110 + i * 120, y2: 300, classId: 0, score: 0.87, trackId: i + 1 }));
  const size = labelFontSize(W, H);
  const svg = Buffer.from(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}">` +
      boxes.map((b) => `<rect x="${b.x1}" y="${b.y1}" width="${b.x2 - b.x1}" height="${b.y2 - b.y1}" fill="none" stroke="red" stroke-width="3"/><text x="${b.x1}" y="${b.y1 - 4}" font-family="DejaVu Sans Mono" font-size="${size}px" fill="#fff">person #${b.trackId} 0.87</text>`).join("") +
      "</svg>",
  );
  // Each way warmed up first (JIT, libvips caches), then timed.
  for (let i = 0; i < 10; i++) await sharp(base, { raw: { width: W, height: H, channels: 3 } }).composite([{ input: svg }]).raw().toBuffer();
  let t = performance.now();
  for (let i = 0; i < frames; i++) await sharp(base, { raw: { width: W, height: H, channels: 3 } }).composite([{ input: svg }]).raw().toBuffer();
  const svgMs = (performance.now() - t) / frames;
  t = performance.now();
  const font = await GlyphFont.create(size);
  const atlasMs = performance.now() - t;
  const c = { width: W, height: H, data: Uint8Array.from(base) };
  for (let i = 0; i < 30; i++) for (const b of boxes) drawBox(c, b, ["person"], font, lineThickness(W, H));
  t = performance.now();
  for (let i = 0; i < frames; i++) for (const b of boxes) drawBox(c, b, ["person"], font, lineThickness(W, H));
  const drawMs = (performance.now() - t) / frames;
  // Boxes and labels both ways: the atlas side draws the rectangles too.
  return { svg_composite_ms_per_frame: +svgMs.toFixed(2), atlas_create_ms: +atlasMs.toFixed(1), atlas_draw_ms_per_frame: +drawMs.toFixed(3) };
}

export const renderBench: Benchmark = {
  summary: "render speed against ffmpeg alone re-encoding the same frames; report size and render memory for a 10-minute run",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench render", usage: "video-analysis bench render [--seconds 60] [--repeat 3] [--minutes 10] [--fps 1] [--report-cost] [--json]" }, argv, {
      "report-cost": { type: "boolean", default: false, description: "also time main with and without its report, and the report's own decode, on the 60 s 1080p bench input" },
      seconds: { type: "string", value: "S", description: "seconds of the people video rendered for the speed figures (default 60)" },
      repeat: { type: "string", value: "N", description: "runs per figure, interleaved; the table shows their median (default 3)" },
      minutes: { type: "string", value: "M", description: "length of the long run for report size and render memory; 0 skips it (default 10)" },
      fps: { type: "string", value: "F", description: "analysis frames per second of the long run (default 1)" },
      json: { type: "boolean", default: false, description: "print one JSON object instead of the tables" },
    });
    const seconds = numberFlag("seconds", values.seconds, 60, { min: 1 });
    const repeat = numberFlag("repeat", values.repeat, 3, { min: 1 });
    const minutes = numberFlag("minutes", values.minutes, 10, { min: 0 });
    const fps = numberFlag("fps", values.fps, 1, { min: 0.01 });
    const people = need("video", "people_768x432_10fps.mp4");
    const work = join(tmpdir(), "va-bench-render");
    mkdirSync(work, { recursive: true });
    const log = (s: string) => values.json || process.stderr.write(`${s}\n`);

    const text = await textCost();
    log(`text: ${JSON.stringify(text)}`);

    // Speed: a run over the first `seconds` at 2 fps, rendered and re-encoded by ffmpeg alone.
    const short = await analyse(people, join(work, "short"), 2, Math.round(seconds * 2));
    const meta = await probeVideo(people);
    const speed: Array<Record<string, unknown>> = [];
    for (const rate of ["analysis", "source"] as const) {
      const frames = rate === "analysis" ? short.manifest.analysis.frames : Math.round(seconds * meta.frameRate);
      const vf = rate === "analysis" ? ["-vf", `select='${selectExpression(2, meta.containerStartTime)}'`, "-fps_mode", "passthrough"] : [];
      const ours: number[] = [];
      const alone: number[] = [];
      const oursCpu: number[] = [];
      const aloneCpu: number[] = [];
      let rendered = 0;
      const cli = join(repoRoot, "dist", "src", "cli", "main.js");
      for (let i = 0; i < repeat; i++) {
        // The CLI in its own process, so that bash's `times` counts it and both of its ffmpegs.
        const r = await timed(process.execPath, [cli, "render", short.out, "--out", join(work, `render-${rate}.mp4`), "--rate", rate, "--json"]);
        const j = JSON.parse(r.stdout) as { frames: number; wall_ms: number };
        rendered = j.frames;
        // The whole process, Node's start included, as ffmpeg alone's time includes its own start.
        ours.push(r.wallMs);
        oursCpu.push(r.cpuS);
        const a = await timed(ffmpegPath(), ["-nostdin", "-hide_banner", "-loglevel", "error", "-y", "-i", ffmpegFileUrl(people), "-map", "0:v:0", "-an", ...vf, "-frames:v", String(j.frames), ...x264Args({}), "-f", "mp4", join(work, `alone-${rate}.mp4`)]);
        alone.push(a.wallMs);
        aloneCpu.push(a.cpuS);
        log(`${rate}: render ${r.wallMs.toFixed(0)} ms (${j.wall_ms} in renderRun; ${r.cpuS.toFixed(2)} CPU s), ffmpeg alone ${a.wallMs.toFixed(0)} ms (${a.cpuS.toFixed(2)} CPU s), ${j.frames} frames, ratio ${(a.wallMs / r.wallMs).toFixed(3)}`);
      }
      const render = percentile(ours, 50);
      const base = percentile(alone, 50);
      const cpuOurs = percentile(oursCpu, 50);
      const cpuBase = percentile(aloneCpu, 50);
      // Each run's ratio against the ffmpeg-alone run right after it (neighbours' load changes slowly).
      const pairs = ours.map((o, i) => alone[i]! / o);
      const cpuPairs = oursCpu.map((o, i) => aloneCpu[i]! / o);
      speed.push({
        rate, frames: rendered, planned: frames, render_ms: Math.round(render), ffmpeg_alone_ms: Math.round(base), render_fps: +((rendered * 1000) / render).toFixed(1),
        ratio: +percentile(pairs, 50).toFixed(3), ratio_min: +Math.min(...pairs).toFixed(3), ratio_max: +Math.max(...pairs).toFixed(3),
        render_cpu_s: +cpuOurs.toFixed(2), ffmpeg_alone_cpu_s: +cpuBase.toFixed(2),
        cpu_ratio: +percentile(cpuPairs, 50).toFixed(3), cpu_ratio_min: +Math.min(...cpuPairs).toFixed(3), cpu_ratio_max: +Math.max(...cpuPairs).toFixed(3),
      });
    }

    // A 10-minute run: report size, report time, and memory while rendering it whole.
    let long: Record<string, unknown> | undefined;
    if (minutes > 0) {
      const video = join(work, `people_${minutes}min.mp4`);
      if (!existsSync(video)) await ffmpeg(["-stream_loop", "-1", "-i", ffmpegFileUrl(people), "-t", String(minutes * 60), "-c", "copy", "-f", "mp4", video]);
      const run = await analyse(video, join(work, "long"), fps);
      log(`${minutes}-minute run: ${run.manifest.analysis.frames} frames in ${(run.ms / 1000).toFixed(1)} s`);
      const t0 = performance.now();
      const rec = await writeReport(run.out);
      const reportMs = performance.now() - t0;
      const rssBefore = process.memoryUsage().rss;
      let peak = rssBefore;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 50);
      let r;
      try {
        r = await renderRun(run.out, { out: join(work, "long.mp4"), rate: "source" });
      } finally {
        clearInterval(sampler);
      }
      long = {
        minutes, analysis_fps: fps, frames_analysed: run.manifest.analysis.frames,
        report_bytes: statSync(join(run.out, "report.html")).size, report_image_bytes: rec.thumbnails.image_bytes, report_picker_frames: rec.thumbnails.picker_frames,
        report_track_thumbnails: rec.thumbnails.track_thumbnails, report_ms: Math.round(reportMs),
        render_frames: r.frames, render_ms: r.wall_ms, render_fps: +((r.frames * 1000) / r.wall_ms).toFixed(1),
        rss_before_mib: +(rssBefore / 2 ** 20).toFixed(1), rss_peak_mib: +(peak / 2 ** 20).toFixed(1),
      };
    }
    const report = values["report-cost"] ? await reportCost(work, log) : undefined;
    const result = { machine: "shared", text, speed, long, report_cost: report };
    if (values.json) console.log(JSON.stringify(result));
    else {
      printTable([text]);
      printTable(speed);
      if (long) printTable([long]);
      if (report) printTable(report);
    }
    return 0;
  },
};
