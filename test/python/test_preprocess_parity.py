"""The generated python-backend preprocess models (triton/models/preprocess_*/1/model.py) against the
SDK's TypeScript preprocessing (src/preprocess/normalize.ts, used by the embedded backend), on the same
real images and on a ramp of every byte value in every channel: the two must give the same FP32 bits for
every preprocess model of the repository (both do numpy's float32 arithmetic).

The TypeScript side runs from dist/ (npm run build first): a small node script decodes each image with
sharp, resizes it to the branch's S x S (or makes the ramp), and writes the UINT8 pixels and its FP32
result as raw files; the Python side feeds the same UINT8 pixels to model.py's preprocess().
"""
import importlib.util
import json
import pathlib
import subprocess
import sys
import types

import numpy as np
import pytest

from conftest import REPO
from conftest import testdata as shared_testdata

MODELS = REPO / "triton" / "models"
PREPROCESS = sorted(p.parent.parent for p in MODELS.glob("preprocess_*/1/model.py"))
IMAGES = ["bus.jpg", "zidane.jpg", "boats.jpg", "airport.jpg", "dog.jpg", "horses.jpg", "person.jpg", "mountains.jpg", "places_cam_example.jpg", "clip_diagram.png"]

NODE_SCRIPT = r"""
import { readFileSync, writeFileSync } from "node:fs";
import sharp from "sharp";
import { findModel } from "./dist/src/catalog/index.js";
import { normalizeNhwcToNchw } from "./dist/src/preprocess/normalize.js";
const jobs = JSON.parse(readFileSync(0, "utf8"));
for (const j of jobs) {
  const m = findModel(j.model);
  // The ramp: byte i of the image is (i / 3 + channel) mod 256, so every value meets every channel.
  const u8 = j.image === "ramp"
    ? new Uint8Array(j.size * j.size * 3).map((_, i) => (Math.floor(i / 3) + (i % 3)) & 255)
    : await sharp(j.image).toColourspace("srgb").removeAlpha().resize(j.size, j.size, { fit: "fill" }).raw().toBuffer();
  const f32 = normalizeNhwcToNchw(u8, [1, j.size, j.size, 3], m.normalization);
  writeFileSync(j.u8, u8);
  writeFileSync(j.f32, new Uint8Array(f32.buffer));
}
"""


class _Tensor:
    def __init__(self, name, array):
        self._name, self._array = name, array

    def name(self):
        return self._name

    def as_numpy(self):
        return self._array


def _stub_pb_utils() -> types.ModuleType:
    """Just enough of triton_python_backend_utils for model.py's TritonPythonModel."""
    pb = types.ModuleType("triton_python_backend_utils")
    pb.Tensor = _Tensor
    pb.TritonError = RuntimeError
    pb.get_input_tensor_by_name = lambda request, name: next((t for t in request if t.name() == name), None)

    class InferenceResponse:
        def __init__(self, output_tensors, error=None):
            self.output_tensors, self.error = output_tensors, error

    pb.InferenceResponse = InferenceResponse
    return pb


