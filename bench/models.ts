import { writeFileSync } from "node:fs";
import { numberFlag, parseCommandArgs } from "../src/cli/command.js";
import type { Benchmark } from "../src/cli/commands/bench.js";
import type { ModelContract, TensorSpec } from "../src/backend/backend.js";
import { CLIP_TOKENS, contractFor, findModel, repositoryModels, type CatalogModel } from "../src/catalog/index.js";
import { VideoAnalysisError } from "../src/errors.js";
import { elementCount, tensor, type Tensor } from "../src/tensor.js";
import { TritonClient } from "../src/triton/client.js";
import { percentile, printTable } from "./stats.js";

const USAGE =
  "video-analysis bench models --url HOST:PORT [--models a,b,...] [--repeats N] [--concurrency 1,4,16] [--seconds S] [--warmup N] [--json] [--out summary.json]";
/** Distinct input sets per model, sent in turn, so no figure rests on one repeated request. */
const INPUT_SETS = 4;

/** A small deterministic generator (mulberry32): the same inputs on every run and machine. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A picture-like UINT8 NHWC frame: smooth colour gradients plus noise, not white noise, so the input
 * looks like what a client sends after fitting a video frame. `shift` moves it (RAFT's second frame).
 */
function image(spec: TensorSpec, seed: number, shift = 0): Tensor {
  const [, h, w, c] = spec.shape as [number, number, number, number];
  const r = rng(seed);
  const f = [0, 1, 2].map(() => [r() * 6, r() * 6, r() * 6.28]);
  const data = new Uint8Array(elementCount(spec.shape));
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const o = (y * w + x) * c;
      for (let k = 0; k < c; k++) {
        const [fx, fy, ph] = f[k]!;
        const v = 128 + 90 * Math.sin((fx! * (x + shift)) / w + (fy! * y) / h + ph!) + (r() - 0.5) * 40;
        data[o + k] = Math.max(0, Math.min(255, v));
      }
    }
  }
  return tensor(spec.name, "UINT8", spec.shape, data);
}

/** CLIP token ids as the tokenizer lays them out: start, a prompt's worth of ids, end, zero padding. */
function tokens(spec: TensorSpec, seed: number): Tensor {
  const r = rng(seed);
  const data = new BigInt64Array(elementCount(spec.shape));
  const n = 4 + Math.floor(r() * 12);
  data[0] = BigInt(CLIP_TOKENS.sot);
  for (let i = 1; i <= n; i++) data[i] = BigInt(1 + Math.floor(r() * (CLIP_TOKENS.sot - 1)));
  data[n + 1] = BigInt(CLIP_TOKENS.eot);
  return tensor(spec.name, "INT64", spec.shape, data);
}

/** Inputs for one request to the ensemble, by the family's input kind. */
function inputsFor(m: CatalogModel, contract: ModelContract, seed: number): Tensor[] {
  if (m.family.input === "tokens") return contract.inputs.map((s) => tokens(s, seed));
  // A frame pair: the second input is the first moved 3 pixels, as between two video frames.
  return contract.inputs.map((s, i) => image(s, seed, i * 3));
}

/** Sums of the counters that matter, from one model's ModelStatistics entry. */
interface Counters {
  count: number;
  executions: number;
  queueNs: number;
  computeNs: number;
}

function counters(stat: Record<string, any> | undefined): Counters {
  const s = stat?.inference_stats ?? {};
  const ns = (k: string) => Number(s[k]?.ns ?? 0);
  return {
    count: Number(s.success?.count ?? 0),
    executions: Number(stat?.execution_count ?? 0),
    queueNs: ns("queue"),
    computeNs: ns("compute_input") + ns("compute_infer") + ns("compute_output"),
  };
}

async function snapshot(client: TritonClient, names: string[]): Promise<Record<string, Counters>> {
  const out: Record<string, Counters> = {};
  for (const n of names) out[n] = counters((await client.modelStatistics(n))[0]);
  return out;
}

const r2 = (v: number) => Math.round(v * 100) / 100;
const r1 = (v: number) => Math.round(v * 10) / 10;

/** One concurrency level's figures. */
interface Level {
  in_flight: number;
  requests: number;
  seconds: number;
  inferences_per_s: number;
  p50_ms: number;
  p95_ms: number;
  /** Per model part (ensemble, preprocess, `_onnx`): server-side compute per inference and what that allows back to back. */
  server: Record<string, { compute_ms: number; queue_ms: number; back_to_back_per_s: number; busy: number }>;
}

