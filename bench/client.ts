import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseCommandArgs, numberFlag } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import { VideoAnalysisError } from "../src/errors.js";
import { TritonClient } from "../src/triton/client.js";
import { startRealTriton, type RealTriton } from "../test/support/real-tritonserver.js";
import { repoRoot } from "../test/support/testdata.js";
import type { LoadConfig, LoadResult, TensorSpec } from "./client-load.js";
import { printTable } from "./stats.js";

const USAGE =
  "video-analysis bench client [--url HOST:PORT] [--http-url HOST:PORT] [--python PATH] [--duration S] [--repeats N] " +
  "[--concurrency 1,4,16] [--payloads 320,640,960,yolo] [--transports grpc,grpc-shm,http,http-shm] [--warmup N] [--warmup-seconds S] [--json]";

const LOAD_JS = fileURLToPath(new URL("./client-load.js", import.meta.url));
const LOAD_PY = join(repoRoot, "bench/tritonclient_load.py");

interface Payload {
  name: string;
  model: string;
  input: TensorSpec;
  output: TensorSpec;
  /** The output is the input echoed (checked once per run). */
  echo: boolean;
}

const frameSpec = (size: number): TensorSpec => ({ name: "INPUT__0", datatype: "UINT8", shape: [1, size, size, 3] });

export const PAYLOADS: Record<string, Payload> = {
  "320": { name: "320", model: "echo_320", input: frameSpec(320), output: { ...frameSpec(320), name: "OUTPUT__0" }, echo: true },
  "640": { name: "640", model: "echo_640", input: frameSpec(640), output: { ...frameSpec(640), name: "OUTPUT__0" }, echo: true },
  "960": { name: "960", model: "echo_960", input: frameSpec(960), output: { ...frameSpec(960), name: "OUTPUT__0" }, echo: true },
  yolo: { name: "yolo", model: "yolo_out_640", input: frameSpec(640), output: { name: "OUTPUT__0", datatype: "FP32", shape: [1, 84, 8400] }, echo: false },
};

const TRANSPORTS: Record<string, { protocol: "grpc" | "http"; shm: "none" | "system" }> = {
  grpc: { protocol: "grpc", shm: "none" },
  "grpc-shm": { protocol: "grpc", shm: "system" },
  http: { protocol: "http", shm: "none" },
  "http-shm": { protocol: "http", shm: "system" },
};

const ECHO_PY = `import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """INPUT__0 back as OUTPUT__0, the same bytes (bench client)."""

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT__0", pb_utils.get_input_tensor_by_name(r, "INPUT__0").as_numpy())]) for r in requests]
`;

const YOLO_PY = `import numpy as np
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    """A constant FP32 [1,84,8400] answer (a YOLO head's size) to any UINT8 frame (bench client)."""

    def initialize(self, args):
        self.out = np.random.default_rng(0).random((1, 84, 8400), dtype=np.float32)

    def execute(self, requests):
        return [pb_utils.InferenceResponse([pb_utils.Tensor("OUTPUT__0", self.out)]) for _ in requests]
`;

function configPbtxt(name: string, input: TensorSpec, output: TensorSpec): string {
  const t = (s: TensorSpec) => `{ name: "${s.name}" data_type: TYPE_${s.datatype} dims: [ ${s.shape.join(", ")} ] }`;
  return [
    `name: "${name}"`,
    `backend: "python"`,
    `max_batch_size: 0`,
    `input [ ${t(input)} ]`,
    `output [ ${t(output)} ]`,
    `instance_group [ { count: 2 kind: KIND_CPU } ]`,
    "",
  ].join("\n");
}

/** Writes the bench's python-backend models (echo_320/640/960, yolo_out_640) into `dest`; returns their names. */
export function buildBenchRepository(dest: string): string[] {
  const names: string[] = [];
  for (const p of Object.values(PAYLOADS)) {
    mkdirSync(join(dest, p.model, "1"), { recursive: true });
    writeFileSync(join(dest, p.model, "config.pbtxt"), configPbtxt(p.model, p.input, p.output));
    writeFileSync(join(dest, p.model, "1", "model.py"), p.echo ? ECHO_PY : YOLO_PY);
    names.push(p.model);
  }
  return names;
}

