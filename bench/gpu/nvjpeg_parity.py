#!/usr/bin/env python3
"""On a GPU: the one part of track D's letterbox the CPU tests cannot check, the decoder. DALI decodes with
nvJPEG on the GPU (`fn.decoders.image(device="mixed")`); the CPU stand-in decodes with PIL's libjpeg-turbo,
which on the test images is byte-identical to the client's sharp and to DALI's own CPU decoder
(bench/dali_reference.py). Here nvJPEG runs through torchvision.io.decode_jpeg(device="cuda") (DALI is too
large to carry to the lent machine; torchvision's nvJPEG path is not necessarily DALI's hardware decoder).

    python3 bench/gpu/nvjpeg_parity.py --images DIR --model yolo11n_int8_640.onnx

Per image: how many RGB values nvJPEG and PIL decode differently, and how far apart the stand-in's
letterboxes of the two decodes are; then the boxes of the int8 model and its float twin on the two
letterboxes (bench/dali_reference.py's matching: same class, best overlap, pairs scoring >= 0.5).
"""
from __future__ import annotations

import argparse
import glob
import os
import sys
import tempfile

import numpy as np
import torch
import torchvision
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from dali_reference import Detector, dali_standin, diff, models, report  # noqa: E402

S = 640


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--images", required=True)
    ap.add_argument("--model", required=True, help="the test data's yolo11n_int8_640.onnx")
    args = ap.parse_args()
    files = sorted(glob.glob(os.path.join(args.images, "*.jpg")))
    print(f"torch {torch.__version__}, torchvision {torchvision.__version__}, {torch.cuda.get_device_name(0)}")
    lbs = {"pil": [], "nvjpeg": []}
    print(f"{'image':24s} {'decode nvJPEG vs PIL':>22s} {'letterbox':>18s}")
    for f in files:
        pil = np.asarray(Image.open(f).convert("RGB"))
        data = torchvision.io.read_file(f)
        nv = torchvision.io.decode_jpeg(data, mode=torchvision.io.ImageReadMode.RGB, device="cuda").permute(1, 2, 0).cpu().numpy()
        a, b = dali_standin.letterbox(pil, S), dali_standin.letterbox(nv, S)
        lbs["pil"].append(a)
        lbs["nvjpeg"].append(b)
        print(f"{os.path.basename(f):24s} {diff(nv, pil):>22s} {diff(b, a):>18s}")
    with tempfile.TemporaryDirectory() as tmp:
        print("\nmatched detections scoring >= 0.5, IoU in letterbox pixels:")
        for name, path in models(args.model, tmp).items():
            det = Detector(path)
            report(name, "pil", "nvjpeg", [(det(x), det(y)) for x, y in zip(lbs["pil"], lbs["nvjpeg"])])


if __name__ == "__main__":
    main()
