/**
 * The embedded backend's worker thread: it owns the onnxruntime sessions and runs them here, so that
 * inference (onnxruntime-node runs a session synchronously on the thread that calls it) never blocks the
 * caller's event loop: ffmpeg's pipe keeps draining, results keep being written and progress keeps
 * ticking while a model runs. For catalog models it also does the ensemble's preprocess step
 * (normalisation to FP32 NCHW), off the caller's thread too.
 *
 * One request at a time, in arrival order; the protocol is in embedded-backend.ts.
 */
import { parentPort, workerData } from "node:worker_threads";
import * as ort from "onnxruntime-node";
import type { ModelMetadata, TensorSpec } from "../backend/backend.js";
import { findModel } from "../catalog/catalog.js";
import type { Normalization } from "../catalog/types.js";
import { VideoAnalysisError } from "../errors.js";
import { ensembleOutputs, NormalizedPixels, preprocessInputs } from "../preprocess/normalize.js";
import type { DataType, Tensor } from "../tensor.js";
import { crc32 } from "../checksum.js";
import type { InferAnswer, WorkerReply, WorkerRequest, WorkerSetup } from "./embedded-backend.js";

// onnxruntime's tensor type names -> Triton's.
const ORT_TO_TRITON: Record<string, DataType> = {
  bool: "BOOL", uint8: "UINT8", uint16: "UINT16", uint32: "UINT32", uint64: "UINT64",
  int8: "INT8", int16: "INT16", int32: "INT32", int64: "INT64",
  float16: "FP16", float32: "FP32", float64: "FP64", string: "BYTES",
};
const TRITON_TO_ORT = Object.fromEntries(Object.entries(ORT_TO_TRITON).map(([k, v]) => [v, k])) as Record<DataType, string>;

function specOf(meta: ort.InferenceSession.ValueMetadata): TensorSpec {
  if (!meta.isTensor) return { name: meta.name, datatype: "BYTES", shape: [] };
  const datatype = ORT_TO_TRITON[meta.type];
  if (!datatype) throw new VideoAnalysisError("UNIMPLEMENTED", `tensor ${meta.name} has type ${meta.type}, which the SDK does not carry`);
  return { name: meta.name, datatype, shape: meta.shape.map((d) => (typeof d === "number" ? d : -1)) };
}

function toOrt(t: Tensor): ort.Tensor {
  const type = TRITON_TO_ORT[t.datatype];
  if (t.datatype === "BYTES") {
    return new ort.Tensor("string", (t.data as Uint8Array[]).map((b) => Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString("utf8")), t.shape);
  }
  if (t.datatype === "BF16") throw new VideoAnalysisError("UNIMPLEMENTED", `input ${t.name}: onnxruntime-node takes no BF16 tensors; send FP32 or FP16`);
  // BOOL is held as 0/1 bytes; onnxruntime takes a Uint8Array for it too.
  return new ort.Tensor(type as "float32", t.data as Float32Array, t.shape);
}

function fromOrt(name: string, v: ort.Tensor): Tensor {
  const datatype = ORT_TO_TRITON[v.type];
  if (!datatype) throw new VideoAnalysisError("UNIMPLEMENTED", `output ${name} has type ${v.type}, which the SDK does not carry`);
  const shape = [...v.dims];
  if (datatype === "BYTES") return { name, datatype, shape, data: (v.data as string[]).map((s) => Buffer.from(s, "utf8")) };
  if (datatype === "BOOL") {
    const d = v.data as Uint8Array;
    return { name, datatype, shape, data: new Uint8Array(d.buffer, d.byteOffset, d.length) };
  }
  return { name, datatype, shape, data: v.data } as Tensor;
}

const setup = workerData as WorkerSetup;
const sessions = new Map<string, Promise<ort.InferenceSession>>();

function session(model: string): Promise<ort.InferenceSession> {
  let s = sessions.get(model);
  if (!s) {
    const path = setup.models[model];
    if (!path) {
      const known = Object.keys(setup.models).join(", ") || "none";
      return Promise.reject(new VideoAnalysisError("NOT_FOUND", `no embedded model of that name (this backend has: ${known}); add it to the profile's embedded models`, { model }));
    }
    // No spinning: onnxruntime's idle pool threads otherwise busy-wait for the next op, and in a video
    // run they take that CPU from ffmpeg's decoder and the SDK's own work (a 1-minute `bench pipeline`
    // went from 40 s to 23 s without it).
    const opts: ort.InferenceSession.SessionOptions = {
      graphOptimizationLevel: "all",
      extra: { session: { intra_op: { allow_spinning: "0" }, inter_op: { allow_spinning: "0" } } },
    };
    if (setup.intraOpNumThreads) opts.intraOpNumThreads = setup.intraOpNumThreads;
    s = ort.InferenceSession.create(path, opts).catch((e: unknown) => {
      sessions.delete(model);
      throw new VideoAnalysisError("INVALID_ARGUMENT", `onnxruntime could not load ${path}: ${(e as Error).message}; point the profile (or --model) at a valid .onnx export`, { model });
    });
    sessions.set(model, s);
  }
  return s;
}

