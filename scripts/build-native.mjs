#!/usr/bin/env node
// Builds native/shm.c (system shared memory mapped into Node) into dist/native/shm.node with the
// machine's C compiler ($CC, else cc). Optional: where it cannot be built, it says why and exits 0; the
// SDK then reaches shared memory through file reads and writes (SystemSharedMemory.nativeStatus()).
import { spawnSync } from "node:child_process";
import { mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/native/shm.node");
const cc = process.env.CC || "cc";
const flags = { linux: ["-lrt"], darwin: ["-undefined", "dynamic_lookup"] }[process.platform];
if (!flags) {
  console.log(`build-native: ${process.platform} is not Linux or macOS; shared memory will use file calls`);
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const r = spawnSync(cc, ["-O2", "-shared", "-fPIC", "-o", out, join(root, "native/shm.c"), ...flags], { encoding: "utf8" });
if (r.error || r.status !== 0) {
  const why = r.error ? `${cc} not found (${r.error.message})` : r.stderr.trim().split("\n").slice(-3).join(" ");
  console.log(`build-native: could not build ${out}: ${why}; shared memory will use file calls (install a C compiler and run npm run build)`);
  process.exit(0);
}
console.log(`build-native: built ${out.slice(root.length + 1)}`);