/** CPU seconds so far of the processes whose command line names `needle` (the server and its python stubs). */
function serverCpu(pids: number[]): number | undefined {
  let total = 0;
  try {
    for (const pid of pids) {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
      total += Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15), in USER_HZ = 100 ticks
    }
  } catch {
    return undefined;
  }
  return total / 100;
}

function serverPids(needle: string): number[] {
  const pids: number[] = [];
  for (const d of readdirSync("/proc")) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, "utf8").includes(needle)) pids.push(Number(d));
    } catch {
      // Gone meanwhile.
    }
  }
  return pids;
}

interface PythonInfo {
  python: string;
  /** Path or command of the interpreter. */
  path: string;
  tritonclient?: string;
  /** Why tritonclient cannot be used, per protocol (absent: usable). */
  unavailable: Partial<Record<"grpc" | "http", string>>;
}

function probePython(python: string): PythonInfo {
  const code = [
    "import json, sys",
    "out = {'python': sys.version.split()[0], 'unavailable': {}}",
    "try:\n    from importlib.metadata import version\n    out['tritonclient'] = version('tritonclient')\nexcept Exception as e:\n    out['tritonclient'] = None",
    "for p in ('grpc', 'http'):\n    try:\n        __import__('tritonclient.' + p)\n        import tritonclient.utils.shared_memory\n    except Exception as e:\n        out['unavailable'][p] = type(e).__name__ + ': ' + str(e).strip().splitlines()[-1]",
    "print(json.dumps(out))",
  ].join("\n");
  const r = spawnSync(python, ["-c", code], { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) {
    const why = (r.error?.message ?? r.stderr ?? "").trim().split("\n").pop() || `exit ${r.status}`;
    return { python: "?", path: python, unavailable: { grpc: `${python} does not run: ${why}`, http: `${python} does not run: ${why}` } };
  }
  const info = JSON.parse(r.stdout.trim().split("\n").pop()!) as Omit<PythonInfo, "path">;
  return { ...info, path: python, tritonclient: info.tritonclient ?? undefined };
}

type RunOutcome =
  | { ok: true; result: LoadResult; serverCpuS?: number }
  | { ok: false; unsupported: boolean; error: string };

/** Runs one load generator child and returns its JSON line; the server's CPU is sampled at its window's ends. */
function runChild(cmd: string, args: string[], timeoutMs: number, pids: number[] | undefined): Promise<RunOutcome> {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    let err = "";
    let cpuStart: number | undefined;
    let cpuEnd: number | undefined;
    let pending = "";
    child.stdout.setEncoding("utf8");
    child.stderr.setEncoding("utf8");
    child.stdout.on("data", (s: string) => {
      out += s;
      pending += s;
      let nl: number;
      while ((nl = pending.indexOf("\n")) >= 0) {
        const line = pending.slice(0, nl);
        pending = pending.slice(nl + 1);
        if (!pids) continue;
        if (line === '{"event":"start"}' || line === '{"event": "start"}') cpuStart = serverCpu(pids);
        else if (line === '{"event":"end"}' || line === '{"event": "end"}') cpuEnd = serverCpu(pids);
      }
    });
    child.stderr.on("data", (s: string) => (err = (err + s).slice(-8000)));
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const done = (code: number | null, signal: string | null, spawnError?: Error) => {
      clearTimeout(timer);
      // Regions a killed child left behind (it names them vasdk_bench_<pid>_*).
      try {
        for (const f of readdirSync("/dev/shm")) if (child.pid && f.startsWith(`vasdk_bench_${child.pid}_`)) rmSync(join("/dev/shm", f), { force: true });
      } catch {
        // No /dev/shm.
      }
      if (spawnError) return resolve({ ok: false, unsupported: true, error: `cannot run ${cmd}: ${spawnError.message}` });
      const last = out.trim().split("\n").filter((l) => l.startsWith("{") && !l.includes('"event"')).pop();
      let parsed: (LoadResult & { error?: string; unsupported?: boolean }) | undefined;
      try {
        parsed = last ? JSON.parse(last) : undefined;
      } catch {
        parsed = undefined;
      }
      if (parsed && !parsed.error && code === 0) {
        const serverCpuS = cpuStart !== undefined && cpuEnd !== undefined ? cpuEnd - cpuStart : undefined;
        return resolve({ ok: true, result: parsed, ...(serverCpuS !== undefined ? { serverCpuS } : {}) });
      }
      const why = parsed?.error ?? `exit ${code ?? signal}${signal === "SIGKILL" ? " (killed after the time limit)" : ""}: ${err.trim().split("\n").slice(-5).join(" | ")}`;
      resolve({ ok: false, unsupported: parsed?.unsupported === true || code === 3, error: why });
    };
    child.once("error", (e) => done(null, null, e));
    child.once("close", (code, signal) => done(code, signal));
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number | undefined, d = 1) => (x === undefined || !Number.isFinite(x) ? "-" : x.toFixed(d));

interface Side {
  req_per_s: number;
  p50_ms: number;
  p99_ms: number;
  cpu_ms_per_req: number;
  /** The server's CPU (tritonserver and its python stubs) per request over the window; null: not sampled. */
  server_cpu_ms_per_req: number | null;
  /** (client CPU + server CPU) / (cores x seconds) over the window: near 1, the machine was the limit. */
  machine_busy: number | null;
  output_check: "ok";
  outputs_checked: number;
  runs: LoadResult[];
}

function side(runs: Array<{ result: LoadResult; serverCpuS?: number }>, cores: number): Side {
  const srv = runs.filter((r) => r.serverCpuS !== undefined);
  return {
    req_per_s: +median(runs.map((r) => r.result.req_per_s)).toFixed(2),
    p50_ms: +median(runs.map((r) => r.result.p50_ms)).toFixed(3),
    p99_ms: +median(runs.map((r) => r.result.p99_ms)).toFixed(3),
    cpu_ms_per_req: +median(runs.map((r) => r.result.cpu_ms_per_req)).toFixed(4),
    server_cpu_ms_per_req: srv.length ? +median(srv.map((r) => (r.serverCpuS! * 1e3) / r.result.requests)).toFixed(3) : null,
    machine_busy: srv.length ? +median(srv.map((r) => (r.serverCpuS! + r.result.cpu_s) / (cores * r.result.seconds))).toFixed(2) : null,
    output_check: "ok",
    outputs_checked: runs.reduce((n, r) => n + r.result.outputs_checked, 0),
    runs: runs.map((r) => r.result),
  };
}

const spread = (xs: number[]) => ({ median: +median(xs).toFixed(3), min: +Math.min(...xs).toFixed(3), max: +Math.max(...xs).toFixed(3) });

function listFlag(flag: string, value: string | undefined, fallback: string, allowed?: string[]): string[] {
  const items = (value ?? fallback).split(",").map((s) => s.trim()).filter(Boolean);
  if (items.length === 0) throw new VideoAnalysisError("INVALID_ARGUMENT", `--${flag} is empty\nusage: ${USAGE}`);
  for (const it of items) {
    if (allowed && !allowed.includes(it)) throw new VideoAnalysisError("INVALID_ARGUMENT", `--${flag}: "${it}" is not one of ${allowed.join(", ")}\nusage: ${USAGE}`);
  }
  return items;
}

export const clientBench: Benchmark = {
  summary: "the SDK's Triton transports (gRPC, HTTP, with system shared memory) side by side with NVIDIA's Python tritonclient",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench client", usage: USAGE }, argv, {
      url: { type: "string", value: "HOST:PORT", description: "gRPC endpoint of a server that has the bench models (default: start the real tritonserver here)" },
      "http-url": { type: "string", value: "HOST:PORT", description: "HTTP endpoint of that server (default: the started server's)" },
      python: { type: "string", value: "PATH", description: "the Python with NVIDIA's tritonclient for the reference lines (default: .venv/bin/python3, else python3)" },
      duration: { type: "string", value: "S", description: "seconds of load per measurement (default 3)" },
      repeats: { type: "string", value: "N", description: "measurements per row; the table shows their median (default 3)" },
      concurrency: { type: "string", value: "LIST", description: "requests kept in flight, one row each (default 1,4,16)" },
      payloads: { type: "string", value: "LIST", description: "what is sent: 320, 640, 960 (UINT8 frames echoed back), yolo (a 640 frame in, a YOLO [1,84,8400] FP32 answer) (default all)" },
      transports: { type: "string", value: "LIST", description: "grpc, grpc-shm, http, http-shm: protocols, with system shared memory or without (default all)" },
      warmup: { type: "string", value: "N", description: "requests sent before each measurement (default 3)" },
      "warmup-seconds": {
        type: "string",
        value: "S",
        description: "and requests sent, unmeasured, until S seconds have passed, by both clients alike: V8 optimises the SDK's request path over its first few thousand requests (default 2; 0: cold)",
      },
      json: { type: "boolean", description: "print one JSON object instead of the tables" },
    });
    const duration = numberFlag("duration", values.duration, 3, { min: 0.05 });
    const repeats = numberFlag("repeats", values.repeats, 3, { min: 1 });
    const warmup = numberFlag("warmup", values.warmup, 3, { min: 0 });
    const warmupSeconds = numberFlag("warmup-seconds", values["warmup-seconds"], 2, { min: 0 });
    const concurrency = listFlag("concurrency", values.concurrency, "1,4,16").map((c) => numberFlag("concurrency", c, 1, { min: 1, max: 1024 }));
    const payloads = listFlag("payloads", values.payloads, "320,640,960,yolo", Object.keys(PAYLOADS)).map((p) => PAYLOADS[p]!);
    const transports = listFlag("transports", values.transports, "grpc,grpc-shm,http,http-shm", Object.keys(TRANSPORTS));
    const venvPython = join(repoRoot, ".venv/bin/python3");
    const python = probePython(values.python ?? (existsSync(venvPython) ? venvPython : "python3"));
    const log = (s: string) => (values.json ? console.error(s) : console.log(s));
    const notes: string[] = [];
    for (const [p, why] of Object.entries(python.unavailable)) {
      if (transports.some((t) => TRANSPORTS[t]!.protocol === p)) log(`note: tritonclient ${p} is not usable with ${python.path}: ${why}; SDK lines only for ${p}`);
    }

    let server: RealTriton | undefined;
    let grpcUrl = values.url;
    let httpUrl = values["http-url"];
    if (!grpcUrl && !httpUrl) {
      const started = await startRealTriton({ http: true, build: buildBenchRepository });
      if (started.skip !== undefined) throw new VideoAnalysisError("FAILED_PRECONDITION", `bench client: the real tritonserver cannot run here (${started.skip}); pass --url/--http-url of a server that has the bench models`);
      server = started.server;
      grpcUrl = server.address;
      httpUrl = server.httpAddress;
    }
    try {
      let serverVersion = "?";
      if (grpcUrl) {
        const meta = await TritonClient.create({ url: grpcUrl }).then(async (c) => {
          try {
            return await c.serverMetadata();
          } finally {
            await c.close();
          }
        });
        serverVersion = `${meta.name} ${meta.version}`;
      }
      const pids = server ? serverPids(server.repository) : undefined;
      const cores = cpus().length;
      const machine = `${cores} cores (${cpus()[0]?.model.trim() ?? "?"})`;
      const header = `machine: ${machine}; server: ${serverVersion}${server ? " (started here, python-backend models, 2 CPU instances each)" : ` at ${grpcUrl ?? ""} ${httpUrl ?? ""}`}; node ${process.version}; python ${python.python}, tritonclient ${python.tritonclient ?? "absent"}; each measurement after ${warmupSeconds} s of unmeasured load`;
      log(header);

      const rows: Record<string, unknown>[] = [];
      const table: Record<string, string | number>[] = [];
      let failed = false;
      let cell = 0;
      // A protocol the SDK (or tritonclient) refused once is not tried again: its cells say n/a, one note says why.
      const refused: Partial<Record<string, string>> = {};
      const refusals = new Map<string, string[]>();
      const limitMs = (duration + warmupSeconds + 120) * 1000;
      for (const p of payloads) {
        for (const c of concurrency) {
          for (const t of transports) {
            const { protocol, shm } = TRANSPORTS[t]!;
            const url = protocol === "grpc" ? grpcUrl : httpUrl;
            if (!url) {
              const n = `${t}: no ${protocol} URL (--${protocol === "grpc" ? "url" : "http-url"}); skipped`;
              if (!notes.includes(n)) notes.push(n);
              continue;
            }
            const cfg: LoadConfig = {
              url, protocol, shm, model: p.model, input: p.input, outputs: [p.output], concurrency: c, duration, warmup, warmup_seconds: warmupSeconds, check_echo: p.echo,
            };
            const tcUnavailable = python.unavailable[protocol];
            const sdkRuns: Array<{ result: LoadResult; serverCpuS?: number }> = [];
            const tcRuns: Array<{ result: LoadResult; serverCpuS?: number }> = [];
            const errors: { sdk?: string; tritonclient?: string } = {};
            const ratios: number[] = [];
            const cpuRatios: number[] = [];
            for (let r = 0; r < repeats; r++) {
              // Interleaved, the order alternating, so drifts of a shared machine hit both alike.
              const order: Array<"sdk" | "tritonclient"> = (cell + r) % 2 === 0 ? ["sdk", "tritonclient"] : ["tritonclient", "sdk"];
              const got: Partial<Record<"sdk" | "tritonclient", LoadResult>> = {};
              for (const who of order) {
                if (errors[who]) continue;
                if (who === "tritonclient" && tcUnavailable) {
                  errors.tritonclient = `unavailable: ${tcUnavailable}`;
                  continue;
                }
                const known = refused[`${who} ${protocol}`];
                if (known) {
                  errors[who] = `unsupported: ${known}`;
                  continue;
                }
                const o =
                  who === "sdk"
                    ? await runChild(process.execPath, [LOAD_JS, JSON.stringify(cfg)], limitMs, pids)
                    : await runChild(python.path, [LOAD_PY, JSON.stringify(cfg)], limitMs, pids);
                if (o.ok) {
                  (who === "sdk" ? sdkRuns : tcRuns).push(o);
                  got[who] = o.result;
                } else {
                  errors[who] = o.unsupported ? `unsupported: ${o.error}` : o.error;
                  if (o.unsupported) refused[`${who} ${protocol}`] = o.error;
                  else failed = true;
                }
              }
              if (got.sdk && got.tritonclient) {
                ratios.push(got.sdk.req_per_s / got.tritonclient.req_per_s);
                cpuRatios.push(got.sdk.cpu_ms_per_req / got.tritonclient.cpu_ms_per_req);
              }
            }
            cell++;
            const sdk = sdkRuns.length ? side(sdkRuns, cores) : null;
            const tc = tcRuns.length ? side(tcRuns, cores) : null;
            for (const [who, e] of Object.entries(errors)) {
              if (/^(unsupported|unavailable): /.test(e)) {
                const key = `${who === "sdk" ? "SDK" : "tritonclient"}: ${e}`;
                if (!refusals.has(key)) refusals.set(key, []);
                refusals.get(key)!.push(`${p.name}/C${c}/${t}`);
              } else notes.push(`${p.name} C=${c} ${t} ${who} FAILED: ${e}`);
            }
            rows.push({
              payload: p.name, model: p.model, concurrency: c, transport: t, sdk, tritonclient: tc,
              ratio: ratios.length ? spread(ratios) : null,
              cpu_ratio: cpuRatios.length ? spread(cpuRatios) : null,
              ...(Object.keys(errors).length ? { errors } : {}),
            });
            const range = (s: { median: number; min: number; max: number } | null, d: number) =>
              !s ? "-" : repeats > 1 ? `${s.median.toFixed(d)} [${s.min.toFixed(d)}..${s.max.toFixed(d)}]` : s.median.toFixed(d);
            const mark = (who: "sdk" | "tritonclient") => (errors[who] ? (errors[who]!.startsWith("unsupported") || errors[who]!.startsWith("unavailable") ? "n/a" : "FAIL") : "-");
            table.push({
              payload: p.name,
              C: c,
              transport: t,
              "sdk req/s": sdk ? fmt(sdk.req_per_s) : mark("sdk"),
              "tc req/s": tc ? fmt(tc.req_per_s) : mark("tritonclient"),
              "ratio sdk/tc": range(ratios.length ? spread(ratios) : null, 2),
              "sdk p50/p99 ms": sdk ? `${fmt(sdk.p50_ms, 2)}/${fmt(sdk.p99_ms, 2)}` : "-",
              "tc p50/p99 ms": tc ? `${fmt(tc.p50_ms, 2)}/${fmt(tc.p99_ms, 2)}` : "-",
              "sdk cpu ms/req": sdk ? fmt(sdk.cpu_ms_per_req, 3) : "-",
              "tc cpu ms/req": tc ? fmt(tc.cpu_ms_per_req, 3) : "-",
              "cpu sdk/tc": range(cpuRatios.length ? spread(cpuRatios) : null, 2),
              "srv cpu ms/req sdk|tc": server ? `${fmt(sdk?.server_cpu_ms_per_req ?? undefined, 2)}|${fmt(tc?.server_cpu_ms_per_req ?? undefined, 2)}` : "-",
              "busy sdk|tc": server ? `${fmt(sdk?.machine_busy ?? undefined, 2)}|${fmt(tc?.machine_busy ?? undefined, 2)}` : "-",
            });
            if (!values.json) process.stderr.write(`.`);
          }
        }
      }
      if (!values.json) process.stderr.write("\n");
      for (const [what, cells] of refusals) notes.push(`${what} (n/a in ${cells.length} cell${cells.length > 1 ? "s" : ""}: ${cells.length > 4 ? `${cells.slice(0, 4).join(", ")}, ...` : cells.join(", ")})`);
      const result = {
        benchmark: "client",
        header,
        machine: { cores, cpu: cpus()[0]?.model.trim() ?? null },
        server: { version: serverVersion, grpc: grpcUrl ?? null, http: httpUrl ?? null, started_here: server !== undefined },
        node: process.version,
        python: { path: python.path, version: python.python, tritonclient: python.tritonclient ?? null, unavailable: python.unavailable },
        duration_s: duration,
        repeats,
        warmup_per_loop: warmup,
        warmup_seconds: warmupSeconds,
        legend: {
          ratio: "median over repeats of SDK req/s / tritonclient req/s (min..max); > 1: the SDK is faster",
          cpu_ratio: "median over repeats of SDK CPU ms per request / tritonclient's; < 1: the SDK uses less CPU",
          server_cpu_ms_per_req: "tritonserver and its python stubs, over the window (only when the bench started the server)",
          machine_busy: "(client CPU + server CPU) / (cores x seconds): near 1, the machine, not the client, was the limit",
        },
        rows,
        notes,
        pass: !failed,
      };
      if (values.json) console.log(JSON.stringify(result));
      else {
        printTable(table);
        console.log("ratio = SDK req/s / tritonclient req/s (> 1: SDK faster); cpu sdk/tc = CPU ms per request (< 1: SDK leaner); busy = (client + server CPU) / (cores x s)");
        for (const n of notes) console.log(`note: ${n}`);
      }
      return failed ? 1 : 0;
    } finally {
      await server?.stop();
    }
  },
};
