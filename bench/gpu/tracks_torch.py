#!/usr/bin/env python3
"""Tracks B, C and D of seed 000 in PyTorch on one GPU, with YOLO11x at random weights (bench/gpu/torch_model.py):
no TensorRT, DALI or tritonserver GPU backends exist on the lent machine, so these are torch stand-ins for
the server-side work of each track, per batch size of the tiers (1, 8, 64, 128), FP16 autocast:
- B: FP32 letterboxed [b, 3, 640, 640] host -> GPU, YOLO, raw [b, 84, 8400] back to the host (NMS on the client, not timed);
- C: the same input, YOLO, NMS on the GPU (torch_model.end2end_rows: torchvision batched_nms, top 100), End2End rows back;
- D: b JPEG files -> nvJPEG decode on the GPU (torchvision.io.decode_jpeg) -> DALI's letterbox (torch_dali.py) -> as C.
Prints JSON: per track and batch, ms per batch (p50/p95 of 20 runs after 5 warm-ups), images/s, bytes in.
"""
import json
import pathlib
import sys
import time
import types

import numpy as np
import torch
import torchvision

sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))
import torch_dali  # noqa: E402
import torch_model  # noqa: E402

S = 640
dev = torch.device("cuda")
torch.backends.cudnn.benchmark = True
torch.manual_seed(0)
net = torch_model.YOLO11x().eval().to(dev)
jpeg = torchvision.io.read_file(str(pathlib.Path(__file__).resolve().parents[2] / ".device" / "images" / "bus.jpg"))


def timed(fn, n=20, warm=5):
    for _ in range(warm):
        fn()
    torch.cuda.synchronize()
    ms = []
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize()
        ms.append((time.perf_counter() - t0) * 1000)
    return float(np.percentile(ms, 50)), float(np.percentile(ms, 95))


results = []
for b in (1, 8, 64, 128):
    host = torch.rand(b, 3, S, S).pin_memory()
    files = [jpeg] * b

    def track_b():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
            return net(host.to(dev, non_blocking=True)).float().cpu()

    def track_c():
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16):
            rows = torch_model.end2end_rows(net(host.to(dev, non_blocking=True)))
        return [t.cpu() for t in rows]

    def track_d():
        with torch.inference_mode():
            imgs = torchvision.io.decode_jpeg(files, device="cuda")
            x = torch.stack([torch_dali.letterbox(i, S) for i in imgs])
            with torch.autocast("cuda", dtype=torch.float16):
                rows = torch_model.end2end_rows(net(x))
        return [t.cpu() for t in rows]

    for name, fn, bytes_in in (("B", track_b, b * 3 * S * S * 4), ("C", track_c, b * 3 * S * S * 4), ("D", track_d, b * len(jpeg))):
        try:
            p50, p95 = timed(fn)
            results.append({"track": name, "batch": b, "p50_ms": round(p50, 2), "p95_ms": round(p95, 2), "images_per_s": round(b * 1000 / p50, 1), "bytes_in": bytes_in})
        except Exception as e:  # one failing track must not lose the others
            results.append({"track": name, "batch": b, "error": repr(e)[:300]})
        print(json.dumps(results[-1]), file=sys.stderr, flush=True)
print(json.dumps({"gpu": torch.cuda.get_device_name(0), "torch": torch.__version__, "model": "YOLO11x random weights, FP16 autocast", "image": "bus.jpg 810x1080", "results": results}, indent=1))
