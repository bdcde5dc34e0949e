import type { Component } from "../pipeline/component.js";
import { clip } from "./clip/index.js";
import { depth } from "./depth/index.js";
import { detections } from "./detections/index.js";
import { flow } from "./flow/index.js";
import { scene } from "./scene/index.js";
// Kept in the declarations too: each family types its FrameResult key there (declaration merging), so a
// consumer of the package sees `r.detections`, `r.depth`... typed, not unknown.
import "./depth/index.js";
import "./scene/index.js";
import "./detections/index.js";

/**
 * The built-in families, in the order a run lists their models and artifacts (and journals their rows:
 * the order is part of a resumable run's journal).
 */
export const BUILTIN_COMPONENTS: readonly Component[] = [depth, flow, clip, scene, detections];

/** The built-ins by name, for the manager's typed single-frame calls (depth(), detect()...). */
export const BUILTIN = { depth, flow, clip, scene, detections } as const;

export { flowBetween } from "./flow/index.js";
export { openClipText, type ClipTextEmbedder } from "./clip/index.js";
export type { DepthMap } from "./depth/depth.js";
export type { FlowField } from "./flow/flow.js";
export type { ClipFrameResult } from "./clip/clip.js";
export type { SceneResult } from "./scene/scene.js";
export type { ScenePrediction, SceneLabel } from "./scene/labels.js";

/** The artifacts the built-in families write, relative to a run folder (SPEC section 4). */
export const ARTIFACT_FILES: readonly string[] = BUILTIN_COMPONENTS.flatMap((c) => c.files).sort();

/** Files they write only when the profile asks for them (output.mot). */
export const OPTIONAL_ARTIFACT_FILES: readonly string[] = BUILTIN_COMPONENTS.flatMap((c) => c.optionalFiles ?? []);
