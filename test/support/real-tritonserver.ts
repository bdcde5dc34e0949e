import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { TritonClient } from "../../src/triton/client.js";
import { repoRoot } from "./testdata.js";
import { isProcessAlive } from "../../src/pid.js";

/**
 * NVIDIA's real tritonserver (from the PyPI wheel nvidia-pytriton, run by scripts/tritonserver-local.sh)
 * for integration tests, serving a test repository made from the committed triton/models: ensembles and
 * preprocess_* models as generated, each `<model>_onnx` served by test/support/ort_python_model.py
 * (onnxruntime in the python backend, the wheel has no onnxruntime backend) on
 * models/contract/<model>.onnx. See docs/real-tritonserver.md.
 *
 * Environment:
 * - VIDEO_SDK_REAL_TRITON: unset = run when the server can run here, skip otherwise; `0` = always skip;
 *   `require` = fail instead of skipping (for CI machines that are meant to run it).
 * - VIDEO_SDK_REAL_TRITON_TIMEOUT_S: readiness deadline (default 120 s).
 * - VIDEO_SDK_REAL_TRITON_KEEP=1: keep the temporary repository and the server log after stop().
 * - TRITON_VENV, TRITON_PYTHON, ...: passed on to scripts/tritonserver-local.sh.
 */
export interface RealTriton {
  /** "127.0.0.1:port" of the gRPC endpoint. */
  address: string;
  /** "127.0.0.1:port" of the HTTP/REST endpoint (KServe v2), when started with `http: true`. */
  httpAddress?: string;
  /** The temporary test repository the server serves. */
  repository: string;
  /** Model directories of the test repository (= those of the source repository). */
  models: string[];
  /** Milliseconds from spawning the server until ServerReady answered true. */
  startupMs: number;
  /** The server's output so far (stdout and stderr). */
  log(): string;
  /** SIGTERM, then SIGKILL after a grace period; removes the repository and the server's /dev/shm regions. */
  stop(): Promise<void>;
  /** Takes the server down (SIGKILL by default: a crash; SIGTERM: a graceful stop), keeping its repository and ports. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Starts it again after kill(), on the same ports and repository; resolves once it is READY. */
  start(): Promise<void>;
}

export type RealTritonStart = { server: RealTriton; skip?: undefined } | { server?: undefined; skip: string };

export interface RealTritonOptions {
  /** The generated repository to serve (default: the committed triton/models). */
  source?: string;
  /** Where `<model>.onnx` contract models are (default: models/contract). */
  contractDir?: string;
  /** Readiness deadline in ms (default: $VIDEO_SDK_REAL_TRITON_TIMEOUT_S or 120 s). */
  deadlineMs?: number;
  /** Extra tritonserver flags. */
  args?: string[];
  /** Also serve HTTP/REST on a free port (RealTriton.httpAddress); gRPC only by default. */
  http?: boolean;
  /**
   * Builds the repository to serve into the given folder and returns its model names, instead of the
   * committed triton/models (`source`, `contractDir` are then ignored).
   */
  build?: (dest: string) => string[];
}

const SCRIPT = join(repoRoot, "scripts/tritonserver-local.sh");
const WRAPPER = join(repoRoot, "test/support/ort_python_model.py");

/** The tail of a long text, for error messages. */
function tail(text: string, lines = 40): string {
  return text.split("\n").slice(-lines).join("\n");
}

/** A RealTritonOptions.build that serves only these models of the committed triton/models, as they are. */
export function committedModels(...names: string[]): (dest: string) => string[] {
  return (dest) => {
    mkdirSync(dest, { recursive: true });
    for (const m of names) cpSync(join(repoRoot, "triton/models", m), join(dest, m), { recursive: true });
    return names;
  };
}

/**
 * Copies a generated repository to `dest` for the CPU-only real server: every `<m>_onnx` becomes a
 * python-backend model (config: `platform: "onnxruntime_onnx"` -> `backend: "python"`, one KIND_CPU
 * instance; `1/model.onnx` = `<contractDir>/<m>.onnx`, `1/model.py` = the onnxruntime wrapper). Every
 * other model (ensembles, preprocess_*) is copied unchanged. Returns the model names.
 */
