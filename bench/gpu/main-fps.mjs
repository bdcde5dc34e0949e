// End-to-end frames per second of `video-analysis main` against a Triton server, set beside the models' own
// throughput from `bench models` (its summary.json): how close the SDK keeps the GPU busy.
//
//   node bench/gpu/main-fps.mjs --url HOST:PORT --video V --profile P [--fps 30] [--summary summary.json] [--json]
//
// main runs as the real CLI in a child process (TRITON_GRPC_URL=url); the server's ModelStatistics before and
// after give each model's compute time during the run.
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs, promisify } from "node:util";

const { values: o } = parseArgs({
  options: { url: { type: "string" }, video: { type: "string" }, profile: { type: "string" }, fps: { type: "string", default: "30" }, summary: { type: "string" }, json: { type: "boolean", default: false } },
});
if (!o.url || !o.video || !o.profile) throw new Error("usage: node bench/gpu/main-fps.mjs --url HOST:PORT --video V --profile P [--fps 30] [--summary summary.json] [--json]");
const { TritonClient } = await import("../../dist/src/triton/client.js");
const { findModel } = await import("../../dist/src/catalog/index.js");
const CLI = fileURLToPath(new URL("../../dist/src/cli/main.js", import.meta.url));
const r2 = (v) => Math.round(v * 100) / 100;

const client = await TritonClient.create({ url: o.url });
const stats = async () =>
  Object.fromEntries(
    (await client.modelStatistics()).map((s) => {
      const i = s.inference_stats ?? {};
      const ns = (k) => Number(i[k]?.ns ?? 0);
      return [s.name, { count: Number(i.success?.count ?? 0), computeNs: ns("compute_input") + ns("compute_infer") + ns("compute_output") }];
    }),
  );

const out = mkdtempSync(join(tmpdir(), "va-main-fps-"));
const before = await stats();
const t0 = performance.now();
const { stdout } = await promisify(execFile)(process.execPath, [CLI, "main", "--video", o.video, "--profile", o.profile, "--fps", o.fps, "--out", out, "--overwrite", "--json"], {
  env: { ...process.env, TRITON_GRPC_URL: o.url },
  maxBuffer: 64 << 20,
});
const childS = (performance.now() - t0) / 1000;
const after = await stats();
await client.close();
rmSync(out, { recursive: true, force: true });

const run = JSON.parse(stdout);
const frames = run.frames;
const wallS = run.timings.wall_ms / 1000;
const bench = o.summary ? Object.fromEntries(JSON.parse(readFileSync(o.summary, "utf8")).models.map((m) => [m.model, m])) : {};
let gpuNs = 0;
const models = run.models_used.map((u) => {
  const part = `${u.name}_onnx`;
  const n = (after[part]?.count ?? 0) - (before[part]?.count ?? 0);
  const ns = (after[part]?.computeNs ?? 0) - (before[part]?.computeNs ?? 0);
  gpuNs += ns;
  const b = bench[u.name];
  return {
    model: u.name,
    calls: u.calls,
    calls_per_frame: r2(u.calls / frames),
    client_p50_ms: u.latency_ms?.p50,
    server_compute_ms: n ? r2(ns / n / 1e6) : null,
    model_alone_per_s: b?.model_alone_per_s ?? null,
    sdk_per_s_at_16: b ? b.levels[b.levels.length - 1].inferences_per_s : null,
  };
});
// Models of frames set the pace; CLIP text runs once per prompt, at the start.
const perFrame = models.filter((m) => findModel(m.model)?.family.input !== "tokens" && m.model_alone_per_s);
const slowest = perFrame.reduce((a, m) => (!a || m.model_alone_per_s < a.model_alone_per_s ? m : a), null);
// One GPU serves them all: with no overlap between models, a frame costs the sum of their times.
const serialBound = perFrame.length ? 1 / perFrame.reduce((s, m) => s + m.calls_per_frame / m.model_alone_per_s, 0) : null;
const result = {
  video: o.video,
  profile: run.analysis ? `${o.profile} (${run.analysis.width}x${run.analysis.height} at ${o.fps} fps)` : o.profile,
  frames,
  main_wall_s: r2(wallS),
  child_wall_s: r2(childS),
  frames_per_second: r2(frames / wallS),
  stages_ms: run.timings.stages_ms,
  models,
  model_compute_share_of_wall: r2(gpuNs / 1e9 / wallS),
  slowest_model: slowest?.model ?? null,
  fps_vs_slowest_model_alone: slowest ? r2(frames / wallS / slowest.model_alone_per_s) : null,
  all_models_back_to_back_fps: serialBound ? r2(serialBound) : null,
  fps_vs_all_models_back_to_back: serialBound ? r2(frames / wallS / serialBound) : null,
};
if (o.json) console.log(JSON.stringify(result));
else {
  console.log(`main: ${frames} frames in ${result.main_wall_s} s = ${result.frames_per_second} frames/s (${result.profile})`);
  console.table(models);
  console.log(`slowest per-frame model: ${result.slowest_model}; fps / its own throughput = ${result.fps_vs_slowest_model_alone}`);
  console.log(`all per-frame models back to back on one GPU: ${result.all_models_back_to_back_fps} fps; fps / that = ${result.fps_vs_all_models_back_to_back}`);
  console.log(`models' server-side compute / wall = ${result.model_compute_share_of_wall}`);
}
