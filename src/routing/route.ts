import { branchOf, catalogModel, familiesOf, findModel, slotKey } from "../catalog/index.js";
import type { CatalogModel, Family, SizeLabel } from "../catalog/types.js";
import { COMPONENTS } from "../catalog/types.js";
import { VideoAnalysisError } from "../errors.js";
import { serverModelName } from "../profiles/profile.js";
import type { Profile, Thresholds } from "../profiles/schema.js";

/** What routing needs to know about a video: its stored size and the rotation its metadata asks for. */
export interface VideoMetadata {
  /** Coded (stored) width and height in pixels. */
  width: number;
  height: number;
  /** Display rotation in degrees (a multiple of 90; phones store portrait video as landscape + 90). */
  rotation?: number;
}

/** Where a frame lands inside a letterboxed S x S input: scaled by `scale` (never above 1), padded around. */
export interface LetterboxGeometry {
  scale: number;
  /** Size of the scaled frame inside the input. */
  width: number;
  height: number;
  pad_left: number;
  pad_top: number;
  pad_right: number;
  pad_bottom: number;
  pad_value: number;
}

export type Unavailability = "disabled" | "not_ready";

/** One entry of `resolved_model_mapping`: which model a slot gets, and why. */
export interface ResolvedModel {
  /** The component (a built-in's name, or a profile's own component's). */
  component: string;
  role: string | null;
  family: string;
  architecture: string;
  /** The catalog model that serves the run. */
  model: string;
  /** The name it is called by on the backend (profile's model_names). */
  server_model: string;
  size: SizeLabel | null;
  input_size: number | null;
  /** The model the rule chose, before any fallback. */
  wanted: string;
  /** The rule, in words. */
  reason: string;
  /** Each fallback taken, in order. */
  fallbacks: Array<{ from: string; to: string; because: Unavailability }>;
  /** True/false when readiness was checked, null when it was not. */
  ready: boolean | null;
  letterbox: LetterboxGeometry | null;
}

export interface Routing {
  video: { width: number; height: number; rotation: number };
  /** Frame size the components analyse: display orientation, scaled down to analysis.max_side. */
  analysis: { width: number; height: number; longer_side: number };
  resolved_model_mapping: Record<string, ResolvedModel>;
}

export interface RouteOptions {
  /**
   * Whether the server has a model READY (called with the server's name). Without it every model
   * counts as ready and `ready` is null in the result.
   */
  ready?: (serverModel: string) => boolean;
}

/** Letterbox geometry of a w x h frame in an S x S input, the way Ultralytics pads, never upscaling. */
export function letterboxGeometry(width: number, height: number, size: number, padValue = 114): LetterboxGeometry {
  const scale = Math.min(size / width, size / height, 1);
  const w = Math.round(width * scale);
  const h = Math.round(height * scale);
  const dw = (size - w) / 2;
  const dh = (size - h) / 2;
  const left = Math.max(0, Math.round(dw - 0.1));
  const top = Math.max(0, Math.round(dh - 0.1));
  return { scale, width: w, height: h, pad_left: left, pad_top: top, pad_right: size - w - left, pad_bottom: size - h - top, pad_value: padValue };
}

/** The analysis frame size: display orientation (rotation applied), scaled down to max_side, never up. */
export function analysisSize(video: VideoMetadata, maxSide: number | null): { width: number; height: number; rotation: number } {
  const { width, height } = video;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new VideoAnalysisError("VIDEO_INVALID", `video size must be positive whole numbers, got ${width}x${height}`);
  }
  const raw = video.rotation ?? 0;
  const rotation = ((Math.round(raw) % 360) + 360) % 360;
  if (rotation % 90 !== 0) throw new VideoAnalysisError("VIDEO_INVALID", `video rotation must be a multiple of 90 degrees, got ${raw}`);
  let [w, h] = rotation % 180 === 0 ? [width, height] : [height, width];
  if (maxSide !== null && Math.max(w, h) > maxSide) {
    const k = maxSide / Math.max(w, h);
    [w, h] = [Math.max(1, Math.round(w * k)), Math.max(1, Math.round(h * k))];
  }
  return { width: w, height: h, rotation };
}

