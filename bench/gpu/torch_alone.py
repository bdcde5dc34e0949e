#!/usr/bin/env python3
"""The networks of torch_model.py timed alone in PyTorch, at batch 1, with no server: what the GPU needs
per inference, against which the server's and the SDK's figures can be read.

  python3 bench/gpu/torch_alone.py [--models midas_256,...] [--iters 30] [--json out.json]

eager_ms: one forward, launched from Python and synchronised (what the python backend does per request).
graph_ms: the same forward captured once as a CUDA graph and replayed: the GPU's own time, with the CPU's
kernel-launch cost taken out. Precision as served: FP32 with TF32 allowed.
"""
import argparse
import json
import os
import sys
import types

import torch

# torch_model.py imports the python backend's module at the top; outside the server it is not needed.
sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_model  # noqa: E402

BRANCHES = [("midas", s, 1) for s in (256, 384, 512)] + [("raft", s, 2) for s in (256, 384, 512)] + \
    [("clip_image", s, 1) for s in (224, 336, 448)] + [("clip_text", None, 1)] + \
    [("places365_resnet50", s, 1) for s in (224, 336, 448)] + [("yolo11x", s, 1) for s in (320, 640, 960)]


def median_ms(fn, iters):
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(iters):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return sorted(times)[len(times) // 2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--models")
    ap.add_argument("--iters", type=int, default=30)
    ap.add_argument("--json")
    a = ap.parse_args()
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    dev = torch.device("cuda")
    rows = []
    for stem, size, n_in in BRANCHES:
        name = f"{stem}_{size}" if size else stem
        if a.models and name not in a.models.split(","):
            continue
        torch.manual_seed(0)
        net, run = torch_model.build(stem, size)
        net.eval().to(dev)
        xs = [torch.randint(1, 49405, (1, 77), device=dev)] if stem == "clip_text" else [torch.rand(1, 3, size, size, device=dev) * 2 - 1 for _ in range(n_in)]
        with torch.inference_mode():
            for _ in range(5):
                run(*xs)
            torch.cuda.synchronize()
            eager = median_ms(lambda: run(*xs), a.iters)
            graph = None
            try:
                g = torch.cuda.CUDAGraph()
                s = torch.cuda.Stream()
                s.wait_stream(torch.cuda.current_stream())
                with torch.cuda.stream(s):
                    run(*xs)  # warm the side stream before capture
                torch.cuda.current_stream().wait_stream(s)
                with torch.cuda.graph(g):
                    run(*xs)
                graph = median_ms(g.replay, a.iters)
            except Exception as e:  # a network that cannot be captured keeps only its eager time
                print(f"{name}: no CUDA graph ({type(e).__name__}: {str(e)[:80]})", file=sys.stderr)
        rows.append({"model": name, "eager_ms": round(eager, 2), "graph_ms": round(graph, 2) if graph else None,
                     "eager_per_s": round(1000 / eager, 1), "graph_per_s": round(1000 / graph, 1) if graph else None})
        print(f"{name:24s} eager {eager:7.2f} ms   graph {graph if graph else float('nan'):7.2f} ms", flush=True)
        del net, run, xs
        torch.cuda.empty_cache()
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
