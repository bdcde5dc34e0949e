#!/usr/bin/env python3
"""Undoes the dynamic int8 quantisation of an onnxruntime-quantised YOLO export (the test data's
yolo11n_int8_640.onnx): the same weights, computed in float.

    python3 test/support/dequantize_yolo.py INT8.onnx OUT.onnx

Each DynamicQuantizeLinear passes its float input through with scale 1 and zero point 0; each ConvInteger
becomes a float Conv on its integer weights minus their zero point. The graph's own Mul by
(x_scale * w_scale) that follows every ConvInteger then gives the convolution with the dequantised
weights. The parity test uses it to tell the int8 model's sensitivity from the preprocessing's.
"""
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper


def dequantize(model: onnx.ModelProto) -> onnx.ModelProto:
    g = model.graph
    inits = {i.name: i for i in g.initializer}
    nodes, extra = [], []
    counts = {"DynamicQuantizeLinear": 0, "ConvInteger": 0}
    for n in g.node:
        if n.op_type == "DynamicQuantizeLinear":
            y, scale, zero = n.output
            nodes.append(helper.make_node("Identity", [n.input[0]], [y], name=n.name))
            extra += [numpy_helper.from_array(np.array(1.0, np.float32), scale), numpy_helper.from_array(np.array(0.0, np.float32), zero)]
        elif n.op_type == "ConvInteger":
            if n.input[1] not in inits:
                raise ValueError(f"{n.name}: ConvInteger weights {n.input[1]} are not an initializer")
            w = numpy_helper.to_array(inits[n.input[1]]).astype(np.float32)
            zp = numpy_helper.to_array(inits[n.input[3]]).astype(np.float32) if len(n.input) > 3 and n.input[3] else np.float32(0)
            if np.ndim(zp) == 1:  # per output channel
                zp = zp.reshape(-1, 1, 1, 1)
            name = f"{n.input[1]}_dequantized"
            extra.append(numpy_helper.from_array(w - zp, name))
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            nodes.append(helper.make_node("Conv", [n.input[0], name], list(n.output), name=n.name, **attrs))
        else:
            nodes.append(n)
            continue
        counts[n.op_type] += 1
    if counts["ConvInteger"] == 0:
        raise ValueError("no ConvInteger in the model: it is not a dynamically quantised export")
    del g.node[:]
    g.node.extend(nodes)
    used = {i for n in g.node for i in n.input}
    kept = [i for i in list(g.initializer) + extra if i.name in used]  # the integer weights and zero points go
    del g.initializer[:]
    g.initializer.extend(kept)
    del g.value_info[:]  # typed int32/uint8 for the replaced outputs; onnxruntime infers them again
    onnx.checker.check_model(model)
    print(f"dequantized {counts['ConvInteger']} ConvInteger, {counts['DynamicQuantizeLinear']} DynamicQuantizeLinear", file=sys.stderr)
    return model


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    onnx.save(dequantize(onnx.load(sys.argv[1])), sys.argv[2])
