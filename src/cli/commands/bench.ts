import { existsSync } from "node:fs";
import { usageError, type Command } from "../command.js";

/** A benchmark: run(argv) prints a table, or one JSON object with --json, and returns the exit status. */
export interface Benchmark {
  summary: string;
  run(argv: string[]): Promise<number>;
}

const BENCH = new URL("../../../bench/index.js", import.meta.url);

export const benchCommand: Command = {
  name: "bench",
  summary: "run a benchmark (client, triton-main, transport, postprocess, pipeline, models, many, render, tiers) and print its figures; --json for one JSON object",
  usage: "video-analysis bench <client|triton-main|transport|postprocess|pipeline|models|many|render|tiers> [--json] [options]   (video-analysis bench <name> --help for its options)",
  // Benchmarks live in bench/ beside the sources and use test support (the in-process test server), so
  // they run from a checkout of the repository after `npm run build`; the installed package does not offer them.
  available: existsSync(BENCH),
  async run(argv) {
    if (!this.available) throw usageError(undefined, "bench runs from a checkout of the repository (after npm run build), not from the installed package");
    const { benches } = (await import(BENCH.href)) as { benches: Record<string, () => Promise<Benchmark>> };
    const [name, ...rest] = argv;
    const load = name ? benches[name] : undefined;
    if (!load) {
      if (name === "--help" || name === "-h") {
        const list = await Promise.all(Object.entries(benches).map(async ([n, l]) => [n, (await l()).summary] as const));
        const w = Math.max(...list.map(([n]) => n.length));
        console.log(
          [
            `${this.name}: ${this.summary}`,
            "",
            `usage: ${this.usage}`,
            "",
            "benchmarks (video-analysis bench <name> --help describes each one's options):",
            ...list.map(([n, sum]) => `  ${n.padEnd(w)}  ${sum}`),
          ].join("\n"),
        );
        return 0;
      }
      throw usageError(this, `${name ? `unknown benchmark "${name}"` : "name a benchmark"}: one of ${Object.keys(benches).join(", ")}`);
    }
    return (await load()).run(rest);
  },
};
