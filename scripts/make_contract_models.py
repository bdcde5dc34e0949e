#!/usr/bin/env python3
"""Makes the contract models: tiny random-weight ONNX files with the exact contract of every ONNX model
in the SDK's catalog (tensor names, types, fixed shapes), one `<model>.onnx` per catalog model.

They let the tests and profiles/embedded_cpu.yaml run the whole pipeline without real weights; their
outputs mean nothing. YOLO contract models produce realistically LOW class scores (sigmoid of logits
biased to -7: below 0.01) except for one candidate in 397 that scores about 0.5-0.9 on one class, so NMS
in a benchmark sees a realistic handful of candidates (about 21 at 640) instead of every one passing the
confidence threshold.

The contracts come from the catalog itself (src/catalog, built into dist/), so a new family or branch
needs no edit here unless it wants a more realistic graph than the generic one.

    npm run build && python3 scripts/make_contract_models.py            # writes models/contract/
    python3 scripts/make_contract_models.py --check                     # exit 1 if the files differ
"""
from __future__ import annotations

import argparse
import json
import pathlib
import subprocess
import sys
import zlib

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

REPO = pathlib.Path(__file__).resolve().parents[1]
OPSET = 17
IR_VERSION = 8
# YOLO: one candidate in this many scores high on one class; every other one stays below 0.01.
POSITIVE_EVERY = 397
DTYPES = {"FP32": TensorProto.FLOAT, "INT64": TensorProto.INT64, "INT32": TensorProto.INT32, "UINT8": TensorProto.UINT8}


def catalog_contracts() -> list[dict]:
    """Every catalog model's ONNX contract, read from the built catalog."""
    script = (
        "import { allModels } from './dist/src/catalog/index.js';"
        "console.log(JSON.stringify(allModels().map((m) => ({ name: m.name, family: m.family.id,"
        " size: m.inputSize ?? null, inputs: m.onnx.inputs, outputs: m.onnx.outputs }))));"
    )
    try:
        out = subprocess.run(["node", "--input-type=module", "-e", script], cwd=REPO, check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        sys.exit(f"cannot read the catalog from dist/ (run `npm run build` first): {e.stderr.strip()}")
    return json.loads(out.stdout)


class Graph:
    """A small helper around onnx.helper: named constants and nodes with fresh names."""

    def __init__(self, name: str):
        self.rng = np.random.default_rng(zlib.crc32(name.encode()))
        self.nodes: list[onnx.NodeProto] = []
        self.inits: list[onnx.TensorProto] = []
        self.n = 0

    def fresh(self, stem: str) -> str:
        self.n += 1
        return f"{stem}_{self.n}"

    def const(self, value: np.ndarray, stem: str = "c") -> str:
        name = self.fresh(stem)
        self.inits.append(numpy_helper.from_array(value, name))
        return name

    def weights(self, *shape: int, scale: float = 0.5, stem: str = "w") -> str:
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), stem)

    def op(self, op: str, inputs: list[str], out: str | None = None, **attrs) -> str:
        out = out or self.fresh(op.lower())
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def pooled_conv(self, x: str, stride: int, channels: int, bias: np.ndarray | None = None) -> str:
        """Average-pool by `stride`, then a 1x1 convolution to `channels`: [1,3,S,S] -> [1,C,S/stride,S/stride].
        Strides above 8 pool by 8 first and halve from there: onnxruntime's one-step 32x32 pool is 3x slower."""
        p = x
        step = min(stride, 8)
        while stride > 1:
            p = self.op("AveragePool", [p], kernel_shape=[step, step], strides=[step, step])
            stride //= step
            step = 2
        b = bias if bias is not None else np.zeros(channels, np.float32)
        return self.op("Conv", [p, self.weights(channels, 3, 1, 1), self.const(b.astype(np.float32), "b")])

    def reshape(self, x: str, shape: list[int], out: str | None = None) -> str:
        return self.op("Reshape", [x, self.const(np.array(shape, np.int64), "shape")], out)


