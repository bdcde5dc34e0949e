import type { Command } from "../command.js";

/** A command by name. Its module, and what that imports, loads only when the command runs or `--help` lists it. */
export interface CommandEntry {
  name: string;
  load(): Promise<Command>;
}

/** Every command of the CLI, in the order `--help` lists them. */
export const commands: CommandEntry[] = [
  { name: "main", load: async () => (await import("./main.js")).mainCommand },
  { name: "batch", load: async () => (await import("./batch.js")).batchCommand },
  { name: "enqueue", load: async () => (await import("./queue.js")).enqueueCommand },
  { name: "worker", load: async () => (await import("./queue.js")).workerCommand },
  { name: "queue", load: async () => (await import("./queue.js")).queueCommand },
  { name: "bench", load: async () => (await import("./bench.js")).benchCommand },
  { name: "route", load: async () => (await import("./route.js")).routeCommand },
  { name: "triton-repo", load: async () => (await import("./triton-repo.js")).tritonRepoCommand },
  { name: "smoke", load: async () => (await import("./smoke.js")).smokeCommand },
  { name: "detect", load: async () => (await import("./detect.js")).detectCommand },
  { name: "track", load: async () => (await import("./track.js")).trackCommand },
  { name: "render", load: async () => (await import("./render.js")).renderCommand },
  { name: "report", load: async () => (await import("./report.js")).reportCommand },
];
