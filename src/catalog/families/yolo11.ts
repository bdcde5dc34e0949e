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

/**
 * Server-side JPEG decoding variants (DALI) come in batching tiers named by suffix; the client sends
 * encoded JPEG bytes (`UINT8 [-1]`) instead of raw pixels.
 */
export const ENSEMBLE_TIERS = [
  { suffix: "_streaming", maxBatchSize: 8, maxQueueDelayUs: 100 },
  { suffix: "", maxBatchSize: 64, maxQueueDelayUs: 500 },
  { suffix: "_batch", maxBatchSize: 128, maxQueueDelayUs: 5000 },
] as const;

/** The JPEG-bytes input of the DALI variants. */
export const JPEG_INPUT: TensorSpec = { name: "INPUT__0", datatype: "UINT8", shape: [-1] };

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