function thresholdsChoice(longer: number, t: Thresholds): { size: SizeLabel; reason: string } {
  if (longer <= t.small) return { size: "small", reason: `longer side ${longer} <= ${t.small}` };
  if (longer <= t.medium) return { size: "medium", reason: `${t.small} < longer side ${longer} <= ${t.medium}` };
  return { size: "large", reason: `longer side ${longer} > ${t.medium}` };
}

function noUpscaleChoice(f: Family, longer: number, enabled: readonly number[]): { input: number; reason: string } {
  const candidates = f.branches.filter((b) => !b.optIn || enabled.includes(b.input)).map((b) => b.input).sort((a, b) => a - b);
  const fitting = candidates.filter((s) => s <= longer);
  const skipped = f.branches.filter((b) => b.optIn && !enabled.includes(b.input) && b.input <= longer).map((b) => b.input);
  const note = skipped.length ? `; ${skipped.join(", ")} not enabled` : "";
  if (fitting.length === 0) {
    return { input: candidates[0]!, reason: `longer side ${longer} < ${candidates[0]}: smallest branch, padded, never upscaled${note}` };
  }
  const s = fitting[fitting.length - 1]!;
  return { input: s, reason: `largest branch <= longer side ${longer}, so no upscaling${note}` };
}

function describeEnabled(f: Family, enabled: readonly number[]): string {
  return f.branches.filter((b) => enabled.includes(b.input)).map((b) => b.input).join(", ") || "none";
}

/**
 * Resolves which model serves each enabled slot for a video, by SPEC section 2's rules:
 * - thresholds families: max(analysis width, height) <= small -> small, <= medium -> medium, else large;
 * - YOLO: the largest branch not above the longer side (never upscale; letterbox and pad 114), the
 *   smallest when the frame is smaller than every branch; opt-in branches (960) only when enabled;
 * - a branch the profile disables, or that is not READY, is replaced only by an explicit fallback rule
 *   (followed as a chain); otherwise ROUTING_FAILED says what to change.
 * Pure: no I/O; readiness comes in through `options.ready`.
 */
