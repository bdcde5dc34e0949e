import { VideoAnalysisError } from "../../errors.js";
import type { Command } from "../command.js";

/** A benchmark: run(argv) prints a table, or one JSON object with --json, and returns the exit status. */
export interface Benchmark {
  summary: string;
  run(argv: string[]): Promise<number>;
}

export const benchCommand: Command = {
  name: "bench",
  summary: "run a benchmark (client, triton-main, transport, postprocess, pipeline, models, tiers) and print its figures; --json for one JSON object",
  usage: "video-analysis bench <client|triton-main|transport|postprocess|pipeline|models|tiers> [--json] [options]",
  async run(argv) {
    // Benchmarks live in bench/ beside the sources and use test support (the in-process test server),
    // so they run from a checkout of the repository, not from an installed package.
    let benches: Record<string, () => Promise<Benchmark>>;
    try {
      ({ benches } = (await import(new URL("../../../bench/index.js", import.meta.url).href)) as { benches: typeof benches });
    } catch (e) {
      throw new VideoAnalysisError("NOT_FOUND", `benchmarks are not built here (${(e as Error).message}); run them from a checkout of the repository after \`npm run build\``);
    }
    const [name, ...rest] = argv;
    const load = name ? benches[name] : undefined;
    if (!load) {
      const list = Object.keys(benches).join(", ");
      throw new VideoAnalysisError("INVALID_ARGUMENT", `${name ? `unknown benchmark "${name}"` : "name a benchmark"}: one of ${list}\nusage: ${this.usage}`);
    }
    return (await load()).run(rest);
  },
};
