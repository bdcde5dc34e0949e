/**
 * `main` with inference replayed, for `bench pipeline`: each model is run once for real (the contract
 * models, in-process) and its answer is then returned for every later call at once. What remains is the
 * SDK's own work (decoding, preprocessing, postprocessing on realistic outputs, tracking, writing), as when
 * inference runs on a server. Prints one JSON object like `main --json`.
 *
 *   node dist/bench/pipeline-child.js VIDEO PROFILE FPS OUT [OPTIONS_JSON]
 *
 * OPTIONS_JSON (the durability figures): { "overrides": {...profile...}, "resume": true, "killAt": N }:
 * killAt kills the process with SIGKILL once N frames are written. The summary also gives
 * `first_new_frame_ms`, from the start of run() (and `first_new_frame_process_ms`, from the process's
 * start) to the first frame this process analysed, and `resumed_from`, the frames done before.
 */
import type { InferenceBackend, InferOptions, InferResult, ModelMetadata } from "../src/backend/backend.js";
import { allModels } from "../src/catalog/index.js";
import { EmbeddedEnsembles } from "../src/embedded/embedded-ensembles.js";
import { runSummary } from "../src/cli/commands/main.js";
import { EmbeddedBackend } from "../src/embedded/embedded-backend.js";
import { ModelManager } from "../src/pipeline/model-manager.js";
import type { Tensor } from "../src/tensor.js";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";

class ReplayBackend implements InferenceBackend {
  readonly kind = "embedded" as const;
  readonly endpoint = "replay";
  private readonly answers = new Map<string, Promise<InferResult>>();

  constructor(private readonly inner: InferenceBackend) {}

  infer(model: string, inputs: Tensor[], options?: InferOptions): Promise<InferResult> {
    let a = this.answers.get(model);
    if (!a) {
      a = this.inner.infer(model, inputs, options);
      this.answers.set(model, a);
    }
    return a;
  }

  modelMetadata(model: string, version?: string): Promise<ModelMetadata> {
    return this.inner.modelMetadata(model, version);
  }

  modelReady(model: string, version?: string): Promise<boolean> {
    return this.inner.modelReady(model, version);
  }

  close(): Promise<void> {
    return this.inner.close();
  }
}

const [video, profile, fps, out, json] = process.argv.slice(2);
const opts = (json ? JSON.parse(json) : {}) as { overrides?: Record<string, unknown>; resume?: boolean; killAt?: number };
if (!video || !profile || !fps || !out) {
  console.error("usage: node dist/bench/pipeline-child.js VIDEO PROFILE FPS OUT");
  process.exit(2);
}
const repo = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const models = Object.fromEntries(allModels().map((m) => [m.name, join(repo, "models", "contract", `${m.name}.onnx`)]));
const backend = new ReplayBackend(new EmbeddedEnsembles(await EmbeddedBackend.create({ models })));
const mm = await ModelManager.fromProfile(profile, { backend, overrides: { ...opts.overrides, analysis: { fps: Number(fps) } } });
try {
  let start = -1;
  let firstNew: number | undefined;
  const t0 = performance.now();
  const r = await mm.run(video, {
    out,
    ...(opts.resume ? { resume: true } : { overwrite: true }),
    onProgress: (p) => {
      if (start < 0) start = p.frames - 1;
      firstNew ??= performance.now();
      if (opts.killAt !== undefined && p.frames >= opts.killAt) process.kill(process.pid, "SIGKILL");
    },
  });
  console.log(
    JSON.stringify({
      ...runSummary(r),
      ...(firstNew !== undefined ? { resumed_from: start, first_new_frame_ms: Math.round(firstNew - t0), first_new_frame_process_ms: Math.round(firstNew) } : {}),
    }),
  );
} finally {
  await mm.close();
  await backend.close();
}
