import type { ModelContract } from "../backend/backend.js";
import { clipImage, clipText } from "./families/clip.js";
import { midas } from "./families/midas.js";
import { places365 } from "./families/places365.js";
import { raft } from "./families/raft.js";
import { yolo11 } from "./families/yolo11.js";
import type { Architecture, BranchSpec, CatalogModel, ChecklistLevel, ComponentName, Family, SizeLabel } from "./types.js";

/** Every family the SDK knows, in the order tables list them. Adding a family means adding it here. */
export const FAMILIES: readonly Family[] = [midas, raft, clipImage, clipText, places365, yolo11];

/** The family of that id, or a RangeError listing the ids there are. */
export function family(id: string): Family {
  const f = FAMILIES.find((x) => x.id === id);
  if (!f) throw new RangeError(`unknown model family "${id}"; the catalog has ${FAMILIES.map((x) => x.id).join(", ")}`);
  return f;
}

/** The families that serve one component (CLIP has two: image and text). */
export function familiesOf(component: ComponentName): Family[] {
  return FAMILIES.filter((f) => f.component === component);
}

/** The key of a family's model in `resolved_model_mapping`: the component, or `component.role`. */
export function slotKey(f: Family): string {
  return f.role ? `${f.component}.${f.role}` : f.component;
}

/** The architecture of that id (the family's production one when omitted). */
export function architectureOf(f: Family, id?: string): Architecture {
  const want = id ?? f.defaultArchitecture;
  const a = f.architectures.find((x) => x.id === want);
  if (!a) throw new RangeError(`family ${f.id} has no architecture "${want}"; it has ${f.architectures.map((x) => x.id).join(", ")}`);
  return a;
}

/** The branch for a size label or an input size. */
export function branchOf(f: Family, size: SizeLabel | number): BranchSpec {
  const b = f.branches.find((x) => (typeof size === "number" ? x.input === size : x.size === size));
  if (!b) {
    const have = f.branches.map((x) => `${x.size} ${x.input}`).join(", ") || "none (unbranched)";
    throw new RangeError(`family ${f.id} has no branch ${size}; its branches: ${have}`);
  }
  return b;
}

/** A model's name: `<stem>_<S>` (`yolo11x_640`, `midas_256`), or `<stem>` for unbranched families. */
export function modelName(arch: Architecture, branch: BranchSpec | undefined): string {
  return branch ? `${arch.stem}_${branch.input}` : arch.stem;
}

function build(f: Family, a: Architecture, b: BranchSpec | undefined): CatalogModel {
  const name = modelName(a, b);
  const s = b?.input;
  const normalization = f.input === "tokens" ? undefined : (a.normalization ?? f.normalization);
  const preprocessName = normalization ? `preprocess_${modelName({ ...a, stem: a.preprocessStem ?? a.stem }, b)}` : undefined;
  const onnxName = `${name}_onnx`;
  const checklist: ChecklistLevel | undefined = a.id === f.defaultArchitecture ? (b ? b.checklist : f.checklist) : undefined;
  return {
    name,
    family: f,
    architecture: a,
    branch: b,
    size: b?.size,
    inputSize: s,
    ensemble: f.ensemble(s),
    onnx: f.onnx(s),
    onnxName,
    preprocessName,
    normalization,
    checklist,
    parts: preprocessName ? [name, preprocessName, onnxName] : [name, onnxName],
  };
}

/** The model of a family, architecture (default: production) and branch (ignored for unbranched families). */
export function catalogModel(f: Family, size?: SizeLabel | number, architecture?: string): CatalogModel {
  const a = architectureOf(f, architecture);
  if (f.branches.length === 0) return build(f, a, undefined);
  if (size === undefined) throw new RangeError(`family ${f.id} is branched: name a size (${f.branches.map((b) => b.input).join(", ")})`);
  return build(f, a, branchOf(f, size));
}

/** Every model of the catalog: each family x architecture x branch. */
export function allModels(): CatalogModel[] {
  const out: CatalogModel[] = [];
  for (const f of FAMILIES) {
    for (const a of f.architectures) {
      if (f.branches.length === 0) out.push(build(f, a, undefined));
      else for (const b of f.branches) out.push(build(f, a, b));
    }
  }
  return out;
}

/**
 * The models of the Triton repository: every branch of each architecture marked `inRepository`, plus
 * every branch of the architectures named in `extraArchitectures` (e.g. "yolo11n").
 */
export function repositoryModels(extraArchitectures: readonly string[] = []): CatalogModel[] {
  const known = new Set(FAMILIES.flatMap((f) => f.architectures.map((a) => a.id)));
  for (const a of extraArchitectures) {
    if (!known.has(a)) throw new RangeError(`unknown architecture "${a}"; the catalog has ${[...known].join(", ")}`);
  }
  return allModels().filter((m) => m.architecture.inRepository || extraArchitectures.includes(m.architecture.id));
}

/** The catalog model of that name (`yolo11n_640`, `clip_text`), or undefined. */
export function findModel(name: string): CatalogModel | undefined {
  return allModels().find((m) => m.name === name);
}

/** The values a call of the model's ONNX export takes in (all inputs): a rough measure of its work per call. */
export function inputValues(model: CatalogModel): number {
  return model.onnx.inputs.reduce((sum, t) => sum + t.shape.reduce((a, d) => a * d, 1), 0);
}

/** Seed 002's READY checklist (SPEC section 5), required first, each entry with the parts that must be READY. */
export function readyChecklist(): Array<CatalogModel & { checklist: ChecklistLevel }> {
  const on = allModels().filter((m): m is CatalogModel & { checklist: ChecklistLevel } => m.checklist !== undefined);
  return [...on.filter((m) => m.checklist === "required"), ...on.filter((m) => m.checklist === "additional")];
}

/**
 * What a model takes and gives on a backend: Triton serves the ensemble (UINT8 NHWC in, preprocessing
 * on the server); the embedded backend runs the ONNX export, fed by the SDK's own preprocessing.
 */
export function contractFor(model: CatalogModel, backend: "triton" | "embedded"): ModelContract {
  return backend === "triton" ? model.ensemble : model.onnx;
}