def midas(g: Graph, c: dict) -> None:
    """Relative depth: a weighted sum of the three channels plus a bias, rectified. Per-pixel and cheap on
    purpose (a 3x3 convolution costs onnxruntime ~6 ms at 512, which `bench pipeline` would count as SDK time)."""
    s = c["size"]
    r, gr, b = g.fresh("r"), g.fresh("g"), g.fresh("b")
    g.nodes.append(helper.make_node("Split", [c["inputs"][0]["name"]], [r, gr, b], axis=1))
    w = [g.const(np.array(v, np.float32)) for v in g.rng.standard_normal(3) * 0.5]
    x = g.op("Add", [g.op("Mul", [r, w[0]]), g.op("Mul", [gr, w[1]])])
    x = g.op("Add", [g.op("Add", [x, g.op("Mul", [b, w[2]])]), g.const(np.array(0.5, np.float32))])
    g.reshape(g.op("Relu", [x]), [1, s, s], c["outputs"][0]["name"])


def raft(g: Graph, c: dict) -> None:
    """Flow from the frame difference: (image2 - image1) of the first two channels, squashed to +-4 pixels."""
    a, b = (t["name"] for t in c["inputs"])
    two = [g.const(np.array(v, np.int64)) for v in ([0], [2], [1])]
    d = g.op("Slice", [g.op("Sub", [b, a]), *two])
    g.op("Mul", [g.op("Tanh", [d]), g.const(np.array(4.0, np.float32))], c["outputs"][0]["name"])


def pooled_head(g: Graph, c: dict, width: int) -> None:
    """Image -> [1, width]: pool, 1x1 conv to 8 channels, global pool, dense layer."""
    x = g.op("Relu", [g.pooled_conv(c["inputs"][0]["name"], 32, 8)])
    x = g.op("Flatten", [g.op("GlobalAveragePool", [x])])
    g.op("Gemm", [x, g.weights(8, width), g.const(np.zeros(width, np.float32))], c["outputs"][0]["name"])


def clip_text(g: Graph, c: dict) -> None:
    ctx, dim = c["outputs"][0]["shape"][1], c["outputs"][0]["shape"][2]
    x = g.op("Cast", [c["inputs"][0]["name"]], to=TensorProto.FLOAT)
    x = g.op("Mul", [x, g.const(np.array(1 / 49407, np.float32))])
    x = g.reshape(x, [1, ctx, 1])
    x = g.op("Add", [g.op("MatMul", [x, g.weights(1, dim, scale=2.0)]), g.weights(dim, scale=0.1)])
    g.op("Tanh", [x], c["outputs"][0]["name"])


