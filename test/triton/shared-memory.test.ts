import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { test } from "node:test";
import { VideoAnalysisError } from "../../src/errors.js";
import { SystemSharedMemory } from "../../src/triton/shared-memory.js";

let n = 0;
// The real-triton support sweeps vasdk_it_<pid>_* regions of processes that are gone.
const key = () => `/vasdk_it_${process.pid}_shm${n++}`;
const linux = process.platform === "linux";

test("the addon is built and regions are mapped", { skip: !linux && "Linux only" }, () => {
  assert.deepEqual(SystemSharedMemory.nativeStatus(), { mapped: true });
  const r = SystemSharedMemory.create(key(), 4096);
  try {
    assert.equal(r.mapped, true);
    assert.equal(r.bytes?.byteLength, 4096);
  } finally {
    r.destroy();
  }
});

test("the mapping is the region: writes through it reach the file and back", { skip: !linux && "Linux only" }, () => {
  const k = key();
  const r = SystemSharedMemory.create(k, 1 << 20);
  try {
    r.bytes!.set([1, 2, 3], 100);
    assert.deepEqual([...readFileSync(`/dev/shm${k}`).subarray(100, 103)], [1, 2, 3]);
    const file = readFileSync(`/dev/shm${k}`);
    file[5000] = 77;
    writeFileSync(`/dev/shm${k}`, file);
    assert.equal(r.view(5000, 1)[0], 77);
    // view() and read() are views of the same memory, not copies.
    const v = r.view(10, 4);
    assert.equal(v.buffer, r.bytes!.buffer);
    r.write(10, Uint8Array.of(9, 8, 7, 6));
    assert.deepEqual([...v], [9, 8, 7, 6]);
  } finally {
    r.destroy();
  }
});

test("bounds, keys and sizes are checked; a destroyed region refuses calls but its views stay readable", () => {
  assert.throws(() => SystemSharedMemory.create("no-slash", 16), RangeError);
  assert.throws(() => SystemSharedMemory.create(key(), 0), RangeError);
  const k = key();
  const r = SystemSharedMemory.create(k, 64);
  assert.throws(() => r.write(60, new Uint8Array(8)), RangeError);
  assert.throws(() => r.view(-1, 2), RangeError);
  r.write(0, Uint8Array.of(5));
  const v = r.view(0, 1);
  r.destroy();
  assert.equal(existsSync(`/dev/shm${k}`), false);
  assert.throws(() => r.write(0, Uint8Array.of(1)), (e: unknown) => e instanceof VideoAnalysisError && e.code === "FAILED_PRECONDITION");
  assert.equal(v[0], 5);
  r.destroy();
});

test("without the addon regions are reached through file calls, with one warning saying what is lost", { skip: !linux && "Linux only" }, () => {
  const mod = fileURLToPath(new URL("../../src/triton/shared-memory.js", import.meta.url));
  const script = `
    const { SystemSharedMemory } = await import(${JSON.stringify(mod)});
    const warnings = [];
    process.on("warning", (w) => warnings.push(w.code));
    const a = SystemSharedMemory.create("/vasdk_it_${process.pid}_fb1", 32);
    const b = SystemSharedMemory.create("/vasdk_it_${process.pid}_fb2", 32);
    a.write(3, Uint8Array.of(42));
    const copy = a.view(3, 1);
    copy[0] = 1;
    const out = { mapped: a.mapped, bytes: a.bytes === undefined, value: a.read(3, 1)[0], status: SystemSharedMemory.nativeStatus() };
    a.destroy(); b.destroy();
    await new Promise((r) => setImmediate(r));
    console.log(JSON.stringify({ ...out, warnings }));`;
  const got = JSON.parse(execFileSync(process.execPath, ["--input-type=module", "-e", script], { env: { ...process.env, VIDEO_SDK_SHM_NATIVE: "0" }, encoding: "utf8" }));
  assert.deepEqual(got, { mapped: false, bytes: true, value: 42, status: { mapped: false, reason: "VIDEO_SDK_SHM_NATIVE=0" }, warnings: ["VASDK_SHM_FALLBACK"] });
});
