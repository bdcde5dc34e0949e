/**
 * Load generator on the SDK's TritonClient, for `bench client`: the counterpart of bench/tritonclient_load.py,
 * run as a child `node` process so that its CPU time is the SDK's alone. One configuration as one JSON
 * argument (the same fields as the Python one):
 *
 *   node dist/bench/client-load.js '{"url":"127.0.0.1:8001","protocol":"grpc","shm":"none","model":"echo_320",
 *     "input":{"name":"INPUT__0","datatype":"UINT8","shape":[1,320,320,3]},
 *     "outputs":[{"name":"OUTPUT__0","datatype":"UINT8","shape":[1,320,320,3]}],"concurrency":4,"duration":3,"warmup":3,"warmup_seconds":2}'
 *
 * One TritonClient, C concurrent loops of infer() on the same frame (random bytes made once). With
 * shm "system" every loop makes its own input and output regions (SystemSharedMemory), registers them,
 * writes the frame into the input region before every request (the copy of each new frame), infers with a
 * SharedMemoryTensor input and sharedMemoryOutputs, reads the outputs back, and unregisters and destroys
 * the regions at the end.
 *
 * Prints {"event":"start"} and {"event":"end"} lines at the ends of the measured window (for a parent that
 * samples the server's CPU), then one JSON line: requests, seconds, req_per_s, p50_ms, p99_ms, cpu_s (process.cpuUsage(), user +
 * system, over the measured window), cpu_ms_per_req. Every answer's output size is checked (the first
 * answer's contents too, with check_echo); a wrong answer fails the run (exit 1) instead of counting.
 * Exit 3: the SDK cannot do this configuration (e.g. a protocol it does not have yet).
 */
import { randomBytes } from "node:crypto";
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { elementCount, elementSize, tensor, type DataType } from "../src/tensor.js";
import { TritonClient, type TritonClientOptions } from "../src/triton/client.js";
import { SystemSharedMemory } from "../src/triton/shared-memory.js";
import type { SharedMemoryTensor } from "../src/triton/protocol.js";
import { percentile } from "./stats.js";

export interface TensorSpec {
  name: string;
  datatype: DataType;
  shape: number[];
}

/** One load configuration, shared with bench/tritonclient_load.py. */
export interface LoadConfig {
  url: string;
  protocol: "grpc" | "http";
  shm: "none" | "system";
  model: string;
  input: TensorSpec;
  outputs: TensorSpec[];
  concurrency: number;
  /** Seconds of measured load (or `requests`). */
  duration?: number;
  /** Measured requests in all, instead of a duration. */
  requests?: number;
  /** Unmeasured requests per loop first (default 3). */
  warmup?: number;
  /** And unmeasured requests until this many seconds have passed, per loop (default 0): a steady state. */
  warmup_seconds?: number;
  /** The first answer's (only) output must equal the input. */
  check_echo?: boolean;
}

/** What a load generator prints (both the SDK's and tritonclient's). */
export interface LoadResult {
  client: "sdk" | "tritonclient";
  protocol: string;
  shm: string;
  model: string;
  concurrency: number;
  requests: number;
  warmup_requests: number;
  seconds: number;
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_s: number;
  cpu_ms_per_req: number;
  output_bytes: number[];
  outputs_checked: number;
  output_check: "ok";
  node?: string;
  python?: string;
  tritonclient?: string;
}

export function specBytes(s: TensorSpec): number {
  return elementCount(s.shape) * (elementSize(s.datatype) ?? 1);
}

const round = (x: number, d: number) => +x.toFixed(d);

class Unsupported extends Error {}

