import { VideoAnalysisError } from "../errors.js";
import { toFloat32, type Tensor } from "../tensor.js";
import { unletterboxBoxes, type LetterboxInfo } from "../preprocess/letterbox.js";
import { Detections } from "./detections.js";
import { DEFAULT_NMS_OPTIONS, type NmsOptions } from "./nms.js";

/**
 * How an End2End engine writes its boxes: `xyxy` corners (TensorRT EfficientNMS box_coding 0, the
 * usual export), `cxcywh` centre and size (box_coding 1), or `xywh` top-left corner and size.
 */
export type BoxFormat = "xyxy" | "cxcywh" | "xywh";

/** Settings for End2End outputs (NMS done inside the engine); the client only filters and rescales. */
export interface End2EndOptions extends Pick<NmsOptions, "conf" | "maxDet" | "classes"> {
  /** The engine's box convention; a wrong one shows as boxes shifted by half their size. */
  boxFormat: BoxFormat;
  /** true when the engine gives coordinates as fractions of the input size (0..1). */
  normalized: boolean;
}

export const DEFAULT_END2END_OPTIONS: Readonly<End2EndOptions> = Object.freeze({
  conf: DEFAULT_NMS_OPTIONS.conf,
  maxDet: DEFAULT_NMS_OPTIONS.maxDet,
  classes: null,
  boxFormat: "xyxy",
  normalized: false,
});

/** The four outputs of an End2End (EfficientNMS-style) YOLO engine, batch 1. */
export interface End2EndOutputs {
  /** `num_dets` INT32 [1] (or [1, 1]). */
  numDets: Int32Array | number;
  /** `det_boxes` FP32 [100, 4] (or [1, 100, 4]). */
  boxes: Float32Array;
  /** `det_scores` FP32 [100]. */
  scores: Float32Array;
  /** `det_classes` INT32 [100] (some exports give FP32). */
  classes: Int32Array | Float32Array;
}

/**
 * The four End2End tensors of an answer (num_dets, det_boxes, det_scores, det_classes, in any of the
 * datatypes engines give them) as decodeEnd2End takes them.
 */
export function end2endOutputs(numDets: Tensor, boxes: Tensor, scores: Tensor, classes: Tensor): End2EndOutputs {
  return {
    numDets: Number((numDets.data as ArrayLike<number | bigint>)[0] ?? 0),
    boxes: toFloat32(boxes),
    scores: toFloat32(scores),
    classes: classes.datatype === "INT32" ? (classes.data as Int32Array) : toFloat32(classes),
  };
}

/**
 * Detections from an End2End engine's outputs: the first `num_dets` rows, those scoring above
 * `conf` and in `classes`, at most `maxDet`, as Ultralytics treats end-to-end predictions;
 * boxes converted to xyxy and mapped back through the letterbox (when given) and clipped.
 *
 * @example
 * // An End2End engine's answer (NMS inside it) for bus.jpg letterboxed to 640: 1 of its 100 slots used, by the bus.
 * const { info } = letterbox(await readImageRgb("bus.jpg"), 640);
 * const boxes = new Float32Array(400), scores = new Float32Array(100), classes = new Int32Array(100);
 * boxes.set([91, 137, 555, 439]); // xyxy in the 640 x 640 input
 * scores[0] = 0.89;
 * classes[0] = 5;
 * const dets = decodeEnd2End({ numDets: 1, boxes, scores, classes }, { conf: 0.25, boxFormat: "xyxy" }, info);
 * console.log(dets.toRecords()); // [ { box: [ 18.5625, 231.1875, 801.5625, 740.8125 ], score: 0.89..., classId: 5 } ] in bus.jpg's pixels
 */
export function decodeEnd2End(outputs: End2EndOutputs, options: Partial<End2EndOptions> = {}, letterbox: LetterboxInfo | null = null, frameIndex = 0): Detections {
  const o: End2EndOptions = { ...DEFAULT_END2END_OPTIONS, ...Object.fromEntries(Object.entries(options).filter(([, v]) => v !== undefined)) } as End2EndOptions;
  if (!["xyxy", "cxcywh", "xywh"].includes(o.boxFormat)) throw new RangeError(`boxFormat must be "xyxy", "cxcywh" or "xywh", got ${JSON.stringify(o.boxFormat)}`);
  const capacity = outputs.scores.length;
  if (outputs.boxes.length !== 4 * capacity || outputs.classes.length !== capacity) {
    throw new VideoAnalysisError(
      "CONTRACT_MISMATCH",
      `End2End outputs disagree: ${outputs.boxes.length} box values, ${capacity} scores, ${outputs.classes.length} classes (expected 4 box values per score); check the engine's det_boxes/det_scores/det_classes`,
    );
  }
  const raw = typeof outputs.numDets === "number" ? outputs.numDets : outputs.numDets[0];
  if (raw === undefined || !Number.isInteger(raw) || raw < 0) throw new VideoAnalysisError("CONTRACT_MISMATCH", `num_dets must hold one non-negative integer, got ${String(raw)}`);
  const count = Math.min(raw, capacity);
  const allowed = o.classes ? new Set(o.classes) : null;
  const idx: number[] = [];
  for (let i = 0; i < count && idx.length < o.maxDet; i++) {
    if (!(outputs.scores[i]! > Math.fround(o.conf))) continue;
    if (allowed && !allowed.has(Math.round(outputs.classes[i]!))) continue;
    idx.push(i);
  }
  const n = idx.length;
  const xyxy = new Float32Array(4 * n);
  const scores = new Float32Array(n);
  const classIds = new Int32Array(n);
  const sx = o.normalized ? (letterbox?.width ?? 1) : 1;
  const sy = o.normalized ? (letterbox?.height ?? 1) : 1;
  idx.forEach((i, k) => {
    const a = outputs.boxes[4 * i]! * sx;
    const b = outputs.boxes[4 * i + 1]! * sy;
    const c = outputs.boxes[4 * i + 2]! * sx;
    const d = outputs.boxes[4 * i + 3]! * sy;
    let box: [number, number, number, number];
    if (o.boxFormat === "xyxy") box = [a, b, c, d];
    else if (o.boxFormat === "cxcywh") box = [a - c / 2, b - d / 2, a + c / 2, b + d / 2];
    else box = [a, b, a + c, b + d];
    xyxy.set(box, 4 * k);
    scores[k] = outputs.scores[i]!;
    classIds[k] = Math.round(outputs.classes[i]!);
  });
  if (letterbox) unletterboxBoxes(xyxy, letterbox);
  return new Detections({ xyxy, scores, classIds, frameIndex });
}