/** Keeps `inFlight` requests outstanding for `seconds` (and at least `minRequests`); returns each request's latency. */
async function saturate(call: (i: number) => Promise<void>, inFlight: number, seconds: number, minRequests: number): Promise<{ lat: number[]; wallS: number }> {
  const lat: number[] = [];
  let next = 0;
  const t0 = performance.now();
  const end = t0 + seconds * 1000;
  const worker = async () => {
    while (performance.now() < end || next < minRequests) {
      const i = next++;
      const t = performance.now();
      await call(i);
      lat.push(performance.now() - t);
    }
  };
  await Promise.all(Array.from({ length: inFlight }, worker));
  return { lat, wallS: (performance.now() - t0) / 1000 };
}

async function benchModel(
  client: TritonClient,
  m: CatalogModel,
  o: { repeats: number; warmup: number; levels: number[]; seconds: number },
): Promise<Record<string, unknown>> {
  const contract = contractFor(m, "triton");
  const sets = Array.from({ length: INPUT_SETS }, (_, i) => inputsFor(m, contract, 1000 * i + m.name.length));
  const call = async (i: number) => {
    const r = await client.infer(m.name, sets[i % INPUT_SETS]!, { contract });
    for (const spec of contract.outputs) {
      const t = r.outputs[spec.name];
      if (!t || t.shape.join() !== spec.shape.join()) throw new Error(`${m.name}: output ${spec.name} is ${t ? `[${t.shape}]` : "missing"}, expected [${spec.shape}]`);
    }
  };
  // Warm-up: the first calls check the contract against the server's metadata and let the server
  // allocate and autotune (cuDNN picks its algorithms on the first calls of each shape).
  for (let i = 0; i < o.warmup; i++) await call(i);
  const batch1 = (await saturate(call, 1, 0, o.repeats)).lat.slice(0, o.repeats);
  const parts = m.parts;
  const levels: Level[] = [];
  for (const c of o.levels) {
    const before = await snapshot(client, parts);
    const { lat, wallS } = await saturate(call, c, o.seconds, Math.max(2 * c, 8));
    const after = await snapshot(client, parts);
    const server: Level["server"] = {};
    for (const p of parts) {
      const n = after[p]!.count - before[p]!.count;
      const compute = after[p]!.computeNs - before[p]!.computeNs;
      const queue = after[p]!.queueNs - before[p]!.queueNs;
      server[p] = {
        compute_ms: n ? r2(compute / n / 1e6) : NaN,
        queue_ms: n ? r2(queue / n / 1e6) : NaN,
        back_to_back_per_s: compute ? r1((n * 1e9) / compute) : NaN,
        busy: r2(compute / 1e9 / wallS),
      };
    }
    levels.push({ in_flight: c, requests: lat.length, seconds: r2(wallS), inferences_per_s: r1(lat.length / wallS), p50_ms: r2(percentile(lat, 50)), p95_ms: r2(percentile(lat, 95)), server });
  }
  // The model alone (the `_onnx` part, last in parts) back to back, at the busiest level: what the
  // server could do with no client, transport or preprocessing in the way.
  const top = levels[levels.length - 1];
  const modelAlone = top?.server[m.onnxName]?.back_to_back_per_s ?? NaN;
  return {
    model: m.name,
    p50_ms: r2(percentile(batch1, 50)),
    p95_ms: r2(percentile(batch1, 95)),
    mean_ms: r2(batch1.reduce((a, b) => a + b, 0) / batch1.length),
    levels,
    model_alone_per_s: modelAlone,
    sdk_vs_model_alone: top ? r2(top.inferences_per_s / modelAlone) : NaN,
  };
}

