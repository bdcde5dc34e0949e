import { existsSync } from "node:fs";
import { isAbsolute, relative } from "node:path";
import type { InferenceBackend } from "../../backend/backend.js";
import { CLIP_TOKENS, readyChecklist } from "../../catalog/index.js";
import { EmbeddedEnsembles } from "../../embedded/embedded-ensembles.js";
import type { CatalogModel } from "../../catalog/types.js";
import { EmbeddedBackend } from "../../embedded/embedded-backend.js";
import { isVideoAnalysisError } from "../../errors.js";
import { embeddedModelPath, loadProfile, serverModelName, tritonClientOptions, type Profile } from "../../profiles/index.js";
import { routableModels } from "../../routing/index.js";
import { elementCount, tensor, toFloat32, type Tensor } from "../../tensor.js";
import type { TritonClient } from "../../triton/client.js";
import { parseCommandArgs, required, type Command } from "../command.js";

export type PartState = "READY" | "UNAVAILABLE" | "missing";

export interface SmokeRow {
  /** Catalog name, and the name on the backend. */
  model: string;
  server_model: string;
  level: "required" | "additional";
  /** Why it is on the list: SPEC section 5's checklist, the profile routing to it, or both. */
  source: string;
  status: "ready" | "not ready" | "missing";
  parts: Array<{ name: string; state: PartState; reason: string }>;
}

export interface SmokeInference {
  model: string;
  level: "required" | "additional";
  ok: boolean;
  ms: number;
  detail: string;
}

export interface SmokeReport {
  profile: string;
  backend: { kind: "triton" | "embedded"; endpoint: string; live: boolean | null; ready: boolean | null; models: number; ready_models: number };
  checklist: SmokeRow[];
  inferences: SmokeInference[];
  /** What failed among required things; empty when the smoke passes. */
  failures: string[];
  /** Problems that do not fail the smoke (additional models, strict server readiness). */
  warnings: string[];
  ok: boolean;
}

function describeSpec(t: Tensor): string {
  return `${t.name} ${t.datatype} [${t.shape.join(",")}]`;
}

/** Inputs that fit the ensemble's contract: a deterministic gradient image, or "a photo" as CLIP token ids. */
function syntheticInputs(m: CatalogModel): Tensor[] {
  return m.ensemble.inputs.map((s, k) => {
    if (s.datatype === "INT64") {
      const ids = new BigInt64Array(elementCount(s.shape));
      // SOT, "a</w>", "photo</w>", EOT, then zeros: what the tokenizer gives for "a photo".
      [CLIP_TOKENS.sot, 320, 1125, CLIP_TOKENS.eot].forEach((v, i) => (ids[i] = BigInt(v)));
      return tensor(s.name, "INT64", s.shape, ids);
    }
    const px = new Uint8Array(elementCount(s.shape));
    for (let i = 0; i < px.length; i++) px[i] = (i * 7 + k * 31 + (i >> 10)) & 255;
    return tensor(s.name, "UINT8", s.shape, px);
  });
}

/** One inference with the ensemble's contract checked, and the outputs checked against it too. */
async function inferOnce(backend: InferenceBackend, m: CatalogModel, serverName: string, deadlineMs?: number): Promise<{ ok: boolean; ms: number; detail: string }> {
  const t0 = performance.now();
  try {
    const r = await backend.infer(serverName, syntheticInputs(m), { contract: m.ensemble, ...(deadlineMs ? { deadlineMs } : {}) });
    const ms = performance.now() - t0;
    const got: string[] = [];
    for (const spec of m.ensemble.outputs) {
      const t = r.outputs[spec.name];
      if (!t) return { ok: false, ms, detail: `output ${spec.name} missing from the answer` };
      if (t.datatype !== spec.datatype || t.shape.join(",") !== spec.shape.join(",")) {
        return { ok: false, ms, detail: `output ${describeSpec(t)}, expected ${spec.datatype} [${spec.shape.join(",")}]` };
      }
      if (t.datatype !== "BYTES" && toFloat32(t).some((v) => !Number.isFinite(v))) return { ok: false, ms, detail: `output ${spec.name} holds NaN or infinite values` };
      got.push(describeSpec(t));
    }
    return { ok: true, ms, detail: got.join(", ") };
  } catch (e) {
    return { ok: false, ms: performance.now() - t0, detail: isVideoAnalysisError(e) ? e.toString() : String(e) };
  }
}

/** A server's reason (load errors carry Python tracebacks) as one line of at most 160 characters. */
function oneLine(reason: string): string {
  const first = reason.split("\n")[0]!.trim();
  return first.length > 160 ? `${first.slice(0, 157)}...` : first;
}

