#!/usr/bin/env python3
"""Exports a model family to the exact `<model>_onnx` contract of the SDK's catalog, checks it, and writes
it into a Triton repository.

    python3 scripts/export/export.py FAMILY --size S --out triton/models [--weights PATH | --random]
        [--architecture yolo11x] [--end2end] [--trt] [--image IMG] [--contracts FILE]

FAMILY: midas | raft | clip_image | clip_text | places365 | yolo11. Weights, in order:
- `--weights PATH`: a local checkpoint (state_dict .pt/.pth, or a transformers folder for midas/clip,
  or an Ultralytics .pt for yolo11);
- none: the family's usual source (needs internet): transformers Intel/dpt-hybrid-midas and
  openai/clip-vit-base-patch32, torchvision raft_large DEFAULT weights, Ultralytics yolo11*.pt; Places365
  has no hub source (CSAIL's resnet50_places365.pth.tar is a --weights file);
- `--random`: the real architecture with random weights (seed 0): tests the export path only.

Each export is checked: against the contract (names, types, fixed shapes; scripts/export/contract.py) and
against PyTorch on a real image (max abs diff, onnxruntime CPU). YOLO with --end2end also writes
`<model>_end2end` (ONNX NMS appended, dynamic batch: scripts/export/yolo_end2end.py). --trt (needs
TensorRT) builds an FP16 plan beside it with seed 000's batch profile and writes its config.
Prints one JSON line per model: what was written and the measured difference.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import time
import types

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from contract import REPO, catalog_contracts, check_contract, trt_config  # noqa: E402

FAMILY_STEMS = {"midas": "midas", "raft": "raft", "clip_image": "clip_image", "clip_text": "clip_text", "places365": "places365_resnet50", "yolo11": None}


def _random_architecture(stem: str, size):
    """The real architectures with random weights, as bench/gpu/torch_model.py builds them for the GPU bench."""
    sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
    sys.path.insert(0, str(REPO / "bench" / "gpu"))
    import torch_model  # noqa: E402

    return torch_model.build(stem, size)


def load(family: str, arch: str, size, weights: str | None, random: bool):
    """(network, forward(*inputs) -> tuple of outputs) for a family, from the chosen weights."""
    import torch

    torch.manual_seed(0)
    stem = FAMILY_STEMS[family] or arch
    if random:
        if family == "yolo11" and arch != "yolo11x":
            raise SystemExit("--random has YOLO11x only (bench/gpu/torch_model.py); pass --weights for other scales")
        return _random_architecture(stem, size)
    if family == "midas":
        from transformers import DPTForDepthEstimation

        net = DPTForDepthEstimation.from_pretrained(weights or "Intel/dpt-hybrid-midas")
        return net, lambda x: (net(pixel_values=x).predicted_depth,)
    if family == "raft":
        from torchvision.models.optical_flow import Raft_Large_Weights, raft_large

        net = raft_large(weights=None if weights else Raft_Large_Weights.DEFAULT)
        if weights:
            net.load_state_dict(torch.load(weights, map_location="cpu"))
        return net, lambda a, b: (net(a, b, num_flow_updates=12)[-1],)
    if family in ("clip_image", "clip_text"):
        from transformers import CLIPModel

        clip = CLIPModel.from_pretrained(weights or "openai/clip-vit-base-patch32")
        if family == "clip_image":
            return clip, lambda x: (clip.get_image_features(pixel_values=x),)
        return clip, lambda ids: (clip.text_projection(clip.text_model(input_ids=ids).last_hidden_state),)
    if family == "places365":
        from torchvision.models import resnet50

        if not weights:
            raise SystemExit("places365: pass --weights resnet50_places365.pth.tar (CSAIL's checkpoint); there is no hub source")
        net = resnet50(num_classes=365)
        state = torch.load(weights, map_location="cpu")
        state = state.get("state_dict", state)
        net.load_state_dict({k.removeprefix("module."): v for k, v in state.items()})
        return net, lambda x: (net(x),)
    if family == "yolo11":
        from ultralytics import YOLO  # noqa: E402  (pip install ultralytics)

        net = YOLO(weights or f"{arch}.pt").model.float().fuse()
        for m in net.modules():  # the raw [1, 84, N] head, not the (y, x) tuple of training
            if hasattr(m, "export"):
                m.export = True
        return net, lambda x: (net(x) if not isinstance(net(x), (list, tuple)) else net(x)[0],)
    raise SystemExit(f"unknown family {family}")


def sample_inputs(contract: dict, image: str | None):
    """The contract's inputs from a real image (resized to S x S, the catalog's normalisation); RAFT gets the
    image and the image shifted by 4 pixels; CLIP text a fixed token sequence (start, a few words, end)."""
    from PIL import Image

    out = []
    for i, spec in enumerate(contract["inputs"]):
        shape = spec["shape"]
        if spec["datatype"] == "INT64":
            ids = np.zeros(shape, np.int64)
            ids[0, :6] = [49406, 320, 1125, 539, 320, 49407]  # <start> a photo of a <end>
            out.append(ids)
            continue
        s = shape[-1]
        rgb = np.asarray(Image.open(image).convert("RGB").resize((s, s), Image.BILINEAR), dtype=np.float32) if image else np.random.default_rng(0).uniform(0, 255, (s, s, 3)).astype(np.float32)
        if i == 1:
            rgb = np.roll(rgb, 4, axis=1)
        n = contract["normalization"]
        # The generated preprocess's operations in its order (x / divisor, then mean and std), in float32.
        x = (rgb / np.float32(n["divisor"]) - np.array(n["mean"], np.float32)) / np.array(n["std"], np.float32)
        out.append(np.ascontiguousarray(x.transpose(2, 0, 1)[None].astype(np.float32)))
    return out


class Wrapped:
    """nn.Module calling forward(*inputs), outputs reshaped to the contract (DPT gives [1, S, S] as is)."""

    def __new__(cls, net, fn, contract):
        import torch

        class M(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, *xs):
                ys = fn(*xs)
                return tuple(y.reshape(o["shape"]) for y, o in zip(ys, contract["outputs"]))

        return M()


def _onnx_export(module, xs, path, **kw):
    """torch.onnx.export with the TorchScript exporter (torch >= 2.5 defaults to dynamo on some versions)."""
    import inspect

    import torch

    if "dynamo" in inspect.signature(torch.onnx.export).parameters:
        kw["dynamo"] = False
    torch.onnx.export(module, xs, str(path), **kw)


def export_one(a, name: str, contract: dict) -> dict:
    import onnx
    import onnxruntime as ort
    import torch

    device = torch.device("cuda" if torch.cuda.is_available() and not a.cpu else "cpu")
    # The reference in full FP32, as onnxruntime's CPU check runs: by default PyTorch lets cuDNN's
    # convolutions use TF32 on Ampere and later GPUs, which would show up as an export error.
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    t0 = time.perf_counter()
    net, fn = load(a.family, contract["architecture"], contract["size"], a.weights, a.random)
    net = net.eval().to(device)
    module = Wrapped(net, fn, contract).eval()
    inputs = sample_inputs(contract, a.image)
    xs = tuple(torch.from_numpy(x).to(device) for x in inputs)
    onnx_name = f"{name}_onnx"
    dest = pathlib.Path(a.out) / onnx_name / "1" / "model.onnx"
    dest.parent.mkdir(parents=True, exist_ok=True)
    with torch.inference_mode():
        ref = [y.float().cpu().numpy() for y in module(*xs)]
    _onnx_export(
        module, xs, dest, input_names=[t["name"] for t in contract["inputs"]], output_names=[t["name"] for t in contract["outputs"]],
        opset_version=a.opset, do_constant_folding=True,
    )
    model = onnx.load(str(dest))
    problems = check_contract(model, contract)
    sess = ort.InferenceSession(str(dest), providers=["CPUExecutionProvider"])
    got = sess.run(None, {t["name"]: x for t, x in zip(contract["inputs"], inputs)})
    diffs = {o["name"]: float(np.max(np.abs(g - r))) for o, g, r in zip(contract["outputs"], got, ref)}
    scale = {o["name"]: float(np.max(np.abs(r))) for o, r in zip(contract["outputs"], ref)}
    report = {
        "model": onnx_name, "file": str(dest), "bytes": dest.stat().st_size, "device": str(device),
        "weights": a.weights or ("random (seed 0)" if a.random else "hub"), "parameters": sum(p.numel() for p in net.parameters()),
        "contract_ok": not problems, "contract_problems": problems, "max_abs_diff": diffs, "max_abs_ref": scale,
        "image": a.image, "seconds": round(time.perf_counter() - t0, 1),
    }
    if a.family == "yolo11" and a.end2end:
        from yolo_end2end import build

        # The same graph with a dynamic batch axis, then NMS appended (seed 000's track C engine, batched).
        e2e_dir = pathlib.Path(a.out) / f"{name}_end2end" / "1"
        e2e_dir.mkdir(parents=True, exist_ok=True)
        raw_dyn = e2e_dir / "raw_dynamic.onnx"
        # No reshape to the batch-1 contract here: the head's [b, 84, N] passes through as it is.
        class Raw(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.net = net

            def forward(self, x):
                return fn(x)[0]

        _onnx_export(Raw().eval(), xs, raw_dyn, input_names=["images"], output_names=["output0"], opset_version=a.opset,
                     dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}})
        e2e = build(onnx.load(str(raw_dyn)), a.iou, a.conf, num_classes=contract["outputs"][0]["shape"][1] - 4)
        raw_dyn.unlink()
        onnx.save(e2e, str(e2e_dir / "model.onnx"))
        s = ort.InferenceSession(str(e2e_dir / "model.onnx"), providers=["CPUExecutionProvider"])
        num, boxes, scores, classes = s.run(None, {"images": np.concatenate([inputs[0], inputs[0]])})
        report["end2end"] = {"file": str(e2e_dir / "model.onnx"), "batch2_num_dets": num[:, 0].tolist(), "rows_equal": bool(np.array_equal(boxes[0], boxes[1]))}
    if a.trt:
        report["trt"] = build_trt(dest, name, contract, a)
    return report


def build_trt(onnx_path: pathlib.Path, name: str, contract: dict, a) -> dict:
    """FP16 TensorRT plan of the export (fixed batch 1: the `_onnx` contract), its config beside it."""
    try:
        import tensorrt as trt
    except ImportError:
        return {"skipped": "TensorRT is not installed here (pip install tensorrt, or run in NVIDIA's TensorRT container)"}
    logger = trt.Logger(trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        return {"error": [str(parser.get_error(i)) for i in range(parser.num_errors)]}
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 4 << 30)
    config.set_flag(trt.BuilderFlag.FP16)
    plan = builder.build_serialized_network(network, config)
    trt_name = f"{name}_trt"
    d = pathlib.Path(a.out) / trt_name
    (d / "1").mkdir(parents=True, exist_ok=True)
    (d / "1" / "model.plan").write_bytes(bytes(plan))
    (d / "config.pbtxt").write_text(trt_config(trt_name, contract))
    return {"file": str(d / "1" / "model.plan"), "config": str(d / "config.pbtxt")}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("family", nargs="?", choices=sorted(FAMILY_STEMS))
    ap.add_argument("--size", type=int, action="append", help="branch input size (repeat for several); default every branch")
    ap.add_argument("--architecture", help="architecture id (default the family's production one, e.g. yolo11x)")
    ap.add_argument("--out", help="the Triton repository to write into")
    w = ap.add_mutually_exclusive_group()
    w.add_argument("--weights")
    w.add_argument("--random", action="store_true")
    ap.add_argument("--image", help="a real image for the ONNX-vs-PyTorch check (default: noise)")
    ap.add_argument("--end2end", action="store_true", help="yolo11: also <model>_end2end with ONNX NMS")
    ap.add_argument("--iou", type=float, default=0.7)
    ap.add_argument("--conf", type=float, default=0.25)
    ap.add_argument("--trt", action="store_true", help="also an FP16 TensorRT plan and its config (needs TensorRT)")
    ap.add_argument("--opset", type=int, default=17)
    ap.add_argument("--cpu", action="store_true", help="run PyTorch on the CPU even when CUDA is there")
    ap.add_argument("--contracts", help="the catalog's contracts as JSON (from --dump-contracts), where node is absent")
    ap.add_argument("--dump-contracts", action="store_true", help="print the catalog's contracts as JSON and exit")
    a = ap.parse_args(argv)
    if not a.dump_contracts and (a.family is None or a.out is None):
        ap.error("FAMILY and --out are required (unless --dump-contracts)")
    contracts = catalog_contracts(a.contracts)
    if a.dump_contracts:
        print(json.dumps(contracts))
        return
    family_id = {"places365": "places365", "midas": "midas", "raft": "raft", "clip_image": "clip_image", "clip_text": "clip_text", "yolo11": "yolo11"}[a.family]
    chosen = [(n, c) for n, c in contracts.items() if c["family"] == family_id]
    arch = a.architecture
    chosen = [(n, c) for n, c in chosen if (c["architecture"] == arch if arch else c["default"])]
    if a.size:
        chosen = [(n, c) for n, c in chosen if c["size"] in a.size]
    if not chosen:
        raise SystemExit(f"no catalog model of family {a.family} (architecture {arch}, sizes {a.size})")
    failed = False
    for name, contract in chosen:
        r = export_one(a, name, contract)
        print(json.dumps(r), flush=True)
        failed |= not r["contract_ok"]
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
