"""YOLO scores equal bit for bit on every path of the SDK and in Ultralytics' arithmetic.

The same pixels go through:
- the Python reference (yolo_reference.py: Ultralytics' letterbox with OpenCV's INTER_LINEAR, `x / 255`
  in float32, onnxruntime, Ultralytics' NMS) on the real int8 YOLO11n;
- `main` (ModelManager.run, embedded backend, detections.npz), `process()` on the same decoded frames and
  the single-frame `detect()`, driven by yolo_paths.mjs;
- the `video-analysis detect` command.
Inputs: the first frames of the people video and the standard test images. Every path must give the
same classes and exactly the same float32 scores as the reference (not within a tolerance): one unit in
the last place of the normalised input moves an int8 model's scores by up to 0.04.
"""

from __future__ import annotations

import json
import subprocess

import numpy as np
import onnxruntime as ort
import pytest

from conftest import REPO
from conftest import testdata as data_file  # aliased: pytest would collect a name starting with "test"
import yolo_reference

CLI = REPO / "dist" / "src" / "cli" / "main.js"
IMAGES = ["bus.jpg", "zidane.jpg", "boats.jpg", "airport.jpg", "dog.jpg", "horses.jpg", "person.jpg"]
FRAMES = 20  # the people video at 1 fps: 0..19 s, nobody, then people walking through
FPS = 1
SIZE = 640


def reference(session: ort.InferenceSession, rgb: np.ndarray) -> list[tuple[int, np.float32]]:
    boxed, _, _ = yolo_reference.letterbox(rgb, SIZE)
    x = (boxed.astype(np.float32) / np.float32(255)).transpose(2, 0, 1)[None]
    pred = session.run(None, {session.get_inputs()[0].name: np.ascontiguousarray(x)})[0]
    det = yolo_reference.non_max_suppression(pred, conf=0.25, iou=0.7)
    return scores_of((int(d[5]), d[4]) for d in det)


def scores_of(pairs) -> list[tuple[int, np.float32]]:
    """(class, float32 score) pairs, best first, ties by class: the order the paths are compared in."""
    return sorted(((int(c), np.float32(s)) for c, s in pairs), key=lambda p: (-p[1], p[0]))


def assert_exact(what: str, got, want) -> None:
    assert len(got) == len(want), f"{what}: {len(got)} detections, the reference {len(want)}\n got={got}\nwant={want}"
    for (gc, gs), (wc, ws) in zip(got, want):
        assert gc == wc and gs == ws, f"{what}: (class {gc}, score {gs!r}) where the reference has (class {wc}, score {ws!r})\n got={got}\nwant={want}"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build the TypeScript first (npm run build)")
    model = data_file("models", "yolo11n_int8_640.onnx")
    video = data_file("video", "people_768x432_10fps.mp4")
    images = [data_file("images", i) for i in IMAGES]
    tmp = tmp_path_factory.mktemp("yolo-paths")
    job = {"model": str(model), "video": str(video), "fps": FPS, "frames": FRAMES, "images": [str(i) for i in images],
           "run_dir": str(tmp / "run"), "tmp": str(tmp)}
    (tmp / "job.json").write_text(json.dumps(job))
    out = subprocess.run(["node", str(REPO / "test" / "python" / "yolo_paths.mjs"), str(tmp / "job.json")],
                         cwd=REPO, check=True, capture_output=True, text=True, timeout=600)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["session"] = ort.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    result["run_dir"] = tmp / "run"
    result["model"] = model
    return result


def test_video_frames_main_process_and_reference_agree_exactly(paths):
    d = np.load(paths["run_dir"] / "core_object_detections" / "detections.npz")
    assert len(d["frames_index"]) == FRAMES
    assert (d["track_id"] == -1).all(), "the tracker is off: these are the detector's own rows"
    total = 0
    for i, f in enumerate(paths["frames"]):
        rgb = np.fromfile(f["file"], dtype=np.uint8).reshape(f["height"], f["width"], 3)
        want = reference(paths["session"], rgb)
        rows = d["frame_index"] == d["frames_index"][i]
        assert_exact(f"main, frame {i}", scores_of(zip(d["class_id"][rows], d["score"][rows])), want)
        assert_exact(f"process(), frame {i}", scores_of((r["class_id"], r["score"]) for r in paths["process"][i]), want)
        total += len(want)
    assert total >= FRAMES // 2, f"only {total} detections in {FRAMES} frames: the comparison would prove little"


@pytest.mark.parametrize("k", range(len(IMAGES)), ids=IMAGES)
def test_images_detect_single_frame_and_reference_agree_exactly(paths, k):
    img = paths["images"][k]
    rgb = np.fromfile(img["file"], dtype=np.uint8).reshape(img["height"], img["width"], 3)
    want = reference(paths["session"], rgb)
    assert want, f"{IMAGES[k]}: the reference finds nothing"
    assert_exact(f"ModelManager.detect() on {IMAGES[k]}", scores_of((r["class_id"], r["score"]) for r in img["detect"]), want)
    cli = subprocess.run(["node", str(CLI), "detect", "--image", img["image"], "--model", str(paths["model"]), "--json"],
                         cwd=REPO, check=True, capture_output=True, text=True)
    dets = json.loads(cli.stdout)["detections"]
    assert_exact(f"video-analysis detect on {IMAGES[k]}", scores_of((r["class_id"], r["score"]) for r in dets), want)