export function buildTestRepository(dest: string, source = join(repoRoot, "triton/models"), contractDir = join(repoRoot, "models/contract")): string[] {
  if (!existsSync(source)) throw new Error(`${source} does not exist; generate it with \`video-analysis triton-repo\``);
  const models = readdirSync(source).filter((n) => existsSync(join(source, n, "config.pbtxt"))).sort();
  if (models.length === 0) throw new Error(`${source} holds no model (no */config.pbtxt)`);
  mkdirSync(dest, { recursive: true });
  for (const name of models) {
    const from = join(source, name);
    const to = join(dest, name);
    const config = readFileSync(join(from, "config.pbtxt"), "utf8");
    if (!/^platform:\s*"onnxruntime_onnx"\s*$/m.test(config)) {
      cpSync(from, to, { recursive: true });
      continue;
    }
    const onnx = join(contractDir, `${name.replace(/_onnx$/, "")}.onnx`);
    if (!existsSync(onnx)) throw new Error(`${name}: no contract model ${onnx} (make it with scripts/make_contract_models.py)`);
    const instance = "instance_group [ { count: 1 kind: KIND_CPU } ]";
    let rewritten = config.replace(/^platform:\s*"onnxruntime_onnx"\s*$/m, 'backend: "python"');
    rewritten = /instance_group\s*\[[^\]]*\]/.test(rewritten) ? rewritten.replace(/instance_group\s*\[[^\]]*\]/, instance) : `${rewritten.trimEnd()}\n${instance}\n`;
    mkdirSync(join(to, "1"), { recursive: true });
    writeFileSync(
      join(to, "config.pbtxt"),
      `# Rewritten by test/support/real-tritonserver.ts: onnxruntime inside the python backend (${WRAPPER.slice(repoRoot.length + 1)}).\n${rewritten}`,
    );
    cpSync(onnx, join(to, "1/model.onnx"));
    cpSync(WRAPPER, join(to, "1/model.py"));
  }
  return models;
}

/** A TCP port that was free a moment ago (the server binds it right after; a race is retried). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    // The server was spawned detached, so it leads a process group that holds it and its python stubs.
    process.kill(-child.pid, signal);
  } catch {
    // Already gone.
  }
}

function exited(child: ChildProcess): boolean {
  return child.exitCode !== null || child.signalCode !== null;
}

function waitExit(child: ChildProcess, ms: number): Promise<boolean> {
  if (exited(child)) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    child.once("exit", () => {
      clearTimeout(t);
      resolve(true);
    });
  });
}

/** Removes the python backend's shared-memory regions of one server (named by its unique prefix). */
function removeShm(prefix: string): void {
  try {
    for (const f of readdirSync("/dev/shm")) if (f.startsWith(prefix)) rmSync(join("/dev/shm", f), { force: true });
  } catch {
    // No /dev/shm: nothing to remove.
  }
}

/**
 * Removes what earlier runs that were killed before stop() left behind: temporary repositories
 * (`<tmp>/vasdk-real-triton-<pid>-*`) and /dev/shm regions (`vasdk_rt_<pid>_*` of the python stubs,
 * `vasdk_it_<pid>_*` of the tests) whose process is gone. Nothing else is named like these.
 */
export function removeStale(): void {
  const sweep = (dir: string, pattern: RegExp) => {
    let names: string[];
    try {
      names = readdirSync(dir);
    } catch {
      return;
    }
    for (const n of names) {
      const pid = pattern.exec(n)?.[1];
      if (pid && Number(pid) !== process.pid && !isProcessAlive(Number(pid))) rmSync(join(dir, n), { recursive: true, force: true });
    }
  };
  sweep(tmpdir(), /^vasdk-real-triton-(\d+)-/);
  sweep("/dev/shm", /^vasdk_(?:rt|it)_(\d+)_/);
}

/** Whether the server can run here: undefined when it can, else why not (scripts/tritonserver-local.sh --check). */
export function realTritonSkipReason(): string | undefined {
  const mode = process.env.VIDEO_SDK_REAL_TRITON;
  if (mode === "0" || mode === "off") return "disabled by VIDEO_SDK_REAL_TRITON=0";
  const r = spawnSync("bash", [SCRIPT, "--check"], { encoding: "utf8", timeout: 60_000 });
  if (r.status === 0) return undefined;
  const why = (r.stderr || r.stdout || r.error?.message || "").trim();
  if (r.status === 3) return why;
  throw new Error(`scripts/tritonserver-local.sh --check failed (exit ${r.status ?? r.signal}): ${why}`);
}

/**
 * Starts the real tritonserver on a test repository built from the committed triton/models, and waits
 * until it is READY. Resolves to `{ skip }` when the server cannot run on this machine (and
 * VIDEO_SDK_REAL_TRITON is not `require`); throws with the server's log when it should run but does not.
 */
export async function startRealTriton(options: RealTritonOptions = {}): Promise<RealTritonStart> {
  const skip = realTritonSkipReason();
  if (skip !== undefined) {
    if (process.env.VIDEO_SDK_REAL_TRITON === "require") throw new Error(`VIDEO_SDK_REAL_TRITON=require, but: ${skip}`);
    return { skip };
  }
  removeStale();
  const dir = mkdtempSync(join(tmpdir(), `vasdk-real-triton-${process.pid}-`));
  const repository = join(dir, "models");
  const keep = process.env.VIDEO_SDK_REAL_TRITON_KEEP === "1";
  try {
    const models = options.build ? options.build(repository) : buildTestRepository(repository, options.source, options.contractDir);
    const deadlineMs = options.deadlineMs ?? Number(process.env.VIDEO_SDK_REAL_TRITON_TIMEOUT_S ?? 120) * 1000;
    for (let attempt = 1; ; attempt++) {
      try {
        return { server: await launch(dir, repository, models, deadlineMs, options.args ?? [], keep, options.http ?? false) };
      } catch (e) {
        // Another process may have taken the port between freePort() and the server's bind.
        if (attempt < 3 && /address already in use|failed to start (grpc|http)/i.test(String((e as Error).message))) continue;
        throw e;
      }
    }
  } catch (e) {
    if (!keep) rmSync(dir, { recursive: true, force: true });
    throw e;
  }
}

