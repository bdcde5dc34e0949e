#!/usr/bin/env python3
"""Track D's letterbox against real DALI, where DALI can be installed (no GPU needed: its CPU operators).

    python3 -m venv /tmp/dali && /tmp/dali/bin/pip install nvidia-dali-cuda120 opencv-python-headless \\
        onnxruntime==1.31.1 onnx==1.23.2 pillow
    /tmp/dali/bin/python bench/dali_reference.py [--images DIR] [--model yolo11n_int8_640.onnx]

Per test image it letterboxes to 640 four ways and compares them value by value:
- `cv2`: the client's letterbox (Ultralytics': cv2.resize INTER_LINEAR, the border split Ultralytics' way;
  src/preprocess/letterbox.ts is byte-exact with it);
- `standin`: test/support/dali_standin.py, DALI's GPU arithmetic in numpy (what the CPU tests serve);
- `dali`: the generated pipeline (src/triton-repo/dali.ts: antialias=False, subpixel_scale=False) run by
  DALI's CPU operators, whose resampler is a separate implementation from the GPU kernel the stand-in follows;
- `dali_defaults`: the seed's fn.resize(mode="not_larger", INTERP_LINEAR) with DALI's defaults
  (antialias=True, subpixel_scale=True);
- `cv2_noise`: `cv2` with 8 % of its values moved one grey level up or down at random (seed 0), the size of
  the filters' difference without its pattern.
Then it runs the int8 model and the same weights in float (test/support/dequantize_yolo.py), each with the
End2End NMS of scripts/export/yolo_end2end.py, on pairs of these and reports the IoU of matched detections
(same class, best overlap) in letterbox pixels: the boxes move with the filter only as much as the model
lets a one-grey-level change move them.
"""
from __future__ import annotations

import argparse
import glob
import os
import subprocess
import sys
import tempfile
import types

import numpy as np
import onnxruntime as ort
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.modules.setdefault("triton_python_backend_utils", types.ModuleType("triton_python_backend_utils"))
sys.path.insert(0, os.path.join(ROOT, "test", "support"))
import dali_standin  # noqa: E402

S = 640


def cv2_letterbox(rgb: np.ndarray) -> np.ndarray:
    import cv2

    h, w = rgb.shape[:2]
    r = min(S / h, S / w)
    rw, rh = round(w * r), round(h * r)
    img = rgb if (rw, rh) == (w, h) else cv2.resize(rgb, (rw, rh), interpolation=cv2.INTER_LINEAR)
    dw, dh = (S - rw) / 2, (S - rh) / 2
    top, bottom, left, right = round(dh - 0.1), round(dh + 0.1), round(dw - 0.1), round(dw + 0.1)
    return cv2.copyMakeBorder(img, top, bottom, left, right, cv2.BORDER_CONSTANT, value=(114, 114, 114))


def dali_letterboxes(files: list[str], defaults: bool) -> list[np.ndarray]:
    import nvidia.dali as dali
    import nvidia.dali.fn as fn
    import nvidia.dali.types as dtypes

    kw = {} if defaults else {"antialias": False, "subpixel_scale": False}

    @dali.pipeline_def(batch_size=1, num_threads=1, device_id=None, prefetch_queue_depth=1, exec_async=False, exec_pipelined=False)
    def pipe():
        jpeg = fn.external_source(device="cpu", name="jpeg", dtype=dtypes.UINT8)
        img = fn.decoders.image(jpeg, device="cpu", output_type=dtypes.RGB)
        img = fn.resize(img, size=[S, S], mode="not_larger", interp_type=dtypes.INTERP_LINEAR, **kw)
        return fn.crop(img, crop=(S, S), crop_pos_x=0.5, crop_pos_y=0.5, out_of_bounds_policy="pad", fill_values=114)

    p = pipe()
    p.build()
    out = []
    for f in files:
        p.feed_input("jpeg", [np.fromfile(f, np.uint8)])
        out.append(np.array(p.run()[0].as_tensor())[0])
    return out


def models(int8: str, tmp: str) -> dict[str, str]:
    """The int8 model and its float twin, each with End2End NMS appended (iou 0.7, conf 0.25): name -> path."""
    out = {}
    for name in ("int8", "float"):
        raw = int8
        if name == "float":
            raw = os.path.join(tmp, "float.onnx")
            subprocess.run([sys.executable, os.path.join(ROOT, "test/support/dequantize_yolo.py"), int8, raw], check=True, capture_output=True)
        out[name] = os.path.join(tmp, f"{name}_e2e.onnx")
        subprocess.run([sys.executable, os.path.join(ROOT, "scripts/export/yolo_end2end.py"), raw, out[name]], check=True, capture_output=True)
    return out