// Normalised pixels: the last few of sealed buffers (by id), shared by the models and pairs that take the
// same frame, and a pool of free buffers by shape, so a run allocates (and page-faults) no new ones. A
// buffer is reused only once no run it was handed to is still waiting, and it is no longer cached.
const SHARED_KEEP = 8;
const POOL_KEEP = 4;
interface Slot {
  pixels: NormalizedPixels;
  users: number;
  cached: boolean;
}
const shared = new Map<string, Slot>();
const pool = new Map<string, Slot[]>();

function release(slot: Slot): void {
  if (slot.users > 0 || slot.cached) return;
  const key = slot.pixels.shape.join("x");
  let list = pool.get(key);
  if (!list) pool.set(key, (list = []));
  if (list.length < POOL_KEEP) list.push(slot);
}

function normalized(t: Tensor, norm: Normalization, shareId: number | null, held: Slot[]): Float32Array {
  const key = shareId === null ? null : `${shareId}/${norm.divisor}/${norm.mean.join(",")}/${norm.std.join(",")}`;
  let slot = key === null ? undefined : shared.get(key);
  if (slot) {
    // Most recently used last.
    shared.delete(key!);
    shared.set(key!, slot);
  } else {
    const shape = t.shape as [number, number, number, number];
    slot = pool.get(shape.join("x"))?.pop() ?? { pixels: new NormalizedPixels(shape), users: 0, cached: false };
    slot.pixels.normalize(t.data as Uint8Array, norm);
    if (key !== null) {
      slot.cached = true;
      shared.set(key, slot);
      if (shared.size > SHARED_KEEP) {
        const [oldest, old] = shared.entries().next().value as [string, Slot];
        shared.delete(oldest);
        old.cached = false;
        release(old);
      }
    }
  }
  slot.users++;
  held.push(slot);
  return slot.pixels.data;
}

async function metadata(model: string): Promise<ModelMetadata> {
  const s = await session(model);
  return { name: model, versions: ["1"], platform: "onnxruntime_onnx", inputs: s.inputMetadata.map(specOf), outputs: s.outputMetadata.map(specOf) };
}

async function infer(req: Extract<WorkerRequest, { op: "infer" }>): Promise<InferAnswer> {
  const s = await session(req.model);
  const m = req.ensemble ? findModel(req.model) : undefined;
  if (req.ensemble && !m) throw new VideoAnalysisError("NOT_FOUND", "not a catalog model", { model: req.model });
  const held: Slot[] = [];
  let out: ort.InferenceSession.ReturnType;
  let pre: Record<string, ort.Tensor | null>;
  const wanted = req.outputs ?? s.outputNames;
  try {
    const inputs = m ? preprocessInputs(m, req.inputs, (t, norm, i) => normalized(t, norm, req.shareIds?.[i] ?? null, held)) : req.inputs;
    const feeds: Record<string, ort.Tensor> = {};
    for (const t of inputs) {
      if (!s.inputNames.includes(t.name)) {
        throw new VideoAnalysisError("INVALID_ARGUMENT", `input ${t.name} is not one of the model's inputs (${s.inputNames.join(", ")})`, { model: req.model });
      }
      feeds[t.name] = toOrt(t);
    }
    pre = fetches(s, wanted);
    out = await s.run(feeds, pre).catch((e: unknown) => {
      for (const t of Object.values(pre)) if (t) takeBack([(t.data as Float32Array).buffer as ArrayBuffer]);
      throw new VideoAnalysisError("INVALID_ARGUMENT", `onnxruntime failed: ${(e as Error).message}`, { model: req.model });
    });
  } finally {
    for (const slot of held) {
      slot.users--;
      release(slot);
    }
  }
  const outputs: Record<string, Tensor> = {};
  // A preallocated output is ours, filled by onnxruntime (its returned copy is dropped); another goes
  // into a spare buffer when one fits.
  for (const name of wanted) outputs[name] = pre[name] ? fromOrt(name, pre[name]) : intoSpare(fromOrt(name, out[name]!));
  const answer = m ? ensembleOutputs(m, outputs) : outputs;
  if (!req.checksums) return { outputs: answer };
  const crcs: Record<string, number> = {};
  for (const [name, t] of Object.entries(answer)) {
    if (ArrayBuffer.isView(t.data)) crcs[name] = crc32(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength));
  }
  return { outputs: answer, crc32: crcs };
}

