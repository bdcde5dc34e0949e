// Helpers for the pipeline tests: small videos, the embedded profile, and checks that a run left nothing.
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata } from "../../src/backend/backend.js";
import { allModels } from "../../src/catalog/index.js";
import { EmbeddedEnsembles } from "../../src/embedded/embedded-ensembles.js";
import { EmbeddedBackend } from "../../src/embedded/embedded-backend.js";
import type { Tensor } from "../../src/tensor.js";
import { repoRoot } from "../support/testdata.js";

export { ffmpegRun, makeVideo, tempDir } from "../video/fixtures.js";

/** The embedded CPU profile (contract models). */
export const EMBEDDED_PROFILE = join(repoRoot, "profiles", "embedded_cpu.yaml");
export const CLI = join(repoRoot, "dist", "src", "cli", "main.js");

/** Every file under `dir` (relative paths), [] when it does not exist. */
export function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const name of readdirSync(d)) {
      const p = join(d, name);
      if (statSync(p).isDirectory()) walk(p, rel ? `${rel}/${name}` : name);
      else out.push(rel ? `${rel}/${name}` : name);
    }
  };
  walk(dir, "");
  return out.sort();
}

/** Process ids whose command line mentions `needle` (to find an ffmpeg left running). */
export function processesMentioning(needle: string): number[] {
  const pids: number[] = [];
  for (const name of readdirSync("/proc")) {
    if (!/^\d+$/.test(name) || Number(name) === process.pid) continue;
    try {
      const cmd = readFileSyncSafe(`/proc/${name}/cmdline`);
      if (cmd.includes(needle)) pids.push(Number(name));
    } catch {
      /* gone */
    }
  }
  return pids;
}

function readFileSyncSafe(p: string): string {
  return readFileSync(p, "latin1").replaceAll("\0", " ");
}

/**
 * Wraps a backend: counts calls and the most calls in flight per model, and can fail or stall calls.
 */
export class ProbeBackend implements InferenceBackend {
  readonly kind: InferenceBackend["kind"];
  readonly endpoint: string;
  readonly calls = new Map<string, number>();
  readonly maxInFlight = new Map<string, number>();
  private readonly inFlight = new Map<string, number>();
  maxTotalInFlight = 0;
  private total = 0;
  /** Throws this from the n-th call (1-based) of any model. */
  failAt: { call: number; error: Error } | undefined;
  /** Extra delay per call, ms. */
  delayMs = 0;
  /** A random extra delay of up to this many ms, before and after the call: answers come out of order. */
  jitterMs = 0;
  /** Input bytes that changed while their call was in flight (a buffer reused too early). */
  rewrittenInputs = 0;
  /** Every call's model in order: "metadata <model>" or "infer <model>". */
  readonly log: string[] = [];
  private count = 0;

  /** Calls running now. */
  get inFlightNow(): number {
    return this.total;
  }

  constructor(readonly inner: InferenceBackend) {
    this.kind = inner.kind;
    this.endpoint = inner.endpoint;
  }

  async infer(model: string, inputs: Tensor[], options?: InferOptions): Promise<InferResult> {
    const n = ++this.count;
    this.log.push(`infer ${model}`);
    this.calls.set(model, (this.calls.get(model) ?? 0) + 1);
    const now = (this.inFlight.get(model) ?? 0) + 1;
    this.inFlight.set(model, now);
    this.maxInFlight.set(model, Math.max(this.maxInFlight.get(model) ?? 0, now));
    this.total++;
    this.maxTotalInFlight = Math.max(this.maxTotalInFlight, this.total);
    const sleep = (ms: number) => (ms > 0 ? new Promise((r) => setTimeout(r, ms)) : undefined);
    const bytes = (t: Tensor) => (ArrayBuffer.isView(t.data) ? Buffer.from(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength)) : undefined);
    const sent = this.jitterMs ? inputs.map(bytes) : [];
    try {
      await sleep(this.delayMs + Math.random() * this.jitterMs);
      if (this.failAt && n === this.failAt.call) throw this.failAt.error;
      const r = await this.inner.infer(model, inputs, options);
      await sleep(Math.random() * this.jitterMs);
      inputs.forEach((t, i) => {
        if (sent[i] && !sent[i].equals(bytes(t)!)) this.rewrittenInputs++;
      });
      return r;
    } finally {
      this.inFlight.set(model, this.inFlight.get(model)! - 1);
      this.total--;
    }
  }

  modelMetadata(model: string, version?: string): Promise<ModelMetadata> {
    this.log.push(`metadata ${model}`);
    return this.inner.modelMetadata(model, version);
  }

  modelReady(model: string, version?: string): Promise<boolean> {
    return this.inner.modelReady(model, version);
  }

  recycle(data: readonly ArrayBufferView[]): void {
    this.inner.recycle?.(data);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

/** Every contract model in-process, answering like the Triton ensembles. */
export async function contractBackend(): Promise<EmbeddedEnsembles> {
  const models = Object.fromEntries(allModels().map((m) => [m.name, join(repoRoot, "models", "contract", `${m.name}.onnx`)]));
  return new EmbeddedEnsembles(await EmbeddedBackend.create({ models, intraOpNumThreads: 1 }));
}

/** Waits (up to `ms`) until no process mentions `needle`; returns those still running. */
export async function processesGone(needle: string, ms = 3000): Promise<number[]> {
  const end = Date.now() + ms;
  for (;;) {
    const left = processesMentioning(needle);
    if (left.length === 0 || Date.now() > end) return left;
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** numpy's view of an .npz: { name: { dtype, shape, values (flattened, as JSON numbers/strings) } }. */
export async function loadNpz(path: string): Promise<Record<string, { dtype: string; shape: number[]; values: Array<number | string> }>> {
  const { execFile } = await import("node:child_process");
  const script =
    "import json,sys,numpy as np\n" +
    "z=np.load(sys.argv[1])\n" +
    "print(json.dumps({k:{'dtype':z[k].dtype.str,'shape':list(z[k].shape),'values':z[k].ravel().tolist()} for k in z.files}))";
  const out = await new Promise<string>((resolve, reject) =>
    execFile("python3", ["-c", script, path], { maxBuffer: 1 << 30 }, (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))),
  );
  return JSON.parse(out);
}

/** The .npz members that differ between two files, by numpy (keys, dtypes, shapes, values). */
export async function npzDifferences(a: string, b: string): Promise<string[]> {
  const { execFile } = await import("node:child_process");
  const script =
    "import json,sys,numpy as np\n" +
    "x,y=np.load(sys.argv[1]),np.load(sys.argv[2])\n" +
    "keys=sorted(set(x.files)|set(y.files))\n" +
    "print(json.dumps([k for k in keys if k not in x.files or k not in y.files or x[k].dtype!=y[k].dtype or not np.array_equal(x[k],y[k])]))";
  const out = await new Promise<string>((resolve, reject) =>
    execFile("python3", ["-c", script, a, b], (e, stdout, stderr) => (e ? reject(new Error(`${e.message}\n${stderr}`)) : resolve(stdout))),
  );
  return JSON.parse(out) as string[];
}