async function run(cfg: LoadConfig): Promise<LoadResult> {
  const C = cfg.concurrency;
  const warmup = cfg.warmup ?? 3;
  const inBytes = specBytes(cfg.input);
  const outBytes = cfg.outputs.map(specBytes);
  const raw = randomBytes(inBytes);
  const frame = new Uint8Array(raw.buffer, raw.byteOffset, raw.byteLength);
  if (cfg.input.datatype !== "UINT8") throw new Error(`client-load feeds UINT8 inputs only, got ${cfg.input.datatype}`);

  let client: TritonClient;
  try {
    // `protocol` is part of TritonClientOptions now; the cast keeps this compiling against an SDK without it.
    client = await TritonClient.create({ url: cfg.url, protocol: cfg.protocol } as TritonClientOptions & { protocol: string });
  } catch (e) {
    if (cfg.protocol !== "grpc") throw new Unsupported(`TritonClient.create({ protocol: "${cfg.protocol}" }) failed: ${(e as Error).message}`);
    throw e;
  }

  let stop = false;
  let left = cfg.requests ?? Infinity;
  let tEnd = Infinity;
  const latencies: number[][] = Array.from({ length: C }, () => []);
  let checked = 0;
  let warmed = 0;
  let failure: Error | undefined;
  const fail = (e: unknown) => {
    failure ??= e instanceof Error ? e : new Error(String(e));
    stop = true;
  };
  const take = () => {
    if (stop) return false;
    if (cfg.requests !== undefined) return left-- > 0;
    return performance.now() < tEnd;
  };

  // Resolved once every loop is warm; the window starts then.
  let warm = 0;
  let allWarm!: () => void;
  const allWarmP = new Promise<void>((r) => (allWarm = r));
  let go!: () => void;
  const goP = new Promise<void>((r) => (go = r));

  const regions: SystemSharedMemory[] = [];
  const registered: string[] = [];
  const loop = async (i: number) => {
    try {
      let one: (first: boolean) => Promise<void>;
      const check = (k: number, got: number, first: boolean, bytes?: Uint8Array) => {
        if (got !== outBytes[k]) throw new Error(`${cfg.model}: output ${cfg.outputs[k]!.name} holds ${got} bytes, expected ${outBytes[k]}`);
        if (first && cfg.check_echo && bytes && !Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).equals(raw)) {
          throw new Error(`${cfg.model}: output ${cfg.outputs[k]!.name} is not the input echoed`);
        }
      };
      if (cfg.shm === "system") {
        const base = `vasdk_bench_${process.pid}_${i}`;
        const input = SystemSharedMemory.create(`/${base}_in`, inBytes);
        regions.push(input);
        await client.registerSystemSharedMemory(`${base}_in`, input.key, inBytes);
        registered.push(`${base}_in`);
        const outs = cfg.outputs.map((s, k) => {
          const r = SystemSharedMemory.create(`/${base}_out${k}`, outBytes[k]!);
          regions.push(r);
          return { name: `${base}_out${k}`, region: r };
        });
        for (const [k, o] of outs.entries()) {
          await client.registerSystemSharedMemory(o.name, o.region.key, outBytes[k]!);
          registered.push(o.name);
        }
        const shmInput: SharedMemoryTensor = { ...cfg.input, sharedMemory: { region: `${base}_in`, byteSize: inBytes } };
        const sharedMemoryOutputs = Object.fromEntries(cfg.outputs.map((s, k) => [s.name, { region: outs[k]!.name, byteSize: outBytes[k]! }]));
        one = async (first) => {
          input.write(0, frame); // the copy of each new frame
          const r = await client.infer(cfg.model, [shmInput], { sharedMemoryOutputs });
          const listed = (r as { sharedMemory?: Record<string, { datatype: DataType; shape: number[] }> }).sharedMemory;
          for (const [k, s] of cfg.outputs.entries()) {
            const where = listed?.[s.name];
            const declared = where ? elementCount(where.shape) * (elementSize(where.datatype) ?? 1) : outBytes[k]!;
            const bytes = outs[k]!.region.read(0, declared);
            check(k, declared, first, bytes);
          }
          checked++;
        };
      } else {
        const outputs = cfg.outputs.map((s) => s.name);
        one = async (first) => {
          const r = await client.infer(cfg.model, [tensor(cfg.input.name, "UINT8", cfg.input.shape, frame)], { outputs });
          for (const [k, s] of cfg.outputs.entries()) {
            const t = r.outputs[s.name];
            const data = t?.data as ArrayBufferView | undefined;
            check(k, data?.byteLength ?? -1, first, data && new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
          }
          checked++;
        };
      }
      const until = performance.now() + (cfg.warmup_seconds ?? 0) * 1000;
      for (let w = 0; w < Math.max(1, warmup) || performance.now() < until; w++) {
        await one(w === 0);
        warmed++;
      }
      if (++warm === C) allWarm();
      await goP;
      const lat = latencies[i]!;
      while (take()) {
        const t = performance.now();
        await one(false);
        lat.push(performance.now() - t);
      }
    } catch (e) {
      fail(e);
      if (++warm >= C) allWarm();
    }
  };

  const loops = Array.from({ length: C }, (_, i) => loop(i));
  await allWarmP;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  if (cfg.requests === undefined) tEnd = t0 + (cfg.duration ?? 3) * 1000;
  console.log(JSON.stringify({ event: "start" }));
  go();
  await Promise.all(loops);
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ event: "end" }));
  // The clean-up is not measured.
  for (const name of registered) await client.unregisterSystemSharedMemory(name).catch(() => undefined);
  for (const r of regions) r.destroy();
  await client.close();
  if (failure) throw failure;
  const all = latencies.flat();
  if (all.length === 0) throw new Error("no request finished in the measured window");
  const cpuS = (cpu.user + cpu.system) / 1e6;
  return {
    client: "sdk",
    protocol: cfg.protocol,
    shm: cfg.shm,
    model: cfg.model,
    concurrency: C,
    node: process.version,
    requests: all.length,
    warmup_requests: warmed,
    seconds: round(seconds, 4),
    req_per_s: round(all.length / seconds, 2),
    p50_ms: round(percentile(all, 50), 3),
    p99_ms: round(percentile(all, 99), 3),
    cpu_s: round(cpuS, 4),
    cpu_ms_per_req: round((cpuS * 1e3) / all.length, 4),
    output_bytes: outBytes,
    outputs_checked: checked,
    output_check: "ok",
  };
}

// Run only as the entry point (the types above are imported by bench/client.ts).
if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  const cfg = JSON.parse(process.argv[2] ?? "null") as LoadConfig | null;
  const base = cfg && { client: "sdk", protocol: cfg.protocol, shm: cfg.shm, model: cfg.model, concurrency: cfg.concurrency };
  if (!cfg?.url || !cfg.model || !cfg.input || !cfg.outputs?.length || !(cfg.concurrency >= 1)) {
    console.error("usage: node dist/bench/client-load.js '{\"url\":...,\"protocol\":\"grpc|http\",\"shm\":\"none|system\",\"model\":...,\"input\":{...},\"outputs\":[...],\"concurrency\":N,\"duration\":S}'");
    process.exit(2);
  }
  try {
    console.log(JSON.stringify(await run(cfg)));
  } catch (e) {
    console.log(JSON.stringify({ ...base, ...(e instanceof Unsupported ? { unsupported: true } : {}), error: (e as Error).message }));
    process.exitCode = e instanceof Unsupported ? 3 : 1;
  }
}
