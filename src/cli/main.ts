#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { isVideoAnalysisError } from "../errors.js";
import { commands } from "./commands/index.js";

const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };

async function help(): Promise<string> {
  const loaded = await Promise.all(commands.map((c) => c.load()));
  const width = Math.max(...loaded.map((c) => c.name.length));
  return [
    `video-analysis ${pkg.version}: video analysis through NVIDIA Triton or in-process onnxruntime`,
    "",
    "usage: video-analysis <command> [options]     (video-analysis <command> --help for its options)",
    "",
    "commands:",
    ...loaded.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
  ].join("\n");
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (!name || name === "--help" || name === "-h" || name === "help") {
    console.log(await help());
    return name ? 0 : 2;
  }
  if (name === "--version" || name === "-V") {
    console.log(pkg.version);
    return 0;
  }
  const entry = commands.find((c) => c.name === name);
  if (!entry) {
    console.error(`video-analysis: unknown command "${name}"\n\n${await help()}`);
    return 2;
  }
  const cmd = await entry.load();
  if (rest.includes("--help") || rest.includes("-h")) {
    console.log(`usage: ${cmd.usage}`);
    return 0;
  }
  return cmd.run(rest);
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    // Known failures print one actionable line; anything else is a bug and keeps its stack.
    if (isVideoAnalysisError(e)) console.error(`video-analysis: ${e.toString()}`);
    else console.error(e);
    process.exitCode = 1;
  },
);
