import type { ModelContract, TensorSpec } from "../../backend/backend.js";
import { VideoAnalysisError } from "../../errors.js";

/** YOLO output layouts: raw [1, 84, N] decoded and NMS'd here, or End2End (NMS inside the engine). */
export type YoloOutputFormat = "raw" | "end2end";

/** How the detections component feeds a YOLO model and reads its answers. */
export interface YoloLayout {
  /** S of the S x S letterboxed input (Ultralytics' letterbox, fill 114). */
  size: number;
  /** "pixels": UINT8 NHWC (a Triton ensemble that preprocesses itself, as the catalog's do); "unit": FP32 NCHW x/255 (a raw export). */
  input: "pixels" | "unit";
  format: YoloOutputFormat;
  /** The outputs read: raw [output]; End2End [num_dets, det_boxes, det_scores, det_classes]. */
  outputs: string[];
  /** Classes of a raw output (its rows minus 4); undefined for End2End. */
  classes: number | undefined;
}

const END2END = ["num_dets", "det_boxes", "det_scores", "det_classes"];

/** Anchor counts of a raw YOLOv8/YOLO11 head at input S: strides 8, 16, 32 (P5), and 64 (P6 models). */
function anchorCounts(s: number): number[] {
  const cells = (stride: number) => Math.ceil(s / stride) ** 2;
  const p5 = cells(8) + cells(16) + cells(32);
  return [p5, p5 + cells(64)];
}

const dims = (t: TensorSpec) => `${t.name} ${t.datatype} [${t.shape.join(",")}]`;

/**
 * The layout of a YOLO model of the user's own (components.core_object_detections.model), read from its
 * contract as the backend reports it (onnxruntime's or Triton's metadata): one square image input, FP32
 * NCHW or UINT8 NHWC; a raw [1, 4 + classes, anchors] output or the four End2End outputs. `imgsz` (ONNX
 * metadata) gives S when the input's size is dynamic. Anything else is refused with CONTRACT_MISMATCH
 * naming the profile's `key` and the model (its `file` in process, the server's model name on Triton):
 * decoding another layout as YOLO would write boxes that mean nothing.
 */
export function ownYoloLayout(contract: ModelContract, where: { key: string; model: string; file?: string | undefined; imgsz?: number | undefined }): YoloLayout {
  const { key, imgsz } = where;
  const model = where.file ?? where.model;
  const refuse = (why: string) =>
    new VideoAnalysisError(
      "CONTRACT_MISMATCH",
      `${key}: ${model} is not a YOLO detector the SDK can run: ${why}. Expected one image input (FP32 [1,3,S,S] taking x/255, or UINT8 [1,S,S,3] pixels) ` +
        `and either a raw YOLOv8/YOLO11 output [1,4+classes,anchors] (e.g. [1,84,8400]) or the End2End outputs ${END2END.join(", ")}; ` +
        `export the model so (Ultralytics: format=onnx, nms=False), or remove ${key} to use the catalog's YOLO`,
      { model: where.model, details: { key, ...(where.file ? { file: where.file } : {}) } },
    );
  if (contract.inputs.length !== 1) throw refuse(`it has ${contract.inputs.length} inputs (${contract.inputs.map(dims).join("; ")})`);
  const input = contract.inputs[0]!;
  const sh = input.shape;
  const nchw = input.datatype === "FP32" && sh.length === 4 && sh[1] === 3;
  const nhwc = input.datatype === "UINT8" && sh.length === 4 && sh[3] === 3;
  if (!nchw && !nhwc) throw refuse(`its input is ${dims(input)}${input.datatype === "FP16" ? " (a half-precision export: export with half=False)" : ""}`);
  const [h, w] = nchw ? [sh[2]!, sh[3]!] : [sh[1]!, sh[2]!];
  if (h > 0 && w > 0 && h !== w) throw refuse(`its input ${dims(input)} is not square (export it with one imgsz, e.g. 640)`);
  const size = h > 0 ? h : w > 0 ? w : imgsz;
  if (!size) throw refuse(`its input ${dims(input)} has a dynamic size and the model's metadata names no imgsz`);

  const names = contract.outputs.map((o) => o.name);
  if (END2END.every((n) => names.includes(n))) return { size, input: nchw ? "unit" : "pixels", format: "end2end", outputs: END2END, classes: undefined };
  const out = contract.outputs[0];
  const raw = contract.outputs.length === 1 && out!.shape.length === 3 && out!.shape[0]! <= 1 && out!.shape[1]! > 4;
  if (!raw) throw refuse(`its outputs are ${contract.outputs.map(dims).join("; ") || "none"}`);
  const anchors = out!.shape[2]!;
  if (anchors > 0 && !anchorCounts(size).includes(anchors)) {
    throw refuse(`its output ${dims(out!)} does not have the ${anchorCounts(size)[0]} anchors a YOLO head gives at ${size} x ${size}`);
  }
  return { size, input: nchw ? "unit" : "pixels", format: "raw", outputs: [out!.name], classes: out!.shape[1]! - 4 };
}
