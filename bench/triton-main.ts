import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse, stringify } from "yaml";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { VideoAnalysisError } from "../src/errors.js";
import { startRealTriton } from "../test/support/real-tritonserver.js";
import { repoRoot } from "../test/support/testdata.js";
import { benchVideo } from "./pipeline.js";
import { printTable } from "./stats.js";

const MAIN_JS = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));
const USAGE = "video-analysis bench triton-main [--seconds S] [--fps F] [--repeats N] [--variants grpc,grpc-shm,http,http-shm] [--profile P] [--json]";

const VARIANTS: Record<string, { protocol: "grpc" | "http"; shared_memory: "system" | "off" }> = {
  grpc: { protocol: "grpc", shared_memory: "off" },
  "grpc-shm": { protocol: "grpc", shared_memory: "system" },
  http: { protocol: "http", shared_memory: "off" },
  "http-shm": { protocol: "http", shared_memory: "system" },
};

interface MainJson {
  frames: number;
  cpu_s: number;
  timings: { wall_ms: number; frames_per_second: number };
}

/**
 * `main` with the Triton backend on the pipeline bench's 1080p input, against NVIDIA's real tritonserver
 * serving the committed repository (contract models): the CPU seconds of main's own process (ffmpeg's not
 * counted) per transport, the figure that says how many streams one client machine can feed.
 */
export const tritonMainBench: Benchmark = {
  summary: "main on the Triton backend (real tritonserver): client CPU seconds per transport",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench triton-main", usage: USAGE }, argv, {
      seconds: { type: "string", value: "S", description: "length of the generated 1080p input video (default 60)" },
      fps: { type: "string", value: "F", description: "analysis frames per second (default 2)" },
      repeats: { type: "string", value: "N", description: "runs per transport; the table shows their median (default 1)" },
      variants: { type: "string", value: "LIST", description: "transports to compare: grpc, grpc-shm, http, http-shm (default all)" },
      profile: { type: "string", value: "FILE", description: "the Triton profile main runs with (default profiles/baseline_gpu.yaml)" },
      json: { type: "boolean", description: "print one JSON object instead of the table" },
    });
    const seconds = numberFlag("seconds", values.seconds, 60, { min: 1 });
    const fps = numberFlag("fps", values.fps, 2, { min: 0.1 });
    const repeats = numberFlag("repeats", values.repeats, 1, { min: 1 });
    const variants = (values.variants ?? "grpc,grpc-shm,http,http-shm").split(",");
    for (const v of variants) if (!VARIANTS[v]) throw new VideoAnalysisError("INVALID_ARGUMENT", `bench triton-main: unknown variant ${v}; known: ${Object.keys(VARIANTS).join(", ")}`);
    const video = await benchVideo(process.env.VIDEO_SDK_BENCH_CACHE ?? join(tmpdir(), "video-analysis-bench"), seconds);
    const started = await startRealTriton({ http: true });
    if (!started.server) throw new VideoAnalysisError("FAILED_PRECONDITION", `bench triton-main needs the real tritonserver: ${started.skip}`);
    const server = started.server;
    const dir = mkdtempSync(join(tmpdir(), "vasdk-triton-main-"));
    const rows: Record<string, string | number>[] = [];
    try {
      const base = parse(readFileSync(values.profile ?? join(repoRoot, "profiles/baseline_gpu.yaml"), "utf8"));
      for (let r = 0; r < repeats; r++) {
        for (const name of r % 2 ? [...variants].reverse() : variants) {
          const v = VARIANTS[name]!;
          const profile = structuredClone(base);
          profile.backend.triton = { ...profile.backend.triton, url: v.protocol === "grpc" ? server.address : server.httpAddress, protocol: v.protocol, shared_memory: v.shared_memory };
          profile.analysis = { ...profile.analysis, fps };
          const path = join(dir, `${name}.yaml`);
          writeFileSync(path, stringify(profile));
          const out = join(dir, `run-${name}-${r}`);
          const stdout = await new Promise<string>((resolve, reject) =>
            execFile(process.execPath, [MAIN_JS, "main", "--video", video, "--profile", path, "--out", out, "--json", "--quiet"], { maxBuffer: 64 << 20 }, (e, so, se) =>
              e ? reject(new Error(`main (${name}) failed: ${se || e.message}`)) : resolve(so),
            ),
          );
          rmSync(out, { recursive: true, force: true });
          const j = JSON.parse(stdout) as MainJson;
          rows.push({
            variant: name,
            repeat: r + 1,
            frames: j.frames,
            wall_s: +(j.timings.wall_ms / 1000).toFixed(2),
            frames_per_s: +j.timings.frames_per_second.toFixed(2),
            client_cpu_s: j.cpu_s,
            client_cpu_ms_per_frame: +((j.cpu_s * 1000) / j.frames).toFixed(1),
          });
        }
      }
    } finally {
      await server.stop();
      rmSync(dir, { recursive: true, force: true });
    }
    const result = { benchmark: "triton-main", video, seconds, fps, rows };
    if (values.json) console.log(JSON.stringify(result));
    else {
      console.log(`main on ${video} (${seconds} s of 1080p, analysis at ${fps} fps) against the real tritonserver (contract models, python backend)`);
      printTable(rows);
    }
    return 0;
  },
};
