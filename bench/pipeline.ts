import { execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { loadProfile } from "../src/profiles/index.js";
import { analysisSize } from "../src/routing/route.js";
import { ffmpegPath } from "../src/video/ffmpeg-tools.js";
import { ffmpegFrameArgs, planFrames } from "../src/video/frame-plan.js";
import { probeVideo } from "../src/video/metadata.js";
import { planSparseInput } from "../src/video/sparse.js";
import { printTable } from "./stats.js";

const run = promisify(execFile);
const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const REPLAY = fileURLToPath(new URL("./pipeline-child.js", import.meta.url));
const USAGE = "video-analysis bench pipeline [--json] [--quick] [--durability] [--profile P] [--fps 5] [--cache DIR] [--keep]";

/** What `main --json` prints (the fields the bench reads). */
interface MainSummary {
  frames: number;
  timings: { wall_ms: number; stages_ms: Record<string, number>; frames_per_second: number };
  peak_rss_bytes: number;
  analysis: { width: number; height: number; decode: { mode: string; planned_frames?: number; source_frames?: number } };
}

/**
 * The benchmark's input: `seconds` of ffmpeg's testsrc2 at 1920x1080, 30 fps, H.264 (yuv420p, CRF 23,
 * preset veryfast, a keyframe every 2 s), made once and kept in the cache folder.
 */
export async function benchVideo(cache: string, seconds: number): Promise<string> {
  mkdirSync(cache, { recursive: true });
  const path = join(cache, `testsrc2_1920x1080_30fps_${seconds}s.mp4`);
  if (existsSync(path)) return path;
  const tmp = `${path}.tmp-${process.pid}.mp4`;
  process.stderr.write(`bench pipeline: generating ${path} (once)...\n`);
  await run(ffmpegPath(), [
    "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
    "-f", "lavfi", "-i", "testsrc2=size=1920x1080:rate=30", "-t", String(seconds),
    "-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-g", "60", "-pix_fmt", "yuv420p", tmp,
  ], { maxBuffer: 16 << 20 });
  renameSync(tmp, path);
  return path;
}

/**
 * CPU seconds used so far by this process's children that have ended: /proc/self/stat's cutime + cstime
 * (Linux; ticks of USER_HZ, which is 100 there), undefined elsewhere. A child's time includes that of the
 * children it waited for, so a `main` child's includes its ffmpeg's and ffprobe's.
 */
export function childrenCpuSeconds(): number | undefined {
  try {
    const stat = readFileSync("/proc/self/stat", "utf8");
    // Fields after the command name in parentheses, from field 3 (state): cutime is field 16, cstime 17.
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(f[13]) + Number(f[14])) / 100;
  } catch {
    return undefined;
  }
}

interface Timed {
  seconds: number;
  /** CPU seconds of the child and its children (undefined where childrenCpuSeconds is). */
  cpu: number | undefined;
}

/** Runs `job` (which ends with its child process reaped) and times it: wall and the children's CPU. */
async function timed<T>(job: () => Promise<T>): Promise<Timed & { value: T }> {
  const c0 = childrenCpuSeconds();
  const t = performance.now();
  const value = await job();
  const seconds = (performance.now() - t) / 1000;
  const c1 = childrenCpuSeconds();
  return { value, seconds, cpu: c0 === undefined || c1 === undefined ? undefined : c1 - c0 };
}

/**
 * ffmpeg alone: the same decode, frame selection, scaling and rgb24 conversion, to a pipe drained here.
 * Of every frame (the baseline), or `sparse`: of the frames main's sparse decode gives it (what
 * main actually asks of ffmpeg; its planning is not timed).
 */