async function launch(dir: string, repository: string, models: string[], deadlineMs: number, args: string[], keep: boolean, http: boolean): Promise<RealTriton> {
  const port = await freePort();
  const address = `127.0.0.1:${port}`;
  // Two calls may get the same free port back; tritonserver refuses equal gRPC and HTTP ports.
  let httpPort = http ? await freePort() : undefined;
  while (httpPort === port) httpPort = await freePort();
  // A unique prefix for the python stubs' /dev/shm regions, so stop() removes exactly this server's.
  const shmPrefix = `vasdk_rt_${process.pid}_${port}_`;
  let output = "";
  const t0 = performance.now();
  const argv = [
    SCRIPT,
    `--model-repository=${repository}`,
    `--grpc-address=127.0.0.1`,
    `--grpc-port=${port}`,
    ...(httpPort ? ["--allow-http=true", "--http-address=127.0.0.1", `--http-port=${httpPort}`] : ["--allow-http=false"]),
    "--allow-metrics=false",
    "--exit-timeout-secs=5",
    // Explicit control (everything loaded at start) so tests may unload and load models.
    "--model-control-mode=explicit",
    "--load-model=*",
    `--backend-config=python,shm-region-prefix-name=${shmPrefix}`,
    ...args,
  ];
  const collect = (b: Buffer) => {
    output += b.toString("utf8");
    if (output.length > 4_000_000) output = output.slice(-2_000_000);
  };
  let spawnError: Error | undefined;
  const spawnServer = (): ChildProcess => {
    const c = spawn("bash", argv, {
      detached: true,
      stdio: ["ignore", "pipe", "pipe"],
      // One onnxruntime/OpenMP thread per python stub: ~30 stubs share the (CI: 2) cores.
      env: { ...process.env, ORT_THREADS: process.env.ORT_THREADS ?? "1", OMP_NUM_THREADS: process.env.OMP_NUM_THREADS ?? "1" },
    });
    c.stdout!.on("data", collect);
    c.stderr!.on("data", collect);
    c.once("error", (e) => (spawnError = e));
    return c;
  };
  let child = spawnServer();
  // If the test process ends without stop() (a crash, a cancelled run), take the server down with it.
  const onExit = () => {
    killGroup(child, "SIGKILL");
    removeShm(shmPrefix);
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };
  process.once("exit", onExit);

  // The server and its stubs gone, their /dev/shm regions removed.
  const down = async (signal: NodeJS.Signals) => {
    if (!exited(child)) {
      if (signal === "SIGKILL") killGroup(child, "SIGKILL");
      else child.kill(signal);
      if (!(await waitExit(child, 20_000))) {
        killGroup(child, "SIGKILL");
        await waitExit(child, 5_000);
      }
    }
    // Stubs that outlived the server (there should be none).
    killGroup(child, "SIGKILL");
    removeShm(shmPrefix);
  };
  // halt(): down for good; the folder stays (a retry reuses it).
  let halted = false;
  const halt = async () => {
    if (halted) return;
    halted = true;
    process.removeListener("exit", onExit);
    await down("SIGTERM");
    if (keep) writeFileSync(join(dir, "tritonserver.log"), output);
  };
  const stop = async () => {
    await halt();
    if (!keep) rmSync(dir, { recursive: true, force: true });
  };

  const waitReady = async () => {
    const client = await TritonClient.create({ url: address, deadlineMs: 1000, retry: { maxAttempts: 1 } });
    try {
      const deadline = Date.now() + deadlineMs;
      for (;;) {
        if (exited(child)) {
          await halt();
          throw new Error(`tritonserver exited (${child.exitCode ?? child.signalCode}) before it was ready; its output ends with:\n${tail(output)}`);
        }
        if (spawnError) {
          await halt();
          throw new Error(`could not start ${SCRIPT}: ${(spawnError as Error).message}`);
        }
        if (Date.now() > deadline) {
          // A python stub that cannot start makes the server wait forever: never leave it running.
          killGroup(child, "SIGKILL");
          await halt();
          throw new Error(`tritonserver was not ready within ${deadlineMs} ms (killed); its output ends with:\n${tail(output)}`);
        }
        // gRPC answers before the HTTP front listens: both must.
        const ready = (await client.serverReady().catch(() => false)) && (!httpPort || (await fetch(`http://127.0.0.1:${httpPort}/v2/health/ready`).then((r) => r.ok, () => false)));
        if (ready) break;
        await sleep(200);
      }
    } finally {
      await client.close();
    }
  };
  await waitReady();
  const startupMs = performance.now() - t0;
  const kill = async (signal: NodeJS.Signals = "SIGKILL") => down(signal);
  const start = async () => {
    if (!exited(child)) throw new Error("tritonserver is still running; kill() it first");
    child = spawnServer();
    await waitReady();
  };
  return { address, ...(httpPort ? { httpAddress: `127.0.0.1:${httpPort}` } : {}), repository, models, startupMs, log: () => output, stop, kill, start };
}