/** The checklist to verify: SPEC section 5's (catalog), plus everything the profile can route to (required then). */
function checklistFor(profile: Profile, withCatalog: boolean): Array<{ m: CatalogModel; level: "required" | "additional"; source: string }> {
  const rows = new Map<string, { m: CatalogModel; level: "required" | "additional"; source: string }>();
  if (withCatalog) for (const m of readyChecklist()) rows.set(m.name, { m, level: m.checklist, source: `checklist ${m.checklist}` });
  for (const m of routableModels(profile)) {
    const r = rows.get(m.name);
    if (r) {
      if (r.level !== "required") rows.set(m.name, { m, level: "required", source: `${r.source}; the profile routes to it` });
    } else rows.set(m.name, { m, level: "required", source: "the profile routes to it" });
  }
  const all = [...rows.values()];
  return [...all.filter((r) => r.level === "required"), ...all.filter((r) => r.level === "additional")];
}

function rowStatus(parts: SmokeRow["parts"]): SmokeRow["status"] {
  if (parts.some((p) => p.state === "missing")) return "missing";
  if (parts.some((p) => p.state !== "READY")) return "not ready";
  return "ready";
}

function partsProblem(row: SmokeRow): string {
  const bad = row.parts.filter((p) => p.state !== "READY");
  return bad.map((p) => (p.state === "missing" ? `${p.name} missing` : `${p.name} not ready${p.reason ? ` (${p.reason})` : ""}`)).join(", ");
}

async function finish(
  report: Omit<SmokeReport, "failures" | "warnings" | "ok" | "inferences">,
  backend: InferenceBackend,
  models: ReadonlyMap<string, CatalogModel>,
  deadlineMs?: number,
): Promise<SmokeReport> {
  const failures: string[] = [];
  const warnings: string[] = [];
  if (report.backend.live === false) failures.push(`server ${report.backend.endpoint} is not live`);
  if (report.backend.ready === false) {
    warnings.push("server not ready: with strict readiness (Triton's default) any model that failed to load makes it so; the checklist says which");
  }
  for (const row of report.checklist) {
    if (row.status === "ready") continue;
    const line = `${row.level} ${row.model}${row.server_model !== row.model ? ` (server: ${row.server_model})` : ""}: ${partsProblem(row)}`;
    (row.level === "required" ? failures : warnings).push(line);
  }
  const inferences: SmokeInference[] = [];
  for (const row of report.checklist.filter((r) => r.status === "ready")) {
    const r = await inferOnce(backend, models.get(row.model)!, row.server_model, deadlineMs);
    inferences.push({ model: row.model, level: row.level, ...r });
    if (!r.ok) (row.level === "required" ? failures : warnings).push(`${row.level} ${row.model}: inference failed: ${r.detail}`);
  }
  return { ...report, inferences, failures, warnings, ok: failures.length === 0 };
}

/**
 * Smoke against a Triton server: live and ready, repository index, the READY checklist of SPEC
 * section 5 (required and additional) plus what the profile routes to, and one inference per ready
 * model with its contract checked. `ok` is false exactly when something required fails.
 */
export async function smokeTriton(profile: Profile, client: TritonClient): Promise<SmokeReport> {
  const live = await client.serverLive();
  const ready = await client.serverReady();
  const index = await client.repositoryIndex();
  const state = new Map<string, { state: PartState; reason: string }>();
  for (const e of index) {
    const prev = state.get(e.name);
    if (prev?.state === "READY") continue;
    state.set(e.name, { state: e.state === "READY" ? "READY" : "UNAVAILABLE", reason: e.state === "READY" ? "" : oneLine(e.reason) || e.state });
  }
  const rows = checklistFor(profile, true);
  const checklist: SmokeRow[] = rows.map(({ m, level, source }) => {
    const server = serverModelName(profile, m.name);
    const names = server === m.name ? m.parts : m.parts.map((p) => p.replace(m.name, server));
    const parts = names.map((name) => ({ name, ...(state.get(name) ?? { state: "missing" as const, reason: "not in the repository" }) }));
    return { model: m.name, server_model: server, level, source, parts, status: rowStatus(parts) };
  });
  const names = new Set(index.map((e) => e.name));
  const readyNames = new Set(index.filter((e) => e.state === "READY").map((e) => e.name));
  return finish(
    { profile: profile.name, backend: { kind: "triton", endpoint: client.endpoint, live, ready, models: names.size, ready_models: readyNames.size }, checklist },
    client,
    new Map(rows.map((r) => [r.m.name, r.m])),
    profile.backend.triton?.deadline_ms,
  );
}

/**
 * Smoke of an embedded profile: every model the profile routes to must have its .onnx file, load in
 * onnxruntime, and answer one inference with the catalog's contract (through the SDK's preprocessing).
 */
