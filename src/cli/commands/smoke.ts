import { existsSync } from "node:fs";
import { isAbsolute, relative } from "node:path";
import type { InferenceBackend } from "../../backend/backend.js";
import type { ModelContract } from "../../backend/backend.js";
import { CLIP_TOKENS, readyChecklist } from "../../catalog/index.js";
import { BUILTIN_COMPONENTS } from "../../components/builtins.js";
import { EmbeddedEnsembles } from "../../embedded/embedded-ensembles.js";
import type { CatalogModel } from "../../catalog/types.js";
import { EmbeddedBackend } from "../../embedded/embedded-backend.js";
import { isVideoAnalysisError } from "../../errors.js";
import { embeddedModelPath, loadProfile, serverModelName, tritonClientOptions, type Profile } from "../../profiles/index.js";
import { routableModels, type ResolvedModel } from "../../routing/index.js";
import { elementCount, tensor, toFloat32, type Tensor } from "../../tensor.js";
import type { TritonClient } from "../../triton/client.js";
import { encodeJpeg } from "../../preprocess/jpeg.js";
import { parseCommandArgs, required, usageError, type Command } from "../command.js";

export type PartState = "READY" | "UNAVAILABLE" | "missing";

/**
 * What `smoke` checks besides what the profile routes to: nothing, seed 002's READY checklist of a
 * baseline GPU server (its required models required, the rest reported), or of a baseline + YOLO11x one
 * (every model on it required).
 */
export const SMOKE_CHECKLISTS = ["profile", "baseline", "baseline+yolo"] as const;
export type SmokeChecklist = (typeof SMOKE_CHECKLISTS)[number];

