import type { Benchmark } from "../src/cli/commands/bench.js";

/** Benchmarks by name, loaded on demand so one's dependencies never slow another. */
export const benches: Record<string, () => Promise<Benchmark>> = {
  transport: async () => (await import("./transport.js")).transportBench,
  postprocess: async () => (await import("./postprocess.js")).postprocessBench,
  pipeline: async () => (await import("./pipeline.js")).pipelineBench,
  models: async () => (await import("./models.js")).modelsBench,
  client: async () => (await import("./client.js")).clientBench,
  "triton-main": async () => (await import("./triton-main.js")).tritonMainBench,
  many: async () => (await import("./many.js")).manyBench,
  render: async () => (await import("./render.js")).renderBench,
  tiers: async () => (await import("./tiers.js")).tiersBench,
};