export async function smokeEmbedded(profile: Profile): Promise<SmokeReport> {
  const rows = checklistFor(profile, false);
  const files: Record<string, string> = {};
  for (const { m } of rows) {
    const p = embeddedModelPath(profile, m.name);
    // In-process models go by their catalog names, as ModelManager calls them; model_names renames
    // models on a server only.
    if (p && existsSync(p)) files[m.name] = p;
  }
  const emb = await EmbeddedBackend.create({ models: files, ...(profile.backend.embedded?.intra_op_threads ? { intraOpNumThreads: profile.backend.embedded.intra_op_threads } : {}) });
  const backend = new EmbeddedEnsembles(emb);
  try {
    const checklist: SmokeRow[] = [];
    for (const { m, level, source } of rows) {
      const server = m.name;
      const path = embeddedModelPath(profile, m.name) ?? "(no path: add it to backend.embedded.models or set models_dir)";
      let st: PartState = "missing";
      let reason = `${path} does not exist`;
      if (files[server]) {
        try {
          await backend.modelMetadata(server);
          st = "READY";
          reason = "";
        } catch (e) {
          st = "UNAVAILABLE";
          reason = isVideoAnalysisError(e) ? e.message : String(e);
        }
      }
      const parts = [{ name: files[server] ?? path, state: st, reason }];
      checklist.push({ model: m.name, server_model: server, level, source, parts, status: rowStatus(parts) });
    }
    const n = checklist.length;
    const readyCount = checklist.filter((r) => r.status === "ready").length;
    return await finish({ profile: profile.name, backend: { kind: "embedded", endpoint: "embedded", live: null, ready: null, models: n, ready_models: readyCount }, checklist }, backend, new Map(rows.map((r) => [r.m.name, r.m])));
  } finally {
    await backend.close();
  }
}

/** A path relative to the working folder when it lies inside it. */
function shortPath(p: string): string {
  const r = relative(process.cwd(), p);
  return r && !r.startsWith("..") && !isAbsolute(r) ? r : p;
}

const yesNo = (v: boolean | null) => (v === null ? "-" : v ? "yes" : "no");

function table(head: string[], rows: string[][], rightAlign: number[] = []): string[] {
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => cells.map((c, i) => (i === cells.length - 1 ? c : rightAlign.includes(i) ? c.padStart(widths[i]!) : c.padEnd(widths[i]!))).join("  ");
  return [line(head), ...rows.map(line)];
}

/** The report as people read it. */
export function formatSmoke(r: SmokeReport, file: string): string {
  const b = r.backend;
  const out = [
    `profile  ${r.profile} (${file})`,
    b.kind === "triton"
      ? `server   ${b.endpoint}: live ${yesNo(b.live)}, ready ${yesNo(b.ready)}; repository index: ${b.models} models, ${b.ready_models} READY`
      : `backend  embedded (in-process onnxruntime): ${b.ready_models} of ${b.models} models load`,
    "",
    b.kind === "triton" ? "READY checklist (the baseline's models, plus what the profile routes to)" : "models the profile routes to",
    ...table(
      ["model", "level", "status", "parts"],
      r.checklist.map((row) => [
        row.model + (row.server_model !== row.model ? ` (server: ${row.server_model})` : ""),
        row.level,
        row.status,
        row.status === "ready" ? (b.kind === "triton" ? `${row.parts.length}/${row.parts.length} READY` : shortPath(row.parts[0]!.name)) : partsProblem(row),
      ]),
    ),
    "",
    "inference (one per ready model, contract checked)",
    ...table(["model", "result", "ms", "outputs"], r.inferences.map((i) => [i.model, i.ok ? "ok" : "FAILED", i.ms.toFixed(1), i.detail]), [2]),
    "",
  ];
  const req = r.checklist.filter((x) => x.level === "required");
  const add = r.checklist.filter((x) => x.level === "additional");
  const okInf = r.inferences.filter((i) => i.ok).length;
  for (const w of r.warnings) out.push(`warning: ${w}`);
  if (r.ok) {
    out.push(
      `OK: ${req.length}/${req.length} required ready and answering` +
        (add.length ? `; additional ${add.filter((x) => x.status === "ready").length}/${add.length} ready` : "") +
        `; ${okInf}/${r.inferences.length} inferences passed`,
    );
  } else {
    out.push(`FAILED: ${r.failures.length} required problem${r.failures.length === 1 ? "" : "s"}:`);
    for (const f of r.failures) out.push(`  ${f}`);
  }
  return out.join("\n");
}

export const smokeCommand: Command = {
  name: "smoke",
  summary: "check a server (or the embedded models) against the READY checklist, one inference per model; exit 1 if anything required fails",
  usage: "video-analysis smoke --profile P [--json]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      profile: { type: "string", value: "FILE", description: "the YAML profile whose backend (Triton or embedded) is checked" },
      json: { type: "boolean", description: "print the report as JSON" },
    });
    const file = required(this, "profile", values.profile);
    const profile = await loadProfile(file);
    let report: SmokeReport;
    if (profile.backend.embedded) {
      report = await smokeEmbedded(profile);
    } else {
      const { TritonClient } = await import("../../triton/client.js");
      const client = await TritonClient.create(tritonClientOptions(profile));
      try {
        report = await smokeTriton(profile, client);
      } finally {
        await client.close();
      }
    }
    console.log(values.json ? JSON.stringify(report, null, 2) : formatSmoke(report, file));
    return report.ok ? 0 : 1;
  },
};
