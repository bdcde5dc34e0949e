#!/usr/bin/env node
import { readFileSync } from "node:fs";
import { isVideoAnalysisError } from "../errors.js";
import { HelpShown } from "./command.js";
import { commands } from "./commands/index.js";

const pkg = JSON.parse(readFileSync(new URL("../../../package.json", import.meta.url), "utf8")) as { version: string };

async function help(): Promise<string> {
  const loaded = (await Promise.all(commands.map((c) => c.load()))).filter((c) => c.available !== false);
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
  if (name === "help" && rest[0]) return main([rest[0], "--help"]);
  if (!name || name === "--help" || name === "-h" || name === "help") {
    // Asked for, help goes to stdout; a bare `video-analysis` is a usage error (stderr, exit 2).
    if (name) console.log(await help());
    else console.error(await help());
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
  return (await entry.load()).run(rest);
}

// A reader that stops early (`video-analysis detect ... | head -1`) closes the pipe: the output is no
// longer wanted, which is no error.
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (e: NodeJS.ErrnoException) => {
    process.exit(e.code === "EPIPE" ? (process.exitCode ?? 0) : 1);
  });
}

// Warnings print as one line each, "video-analysis: warning [CODE]: ...", not Node's two-line form.
process.removeAllListeners("warning");
process.on("warning", (w: Error & { code?: string }) => console.error(`video-analysis: warning${w.code ? ` [${w.code}]` : ""}: ${w.message}`));

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (e: unknown) => {
    if (e instanceof HelpShown) {
      process.exitCode = 0;
      return;
    }
    // Usage errors exit 2, other known failures 1, each with one actionable line. Anything else is a
    // bug: one coded line too, its stack only with VIDEO_SDK_DEBUG=1.
    if (isVideoAnalysisError(e)) {
      console.error(`video-analysis: ${e.toString()}`);
      process.exitCode = e.details.usage === true ? 2 : 1;
      return;
    }
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`video-analysis: [INTERNAL] ${err.name}: ${err.message} (a bug in the SDK: please report it; VIDEO_SDK_DEBUG=1 prints its stack)`);
    if (process.env.VIDEO_SDK_DEBUG === "1") console.error(err.stack);
    process.exitCode = 1;
  },
);