export const modelsBench: Benchmark = {
  summary: "per-model latency (batch 1) and throughput (1/4/16 in flight) of the ensembles on a Triton server, with the server's own compute times",
  async run(argv) {
    const { values } = parseCommandArgs({ name: "bench models", usage: USAGE }, argv, {
      url: { type: "string", value: "HOST:PORT", description: "gRPC endpoint of the Triton server (default $TRITON_GRPC_URL)" },
      models: { type: "string", value: "LIST", description: "catalog models to measure, e.g. midas_256,yolo11x_640 (default: every ensemble of the repository the server has READY)" },
      repeats: { type: "string", value: "N", description: "batch-1 calls per model for the latency figures (default 50, at least 2)" },
      concurrency: { type: "string", value: "LIST", description: "requests kept in flight for the throughput figures (default 1,4,16)" },
      seconds: { type: "string", value: "S", description: "seconds of load per throughput level (default 3)" },
      warmup: { type: "string", value: "N", description: "calls before measuring each model (default 5)" },
      json: { type: "boolean", default: false, description: "print one JSON object instead of the tables" },
      out: { type: "string", value: "FILE", description: "also write the JSON summary to this file" },
    });
    const url = values.url ?? process.env.TRITON_GRPC_URL;
    if (!url) throw new VideoAnalysisError("INVALID_ARGUMENT", `--url is required (or TRITON_GRPC_URL)\nusage: ${USAGE}`);
    const repeats = numberFlag("repeats", values.repeats, 50, { min: 2 });
    const warmup = numberFlag("warmup", values.warmup, 5, { min: 1 });
    const seconds = numberFlag("seconds", values.seconds, 3, { min: 0 });
    const levels = (values.concurrency ?? "1,4,16").split(",").map((s) => numberFlag("concurrency", s, 1, { min: 1 }));
    const client = await TritonClient.create({ url, deadlineMs: 120_000 });
    try {
      const server = await client.serverMetadata();
      const ready = new Set((await client.repositoryIndex({ ready: true })).filter((r) => r.state === "READY").map((r) => r.name));
      let chosen: CatalogModel[];
      const skipped: string[] = [];
      if (values.models) {
        chosen = values.models.split(",").map((n) => {
          const m = findModel(n.trim());
          if (!m) throw new VideoAnalysisError("INVALID_ARGUMENT", `unknown model "${n}": the catalog has ${repositoryModels().map((x) => x.name).join(", ")}`);
          if (!ready.has(m.name)) throw new VideoAnalysisError("NOT_FOUND", `${m.name} is not READY on ${url}`);
          return m;
        });
      } else {
        const all = repositoryModels();
        chosen = all.filter((m) => ready.has(m.name));
        skipped.push(...all.filter((m) => !ready.has(m.name)).map((m) => m.name));
        if (chosen.length === 0) throw new VideoAnalysisError("NOT_FOUND", `no ensemble of triton/models is READY on ${url}`);
      }
      const rows: Record<string, unknown>[] = [];
      for (const m of chosen) {
        if (!values.json) process.stderr.write(`bench models: ${m.name}...\n`);
        try {
          rows.push(await benchModel(client, m, { repeats, warmup, levels, seconds }));
        } catch (e) {
          rows.push({ model: m.name, error: (e as Error).message });
        }
      }
      const result = {
        benchmark: "models",
        url,
        server: { name: server.name, version: server.version },
        note: "p50/p95_ms: batch 1, one request in flight, over `repeats` requests; levels: N requests in flight for `seconds`; server: ModelStatistics deltas per part; model_alone_per_s: the _onnx part's compute back to back at the last level",
        repeats,
        warmup,
        seconds,
        concurrency: levels,
        skipped_not_ready: skipped,
        models: rows,
      };
      if (values.out) writeFileSync(values.out, `${JSON.stringify(result, null, 2)}\n`);
      if (values.json) console.log(JSON.stringify(result));
      else {
        printTable(
          rows.map((r) => {
            if (r.error) return { model: r.model, p50_ms: "error", p95_ms: "", ...Object.fromEntries(levels.map((c) => [`inf/s@${c}`, ""])), model_alone: "", sdk_vs_model: "", note: r.error };
            const ls = r.levels as Level[];
            return {
              model: r.model,
              p50_ms: r.p50_ms,
              p95_ms: r.p95_ms,
              ...Object.fromEntries(ls.map((l) => [`inf/s@${l.in_flight}`, l.inferences_per_s])),
              model_alone: r.model_alone_per_s,
              sdk_vs_model: r.sdk_vs_model_alone,
              note: "",
            };
          }),
        );
        if (skipped.length) console.log(`not READY on the server, skipped: ${skipped.join(", ")}`);
        console.log(`${server.name} ${server.version} at ${url}; model_alone = the _onnx part's server-side compute back to back at ${levels[levels.length - 1]} in flight`);
      }
      return rows.some((r) => r.error) ? 1 : 0;
    } finally {
      await client.close();
    }
  },
};