export interface SmokeRow {
  /** Catalog name, and the name on the backend. */
  model: string;
  server_model: string;
  level: "required" | "additional";
  /** Why it is on the list: the profile routing to it, the --checklist asked for, or both. */
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
  /** What was checked besides the profile's models (--checklist). */
  checklist_option: SmokeChecklist;
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

/** One model to check: the catalog's, how the profile calls it (name, contract) and why it is checked. */
interface Target {
  m: CatalogModel;
  level: "required" | "additional";
  source: string;
  /** The name it is called by on the backend. */
  call: string;
  /** What it is called with (a component's own, e.g. YOLO End2End or JPEG input, else the ensemble's). */
  contract: ModelContract;
  /** The model's own contract, not the catalog ensemble's: its parts are not the catalog's. */
  custom: boolean;
}

/** A deterministic gradient image of n bytes (channel k shifts it). */
function gradient(n: number, k: number): Uint8Array {
  const px = new Uint8Array(n);
  for (let i = 0; i < px.length; i++) px[i] = (i * 7 + k * 31 + (i >> 10)) & 255;
  return px;
}

/**
 * Inputs that fit the contract: a gradient image, the same as JPEG bytes for an encoded-image input
 * (YOLO track D), or "a photo" as CLIP token ids.
 */
async function syntheticInputs(t: Target): Promise<Tensor[]> {
  const out: Tensor[] = [];
  for (const [k, s] of t.contract.inputs.entries()) {
    if (s.datatype === "INT64") {
      const ids = new BigInt64Array(elementCount(s.shape));
      // SOT, "a</w>", "photo</w>", EOT, then zeros: what the tokenizer gives for "a photo".
      [CLIP_TOKENS.sot, 320, 1125, CLIP_TOKENS.eot].forEach((v, i) => (ids[i] = BigInt(v)));
      out.push(tensor(s.name, "INT64", s.shape, ids));
    } else if (s.shape.includes(-1)) {
      const size = t.m.inputSize ?? 224;
      const jpeg = await encodeJpeg({ width: size, height: size, channels: 3, data: gradient(size * size * 3, k) }, 90);
      out.push(tensor(s.name, "UINT8", [1, jpeg.bytes.length], jpeg.bytes));
    } else {
      out.push(tensor(s.name, "UINT8", s.shape, gradient(elementCount(s.shape), k)));
    }
  }
  return out;
}

/** A shape that fits a contract's (-1: any size there). */
function shapeFits(shape: readonly number[], spec: readonly number[]): boolean {
  return shape.length === spec.length && shape.every((d, i) => spec[i] === -1 || spec[i] === d);
}

/** One inference with the contract checked, and the outputs checked against it too. */
async function inferOnce(backend: InferenceBackend, t: Target, deadlineMs?: number): Promise<{ ok: boolean; ms: number; detail: string }> {
  const inputs = await syntheticInputs(t);
  const t0 = performance.now();
  try {
    const r = await backend.infer(t.call, inputs, { contract: t.contract, ...(deadlineMs ? { deadlineMs } : {}) });
    const ms = performance.now() - t0;
    const got: string[] = [];
    for (const spec of t.contract.outputs) {
      const o = r.outputs[spec.name];
      if (!o) return { ok: false, ms, detail: `output ${spec.name} missing from the answer` };
      if (o.datatype !== spec.datatype || !shapeFits(o.shape, spec.shape)) {
        return { ok: false, ms, detail: `output ${describeSpec(o)}, expected ${spec.datatype} [${spec.shape.join(",")}]` };
      }
      if (o.datatype !== "BYTES" && toFloat32(o).some((v) => !Number.isFinite(v))) return { ok: false, ms, detail: `output ${spec.name} holds NaN or infinite values` };
      got.push(describeSpec(o));
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

/** How the profile calls a model: its component's own name and contract where it has one, else the ensemble under the server's name. */
function callOf(profile: Profile, m: CatalogModel, kind: "triton" | "embedded"): Pick<Target, "call" | "contract" | "custom"> {
  const server = kind === "triton" ? serverModelName(profile, m.name) : m.name;
  const routed: ResolvedModel = {
    component: m.family.component,
    role: m.family.role ?? null,
    family: m.family.id,
    architecture: m.architecture.id,
    model: m.name,
    server_model: server,
    size: m.size ?? null,
    input_size: m.inputSize ?? null,
    wanted: m.name,
    reason: "smoke",
    fallbacks: [],
    ready: null,
    letterbox: null,
  };
  // A checklist model of a component the profile does not run is called as the catalog has it.
  const own = profile.components[m.family.component]?.enabled ? BUILTIN_COMPONENTS.find((c) => c.name === m.family.component)?.contract?.(m, routed, profile, kind) : undefined;
  // The embedded backend runs the ensemble's contract too (EmbeddedEnsembles preprocesses in process).
  if (!own) return { call: server, contract: m.ensemble, custom: false };
  return { call: own.callName ?? server, contract: own.contract, custom: own.callName !== undefined || own.contract !== m.ensemble };
}

/**
 * What to check: every model the profile routes to (for its enabled components and branches, fallback
 * targets included), required; plus the --checklist's models. `baseline` makes the checklist's required
 * models required and reports its additional ones; `baseline+yolo` requires them all.
 */
function targetsFor(profile: Profile, checklist: SmokeChecklist, kind: "triton" | "embedded"): Target[] {
  const rows = new Map<string, { m: CatalogModel; level: "required" | "additional"; source: string }>();
  for (const m of routableModels(profile)) rows.set(m.name, { m, level: "required", source: "the profile routes to it" });
  if (checklist !== "profile") {
    for (const m of readyChecklist()) {
      const level = checklist === "baseline+yolo" ? "required" : m.checklist;
      const source = `checklist ${checklist} (${m.checklist === "required" ? "baseline" : "baseline + YOLO11x"})`;
      const r = rows.get(m.name);
      if (r) rows.set(m.name, { m, level: "required", source: `${r.source}; ${source}` });
      else rows.set(m.name, { m, level, source });
    }
  }
  const all = [...rows.values()];
  return [...all.filter((r) => r.level === "required"), ...all.filter((r) => r.level === "additional")].map((r) => ({ ...r, ...callOf(profile, r.m, kind) }));
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
  targets: readonly Target[],
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
  for (const [k, row] of report.checklist.entries()) {
    if (row.status !== "ready") continue;
    const r = await inferOnce(backend, targets[k]!, deadlineMs);
    inferences.push({ model: row.model, level: row.level, ...r });
    if (!r.ok) (row.level === "required" ? failures : warnings).push(`${row.level} ${row.model}: inference failed: ${r.detail}`);
  }
  return { ...report, inferences, failures, warnings, ok: failures.length === 0 };
}

/**
 * Smoke against a Triton server: live and ready, repository index, every model the profile routes to
 * (and the --checklist's) with all its parts READY, and one inference per ready model with its contract
 * checked. `ok` is false exactly when something required fails.
 */
export async function smokeTriton(profile: Profile, client: TritonClient, checklist: SmokeChecklist = "profile"): Promise<SmokeReport> {
  const live = await client.serverLive();
  const ready = await client.serverReady();
  const index = await client.repositoryIndex();
  const state = new Map<string, { state: PartState; reason: string }>();
  for (const e of index) {
    const prev = state.get(e.name);
    if (prev?.state === "READY") continue;
    state.set(e.name, { state: e.state === "READY" ? "READY" : "UNAVAILABLE", reason: e.state === "READY" ? "" : oneLine(e.reason) || e.state });
  }
  const targets = targetsFor(profile, checklist, "triton");
  const rows: SmokeRow[] = targets.map(({ m, level, source, call, custom }) => {
    // A model called with its own contract (End2End, JPEG input) is an ensemble whose steps are not the
    // catalog's: the call itself must be READY (its inference shows the rest).
    const names = custom ? [call] : call === m.name ? m.parts : m.parts.map((p) => p.replace(m.name, call));
    const parts = names.map((name) => ({ name, ...(state.get(name) ?? { state: "missing" as const, reason: "not in the repository" }) }));
    return { model: m.name, server_model: call, level, source, parts, status: rowStatus(parts) };
  });
  const names = new Set(index.map((e) => e.name));
  const readyNames = new Set(index.filter((e) => e.state === "READY").map((e) => e.name));
  return finish(
    { profile: profile.name, checklist_option: checklist, backend: { kind: "triton", endpoint: client.endpoint, live, ready, models: names.size, ready_models: readyNames.size }, checklist: rows },
    client,
    targets,
    profile.backend.triton?.deadline_ms,
  );
}

/**
 * Smoke of an embedded profile: every model the profile routes to (and the --checklist's) must have its
 * .onnx file, load in onnxruntime, and answer one inference with the catalog's contract.
 */
export async function smokeEmbedded(profile: Profile, checklist: SmokeChecklist = "profile"): Promise<SmokeReport> {
  const targets = targetsFor(profile, checklist, "embedded");
  const files: Record<string, string> = {};
  for (const { m } of targets) {
    const p = embeddedModelPath(profile, m.name);
    // In-process models go by their catalog names, as ModelManager calls them; model_names renames
    // models on a server only.
    if (p && existsSync(p)) files[m.name] = p;
  }
  const emb = await EmbeddedBackend.create({ models: files, ...(profile.backend.embedded?.intra_op_threads ? { intraOpNumThreads: profile.backend.embedded.intra_op_threads } : {}) });
  const backend = new EmbeddedEnsembles(emb);
  try {
    const rows: SmokeRow[] = [];
    for (const { m, level, source } of targets) {
      const path = embeddedModelPath(profile, m.name) ?? "(no path: add it to backend.embedded.models or set models_dir)";
      let st: PartState = "missing";
      let reason = `${path} does not exist`;
      if (files[m.name]) {
        try {
          await backend.modelMetadata(m.name);
          st = "READY";
          reason = "";
        } catch (e) {
          st = "UNAVAILABLE";
          reason = isVideoAnalysisError(e) ? e.message : String(e);
        }
      }
      const parts = [{ name: files[m.name] ?? path, state: st, reason }];
      rows.push({ model: m.name, server_model: m.name, level, source, parts, status: rowStatus(parts) });
    }
    const n = rows.length;
    const readyCount = rows.filter((r) => r.status === "ready").length;
    return await finish(
      { profile: profile.name, checklist_option: checklist, backend: { kind: "embedded", endpoint: "embedded", live: null, ready: null, models: n, ready_models: readyCount }, checklist: rows },
      backend,
      targets.map((t) => ({ ...t, call: t.m.name })),
    );
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
    r.checklist_option === "profile" ? "models the profile routes to" : `models the profile routes to, and checklist ${r.checklist_option}`,
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
  summary: "check that the server (or the embedded models) has what the profile routes to, one inference per model; exit 1 if anything required fails",
  usage: "video-analysis smoke --profile P [--checklist baseline|baseline+yolo] [--json]",
  async run(argv) {
    const { values } = parseCommandArgs(this, argv, {
      profile: { type: "string", value: "FILE", description: "the YAML profile whose backend (Triton or embedded) is checked" },
      checklist: {
        type: "string",
        value: "NAME",
        description:
          "also check a whole server's READY checklist: baseline (depth, flow, CLIP, Places365 required; the other branches and YOLO11x reported) or baseline+yolo (all of them required); default: only what the profile routes to",
      },
      json: { type: "boolean", description: "print the report as JSON" },
    });
    const file = required(this, "profile", values.profile);
    const checklist = (values.checklist ?? "profile") as SmokeChecklist;
    if (values.checklist !== undefined && (values.checklist === "profile" || !SMOKE_CHECKLISTS.includes(checklist))) {
      throw usageError(this, `--checklist must be baseline or baseline+yolo, got "${values.checklist}"`);
    }
    const profile = await loadProfile(file);
    let report: SmokeReport;
    if (profile.backend.embedded) {
      report = await smokeEmbedded(profile, checklist);
    } else {
      const { TritonClient } = await import("../../triton/client.js");
      const client = await TritonClient.create(tritonClientOptions(profile));
      try {
        report = await smokeTriton(profile, client, checklist);
      } finally {
        await client.close();
      }
    }
    console.log(values.json ? JSON.stringify(report, null, 2) : formatSmoke(report, file));
    return report.ok ? 0 : 1;
  },
};
