import type { TensorSpec } from "../../backend/backend.js";
import { NORMALIZATIONS } from "../normalization.js";
import type { Family } from "../types.js";

/** COCO classes in YOLO's output: rows 4..83 of the raw output. */
export const YOLO_CLASSES = 80;

/** YOLO's anchor-free candidates for input size S: one per cell of the stride 8, 16 and 32 grids. */
export function yoloCandidates(size: number): number {
  if (!Number.isInteger(size) || size <= 0 || size % 32 !== 0) throw new RangeError(`YOLO input size must be a positive multiple of 32, got ${size}`);
  return (size / 8) ** 2 + (size / 16) ** 2 + (size / 32) ** 2;
}

/** End2End exports (NMS inside the engine) return at most this many detections. */
export const YOLO_END2END_MAX_DETECTIONS = 100;

/** The End2End output layout: the client only rescales boxes. */
export function yoloEnd2EndOutputs(): TensorSpec[] {
  const k = YOLO_END2END_MAX_DETECTIONS;
  return [
    { name: "num_dets", datatype: "INT32", shape: [1] },
    { name: "det_boxes", datatype: "FP32", shape: [k, 4] },
    { name: "det_scores", datatype: "FP32", shape: [k] },
    { name: "det_classes", datatype: "INT32", shape: [k] },
  ];
}

/** The seeds' batching tiers of track D (seed 000): the profile picks one, the server batches within it. */
export const BATCHING_TIERS = ["streaming", "balanced", "batch"] as const;
export type BatchingTier = (typeof BATCHING_TIERS)[number];

export interface TierSettings {
  tier: BatchingTier;
  /** Suffix of the tier's model names (balanced, the default, has none). */
  suffix: string;
  maxBatchSize: number;
  /** Dynamic batching window. */
  maxQueueDelayUs: number;
  preferredBatchSizes: readonly number[];
  /** default_queue_policy: requests waiting longer are rejected; at most this many wait. */
  queueTimeoutUs: number;
  maxQueueSize: number;
}

/**
 * Seed 000's table (streaming 8 / 0.1 ms, balanced 64 / 0.5 ms, batch 128 / 5 ms) and its balanced config
 * (preferred 4..64, REJECT after 50 ms, queue 64). The streaming and batch queue policies are not in the
 * seed: they follow the same rule (queue = max batch), batch with a longer timeout since it is offline.
 */
export const TIER_SETTINGS: Readonly<Record<BatchingTier, TierSettings>> = {
  streaming: { tier: "streaming", suffix: "_streaming", maxBatchSize: 8, maxQueueDelayUs: 100, preferredBatchSizes: [1, 2, 4, 8], queueTimeoutUs: 50_000, maxQueueSize: 8 },
  balanced: { tier: "balanced", suffix: "", maxBatchSize: 64, maxQueueDelayUs: 500, preferredBatchSizes: [4, 8, 16, 32, 64], queueTimeoutUs: 50_000, maxQueueSize: 64 },
  batch: { tier: "batch", suffix: "_batch", maxBatchSize: 128, maxQueueDelayUs: 5000, preferredBatchSizes: [16, 32, 64, 128], queueTimeoutUs: 1_000_000, maxQueueSize: 128 },
};

/** Seed 000's track C engine: batches up to 128, preferred 8..128, 0.5 ms window. */
export const END2END_BATCHING = { maxBatchSize: 128, maxQueueDelayUs: 500, preferredBatchSizes: [8, 16, 32, 64, 128] } as const;

/** The JPEG-bytes input of track D's ensembles: one encoded image per batch row. */
export const JPEG_INPUT: TensorSpec = { name: "INPUT__0", datatype: "UINT8", shape: [-1] };

/**
 * The Triton models of tracks C and D for a YOLO model `<name>` (e.g. yolo11x_640):
 * - `<name>_end2end`: the End2End engine (NMS inside), FP32 [3, S, S] in, batched;
 * - `<name>_e2e`: track C, UINT8 [1, S, S, 3] in (the python preprocess), End2End out;
 * - `yolo_preprocess_dali_<S><tier suffix>`: DALI JPEG decode + letterbox, batched in the tier;
 * - `<name>_gpu_e2e<tier suffix>`: track D, JPEG bytes in, End2End out.
 */
export function trackNames(name: string, size: number, tier: BatchingTier = "balanced") {
  const t = TIER_SETTINGS[tier];
  return {
    end2end: `${name}_end2end`,
    trackC: `${name}_e2e`,
    dali: `yolo_preprocess_dali_${size}${t.suffix}`,
    trackD: `${name}_gpu_e2e${t.suffix}`,
  };
}

const arch = (id: string, inRepository: boolean, note: string) => ({ id, stem: id, inRepository, note });

/**
 * YOLO11 detection, COCO-80. Raw output [1, 84, N]: rows 0-3 cx, cy, w, h in letterboxed input pixels,
 * rows 4-83 the class scores, already sigmoided, no objectness row.
 */
export const yolo11: Family = {
  id: "yolo11",
  component: "core_object_detections",
  title: "YOLO11",
  architectures: [
    arch("yolo11n", false, "nano: 2.6 M parameters, for CPUs and small GPUs"),
    arch("yolo11s", false, "small: 9.4 M parameters"),
    arch("yolo11m", false, "medium: 20.1 M parameters"),
    arch("yolo11l", false, "large: 25.3 M parameters"),
    arch("yolo11x", true, "extra large: 56.9 M parameters; production today"),
  ],
  defaultArchitecture: "yolo11x",
  branches: [
    { size: "small", input: 320, checklist: "additional" },
    { size: "medium", input: 640, checklist: "additional" },
    { size: "large", input: 960, checklist: "additional", optIn: true },
  ],
  routing: "no_upscale",
  input: "image",
  resize: "letterbox",
  pad: 114,
  normalization: NORMALIZATIONS.unit,
  ensemble: (s) => ({
    inputs: [{ name: "INPUT__0", datatype: "UINT8", shape: [1, s!, s!, 3] }],
    outputs: [{ name: "OUTPUT__0", datatype: "FP32", shape: [1, 4 + YOLO_CLASSES, yoloCandidates(s!)] }],
  }),
  onnx: (s) => ({
    inputs: [{ name: "images", datatype: "FP32", shape: [1, 3, s!, s!] }],
    outputs: [{ name: "output0", datatype: "FP32", shape: [1, 4 + YOLO_CLASSES, yoloCandidates(s!)] }],
  }),
  outputVariants: { end2end: () => yoloEnd2EndOutputs() },
};