def yolo(g: Graph, c: dict) -> None:
    """Raw YOLO head [1, 4 + classes, anchors]: cheap on purpose, like midas (onnxruntime's time here is
    counted as the SDK's by `bench pipeline`). Three 1x1 convolutions on the input sampled at strides 8,
    16 and 32 (one pixel per cell, no pooling pass over the full image), concatenated once; then one pass
    of out = sigmoid(raw + boost) x scale: boxes scaled to the input, classes as scores."""
    s = c["size"]
    rows = c["outputs"][0]["shape"][1]
    # Class logits biased to -7: sigmoid stays below 0.01 for inputs in [0, 1].
    bias = np.concatenate([np.zeros(4), np.full(rows - 4, -7.0)]).astype(np.float32)
    heads, x = [], c["inputs"][0]["name"]
    for st in (8, 16, 32):
        cell = g.op("Slice", [x, *(g.const(np.array(v, np.int64)) for v in ([0, 0], [s, s], [2, 3], [st, st]))])
        conv = g.op("Conv", [cell, g.weights(rows, 3, 1, 1), g.const(bias, "b")])
        heads.append(g.reshape(conv, [1, rows, (s // st) ** 2]))
    raw = g.op("Concat", heads, axis=2)
    # One candidate in POSITIVE_EVERY gets +8 on one class (index mod 80), so a handful score about
    # 0.5-0.9, like the few objects of a real frame, and NMS has some work to do. Boxes get no boost.
    # The boost is computed from the anchor index (onnxruntime folds it into one constant at load).
    n = sum((s // st) ** 2 for st in (8, 16, 32))
    idx = g.op("Range", [g.const(np.array(0, np.int64)), g.const(np.array(n, np.int64)), g.const(np.array(1, np.int64))])
    idx = g.reshape(idx, [1, 1, n])
    chosen = g.op("Equal", [g.op("Mod", [idx, g.const(np.array(POSITIVE_EVERY, np.int64))]), g.const(np.array(0, np.int64))])
    which = g.op("Equal", [g.const(np.arange(-4, rows - 4, dtype=np.int64).reshape(1, rows, 1)), g.op("Mod", [idx, g.const(np.array(rows - 4, np.int64))])])
    boost = g.op("Mul", [g.op("Cast", [g.op("And", [chosen, which])], to=TensorProto.FLOAT), g.const(np.array(8.0, np.float32))])
    # cx, cy anywhere in the input; w, h up to a quarter of it (letterboxed input pixels); scores as they are.
    scale = np.concatenate([[s, s, s / 4, s / 4], np.ones(rows - 4)]).astype(np.float32).reshape(1, rows, 1)
    g.op("Mul", [g.op("Sigmoid", [g.op("Add", [raw, boost])]), g.const(scale)], c["outputs"][0]["name"])


def generic(g: Graph, c: dict) -> None:
    """Any contract: every output is a constant-shaped broadcast of the first input's mean."""
    x = g.op("Cast", [c["inputs"][0]["name"]], to=TensorProto.FLOAT)
    m = g.op("Sigmoid", [g.op("ReduceMean", [x], keepdims=0)])
    for o in c["outputs"]:
        y = g.op("Expand", [m, g.const(np.array(o["shape"], np.int64), "shape")])
        g.op("Cast", [y], o["name"], to=DTYPES[o["datatype"]])


BUILDERS = {
    "midas": midas,
    "raft": raft,
    "clip_image": lambda g, c: pooled_head(g, c, c["outputs"][0]["shape"][1]),
    "places365": lambda g, c: pooled_head(g, c, c["outputs"][0]["shape"][1]),
    "clip_text": clip_text,
    "yolo11": yolo,
}


def build(c: dict) -> bytes:
    g = Graph(c["name"])
    BUILDERS.get(c["family"], generic)(g, c)
    vi = lambda t: helper.make_tensor_value_info(t["name"], DTYPES[t["datatype"]], t["shape"])  # noqa: E731
    graph = helper.make_graph(g.nodes, c["name"], [vi(t) for t in c["inputs"]], [vi(t) for t in c["outputs"]], g.inits)
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="video-analysis-sdk scripts/make_contract_models.py",
        doc_string=f"CONTRACT MODEL for {c['name']}: random weights, the exact tensor contract of the real export; outputs mean nothing.",
    )
    model.ir_version = IR_VERSION
    helper.set_model_props(model, {"contract_model": "true", "catalog_model": c["name"]})
    onnx.checker.check_model(model, full_check=True)
    return model.SerializeToString()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(REPO / "models" / "contract"), help="folder of the .onnx files (default: models/contract)")
    ap.add_argument("--check", action="store_true", help="compare with the files there instead of writing; exit 1 when they differ")
    args = ap.parse_args()
    out = pathlib.Path(args.out)
    contracts = catalog_contracts()
    wanted = {f"{c['name']}.onnx": build(c) for c in contracts}
    if args.check:
        have = {p.name for p in out.glob("*.onnx")} if out.exists() else set()
        bad = [f"missing {n}" for n in sorted(wanted) if n not in have]
        bad += [f"changed {n}" for n in sorted(wanted) if n in have and (out / n).read_bytes() != wanted[n]]
        bad += [f"extra   {n}" for n in sorted(have - set(wanted))]
        for b in bad:
            print(b)
        print(f"{out}: {'differs from the catalog; run scripts/make_contract_models.py' if bad else f'up to date ({len(wanted)} models)'}")
        return 1 if bad else 0
    out.mkdir(parents=True, exist_ok=True)
    for name, data in wanted.items():
        (out / name).write_bytes(data)
    total = sum(len(d) for d in wanted.values())
    print(f"wrote {len(wanted)} contract models to {out} ({total / 1024:.0f} KiB in all, largest {max(len(d) for d in wanted.values()) / 1024:.1f} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
