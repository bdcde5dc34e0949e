import { availableParallelism } from "node:os";
import { join } from "node:path";
import { VideoAnalysisError } from "../errors.js";
import type { TritonClientOptions } from "../triton/client.js";
import type { Profile } from "./schema.js";

/** The name the server knows a catalog model by (the profile's model_names, else the catalog name). */
export function serverModelName(profile: Profile, catalogName: string): string {
  return profile.model_names[catalogName] ?? catalogName;
}

/** Requests in flight at once for a model. */
export function maxInFlight(profile: Profile, catalogName: string): number {
  return profile.concurrency.per_model[catalogName] ?? profile.concurrency.max_in_flight;
}

/**
 * The .onnx file of a catalog model on the embedded backend: the profile's `models` entry, else
 * `<models_dir>/<name>.onnx`; undefined when the profile has neither.
 */
export function embeddedModelPath(profile: Profile, catalogName: string): string | undefined {
  const emb = profile.backend.embedded;
  if (!emb) return undefined;
  return emb.models[catalogName] ?? (emb.models_dir ? join(emb.models_dir, `${catalogName}.onnx`) : undefined);
}

/** The embedded backend's worker threads: the profile's number, or for "auto" one per 4 cores, 1 to 4. */
export function embeddedWorkers(profile: Profile, cores = availableParallelism()): number {
  const w = profile.backend.embedded?.workers ?? "auto";
  return w === "auto" ? Math.min(4, Math.max(1, Math.floor(cores / 4))) : w;
}

/** The fitting worker threads (FitPool): the profile's number, or for "auto" one per 8 cores, at most 2 (none below 8). */
export function preprocessWorkers(profile: Profile, cores = availableParallelism()): number {
  const w = profile.concurrency.preprocess_workers;
  return w === "auto" ? Math.min(2, Math.floor(cores / 8)) : w;
}

/** The TritonClient options a profile's triton backend asks for. */
export function tritonClientOptions(profile: Profile): TritonClientOptions {
  const t = profile.backend.triton;
  if (!t) throw new VideoAnalysisError("PROFILE_INVALID", `profile ${profile.name} has no triton backend`);
  return {
    protocol: t.protocol,
    sharedMemory: t.shared_memory,
    outageBudgetMs: t.outage_budget_s * 1000,
    ...(t.urls ? { urls: t.urls } : { url: t.url! }),
    ...(t.tls ? { tls: { ca: t.tls.ca, cert: t.tls.cert, key: t.tls.key } } : {}),
    headers: t.headers,
    deadlineMs: t.deadline_ms,
    retry: { maxAttempts: t.retries + 1 },
  };
}
