#!/usr/bin/env python3
"""Appends NMS to a raw YOLO ONNX export: [N, 4 + C, A] -> the End2End outputs of the seeds' track C.

    python3 scripts/export/yolo_end2end.py RAW.onnx OUT.onnx [--iou 0.7] [--conf 0.25] [--max-det 100]

Outputs (batch dimension first, as TensorRT's EfficientNMS gives them): num_dets INT32 [N, 1],
det_boxes FP32 [N, 100, 4] (xyxy, input pixels), det_scores FP32 [N, 100], det_classes INT32 [N, 100],
rows past num_dets zero. Standard ONNX operators only (NonMaxSuppression, opset >= 11), so onnxruntime
and TensorRT's ONNX parser both run it; `--trt-nms` in scripts/export/export.py writes the
EfficientNMS_TRT form instead.

Like Ultralytics' non-maximum suppression (multi_label=False, class-aware), each candidate keeps only
its best class: the scores given to NonMaxSuppression are zero except at each candidate's argmax, so a
box scoring above `conf` in two classes is not reported twice (ONNX NMS alone would). The batch axis
may be dynamic; the per-image work runs in a Loop over it.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

MAX_DET = 100


def _const(name, value, dtype=np.int64):
    return numpy_helper.from_array(np.asarray(value, dtype=dtype), name)


def _image_graph(num_classes: int, max_det: int, opset: int) -> onnx.GraphProto:
    """Loop body: one image's [4 + C, A] prediction -> its four End2End rows."""
    n = helper.make_node
    nodes = [
        # Gather this image's prediction [4 + C, A].
        n("Gather", ["pred", "i"], ["p"], axis=0),
        n("Slice", ["p", "c0", "c4", "c_axis0"], ["cxcywh"]),            # [4, A]
        n("Slice", ["p", "c4", "c_big", "c_axis0"], ["cls"]),             # [C, A]
        n("Transpose", ["cxcywh"], ["bt"], perm=[1, 0]),                   # [A, 4]
        n("Slice", ["bt", "c0", "c2", "c_axis1"], ["cxy"]),
        n("Slice", ["bt", "c2", "c4", "c_axis1"], ["wh"]),
        n("Mul", ["wh", "half"], ["hwh"]),
        n("Sub", ["cxy", "hwh"], ["xy1"]),
        n("Add", ["cxy", "hwh"], ["xy2"]),
        n("Concat", ["xy1", "xy2"], ["xyxy"], axis=1),                     # [A, 4]
        # Each candidate's best class only (Ultralytics multi_label=False).
        # ReduceMax takes its axes as an input from opset 18, as an attribute before.
        n("ReduceMax", ["cls", "c_axes0"], ["best"], keepdims=1) if opset >= 18 else n("ReduceMax", ["cls"], ["best"], keepdims=1, axes=[0]),
        n("Equal", ["cls", "best"], ["is_best"]),
        n("Cast", ["is_best"], ["is_best_f"], to=TensorProto.FLOAT),
        n("Mul", ["cls", "is_best_f"], ["cls1"]),
        n("Unsqueeze", ["xyxy", "c_axes0"], ["boxes3"]),                   # [1, A, 4]
        n("Unsqueeze", ["cls1", "c_axes0"], ["scores3"]),                  # [1, C, A]
        n("NonMaxSuppression", ["boxes3", "scores3", "max_per_class", "iou", "conf"], ["sel"], center_point_box=0),
        n("Slice", ["sel", "c1", "c3", "c_axis1"], ["sel_ca"]),            # [K, 2]: class, box
        n("Slice", ["sel_ca", "c0", "c1", "c_axis1"], ["sel_c2"]),
        n("Slice", ["sel_ca", "c1", "c2", "c_axis1"], ["sel_a2"]),
        n("Squeeze", ["sel_c2", "c_axes1"], ["sel_c"]),                    # [K]
        n("Squeeze", ["sel_a2", "c_axes1"], ["sel_a"]),                    # [K]
        n("GatherND", ["cls1", "sel_ca"], ["sel_s"]),                      # [K]
        # The best max_det by score.
        n("Shape", ["sel_s"], ["k_all"]),
        n("Min", ["k_all", "c_maxdet1"], ["k"]),
        n("TopK", ["sel_s", "k"], ["top_s", "top_i"], axis=0, largest=1, sorted=1),
        n("Gather", ["sel_a", "top_i"], ["top_a"], axis=0),
        n("Gather", ["sel_c", "top_i"], ["top_c64"], axis=0),
        n("Gather", ["xyxy", "top_a"], ["top_b"], axis=0),                 # [k, 4]
        n("Cast", ["top_c64"], ["top_c"], to=TensorProto.INT32),
        # Zero rows up to max_det.
        n("Sub", ["c_maxdet1", "k"], ["padn"]),
        n("Concat", ["c0_1", "padn"], ["pads1"], axis=0),
        n("Concat", ["c0_1", "c0_1", "padn", "c0_1"], ["pads2"], axis=0),
        n("Pad", ["top_s", "pads1"], ["det_s"]),
        n("Pad", ["top_c", "pads1"], ["det_c"]),
        n("Pad", ["top_b", "pads2"], ["det_b"]),
        n("Cast", ["k"], ["num"], to=TensorProto.INT32),
    ]
    inits = [
        _const("c0", [0]), _const("c1", [1]), _const("c2", [2]), _const("c3", [3]), _const("c4", [4]),
        _const("c0_1", [0]), _const("c_big", [4 + num_classes]), _const("c_axis0", [0]), _const("c_axis1", [1]),
        _const("c_axes0", [0]), _const("c_axes1", [1]), _const("c_maxdet1", [max_det]),
        _const("half", [0.5], np.float32),
    ]
    return nodes, inits