def load_model_py(model_dir: pathlib.Path):
    sys.modules.setdefault("triton_python_backend_utils", _stub_pb_utils())
    spec = importlib.util.spec_from_file_location(f"{model_dir.name}_model", model_dir / "1" / "model.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.fixture(scope="module")
def ts_outputs(tmp_path_factory):
    """Per preprocess model: (image name, UINT8 [1,S,S,3], TypeScript FP32 [1,3,S,S])."""
    if not (REPO / "dist" / "src" / "preprocess" / "normalize.js").exists():
        pytest.skip("dist/ is not built: run `npm run build` first")
    images = [shared_testdata("images", n) for n in IMAGES]
    tmp = tmp_path_factory.mktemp("parity")
    jobs = []
    for i, d in enumerate(PREPROCESS):
        mod = load_model_py(d)
        if mod.MODEL.startswith("raft_"):
            picks = [shared_testdata("raft", "frame_0016.png"), shared_testdata("raft", "frame_0017.png")]
        else:
            picks = [images[i % len(images)], images[(i + 3) % len(images)]]
        for k, img in enumerate([*picks, "ramp"]):
            jobs.append({"model": mod.MODEL, "size": mod.SIZE, "image": str(img), "u8": str(tmp / f"{mod.MODEL}_{k}.u8"), "f32": str(tmp / f"{mod.MODEL}_{k}.f32")})
    subprocess.run(["node", "--input-type=module", "-e", NODE_SCRIPT], cwd=REPO, input=json.dumps(jobs), text=True, check=True)
    out = {}
    for j in jobs:
        s = j["size"]
        u8 = np.fromfile(j["u8"], dtype=np.uint8).reshape(1, s, s, 3)
        f32 = np.fromfile(j["f32"], dtype=np.float32).reshape(1, 3, s, s)
        out.setdefault(j["model"], []).append((pathlib.Path(j["image"]).name, u8, f32))
    return out


def test_every_preprocess_model_is_covered():
    names = {d.name for d in PREPROCESS}
    assert len(names) == 15
    assert {"preprocess_midas_256", "preprocess_raft_512", "preprocess_clip_image_224", "preprocess_places365_448", "preprocess_yolo11x_960"} <= names


@pytest.mark.parametrize("model_dir", PREPROCESS, ids=lambda d: d.name)
def test_python_preprocess_matches_typescript(model_dir, ts_outputs):
    mod = load_model_py(model_dir)
    cases = ts_outputs[mod.MODEL]
    for image, u8, want in cases:
        got = mod.preprocess(u8)
        assert got.dtype == np.float32 and got.shape == (1, 3, mod.SIZE, mod.SIZE)
        assert got.flags["C_CONTIGUOUS"]
        differ = int(np.count_nonzero(got.view(np.uint32) != want.view(np.uint32)))
        assert differ == 0, f"{mod.MODEL} on {image}: {differ} values differ, max |python - typescript| = {float(np.max(np.abs(got - want)))}"
        # Not a trivial agreement: the inputs span a range of values.
        assert float(want.max() - want.min()) > 0.5


def test_triton_python_model_execute_names_outputs_as_the_onnx_inputs(ts_outputs):
    mod = load_model_py(MODELS / "preprocess_raft_256")
    (_, a, fa), (_, b, fb) = ts_outputs["raft_256"][:2]
    [resp] = mod.TritonPythonModel().execute([[_Tensor("INPUT0__0", a), _Tensor("INPUT1__0", b)]])
    assert resp.error is None
    assert [t.name() for t in resp.output_tensors] == ["image1", "image2"]
    np.testing.assert_array_equal(resp.output_tensors[0].as_numpy(), fa)
    np.testing.assert_array_equal(resp.output_tensors[1].as_numpy(), fb)
    # A malformed request becomes that request's error, not a crash of the batch.
    [bad] = mod.TritonPythonModel().execute([[_Tensor("INPUT0__0", a.astype(np.float32)), _Tensor("INPUT1__0", b)]])
    assert bad.error is not None and "expected UINT8" in str(bad.error)


@pytest.mark.parametrize("model_dir", [d for d in PREPROCESS if "yolo" in d.name], ids=lambda d: d.name)
def test_yolo_preprocess_is_ultralytics_division_by_255(model_dir):
    """Every byte value in every channel: the Triton YOLO preprocess gives Ultralytics' `im / 255` in float32
    exactly (the TypeScript side is held to the same bits by the test above)."""
    mod = load_model_py(model_dir)
    s = mod.SIZE
    u8 = ((np.arange(s * s * 3) // 3 + np.arange(s * s * 3) % 3) % 256).astype(np.uint8).reshape(1, s, s, 3)
    want = (u8.astype(np.float32) / 255).transpose(0, 3, 1, 2)
    got = mod.preprocess(u8)
    assert np.array_equal(got.view(np.uint32), want.view(np.uint32))
    # The reciprocal product it replaced differs: the check can fail.
    assert not np.array_equal((u8.astype(np.float32) * np.float32(1 / 255)).transpose(0, 3, 1, 2), want)