async function close(): Promise<void> {
  const all = [...sessions.values()];
  sessions.clear();
  await Promise.all(all.map((p) => p.then((s) => s.release(), () => undefined)));
}

async function handle(req: Exclude<WorkerRequest, { op: "infer" }>): Promise<unknown> {
  switch (req.op) {
    case "metadata":
      return metadata(req.model);
    case "ready":
      if (!(req.model in setup.models)) return false;
      return session(req.model).then(() => true, () => false);
    case "close":
      return close();
  }
}

// Output buffers the caller gave back (EmbeddedBackend.recycle), by size. onnxruntime writes an output of
// a fixed shape straight into one (a preallocated fetch); another is copied into one after the run. The
// caller's isolate then sees the same few buffers come and go instead of megabytes of new ones per frame
// (which set off its full collections), while onnxruntime-node's own copies die young here, where a
// scavenge takes them.
const SPARE_KEEP = 8;
const spare = new Map<number, ArrayBuffer[]>();

function takeBack(buffers: ArrayBuffer[]): void {
  for (const b of buffers) {
    let list = spare.get(b.byteLength);
    if (!list) spare.set(b.byteLength, (list = []));
    if (list.length < SPARE_KEEP) list.push(b);
  }
}

const ARRAYS: Record<string, { BYTES_PER_ELEMENT: number; new (b: ArrayBuffer): ArrayBufferView }> = {
  float32: Float32Array, float64: Float64Array, int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, float16: Uint16Array, bool: Uint8Array,
};

/**
 * The outputs to fetch: those of a fixed shape that a spare buffer fits are preallocated in it, so
 * onnxruntime writes them there (it still returns a copy, which is dropped); the others by name.
 */
function fetches(s: ort.InferenceSession, wanted: readonly string[]): Record<string, ort.Tensor | null> {
  const f: Record<string, ort.Tensor | null> = {};
  for (const name of wanted) {
    f[name] = null;
    const meta = s.outputMetadata.find((m) => m.name === name);
    if (!meta?.isTensor || !meta.shape.every((d) => typeof d === "number" && d >= 0)) continue;
    const Kind = ARRAYS[meta.type];
    if (!Kind) continue;
    const shape = meta.shape as number[];
    const b = spare.get(shape.reduce((a, d) => a * d, Kind.BYTES_PER_ELEMENT))?.pop();
    if (b) f[name] = new ort.Tensor(meta.type as "float32", new Kind(b) as Float32Array, shape);
  }
  return f;
}

/** The output, copied into a spare buffer when one of its size is there. */
function intoSpare(t: Tensor): Tensor {
  const d = t.data;
  const b = ArrayBuffer.isView(d) ? spare.get(d.byteLength)?.pop() : undefined;
  if (!b || !ArrayBuffer.isView(d)) return t;
  new Uint8Array(b).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  const Kind = d.constructor as new (buffer: ArrayBuffer) => typeof d;
  return { ...t, data: new Kind(b) } as Tensor;
}

/** Output buffers are handed over, not copied (each was made or filled for this answer alone). */
function outputBuffers(outputs: Record<string, Tensor>): ArrayBuffer[] {
  const buffers = new Set<ArrayBuffer>();
  for (const t of Object.values(outputs)) if (ArrayBuffer.isView(t.data) && t.data.buffer instanceof ArrayBuffer) buffers.add(t.data.buffer);
  return [...buffers];
}

function reply(msg: WorkerReply, transfer: ArrayBuffer[] = []): void {
  try {
    parentPort!.postMessage(msg, transfer);
  } catch {
    // A buffer onnxruntime does not let go of is copied instead.
    parentPort!.postMessage(msg);
  }
}

// Requests run one after another: onnxruntime's own threads parallelise inside a model.
let queue: Promise<void> = Promise.resolve();
parentPort!.on("message", (req: WorkerRequest) => {
  if (req.op === "recycle") return takeBack(req.buffers);
  queue = queue.then(async () => {
    try {
      if (req.op === "infer") {
        const answer = await infer(req);
        reply({ id: req.id, ok: true, value: answer }, outputBuffers(answer.outputs));
      } else {
        reply({ id: req.id, ok: true, value: await handle(req) });
      }
    } catch (e) {
      const err = e instanceof VideoAnalysisError ? e : new VideoAnalysisError("INTERNAL", `embedded worker: ${(e as Error)?.message ?? String(e)}`, { model: "model" in req ? req.model : undefined });
      reply({ id: req.id, ok: false, error: { code: err.code, message: err.message, model: err.model, details: err.details } });
    }
  });
});
