/**
 * Tiny ONNX models around onnxruntime's own NonMaxSuppression operator, written as protobuf bytes
 * here (no Python, no binary in the repository): the baseline of the postprocess benchmark.
 *
 * - `nmsModel`: inputs `boxes` FP32 [1, N, 4] (cx, cy, w, h: center_point_box = 1) and `scores` FP32
 *   [1, nc, N]; output `selected` INT64 [K, 3]. The operator alone, on inputs already in its layout.
 * - `rawNmsModel`: input `raw` FP32 [1, 4 + nc, N], the YOLO output as it comes; Slice + Transpose
 *   give the operator its layout inside the graph, so it starts from the same tensor as our decoder.
 * Both take max_output_boxes_per_class, iou_threshold and score_threshold as initializers.
 */

// ---- protobuf encoding (only what these messages need) ----

function varint(n: number | bigint): number[] {
  let v = BigInt(n);
  if (v < 0n) v += 1n << 64n; // two's complement, as protobuf encodes negative int64
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v !== 0n) b |= 0x80;
    out.push(b);
  } while (v !== 0n);
  return out;
}

const key = (field: number, wire: number) => varint((field << 3) | wire);
const vint = (field: number, v: number | bigint) => [...key(field, 0), ...varint(v)];
const bytes = (field: number, b: ArrayLike<number>) => [...key(field, 2), ...varint(b.length), ...Array.from(b)];
const str = (field: number, s: string) => bytes(field, Buffer.from(s, "utf8"));
const msg = (field: number, body: number[]) => bytes(field, body);

const FLOAT = 1;
const INT64 = 7;
const ATTR_INT = 2;
const ATTR_INTS = 7;

function valueInfo(field: number, name: string, elemType: number, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => msg(1, typeof d === "number" ? vint(1, d) : str(2, d)));
  return msg(field, [...str(1, name), ...msg(2, msg(1, [...vint(1, elemType), ...msg(2, shape)]))]);
}

function initializer(name: string, elemType: number, values: number[]): number[] {
  const raw = elemType === INT64 ? new Uint8Array(BigInt64Array.from(values.map(BigInt)).buffer) : new Uint8Array(Float32Array.from(values).buffer);
  return msg(5, [...vint(1, values.length), ...vint(2, elemType), ...str(8, name), ...bytes(9, raw)]);
}

function node(opType: string, inputs: string[], outputs: string[], attrs: number[][] = []): number[] {
  return msg(1, [...inputs.flatMap((i) => str(1, i)), ...outputs.flatMap((o) => str(2, o)), ...str(3, `${opType}_${outputs[0]}`), ...str(4, opType), ...attrs.flatMap((a) => msg(5, a))]);
}

const intAttr = (name: string, v: number) => [...str(1, name), ...vint(20, ATTR_INT), ...vint(3, v)];
const intsAttr = (name: string, vs: number[]) => [...str(1, name), ...vint(20, ATTR_INTS), ...vs.flatMap((v) => vint(8, v))];

function model(graph: number[]): Uint8Array {
  return Uint8Array.from([...vint(1, 8), ...str(2, "video-analysis-sdk bench"), ...msg(8, [...str(1, ""), ...vint(2, 13)]), ...msg(7, graph)]);
}

export interface NmsSettings {
  numClasses: number;
  maxOutputBoxesPerClass: number;
  iouThreshold: number;
  scoreThreshold: number;
}

function nmsParts(s: NmsSettings): number[] {
  return [
    ...initializer("max_output", INT64, [s.maxOutputBoxesPerClass]),
    ...initializer("iou_threshold", FLOAT, [s.iouThreshold]),
    ...initializer("score_threshold", FLOAT, [s.scoreThreshold]),
    ...valueInfo(12, "selected", INT64, ["K", 3]),
  ];
}

/** The operator alone: boxes [1, N, 4] (cx, cy, w, h) and scores [1, nc, N] in, selected [K, 3] out. */
export function nmsModel(s: NmsSettings): Uint8Array {
  return model([
    ...node("NonMaxSuppression", ["boxes", "scores", "max_output", "iou_threshold", "score_threshold"], ["selected"], [intAttr("center_point_box", 1)]),
    ...str(2, "nms"),
    ...valueInfo(11, "boxes", FLOAT, [1, "N", 4]),
    ...valueInfo(11, "scores", FLOAT, [1, s.numClasses, "N"]),
    ...nmsParts(s),
  ]);
}

/** From the raw YOLO output [1, 4 + nc, N]: Slice and Transpose to the operator's layout, then NMS. */
export function rawNmsModel(s: NmsSettings): Uint8Array {
  return model([
    ...node("Slice", ["raw", "box_start", "box_end", "axis1"], ["boxes_cn"]),
    ...node("Transpose", ["boxes_cn"], ["boxes"], [intsAttr("perm", [0, 2, 1])]),
    ...node("Slice", ["raw", "box_end", "cls_end", "axis1"], ["scores"]),
    ...node("NonMaxSuppression", ["boxes", "scores", "max_output", "iou_threshold", "score_threshold"], ["selected"], [intAttr("center_point_box", 1)]),
    ...str(2, "raw_nms"),
    ...initializer("box_start", INT64, [0]),
    ...initializer("box_end", INT64, [4]),
    ...initializer("cls_end", INT64, [4 + s.numClasses]),
    ...initializer("axis1", INT64, [1]),
    ...valueInfo(11, "raw", FLOAT, [1, 4 + s.numClasses, "N"]),
    ...nmsParts(s),
  ]);
}
