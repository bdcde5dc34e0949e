// Many videos: throughput (video-seconds per wall-second) of `batch --jobs 1/2/4` and of 1/2/4 worker
// processes on a BullMQ queue, on the same clips. Each measurement runs the CLI as a user would (model
// loading included), into a fresh output folder.
import { execFile, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { probeVideo } from "../src/video/metadata.js";
import { startRealTriton, type RealTriton } from "../test/support/real-tritonserver.js";
import { startRedis } from "../test/support/redis-server.js";
import { testdata } from "../test/support/testdata.js";
import { printTable } from "./stats.js";

const run = promisify(execFile);
const REPO = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const USAGE =
  "video-analysis bench many [--json] [--videos 8] [--seconds 4] [--size 320x180] [--fps 2] [--profile P] [--jobs 1,2,4] [--workers 1,2,4] [--repeat 1] [--triton]";

function list(flag: string, v: string): number[] {
  return v.split(",").map((x) => numberFlag(flag, x.trim(), 1, { min: 1 }));
}

/** `n` clips of `seconds` cut from the cars video of the shared test data, scaled to `size`. */
async function clips(dir: string, n: number, seconds: number, size: string): Promise<string[]> {
  const src = testdata("video", "cars_768x432_12fps.mp4");
  return Promise.all(
    Array.from({ length: n }, async (_, i) => {
      const out = join(dir, `clip${String(i).padStart(2, "0")}.mp4`);
      const start = (i * 3) % Math.max(1, Math.floor(30 - seconds));
      await run("ffmpeg", ["-nostdin", "-loglevel", "error", "-y", "-ss", String(start), "-t", String(seconds), "-i", src, "-vf", `scale=${size.replace("x", ":")}`, "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-an", out]);
      return out;
    }),
  );
}

interface Row {
  mode: string;
  n: number;
  wall_s: number;
  video_s_per_s: number;
  speedup: number;
}

export const manyBench: Benchmark = {
  summary: "many videos: video-seconds per wall-second of batch --jobs 1/2/4 and of 1/2/4 BullMQ workers",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench many", usage: USAGE }, argv, {
      json: { type: "boolean", default: false, description: "print one JSON object instead of the tables" },
      videos: { type: "string", default: "8", value: "N", description: "generated videos in the batch (default 8)" },
      seconds: { type: "string", default: "4", value: "S", description: "length of each generated video (default 4)" },
      size: { type: "string", default: "320x180", value: "WxH", description: "size of the generated videos (default 320x180)" },
      fps: { type: "string", default: "2", value: "F", description: "analysis frames per second (default 2)" },
      profile: { type: "string", default: join(REPO, "profiles", "embedded_cpu.yaml"), value: "FILE", description: "the profile the videos are analysed with (default profiles/embedded_cpu.yaml; with --triton profiles/baseline_gpu.yaml)" },
      jobs: { type: "string", default: "1,2,4", value: "LIST", description: "batch --jobs values to measure (default 1,2,4)" },
      workers: { type: "string", default: "1,2,4", value: "LIST", description: "numbers of BullMQ workers to measure (default 1,2,4)" },
      repeat: { type: "string", default: "1", value: "N", description: "runs per setting; the best is kept (default 1)" },
      // NVIDIA's real tritonserver (scripts/tritonserver-local.sh), started here, and profiles/baseline_gpu.yaml against it.
      triton: { type: "boolean", default: false, description: "start NVIDIA's real tritonserver here and analyse through it" },
    });
    const n = numberFlag("videos", values.videos, 8, { min: 1 });
    const seconds = numberFlag("seconds", values.seconds, 4, { min: 0.5 });
    const repeat = numberFlag("repeat", values.repeat, 1, { min: 1 });
    const dir = mkdtempSync(join(tmpdir(), "va-bench-many-"));
    let triton: RealTriton | undefined;
    if (values.triton) {
      const r = await startRealTriton();
      if (!r.server) throw new Error(`bench many --triton: no real tritonserver here: ${r.skip}`);
      triton = r.server;
      if (argv.every((a) => a !== "--profile")) values.profile = join(REPO, "profiles", "baseline_gpu.yaml");
    }
    const redis = await startRedis();
    try {
      mkdirSync(join(dir, "in"));
      const videos = await clips(join(dir, "in"), n, seconds, values.size);
      const videoSeconds = (await Promise.all(videos.map((v) => probeVideo(v)))).reduce((s, m) => s + m.duration, 0);
      const env = { ...process.env, VIDEO_SDK_REDIS_URL: redis.url, ...(triton ? { TRITON_GRPC_URL: triton.address } : {}) };
      const rows: Row[] = [];
      let k = 0;

      const batch = async (jobs: number) => {
        const out = join(dir, `out-${k++}`);
        const t = performance.now();
        await run("node", [CLI, "batch", "--profile", values.profile, "--out", out, "--fps", values.fps, "--jobs", String(jobs), "--quiet", ...videos], { env });
        const wall = (performance.now() - t) / 1000;
        rmSync(out, { recursive: true, force: true });
        return wall;
      };
      const workers = async (count: number) => {
        const out = join(dir, `out-${k}`);
        const queue = `bench-${k++}`;
        await run("node", [CLI, "enqueue", "--queue", queue, "--profile", values.profile, "--out", out, "--fps", values.fps, "--quiet", ...videos], { env });
        const t = performance.now();
        await Promise.all(
          Array.from({ length: count }, () => new Promise<void>((ok, fail) => {
            const c = spawn("node", [CLI, "worker", "--queue", queue, "--until-empty", "--quiet"], { env, stdio: "ignore" });
            c.once("exit", (code) => (code === 0 ? ok() : fail(new Error(`a worker exited with ${code}`))));
          })),
        );
        const wall = (performance.now() - t) / 1000;
        rmSync(out, { recursive: true, force: true });
        return wall;
      };

      const measure = async (mode: string, counts: number[], f: (c: number) => Promise<number>) => {
        const walls = new Map<number, number[]>();
        // Interleaved repeats, so a slow spell of the (shared) machine does not fall on one setting only.
        for (let r = 0; r < repeat; r++) for (const c of counts) walls.set(c, [...(walls.get(c) ?? []), await f(c)]);
        const best = (c: number) => Math.min(...walls.get(c)!);
        for (const c of counts) {
          const w = best(c);
          rows.push({ mode, n: c, wall_s: +w.toFixed(2), video_s_per_s: +(videoSeconds / w).toFixed(2), speedup: +(best(counts[0]!) / w).toFixed(2) });
        }
      };
      await measure("batch --jobs", list("jobs", values.jobs), batch);
      await measure("workers", list("workers", values.workers), workers);

      const info = { backend: triton ? `real tritonserver at ${triton.address}` : "as the profile says", videos: n, video_seconds: +videoSeconds.toFixed(2), size: values.size, fps: Number(values.fps), profile: values.profile, cores: availableParallelism(), repeat, best_of: repeat };
      if (values.json) console.log(JSON.stringify({ ...info, rows }));
      else {
        console.log(`${triton ? "real tritonserver; " : ""}${n} videos, ${videoSeconds.toFixed(1)} video-seconds (${values.size}, analysed at ${values.fps} fps), ${availableParallelism()} cores; best of ${repeat}`);
        printTable(rows as unknown as Record<string, unknown>[]);
      }
      return 0;
    } finally {
      await redis.stop();
      await triton?.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  },
};
