import assert from "node:assert/strict";
import { execFileSync, spawnSync } from "node:child_process";
import { createRequire } from "node:module";
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

test("a large write (the addon's streaming copy) puts every byte where asked, at any alignment and from any view", { skip: !linux && "Linux only" }, () => {
  const k = key();
  const size = 3 << 20;
  // The addon's copy, not TypedArray.set, is what is under test here.
  assert.equal(typeof (createRequire(import.meta.url)("../../native/shm.node") as { copy?: unknown }).copy, "function");
  const r = SystemSharedMemory.create(k, size);
  try {
    // 2.76 MB (a 960x960x3 frame) at an odd offset, from an odd offset of its buffer: head, 64-byte body, tail.
    const src = new Uint8Array(960 * 960 * 3 + 7);
    for (let i = 0; i < src.length; i++) src[i] = (i * 2654435761) >>> 24;
    const frame = src.subarray(3, 3 + 960 * 960 * 3 + 1);
    r.bytes!.fill(0xee);
    r.write(13, frame);
    const file = readFileSync(`/dev/shm${k}`);
    assert.ok(file.subarray(13, 13 + frame.length).equals(frame), "the region holds the frame");
    assert.ok(file.subarray(0, 13).every((b) => b === 0xee) && file.subarray(13 + frame.length).every((b) => b === 0xee), "nothing around it is touched");
    // A Float32Array travels as its bytes.
    const floats = new Float32Array(300_000).map((_, i) => i / 7);
    r.write(0, new Uint8Array(floats.buffer));
    assert.deepEqual(new Float32Array(r.bytes!.buffer.slice(0, floats.byteLength)), floats);
    // A view of the region written into the region itself (overlapping) is a move, not garbage.
    const before = Buffer.from(r.bytes!.subarray(0, 2 << 20));
    r.write(1000, r.bytes!.subarray(0, 2 << 20));
    assert.ok(r.view(1000, 2 << 20).equals(before));
    assert.throws(() => r.write(size - 10, frame), RangeError);
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

test("a view outlives destroy() and the region object; the mapping goes once the last view is collected", { skip: !linux && "Linux only" }, () => {
  const mod = fileURLToPath(new URL("../../src/triton/shared-memory.js", import.meta.url));
  const k = `/vasdk_it_${process.pid}_gc`;
  const script = `
    const { readFileSync } = await import("node:fs");
    const { SystemSharedMemory } = await import(${JSON.stringify(mod)});
    const mapped = () => readFileSync("/proc/self/maps", "utf8").includes(${JSON.stringify(k.slice(1))});
    const turn = async () => { for (let i = 0; i < 3; i++) { globalThis.gc(); await new Promise((r) => setImmediate(r)); } };
    let r = SystemSharedMemory.create(${JSON.stringify(k)}, 1 << 20);
    let v = r.view(4096, 16);
    v.fill(7);
    r.destroy();
    r = undefined;
    await turn();
    const kept = { mapped: mapped(), sum: v.reduce((a, b) => a + b, 0) };
    v[0] = 1;
    v = undefined;
    await turn();
    console.log(JSON.stringify({ kept, after: mapped() }));`;
  const got = JSON.parse(execFileSync(process.execPath, ["--expose-gc", "--input-type=module", "-e", script], { encoding: "utf8" }));
  assert.deepEqual(got, { kept: { mapped: true, sum: 7 * 16 }, after: false });
});

test("the addon refuses to map more than a region holds (touching past its end would be a SIGBUS)", { skip: !linux && "Linux only" }, () => {
  const addon = createRequire(import.meta.url)("../../native/shm.node") as { map(key: string, n: number, create: boolean): ArrayBuffer; unlink(key: string): void };
  const k = key();
  const r = SystemSharedMemory.create(k, 4096);
  try {
    assert.equal(addon.map(k, 4096, false).byteLength, 4096);
    assert.throws(() => addon.map(k, 8192, false), /shared memory is smaller than asked \/vasdk_it_.*: Invalid argument/);
    assert.throws(() => addon.map(`/vasdk_it_${process.pid}_absent`, 16, false), /cannot open shared memory \/vasdk_it_\d+_absent: No such file or directory/);
  } finally {
    r.destroy();
  }
});

// A full /dev/shm (64 MiB in a default Docker container) must be an error at create, not a SIGBUS that
// kills the process on the first write. Needs a private mount namespace (root and unshare).
const unshare = linux && process.getuid?.() === 0 && spawnSync("unshare", ["-m", "true"]).status === 0;
test("a /dev/shm too small for the region is an IO_ERROR at create, not a crash on write", { skip: !unshare && "needs root and unshare -m" }, () => {
  const mod = fileURLToPath(new URL("../../src/triton/shared-memory.js", import.meta.url));
  const script = `
    const { SystemSharedMemory } = await import(${JSON.stringify(mod)});
    const out = { mapped: SystemSharedMemory.nativeStatus().mapped };
    try {
      const r = SystemSharedMemory.create("/vasdk_it_${process.pid}_full", 8 << 20);
      r.bytes.fill(1);
      out.created = true;
    } catch (e) {
      out.code = e.code;
      out.message = e.message;
    }
    console.log(JSON.stringify(out));`;
  const sh = `mount -t tmpfs -o size=1m tmpfs /dev/shm && exec "$0" --input-type=module -e "$1"`;
  const got = JSON.parse(execFileSync("unshare", ["-m", "sh", "-c", sh, process.execPath, script], { encoding: "utf8" }));
  assert.equal(got.mapped, true);
  assert.equal(got.code, "IO_ERROR");
  assert.match(got.message, /No space left on device/);
});