export function resolveModelMapping(video: VideoMetadata, profile: Profile, options: RouteOptions = {}): Routing {
  const a = analysisSize(video, profile.analysis.max_side);
  const longer = Math.max(a.width, a.height);
  const mapping: Record<string, ResolvedModel> = {};

  for (const component of COMPONENTS) {
    const settings = profile.components[component];
    if (!settings || !settings.enabled || namesOwnModel(settings)) continue;
    for (const f of familiesOf(component)) {
      const enabled = settings.branches ?? f.branches.filter((b) => !b.optIn).map((b) => b.input);
      let wanted: CatalogModel;
      let reason: string;
      if (f.routing === "fixed" || f.branches.length === 0) {
        wanted = catalogModel(f, undefined, settings.architecture);
        reason = "unbranched";
      } else if (f.routing === "thresholds") {
        const t = settings.thresholds ?? profile.routing.thresholds;
        const c = thresholdsChoice(longer, t);
        wanted = catalogModel(f, c.size, settings.architecture);
        reason = `${c.reason} -> ${c.size}`;
      } else {
        const c = noUpscaleChoice(f, longer, enabled);
        wanted = catalogModel(f, c.input, settings.architecture);
        reason = c.reason;
      }

      const status = (m: CatalogModel): Unavailability | undefined => {
        if (m.branch && !enabled.includes(m.branch.input)) return "disabled";
        if (options.ready && !options.ready(serverModelName(profile, m.name))) return "not_ready";
        return undefined;
      };

      const fallbacks: ResolvedModel["fallbacks"] = [];
      const seen = new Set<string>();
      let current = wanted;
      for (let because = status(current); because !== undefined; because = status(current)) {
        seen.add(current.name);
        const rule = profile.routing.fallbacks.find((r) => r.from === current.name && r.when.includes(because!));
        if (!rule) {
          const what = because === "disabled"
            ? `which the profile disables (components.${component}.branches: ${describeEnabled(f, enabled)})`
            : `which is not READY on the server as "${serverModelName(profile, current.name)}"`;
          const chain = fallbacks.length ? ` (after falling back from ${fallbacks.map((x) => x.from).join(" -> ")})` : "";
          throw new VideoAnalysisError(
            "ROUTING_FAILED",
            `${slotKey(f)}: the video (analysis ${a.width}x${a.height}, ${reason}) needs ${current.name}${chain}, ${what}; ` +
              (because === "disabled" ? `enable it, or ` : `load it on the server (video-analysis smoke lists what is missing), or `) +
              `add a fallback rule to the profile: routing.fallbacks: [{ from: ${current.name}, to: <another ${f.id} model>${because === "not_ready" ? ", when: [not_ready]" : ""} }]`,
            { model: current.name, details: { slot: slotKey(f), wanted: wanted.name, because, fallbacks } },
          );
        }
        const next = findModel(rule.to);
        if (!next || next.family !== f) {
          throw new VideoAnalysisError("ROUTING_FAILED", `fallback rule ${rule.from} -> ${rule.to} does not name a ${f.title} model`, { model: rule.from });
        }
        if (seen.has(next.name)) {
          throw new VideoAnalysisError("ROUTING_FAILED", `fallback rules loop: ${[...seen, next.name].join(" -> ")}; make the chain end at a model that is enabled and READY`, { model: rule.from });
        }
        fallbacks.push({ from: current.name, to: next.name, because });
        current = next;
      }

      const letterbox = f.resize === "letterbox" && current.inputSize ? letterboxGeometry(a.width, a.height, current.inputSize, f.pad ?? 114) : null;
      mapping[slotKey(f)] = {
        component,
        role: f.role ?? null,
        family: f.id,
        architecture: current.architecture.id,
        model: current.name,
        server_model: serverModelName(profile, current.name),
        size: current.size ?? null,
        input_size: current.inputSize ?? null,
        wanted: wanted.name,
        reason,
        fallbacks,
        ready: options.ready ? true : null,
        letterbox,
      };
    }
  }
  return {
    video: { width: video.width, height: video.height, rotation: a.rotation },
    analysis: { width: a.width, height: a.height, longer_side: longer },
    resolved_model_mapping: mapping,
  };
}

/** A built-in component given a model of the user's own (`model`): routed as named by the component (Component.models), not here. */
function namesOwnModel(settings: object): boolean {
  return typeof (settings as { model?: unknown }).model === "string";
}

/** Every model a profile can route to (enabled branches of enabled components, and fallback targets). */
export function routableModels(profile: Profile): CatalogModel[] {
  const out = new Map<string, CatalogModel>();
  for (const component of COMPONENTS) {
    const s = profile.components[component];
    if (!s || !s.enabled || namesOwnModel(s)) continue;
    for (const f of familiesOf(component)) {
      if (f.branches.length === 0) {
        const m = catalogModel(f, undefined, s.architecture);
        out.set(m.name, m);
        continue;
      }
      const enabled = s.branches ?? f.branches.filter((b) => !b.optIn).map((b) => b.input);
      for (const size of enabled) {
        const m = catalogModel(f, branchOf(f, size).input, s.architecture);
        out.set(m.name, m);
      }
    }
  }
  // Fallback targets of routable models are routable too (chains included).
  for (let grew = true; grew; ) {
    grew = false;
    for (const r of profile.routing.fallbacks) {
      const to = findModel(r.to);
      if (out.has(r.from) && to && !out.has(to.name)) {
        out.set(to.name, to);
        grew = true;
      }
    }
  }
  return [...out.values()];
}
