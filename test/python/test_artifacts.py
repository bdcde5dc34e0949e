"""numpy loads every artifact of a `video-analysis main` run, with the keys, shapes and dtypes of SPEC
section 4 as the README documents them, consistent with each other and with manifest.json.

The run checked is $VIDEO_SDK_RUN_DIR when set (the end-to-end test on the people video sets it), else
a fresh run of profiles/embedded_cpu.yaml (contract models) on a 3-second test pattern made with ffmpeg."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess

import numpy as np
import pytest

from conftest import REPO

CLI = REPO / "dist" / "src" / "cli" / "main.js"
FILES = {
    "core_clip": "core_clip/embeddings.npz",
    "core_depth_midas": "core_depth_midas/depth.npz",
    "core_optical_flow": "core_optical_flow/flow.npz",
    "core_object_detections": "core_object_detections/detections.npz",
    "scene": "scene/places.npz",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> pathlib.Path:
    given = os.environ.get("VIDEO_SDK_RUN_DIR")
    if given:
        return pathlib.Path(given)
    if not CLI.exists():
        pytest.fail(f"{CLI} is missing: build the TypeScript first (npx tsc -p .)")
    if not shutil.which("ffmpeg"):
        pytest.skip("ffmpeg is not installed")
    d = tmp_path_factory.mktemp("run")
    video = d / "pattern.mp4"
    subprocess.run(
        ["ffmpeg", "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i", "testsrc2=size=480x270:rate=10", "-t", "3",
         "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(video)],
        check=True,
    )
    out = d / "out"
    subprocess.run(
        ["node", str(CLI), "main", "--video", str(video), "--profile", "profiles/embedded_cpu.yaml", "--out", str(out), "--fps", "2", "--quiet"],
        cwd=REPO, check=True,
    )
    return out


@pytest.fixture(scope="module")
def manifest(run_dir) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def load(run_dir: pathlib.Path, component: str) -> dict[str, np.ndarray]:
    with np.load(run_dir / FILES[component], allow_pickle=False) as z:
        return {k: z[k] for k in z.files}


def check_frames(a: dict[str, np.ndarray], n: int, index="frame_index", time="timestamp", source="source_frame_index") -> None:
    assert a[index].dtype == np.int64 and a[index].shape == (n,)
    assert a[time].dtype == np.float64 and a[time].shape == (n,)
    assert np.all(np.diff(a[index]) > 0), "frame indices increase"
    assert np.all(np.diff(a[time]) > 0), "timestamps increase"
    # The frame's number in the 10 fps video: analysis frame k at 2 fps is the video's frame 5k, at k/2 s.
    assert a[source].dtype == np.int64 and a[source].shape == (n,)
    assert np.array_equal(a[source], a[index] * 5)
    assert np.allclose(a[time], a[source] / 10)


def test_the_folder_holds_every_artifact_and_no_temporary_file(run_dir, manifest):
    names = sorted(str(p.relative_to(run_dir)) for p in run_dir.rglob("*") if p.is_file())
    # report.html (output.report, on by default) is there exactly when the manifest records it.
    report = ["report.html"] if "report" in manifest else []
    assert names == sorted([*FILES.values(), "manifest.json", *report])
    if report:
        assert (run_dir / "report.html").stat().st_size == manifest["report"]["bytes"]
    listed = {a["path"]: a for a in manifest["artifacts"]}
    assert set(listed) == set(FILES.values())
    for path, a in listed.items():
        assert (run_dir / path).stat().st_size == a["bytes"]


def test_every_array_matches_the_manifest(run_dir, manifest):
    for a in manifest["artifacts"]:
        arrays = load(run_dir, a["component"])
        assert set(arrays) == set(a["arrays"]), a["path"]
        for name, info in a["arrays"].items():
            assert arrays[name].dtype.str.lstrip("<|=") == np.dtype(info["dtype"]).str.lstrip("<|="), (a["path"], name)
            assert list(arrays[name].shape) == info["shape"], (a["path"], name)


def test_manifest_names_the_branch_of_every_model(manifest):
    mapping = manifest["resolved_model_mapping"]
    assert {u["slot"] for u in manifest["models_used"]} == set(mapping)
    for u in manifest["models_used"]:
        assert u["branch"] == mapping[u["slot"]]["model"]
        for key in ("component", "name", "branch", "size", "architecture", "backend", "endpoint", "version", "contract", "calls", "latency_ms"):
            assert key in u, key
        assert u["calls"] > 0
        assert u["latency_ms"]["p50"] <= u["latency_ms"]["p95"]


def test_depth(run_dir, manifest):
    a = load(run_dir, "core_depth_midas")
    n = manifest["analysis"]["frames"]
    s = next(u["input_size"] for u in manifest["models_used"] if u["slot"] == "core_depth_midas")
    assert a["depth"].dtype == np.float32 and a["depth"].shape == (n, s, s)
    assert np.isfinite(a["depth"]).all()
    check_frames(a, n)
    assert list(a["frame_size"]) == [manifest["analysis"]["width"], manifest["analysis"]["height"]]


def test_flow_pairs_consecutive_frames(run_dir, manifest):
    a = load(run_dir, "core_optical_flow")
    n = manifest["analysis"]["frames"]
    s = next(u["input_size"] for u in manifest["models_used"] if u["slot"] == "core_optical_flow")
    assert a["flow"].dtype == np.float32 and a["flow"].shape == (n - 1, 2, s, s)
    check_frames(a, n - 1)
    assert a["next_frame_index"].dtype == np.int64
    assert np.array_equal(a["next_frame_index"], a["frame_index"] + 1)
    assert np.array_equal(a["next_source_frame_index"], a["source_frame_index"] + 5)
    assert np.all(a["next_timestamp"] > a["timestamp"])


def test_clip(run_dir, manifest):
    a = load(run_dir, "core_clip")
    n = manifest["analysis"]["frames"]
    prompts = manifest["profile"]["components"]["core_clip"]["prompts"]
    k = min(manifest["profile"]["components"]["core_clip"]["top_k"], len(prompts))
    p = len(prompts)
    assert a["image_embeddings"].dtype == np.float32 and a["image_embeddings"].shape[0] == n
    d = a["image_embeddings"].shape[1]
    assert a["text_embeddings"].shape == (p, d)
    assert a["prompts"].dtype.kind == "U" and list(a["prompts"]) == prompts
    assert np.allclose(np.linalg.norm(a["image_embeddings"], axis=1), 1, atol=1e-5)
    assert np.allclose(np.linalg.norm(a["text_embeddings"], axis=1), 1, atol=1e-5)
    assert a["similarity"].shape == (n, p)
    assert np.allclose(a["similarity"], a["image_embeddings"] @ a["text_embeddings"].T, atol=1e-5)
    assert np.allclose(a["probabilities"].sum(axis=1), 1, atol=1e-5)
    assert a["top_k_indices"].dtype == np.int32 and a["top_k_indices"].shape == (n, k)
    assert np.array_equal(a["top_k_indices"][:, 0], a["probabilities"].argmax(axis=1))
    check_frames(a, n)


def test_scene(run_dir, manifest):
    a = load(run_dir, "scene")
    n = manifest["analysis"]["frames"]
    k = manifest["profile"]["components"]["scene"]["top_k"]
    assert a["top_k_indices"].dtype == np.int32 and a["top_k_indices"].shape == (n, k)
    assert a["top_k_scores"].dtype == np.float32 and a["top_k_scores"].shape == (n, k)
    assert np.all(np.diff(a["top_k_scores"], axis=1) <= 0), "most probable first"
    assert a["label_names"].dtype.kind == "U" and a["label_names"].shape == (365,)
    assert a["top_k_labels"].shape == (n, k)
    assert np.array_equal(a["top_k_labels"], a["label_names"][a["top_k_indices"]])
    check_frames(a, n)


def test_detections(run_dir, manifest):
    a = load(run_dir, "core_object_detections")
    n = manifest["analysis"]["frames"]
    rows = a["score"].shape[0]
    for name, dtype, shape in [("frame_index", np.int64, (rows,)), ("timestamp", np.float64, (rows,)), ("track_id", np.int32, (rows,)),
                               ("class_id", np.int32, (rows,)), ("score", np.float32, (rows,)), ("box", np.float32, (rows, 4))]:
        assert a[name].dtype == dtype and a[name].shape == shape, name
    check_frames(a, n, "frames_index", "frames_timestamp", "frames_source_index")
    assert a["source_frame_index"].dtype == np.int64 and np.array_equal(a["source_frame_index"], a["frame_index"] * 5)
    assert set(a["frame_index"]) <= set(a["frames_index"])
    assert a["class_names"].shape == (80,) and a["class_names"][0] == "person"
    w, h = a["source_size"]
    assert [w, h] == [manifest["video"]["display_width"], manifest["video"]["display_height"]]
    if rows:
        b = a["box"]
        assert np.all(b[:, 0] <= b[:, 2]) and np.all(b[:, 1] <= b[:, 3])
        assert b.min() >= 0 and np.all(b[:, [0, 2]] <= w) and np.all(b[:, [1, 3]] <= h)
        assert np.all((a["class_id"] >= 0) & (a["class_id"] < 80))
        assert np.all((a["score"] > 0) & (a["score"] <= 1))
        if manifest["profile"]["components"]["core_object_detections"]["tracker"]["enabled"]:
            assert np.all(a["track_id"] >= 1)
        # One row per track and frame.
        pairs = set(zip(a["frame_index"].tolist(), a["track_id"].tolist()))
        assert len(pairs) == rows or not manifest["profile"]["components"]["core_object_detections"]["tracker"]["enabled"]
