#!/usr/bin/env node
// Builds native/shm.c (system shared memory mapped into Node) into dist/native/shm.node with the
// machine's C compiler ($CC, else cc). Optional: where it cannot be built, it says why and exits 0; the
// SDK then reaches shared memory through file reads and writes (SystemSharedMemory.nativeStatus()).
import { spawnSync } from "node:child_process";
import { mkdirSync, renameSync, rmSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const out = join(root, "dist/native/shm.node");
const rel = "dist/native/shm.node";
// Never fail the build or the install: the SDK works without the addon.
process.on("uncaughtException", (e) => {
  console.log(`build-native: could not build ${rel}: ${e.message}; shared memory will use file calls`);
  process.exit(0);
});
// $CC may carry words of its own ("ccache gcc", "gcc -m64").
const [cc, ...ccArgs] = (process.env.CC || "cc").trim().split(/\s+/);
const flags = { linux: ["-lrt"], darwin: ["-undefined", "dynamic_lookup"] }[process.platform];
if (!flags) {
  console.log(`build-native: ${process.platform} is not Linux or macOS, so ${rel} is not built; shared memory will use file calls`);
  process.exit(0);
}
mkdirSync(dirname(out), { recursive: true });
const tmp = `${out}.${process.pid}.tmp`;
const r = spawnSync(cc, [...ccArgs, "-O2", "-shared", "-fPIC", "-o", tmp, join(root, "native/shm.c"), ...flags], { encoding: "utf8" });
if (r.error || r.status !== 0) {
  rmSync(tmp, { force: true });
  // An addon left from an earlier build would contradict this line: remove it.
  rmSync(out, { force: true });
  const said = (r.stderr || "").trim().split("\n").slice(-3).join(" ");
  const why = r.error ? `no C compiler: ${cc} not found (${r.error.message})` : `${cc} failed (${r.signal ?? `exit ${r.status}`})${said ? `: ${said}` : ""}`;
  console.log(`build-native: could not build ${rel}: ${why}; shared memory will use file calls (install a C compiler and run npm run build)`);
  process.exit(0);
}
renameSync(tmp, out);
console.log(`build-native: built ${rel} with ${[cc, ...ccArgs].join(" ")}`);