async function ffmpegAlone(video: string, fps: number, maxSide: number | null, sparse = false): Promise<Timed & { frames: number }> {
  const meta = await probeVideo(video);
  const a = analysisSize({ width: meta.width, height: meta.height, rotation: meta.rotation }, maxSide);
  const plan = planFrames(meta, { fps, width: a.width, height: a.height });
  const input = sparse ? (await planSparseInput(meta, fps)).input : undefined;
  if (sparse && !input) throw new Error(`bench pipeline: ${video} cannot be decoded sparsely`);
  const args = ffmpegFrameArgs(meta, plan, "pipe:1", input?.url).map((x) => (x === "level+info" ? "level+error" : x));
  const r = await timed(
    () =>
      new Promise<number>((resolvePromise, reject) => {
        const child = spawn(ffmpegPath(), args, { stdio: ["ignore", "pipe", "ignore"] });
        let n = 0;
        child.stdout.on("data", (b: Buffer) => (n += b.length));
        child.on("error", reject);
        child.on("close", (code) => (code === 0 ? resolvePromise(n) : reject(new Error(`ffmpeg exited with ${code}`))));
      }),
  ).finally(() => input?.dispose());
  return { seconds: r.seconds, cpu: r.cpu, frames: r.value / plan.frameBytes };
}

/** `main` in a child process (its own peak RSS), on the profile at `fps` analysis frames per second. */
async function mainInChild(video: string, profile: string, fps: number, out: string): Promise<Timed & { summary: MainSummary }> {
  const args = [CLI, "main", "--video", video, "--profile", profile, "--out", out, "--fps", String(fps), "--json", "--overwrite"];
  const r = await timed(() => run(process.execPath, args, { cwd: REPO, maxBuffer: 64 << 20 }));
  return { seconds: r.seconds, cpu: r.cpu, summary: JSON.parse(r.value.stdout) as MainSummary };
}

/** The same run with inference replayed (pipeline-child.ts): the SDK's own work, as with a server doing inference. */
async function replayInChild(video: string, profile: string, fps: number, out: string, options?: object): Promise<Timed & { summary: MainSummary }> {
  const r = await timed(() => run(process.execPath, [REPLAY, video, profile, String(fps), out, ...(options ? [JSON.stringify(options)] : [])], { cwd: REPO, maxBuffer: 64 << 20 }));
  return { seconds: r.seconds, cpu: r.cpu, summary: JSON.parse(r.value.stdout) as MainSummary };
}

const COMMIT_GOAL = 1.03;

/**
 * What committing as it goes costs, and how soon a resume is back at work, with inference replayed (the
 * SDK's own work, where a commit's cost shows most). Cost: runs on `costVideo` alternately without
 * (output.resumable false) and with commits (the profile's commit_interval_s), `repeats` each: the ratio
 * of the median wall times (noisy on a shared machine), and the commits' own time (the `commit` stage,
 * run behind the analysis, so an upper bound of what they add) as a share of the wall time. Resume: a run
 * on `resumeVideo` killed (SIGKILL) once half its frames are written, then resumed: milliseconds from
 * run() to the first new frame, against a fresh run's first frame.
 */