def report(name: str, a: str, b: str, pairs: list[tuple]) -> None:
    """One line: IoUs of the matched detections scoring >= 0.5 over all images, and what went unmatched."""
    ious, unmatched = [], 0
    for x, y in pairs:
        v, u = match(x, y)
        ious += v
        unmatched += u
    v = np.array(ious)
    print(f"  {name:5s} {a:>8s} vs {b:<13s} {len(v):3d} pairs, {int((v >= 0.99).sum()):3d} >= 0.99, median {np.median(v):.4f},"
          f" worst {v.min():.4f}; unmatched at any score {unmatched}")


def diff(a: np.ndarray, b: np.ndarray) -> str:
    d = np.abs(a.astype(np.int16) - b.astype(np.int16))
    return f"max {d.max():3d}, {100 * (d > 0).mean():5.2f} %"


class Detector:
    def __init__(self, path: str):
        self.session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        self.input = self.session.get_inputs()[0].name

    def __call__(self, hwc: np.ndarray):
        x = (hwc.astype(np.float32) / np.float32(255)).transpose(2, 0, 1)[None]
        n, boxes, scores, classes = self.session.run(None, {self.input: np.ascontiguousarray(x)})
        k = int(n[0, 0])
        return boxes[0, :k], scores[0, :k], classes[0, :k]


def iou(a, b) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    i = w * h
    return i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)


def match(x, y, margin=0.5):
    """IoUs of pairs scoring >= margin on both sides, and how many detections went unmatched (any score)."""
    (bx, sx, cx), (by, sy, cy) = x, y
    used, ious, unmatched = set(), [], 0
    for i in range(len(bx)):
        cand = [(iou(bx[i], by[j]), j) for j in range(len(by)) if j not in used and cy[j] == cx[i]]
        v, j = max(cand, default=(0.0, -1))
        if v < 0.5:
            unmatched += 1
            continue
        used.add(j)
        if min(sx[i], sy[j]) >= margin:
            ious.append(v)
    return ious, unmatched + len(by) - len(used)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", default=os.path.join(ROOT, "..", "shared", "testdata", "images"))
    ap.add_argument("--model", default=os.path.join(ROOT, "..", "shared", "testdata", "models", "yolo11n_int8_640.onnx"))
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.images, "*.jpg")))
    import cv2
    import nvidia.dali as dali

    print(f"DALI {dali.__version__}, OpenCV {cv2.__version__}, onnxruntime {ort.__version__}")
    lbs = {"cv2": [], "standin": []}
    for f in files:
        rgb = np.asarray(Image.open(f).convert("RGB"))
        lbs["cv2"].append(cv2_letterbox(rgb))
        lbs["standin"].append(dali_standin.letterbox(rgb, S))
    lbs["dali"] = dali_letterboxes(files, defaults=False)
    lbs["dali_defaults"] = dali_letterboxes(files, defaults=True)
    rng = np.random.default_rng(0)
    lbs["cv2_noise"] = [np.clip(x.astype(np.int16) + (rng.random(x.shape) < 0.08) * rng.choice(np.array([-1, 1], np.int16), x.shape), 0, 255).astype(np.uint8) for x in lbs["cv2"]]

    print("\nvalues differing (max difference, share of the 640x640x3 values):")
    print(f"{'image':24s} {'dali vs standin':>18s} {'dali vs cv2':>18s} {'standin vs cv2':>18s} {'dali_defaults vs cv2':>21s}")
    for i, f in enumerate(files):
        print(f"{os.path.basename(f):24s} {diff(lbs['dali'][i], lbs['standin'][i]):>18s} {diff(lbs['dali'][i], lbs['cv2'][i]):>18s}"
              f" {diff(lbs['standin'][i], lbs['cv2'][i]):>18s} {diff(lbs['dali_defaults'][i], lbs['cv2'][i]):>21s}")

    with tempfile.TemporaryDirectory() as tmp:
        print("\nmatched detections scoring >= 0.5, IoU in letterbox pixels (End2End NMS: iou 0.7, conf 0.25):")
        for name, path in models(args.model, tmp).items():
            det = Detector(path)
            out = {k: [det(x) for x in v] for k, v in lbs.items()}
            for a, b in [("cv2", "standin"), ("cv2", "dali"), ("standin", "dali"), ("cv2", "dali_defaults"), ("cv2", "cv2_noise")]:
                report(name, a, b, list(zip(out[a], out[b])))


if __name__ == "__main__":
    main()
