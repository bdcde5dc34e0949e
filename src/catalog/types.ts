import type { ModelContract, TensorSpec } from "../backend/backend.js";

/** The analysis components of a run, as profiles and artifacts name them. */
export const COMPONENTS = ["core_depth_midas", "core_optical_flow", "core_clip", "scene", "core_object_detections"] as const;
export type ComponentName = (typeof COMPONENTS)[number];

/** The size axis: every branched family has a small, a medium and a large fixed-shape branch. */
export const SIZE_LABELS = ["small", "medium", "large"] as const;
export type SizeLabel = (typeof SIZE_LABELS)[number];

/** SPEC section 5's READY checklist: what a local baseline must have, and what it may add. */
export type ChecklistLevel = "required" | "additional";

/**
 * How raw 0..255 pixel values become the model's input, per channel c (R, G, B):
 * `out = (x / divisor - mean[c]) / std[c]` in float32, each step rounded (Ultralytics' `im / 255`,
 * torchvision's ToTensor then Normalize). Every path computes exactly this through one function,
 * src/preprocess/normalize.ts, or its numpy twin in the generated Triton preprocess models.
 */
export interface Normalization {
  /** 255: pixels are divided by it (not multiplied by its reciprocal). */
  divisor: number;
  mean: readonly [number, number, number];
  std: readonly [number, number, number];
  /** One line for people: "x/255", "CLIP mean/std"... */
  description: string;
}

/**
 * How the client fits a frame into the branch's S x S input before sending it:
 * `stretch` resizes to S x S, `center_crop` resizes the shorter side to S and crops the centre,
 * `center_crop_bicubic` the same with Pillow's antialiased bicubic filter and torchvision's crop
 * rounding (openai/CLIP's own preprocessing, preprocess/pil-resize.ts), `stretch_crop_bilinear`
 * stretches the whole frame to round(S * 256/224) square with Pillow's antialiased bilinear and crops
 * the centre S (CSAIL's Places365 preprocessing), `letterbox` scales the longer side to at most S (never
 * up) and pads with `pad` around it.
 */
export type ResizeMode = "stretch" | "center_crop" | "center_crop_bicubic" | "stretch_crop_bilinear" | "letterbox";

/**
 * How routing picks a branch from the video: `thresholds` compares max(width, height) with the
 * profile's small/medium thresholds; `no_upscale` takes the largest branch whose size does not exceed
 * max(width, height), so the frame is never upscaled (the smallest branch, padded, below that);
 * `fixed` is for unbranched models (CLIP text).
 */
export type RoutingPolicy = "thresholds" | "no_upscale" | "fixed";

/** One point on the complexity axis: yolo11n ... yolo11x, or the single variant of a family. */
export interface Architecture {
  id: string;
  /** The stem of its model names: `<stem>_<size>` for branched families, `<stem>` alone otherwise. */
  stem: string;
  /** When the architecture normalises differently from its family (MiDaS variants). */
  normalization?: Normalization;
  /** Generated into triton/models by `triton-repo` without being asked for. */
  inRepository: boolean;
  /**
   * The stem of its preprocess models' names when not `stem`: seed 002's repository (and its READY
   * checklist) calls Places365's `preprocess_places365_<S>`, not `preprocess_places365_resnet50_<S>`.
   */
  preprocessStem?: string;
  /** One line for people. */
  note?: string;
}

/** One point on the size axis. */
export interface BranchSpec {
  size: SizeLabel;
  /** S: the branch takes S x S frames. */
  input: number;
  /** Place on SPEC section 5's READY checklist, for the family's production architecture. */
  checklist?: ChecklistLevel;
  /**
   * Opt-in branches are considered by routing only when the profile enables them explicitly
   * (YOLO 960: it needs more GPU memory than 6 GB).
   */
  optIn?: boolean;
}

/** What the client sends: pixels (one frame, or a pair for optical flow) or token ids. */
export type InputKind = "image" | "image_pair" | "tokens";

/**
 * One model family: the data that the client, the embedded backend, the Triton repository generator,
 * the contract-model generator and `smoke` all read. A new family is a new object like this one.
 */
export interface Family {
  id: string;
  component: ComponentName;
  /** The family's slot within its component ("image"/"text" for CLIP); the mapping key is `component` or `component.role`. */
  role?: string;
  title: string;
  architectures: readonly Architecture[];
  /** The production architecture (the one SPEC section 5's checklist names). */
  defaultArchitecture: string;
  /** Empty for an unbranched model (CLIP text). */
  branches: readonly BranchSpec[];
  /** Checklist level of an unbranched family's one model (branched families say it per branch). */
  checklist?: ChecklistLevel;
  routing: RoutingPolicy;
  input: InputKind;
  resize?: ResizeMode;
  /** Letterbox padding value (YOLO: 114). */
  pad?: number;
  /** Absent for families whose input is not pixels. */
  normalization?: Normalization;
  /**
   * The ensemble's contract (what the client sends to `<model>` on Triton) for branch size S
   * (undefined for unbranched families).
   */
  ensemble(size: number | undefined): ModelContract;
  /** The contract of the ONNX export inside (`<model>_onnx`, and the embedded backend's model). */
  onnx(size: number | undefined): ModelContract;
  /** Further output layouts a server may expose for this family (YOLO End2End). */
  outputVariants?: Readonly<Record<string, (size: number) => TensorSpec[]>>;
}

/** One concrete model: a family, an architecture and (for branched families) a branch. */
export interface CatalogModel {
  /** What the client calls: the ensemble on Triton, the ONNX file in the embedded backend. */
  name: string;
  family: Family;
  architecture: Architecture;
  branch: BranchSpec | undefined;
  size: SizeLabel | undefined;
  inputSize: number | undefined;
  ensemble: ModelContract;
  onnx: ModelContract;
  /** `<name>_onnx`. */
  onnxName: string;
  /** `preprocess_<name>` (`preprocess_<preprocessStem>_<S>` where the architecture has one); absent when there is nothing to preprocess (token ids). */
  preprocessName: string | undefined;
  normalization: Normalization | undefined;
  checklist: ChecklistLevel | undefined;
  /** Every Triton model this one is made of: ensemble, preprocess (if any), ONNX. */
  parts: string[];
}
