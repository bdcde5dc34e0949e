"""Torch-free parts of the exporter (CI tests them without torch): the catalog's `_onnx` contracts, the
check of an ONNX file against one, and the Triton config of a TensorRT plan (seed 004's
--generate-triton-config, with seed 000's batch settings)."""
from __future__ import annotations

import json
import pathlib
import subprocess

import onnx

REPO = pathlib.Path(__file__).resolve().parents[2]
ONNX_TYPES = {"FP32": onnx.TensorProto.FLOAT, "INT64": onnx.TensorProto.INT64, "INT32": onnx.TensorProto.INT32, "UINT8": onnx.TensorProto.UINT8}
TRITON_TYPES = {"FP32": "TYPE_FP32", "INT64": "TYPE_INT64", "INT32": "TYPE_INT32", "UINT8": "TYPE_UINT8"}


def catalog_contracts(path: str | None = None) -> dict[str, dict]:
    """name -> {family, size, inputs, outputs, normalization} of every catalog model, from the built catalog
    (dist/, through node) or from a JSON file written by `--dump-contracts` (machines without node)."""
    if path:
        return json.loads(pathlib.Path(path).read_text())
    script = (
        "import { allModels } from './dist/src/catalog/index.js';"
        "console.log(JSON.stringify(Object.fromEntries(allModels().map((m) => [m.name, { family: m.family.id, architecture: m.architecture.id, default: m.architecture.id === m.family.defaultArchitecture,"
        " size: m.inputSize ?? null, inputs: m.onnx.inputs, outputs: m.onnx.outputs, normalization: m.normalization ?? null }]))));"
    )
    try:
        out = subprocess.run(["node", "--input-type=module", "-e", script], cwd=REPO, check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise SystemExit(f"cannot read the catalog from dist/ (npm run build; or pass --contracts FILE): {getattr(e, 'stderr', e)}")
    return json.loads(out.stdout)


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in value_info.type.tensor_type.shape.dim]


def check_contract(model: onnx.ModelProto, contract: dict, batch_dynamic: bool = False) -> list[str]:
    """What differs between the ONNX graph's inputs/outputs and the contract (empty: it matches).
    Names, order, element types and fixed shapes must agree; with `batch_dynamic` the first axis may be symbolic."""
    problems = []
    init = {i.name for i in model.graph.initializer}
    graph_inputs = [i for i in model.graph.input if i.name not in init]
    for kind, have, want in (("input", graph_inputs, contract["inputs"]), ("output", list(model.graph.output), contract["outputs"])):
        if [h.name for h in have] != [w["name"] for w in want]:
            problems.append(f"{kind}s are {[h.name for h in have]}, the contract says {[w['name'] for w in want]}")
            continue
        for h, w in zip(have, want):
            if h.type.tensor_type.elem_type != ONNX_TYPES[w["datatype"]]:
                problems.append(f"{kind} {w['name']}: element type {onnx.TensorProto.DataType.Name(h.type.tensor_type.elem_type)}, the contract says {w['datatype']}")
            dims = _dims(h)
            want_dims = list(w["shape"])
            if batch_dynamic and dims and not isinstance(dims[0], int):
                dims, want_dims = dims[1:], want_dims[1:]
            if dims != want_dims:
                problems.append(f"{kind} {w['name']}: shape {dims}, the contract says {want_dims}")
    return problems


def _pb_tensor(t: dict, batched: bool) -> str:
    dims = t["shape"][1:] if batched else t["shape"]
    return f'  {{\n    name: "{t["name"]}"\n    data_type: {TRITON_TYPES[t["datatype"]]}\n    dims: [ {", ".join(str(d) for d in dims)} ]\n  }}'


def trt_config(name: str, contract: dict, max_batch: int = 0, preferred=(8, 16, 32, 64, 128), delay_us: int = 500) -> str:
    """config.pbtxt of a TensorRT plan: platform tensorrt_plan, the contract's tensors; with max_batch > 0
    the batch axis leaves the dims and seed 000's dynamic batching (preferred sizes, 0.5 ms) is added."""
    batched = max_batch > 0
    lines = [
        "# Written by scripts/export/export.py --trt (seed 004's --generate-triton-config).",
        f'name: "{name}"',
        'platform: "tensorrt_plan"',
        f"max_batch_size: {max_batch}",
        "input [\n" + ",\n".join(_pb_tensor(t, batched) for t in contract["inputs"]) + "\n]",
        "output [\n" + ",\n".join(_pb_tensor(t, batched) for t in contract["outputs"]) + "\n]",
    ]
    if batched:
        sizes = [p for p in preferred if p <= max_batch]
        lines.append(f"dynamic_batching {{\n  preferred_batch_size: [ {', '.join(map(str, sizes))} ]\n  max_queue_delay_microseconds: {delay_us}\n}}")
    lines.append("instance_group [ { count: 1 kind: KIND_GPU } ]")
    return "\n".join(lines) + "\n"
