"""The TypeScript detector (`video-analysis detect --json`) against the independent numpy/onnxruntime
reference in yolo_reference.py, on the real int8 YOLO models and the standard test images: the same
number of detections, each matched to one of the same class with IoU >= 0.99, and the counts the
detections issue expects."""

from __future__ import annotations

import json
import subprocess
from collections import Counter

import numpy as np
import pytest

from conftest import REPO
from conftest import testdata as data_file  # aliased: pytest would collect a name starting with "test"
import yolo_reference

CLI = REPO / "dist" / "src" / "cli" / "main.js"
COCO = {0: "person", 5: "bus", 27: "tie"}


def ts_detect(image, model) -> dict:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build the TypeScript first (npx tsc -p .)")
    out = subprocess.run(
        ["node", str(CLI), "detect", "--image", str(image), "--model", str(model), "--json"],
        cwd=REPO, check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def iou(a, b) -> float:
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = iw * ih
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def assert_same_detections(ref: list[dict], ts: list[dict]) -> None:
    assert len(ts) == len(ref), f"TypeScript found {len(ts)} detections, the reference {len(ref)}:\nts={ts}\nref={ref}"
    unused = list(range(len(ts)))
    for r in ref:
        best, best_iou = None, 0.0
        for k in unused:
            if ts[k]["class_id"] != r["class_id"]:
                continue
            v = iou(r["box"], ts[k]["box"])
            if v > best_iou:
                best, best_iou = k, v
        assert best is not None and best_iou >= 0.99, f"no TypeScript detection of class {r['class_id']} with IoU >= 0.99 for {r} (best {best_iou:.4f}); ts={ts}"
        assert abs(ts[best]["score"] - r["score"]) < 1e-3, f"scores differ for {r}: {ts[best]['score']}"
        unused.remove(best)


def counts(dets: list[dict]) -> Counter:
    return Counter(COCO.get(d["class_id"], str(d["class_id"])) for d in dets)


CASES = [
    # image, model, check of the class counts (from the detections issue)
    ("bus.jpg", "yolo11n_int8_640.onnx", lambda c: c["person"] == 4 and c["bus"] == 1 and sum(c.values()) == 5),
    ("bus.jpg", "yolo11n_int8_320.onnx", lambda c: c["bus"] == 1 and c["person"] >= 3),
    # The issue says "2 persons and a tie". With Ultralytics' exact preprocessing this int8 model also
    # keeps a third, weaker person box (0.32) that overlaps the 0.74 one with IoU 0.68, under the 0.7
    # NMS threshold; the reference below reproduces it, so the check is "at least 2 persons, one tie".
    ("zidane.jpg", "yolo11n_int8_640.onnx", lambda c: c["person"] >= 2 and c["tie"] == 1),
    ("zidane.jpg", "yolo11n_int8_320.onnx", lambda c: c["person"] == 2),
    ("bus.jpg", "yolov8n_int8_640.onnx", lambda c: c["bus"] == 1 and c["person"] >= 3),
]


@pytest.mark.parametrize("image,model,expect", CASES, ids=[f"{i}-{m}" for i, m, _ in CASES])
def test_ts_detect_matches_reference(image, model, expect):
    image_path = data_file("images", image)
    model_path = data_file("models", model)
    ref = yolo_reference.detect(image_path, model_path)
    ts = ts_detect(image_path, model_path)["detections"]
    assert_same_detections(ref, ts)
    c = counts(ref)
    assert expect(c), f"{image} with {model}: unexpected classes {dict(c)}"


def test_bus_scores_as_documented():
    """testdata/README: bus at about 0.89 and persons about 0.90, 0.82, 0.82, 0.58 with the 640 model."""
    ts = ts_detect(data_file("images", "bus.jpg"), data_file("models", "yolo11n_int8_640.onnx"))["detections"]
    bus = [d["score"] for d in ts if d["class_id"] == 5]
    persons = sorted((d["score"] for d in ts if d["class_id"] == 0), reverse=True)
    assert bus and abs(bus[0] - 0.89) < 0.01
    assert np.allclose(persons, [0.90, 0.82, 0.82, 0.58], atol=0.01)


def test_letterbox_geometry():
    """The reference's letterbox on bus.jpg (810x1080): 480x640 centred in 640x640 with 80 px borders."""
    img = np.zeros((1080, 810, 3), dtype=np.uint8)
    out, r, (left, top) = yolo_reference.letterbox(img, 640)
    assert out.shape == (640, 640, 3) and (left, top) == (80, 0) and abs(r - 640 / 1080) < 1e-12
    assert (out[:, :80] == 114).all() and (out[:, 560:] == 114).all() and (out[:, 80:560] == 0).all()


def test_resize_reference_constant_image_is_exact():
    """A constant image stays constant through the fixed-point resize, upscale and downscale."""
    img = np.full((37, 53, 3), 200, dtype=np.uint8)
    for w, h in [(20, 11), (100, 70), (26, 18)]:
        assert (yolo_reference.cv2_resize_linear(img, w, h) == 200).all()


_TS_RESIZE_JS = r"""
import { readFileSync, writeFileSync } from "node:fs";
import { resizeBilinear } from "./dist/src/preprocess/resize.js";
import { letterbox } from "./dist/src/preprocess/letterbox.js";
import { readImageRgb } from "./dist/src/preprocess/decode-image.js";
const jobs = JSON.parse(readFileSync(0, "utf8"));
for (const j of jobs) {
  if (j.image) {
    const { image } = letterbox(await readImageRgb(j.image), j.size);
    writeFileSync(j.out, image.data);
  } else {
    const src = { width: j.w, height: j.h, channels: 3, data: new Uint8Array(readFileSync(j.raw)) };
    writeFileSync(j.out, resizeBilinear(src, j.dw, j.dh).data);
  }
}
"""


def _run_ts_resize(jobs: list[dict]) -> None:
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build the TypeScript first (npx tsc -p .)")
    subprocess.run(["node", "--input-type=module", "-e", _TS_RESIZE_JS], input=json.dumps(jobs), cwd=REPO, check=True, text=True)


def test_ts_letterbox_equals_reference_byte_for_byte(tmp_path):
    """The TypeScript letterbox (decode, INTER_LINEAR resize, border) and the reference give the same pixels."""
    jobs = []
    for image in ["bus.jpg", "zidane.jpg", "boats.jpg", "dog.jpg"]:
        for size in [320, 417, 640, 960]:
            jobs.append({"image": str(data_file("images", image)), "size": size, "out": str(tmp_path / f"{image}-{size}.bin")})
    _run_ts_resize(jobs)
    for j in jobs:
        ref, _, _ = yolo_reference.letterbox(yolo_reference.decode_rgb(j["image"]), j["size"])
        ts = np.fromfile(j["out"], dtype=np.uint8).reshape(ref.shape)
        assert np.array_equal(ts, ref), f"{j['image']} at {j['size']}: {int((ts != ref).sum())} values differ"


def test_ts_resize_equals_reference_on_random_images(tmp_path):
    """Random pixels, odd sizes, enlargements and reductions, 1-pixel rows and columns."""
    rng = np.random.default_rng(5)
    cases = [(7, 5, 3, 2), (5, 3, 17, 11), (100, 1, 37, 1), (1, 50, 1, 13), (33, 33, 32, 31), (64, 48, 32, 24), (640, 480, 641, 481), (810, 1080, 313, 417)]
    jobs, images = [], []
    for k, (w, h, dw, dh) in enumerate(cases):
        img = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        raw = tmp_path / f"in{k}.bin"
        img.tofile(raw)
        images.append(img)
        jobs.append({"raw": str(raw), "w": w, "h": h, "dw": dw, "dh": dh, "out": str(tmp_path / f"out{k}.bin")})
    _run_ts_resize(jobs)
    for img, j in zip(images, jobs):
        ref = yolo_reference.cv2_resize_linear(img, j["dw"], j["dh"])
        ts = np.fromfile(j["out"], dtype=np.uint8).reshape(ref.shape)
        assert np.array_equal(ts, ref), f"{j['w']}x{j['h']} -> {j['dw']}x{j['dh']}: {int((ts != ref).sum())} values differ"