async function durability(costVideo: string, resumeVideo: string, profile: string, fps: number, work: string, repeats = 5) {
  type Child = MainSummary & { resumed_from: number; first_new_frame_ms: number; first_new_frame_process_ms: number };
  const without: number[] = [];
  const withCommits: number[] = [];
  const commitShare: number[] = [];
  const firstFrame: number[] = [];
  for (let i = 0; i < repeats; i++) {
    without.push((await replayInChild(costVideo, profile, fps, join(work, "plain"), { overrides: { output: { resumable: false } } })).summary.timings.wall_ms);
    const w = (await replayInChild(costVideo, profile, fps, join(work, "journal"))).summary as Child;
    withCommits.push(w.timings.wall_ms);
    commitShare.push((w.timings.stages_ms.commit ?? 0) / w.timings.wall_ms);
    firstFrame.push(w.first_new_frame_ms);
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const out = join(work, "resume");
  rmSync(out, { recursive: true, force: true });
  const meta = await probeVideo(resumeVideo);
  const half = Math.floor((meta.duration * fps) / 2);
  await replayInChild(resumeVideo, profile, fps, out, { killAt: half }).catch(() => undefined);
  const resumed = (await replayInChild(resumeVideo, profile, fps, out, { resume: true })).summary as Child;
  rmSync(out, { recursive: true, force: true });
  return {
    commit_cost_ratio: r2(median(withCommits) / median(without)),
    commit_cost_goal: COMMIT_GOAL,
    commit_stage_share: Math.round(median(commitShare) * 10000) / 10000,
    run_ms_without_commits: without.map(Math.round),
    run_ms_with_commits: withCommits.map(Math.round),
    fresh_first_frame_ms: median(firstFrame),
    resume_input_s: Math.round(meta.duration),
    resumed_from_frame: resumed.resumed_from,
    resume_first_new_frame_ms: resumed.first_new_frame_ms,
    resume_first_new_frame_process_ms: resumed.first_new_frame_process_ms,
  };
}

const r2 = (v: number) => Math.round(v * 100) / 100;
const mib = (b: number) => Math.round((b / (1 << 20)) * 10) / 10;
const RATIO_GOAL = 0.8;

/**
 * Where the CPU goes, in CPU seconds (null where they cannot be read): ffmpeg alone (every frame); ffmpeg
 * alone on the input main decodes (`decode`: the sparse one, or the same when main decodes every frame);
 * all of main (node, ffmpeg, ffprobe) and of the replayed run; the SDK's share, which is that minus
 * `decode` (so it also counts what ffmpeg burns more beside the SDK); and the SDK's budget at the goal:
 * the CPU that all cores hold over ffmpeg's time / RATIO_GOAL, less `decode`. Over the budget, the goal
 * cannot be met however the work overlaps; under it, it can if the work packs the cores.
 */
export function cpuFigures(f: {
  ffmpegSeconds: number;
  ffmpegCpu: number | undefined;
  decodeCpu: number | undefined;
  mainCpu: number | undefined;
  replayCpu: number | undefined;
  cores?: number;
}) {
  const { ffmpegSeconds, ffmpegCpu, decodeCpu, mainCpu, replayCpu, cores = availableParallelism() } = f;
  const minus = (a: number | undefined, b: number | undefined) => (a === undefined || b === undefined ? null : r2(a - b));
  return {
    ffmpeg_cpu_s: ffmpegCpu === undefined ? null : r2(ffmpegCpu),
    decode_cpu_s: decodeCpu === undefined ? null : r2(decodeCpu),
    main_cpu_s: mainCpu === undefined ? null : r2(mainCpu),
    sdk_cpu_s: minus(mainCpu, decodeCpu),
    sdk_only_cpu_s: minus(replayCpu, decodeCpu),
    sdk_cpu_budget_s: minus((cores * ffmpegSeconds) / RATIO_GOAL, decodeCpu),
  };
}

export const pipelineBench: Benchmark = {
  summary: "main (five components, contract models, 5 fps) on a generated 1080p30 H.264 video against ffmpeg alone; stage times; peak memory 1 vs 10 minutes",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench pipeline", usage: USAGE }, argv, {
      json: { type: "boolean", default: false, description: "print one JSON object instead of the tables" },
      quick: { type: "boolean", default: false, description: "10-second and 1-minute inputs instead of 1 and 10 minutes" },
      profile: { type: "string", value: "FILE", description: "the profile main runs with (default profiles/embedded_cpu.yaml)" },
      fps: { type: "string", value: "F", description: "analysis frames per second (default 5)" },
      cache: { type: "string", value: "DIR", description: "where the generated input videos are kept between runs (default $VIDEO_SDK_BENCH_CACHE, else <tmp>/video-analysis-bench)" },
      keep: { type: "boolean", default: false, description: "keep the run folders (they are removed by default)" },
      durability: { type: "boolean", default: false, description: "measure what resumable runs cost (commits, O_DIRECT writes) instead of the speed against ffmpeg" },
    });
    const profilePath = resolve(values.profile ?? join(REPO, "profiles", "embedded_cpu.yaml"));
    const fps = numberFlag("fps", values.fps, 5, { min: 0.01 });
    const cache = resolve(values.cache ?? process.env.VIDEO_SDK_BENCH_CACHE ?? join(tmpdir(), "video-analysis-bench"));
    const profile = await loadProfile(profilePath);
    // ratio_vs_ffmpeg is quoted for the 1-minute input; the two lengths check that memory stays flat.
    const durations = values.quick ? [10, 60] : [60, 600];
    const work = mkdtempSync(join(tmpdir(), "va-bench-pipeline-"));
    const inputs: Array<Record<string, unknown>> = [];
    let durable: Awaited<ReturnType<typeof durability>> | undefined;
    try {
      // Committing as it goes: its cost on the 1-minute input, a resume on the longest one.
      durable = await durability(await benchVideo(cache, 60), await benchVideo(cache, durations[1]!), profilePath, fps, work);
      for (const seconds of values.durability ? [] : durations) {
        const video = await benchVideo(cache, seconds);
        // ffmpeg first, then main, then ffmpeg again: the better ffmpeg time counts (a warm page cache for both).
        const f1 = await ffmpegAlone(video, fps, profile.analysis.max_side);
        const m = await mainInChild(video, profilePath, fps, join(work, `run-${seconds}`));
        const replay = await replayInChild(video, profilePath, fps, join(work, `replay-${seconds}`));
        const f2 = await ffmpegAlone(video, fps, profile.analysis.max_side);
        const best = f1.seconds <= f2.seconds ? f1 : f2;
        const ffmpeg = best.seconds;
        const s = m.summary;
        const sparse = s.analysis.decode.mode === "sparse" ? await ffmpegAlone(video, fps, profile.analysis.max_side, true) : undefined;
        const cpu = cpuFigures({ ffmpegSeconds: ffmpeg, ffmpegCpu: best.cpu, decodeCpu: sparse ? sparse.cpu : best.cpu, mainCpu: m.cpu, replayCpu: replay.cpu });
        inputs.push({
          input_s: seconds,
          frames: s.frames,
          analysis: `${s.analysis.width}x${s.analysis.height}`,
          ffmpeg_s: r2(ffmpeg),
          main_s: r2(m.seconds),
          main_run_s: r2(s.timings.wall_ms / 1000),
          ratio_vs_ffmpeg: r2(ffmpeg / m.seconds),
          // main decodes sparsely (frames neither analysed nor referenced are left out): how many frames
          // it decoded, ffmpeg alone on that same sparse input, and main against that.
          decoded_frames: s.analysis.decode.planned_frames ?? null,
          source_frames: s.analysis.decode.source_frames ?? null,
          ffmpeg_sparse_s: sparse ? r2(sparse.seconds) : null,
          ratio_vs_ffmpeg_sparse: sparse ? r2(sparse.seconds / m.seconds) : null,
          stages_ms: s.timings.stages_ms,
          // Inference replayed: what the SDK itself adds to decoding when a server does the inference.
          sdk_only_s: r2(replay.seconds),
          sdk_only_ratio_vs_ffmpeg: r2(ffmpeg / replay.seconds),
          sdk_only_stages_ms: replay.summary.timings.stages_ms,
          ...cpu,
          peak_rss_mib: mib(s.peak_rss_bytes),
        });
        rmSync(join(work, `run-${seconds}`), { recursive: true, force: true });
        rmSync(join(work, `replay-${seconds}`), { recursive: true, force: true });
      }
    } finally {
      if (!values.keep) rmSync(work, { recursive: true, force: true });
    }
    const durabilityLine = () =>
      `committing as it goes (inference replayed, ${durable!.resume_input_s === 600 ? "" : "--quick: "}60 s input): ${durable!.commit_cost_ratio} x the run without commits ` +
      `(goal <= ${COMMIT_GOAL}; medians of ${durable!.run_ms_with_commits.join("/")} vs ${durable!.run_ms_without_commits.join("/")} ms), ` +
      `the commits themselves ${r2(durable!.commit_stage_share * 100)}% of the wall time; ` +
      `--resume at frame ${durable!.resumed_from_frame} of the ${durable!.resume_input_s} s input: first new frame ${durable!.resume_first_new_frame_ms} ms after run() ` +
      `(${durable!.resume_first_new_frame_process_ms} ms after the process started; a fresh run's first frame: ${durable!.fresh_first_frame_ms} ms after run())`;
    if (values.durability) {
      if (values.json) console.log(JSON.stringify({ bench: "pipeline", profile: profilePath, fps, durability: durable }));
      else console.log(durabilityLine());
      return 0;
    }
    const [short, long] = inputs as [Record<string, number>, Record<string, number>];
    // The ratio is quoted for the 1-minute input (the longer one of --quick, the shorter one otherwise).
    const minute = (inputs.find((i) => i.input_s === 60) ?? short) as Record<string, number>;
    const result = {
      bench: "pipeline",
      profile: profilePath,
      fps,
      video: "testsrc2 1920x1080 30 fps H.264",
      cache,
      inputs,
      ratio_vs_ffmpeg: minute.ratio_vs_ffmpeg,
      ratio_vs_ffmpeg_sparse: minute.ratio_vs_ffmpeg_sparse,
      sdk_only_ratio_vs_ffmpeg: minute.sdk_only_ratio_vs_ffmpeg,
      ratio_goal: RATIO_GOAL,
      cores: availableParallelism(),
      peak_rss_growth: r2(long.peak_rss_mib / short.peak_rss_mib - 1),
      peak_rss_goal: 0.1,
      durability: durable,
    };
    if (values.json) {
      console.log(JSON.stringify(result));
      return 0;
    }
    console.log(`main vs ffmpeg alone: ${profile.name} at ${fps} fps on testsrc2 1920x1080 30 fps H.264 (cached in ${cache})`);
    printTable(
      inputs.map((i) => {
        const st = i.stages_ms as Record<string, number>;
        return {
          input: `${i.input_s} s`,
          frames: i.frames,
          analysis: i.analysis,
          "ffmpeg s": i.ffmpeg_s,
          "main s": i.main_s,
          ratio: i.ratio_vs_ffmpeg,
          "sdk-only s": i.sdk_only_s,
          "sdk-only ratio": i.sdk_only_ratio_vs_ffmpeg,
          "decode ms": Math.round(st.decode!),
          "preprocess ms": Math.round(st.preprocess!),
          "inference ms": Math.round(st.inference!),
          "postprocess ms": Math.round(st.postprocess!),
          "write ms": Math.round(st.write!),
          "peak RSS MiB": i.peak_rss_mib,
        };
      }),
    );
    console.log(`ratio_vs_ffmpeg (60 s input) ${result.ratio_vs_ffmpeg}, with inference replayed ${result.sdk_only_ratio_vs_ffmpeg} (goal >= 0.8); peak RSS ${long.input_s} s vs ${short.input_s} s: ${result.peak_rss_growth >= 0 ? "+" : ""}${Math.round(result.peak_rss_growth * 100)}% (goal within 10%)`);
    if (minute.ffmpeg_sparse_s !== null)
      console.log(
        `sparse decode (60 s input): main decoded ${minute.decoded_frames} of ${minute.source_frames} source frames; ffmpeg alone on that same input ` +
          `${minute.ffmpeg_sparse_s} s, so main against it ${minute.ratio_vs_ffmpeg_sparse} (the SDK's own overhead over the decode it asks for)`,
      );
    if (minute.sdk_cpu_s !== null) {
      console.log(
        `CPU seconds (${minute.input_s} s input, ${result.cores} cores): ffmpeg alone ${minute.ffmpeg_cpu_s} (${minute.decode_cpu_s} on the input main decodes); ` +
          `main ${minute.main_cpu_s}, so the SDK ${minute.sdk_cpu_s} ` +
          `(${minute.sdk_only_cpu_s} with inference replayed); at ratio ${RATIO_GOAL} the cores hold ${r2(minute.sdk_cpu_budget_s + minute.decode_cpu_s)} in all, ` +
          `leaving the SDK at most ${minute.sdk_cpu_budget_s}`,
      );
    }
    console.log(durabilityLine());
    console.log("stage times (ms) are main's busy times and overlap; main s includes starting node and loading the models;");
    console.log("sdk-only: main with every model's first answer replayed at once (inference elsewhere), leaving the SDK's own work");
    return 0;
  },
};