def build(raw: onnx.ModelProto, iou: float, conf: float, max_det: int = MAX_DET, num_classes: int | None = None) -> onnx.ModelProto:
    """`num_classes`: for exports whose output shape is symbolic (a dynamic-axes export may leave every dim so)."""
    g = raw.graph
    if len(g.output) != 1:
        raise SystemExit(f"expected one output (the raw [N, 4 + C, A] prediction), the model has {[o.name for o in g.output]}")
    out = g.output[0]
    dims = [d.dim_value or d.dim_param for d in out.type.tensor_type.shape.dim]
    if num_classes is None:
        if len(dims) != 3 or not isinstance(dims[1], int) or dims[1] <= 4:
            raise SystemExit(f"{out.name} has shape {dims}; expected [N, 4 + classes, anchors] (or pass --classes)")
        num_classes = dims[1] - 4
    elif len(dims) != 3:
        raise SystemExit(f"{out.name} has shape {dims}; expected [N, 4 + classes, anchors]")
    opset = max(o.version for o in raw.opset_import if o.domain in ("", "ai.onnx"))
    if opset < 13:
        raise SystemExit(f"the model's opset is {opset}; this script needs >= 13 (export again with opset 13 or later)")

    nodes, inits = _image_graph(num_classes, max_det, opset)
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"])] + nodes
        + [helper.make_node("Reshape", ["num", "c1"], ["num1"])],
        "per_image",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
        [
            helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []),
            helper.make_tensor_value_info("num1", TensorProto.INT32, [1]),
            helper.make_tensor_value_info("det_b", TensorProto.FLOAT, [max_det, 4]),
            helper.make_tensor_value_info("det_s", TensorProto.FLOAT, [max_det]),
            helper.make_tensor_value_info("det_c", TensorProto.INT32, [max_det]),
        ],
        inits,
    )
    tail = [
        helper.make_node("Identity", [out.name], ["pred"]),
        helper.make_node("Shape", ["pred"], ["pred_shape"]),
        helper.make_node("Gather", ["pred_shape", "e2e_zero"], ["batch"], axis=0),
        helper.make_node("Loop", ["batch", "e2e_true"], ["num_dets", "det_boxes", "det_scores", "det_classes"], body=body),
    ]
    g.node.extend(tail)
    g.initializer.extend([
        _const("e2e_zero", 0),
        numpy_helper.from_array(np.array(True), "e2e_true"),
        _const("max_per_class", [max_det]),
        _const("iou", [iou], np.float32),
        _const("conf", [conf], np.float32),
    ])
    batch = out.type.tensor_type.shape.dim[0]
    bdim = batch.dim_value or batch.dim_param or "batch"
    del g.output[:]
    g.output.extend([
        helper.make_tensor_value_info("num_dets", TensorProto.INT32, [bdim, 1]),
        helper.make_tensor_value_info("det_boxes", TensorProto.FLOAT, [bdim, max_det, 4]),
        helper.make_tensor_value_info("det_scores", TensorProto.FLOAT, [bdim, max_det]),
        helper.make_tensor_value_info("det_classes", TensorProto.INT32, [bdim, max_det]),
    ])
    raw.doc_string = f"End2End: {raw.doc_string or 'raw YOLO'} + ONNX NonMaxSuppression (iou {iou}, conf {conf}, max {max_det}) by scripts/export/yolo_end2end.py"
    onnx.checker.check_model(raw)
    return raw


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("raw")
    ap.add_argument("out")
    ap.add_argument("--iou", type=float, default=0.7, help="NMS IoU threshold (Ultralytics' predict default 0.7; the seeds' export used 0.45)")
    ap.add_argument("--conf", type=float, default=0.25, help="score threshold (default 0.25)")
    ap.add_argument("--max-det", type=int, default=MAX_DET)
    ap.add_argument("--classes", type=int, help="number of classes, when the raw output's shape is symbolic")
    a = ap.parse_args(argv)
    try:
        raw = onnx.load(a.raw)
    except Exception as e:  # noqa: BLE001 - a clear line, not a trace
        sys.exit(f"yolo_end2end: cannot read {a.raw} as ONNX: {e}")
    model = build(raw, a.iou, a.conf, a.max_det, a.classes)
    onnx.save(model, a.out)
    print(f"wrote {a.out}: num_dets/det_boxes/det_scores/det_classes, iou {a.iou}, conf {a.conf}, max {a.max_det}")


if __name__ == "__main__":
    main()
