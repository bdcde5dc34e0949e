"""The exporter's torch-free parts (scripts/export/contract.py, yolo_end2end.py): the contract checker on
the committed contract models and on broken ones, the TensorRT config writer read by Triton's own
ModelConfig, and the End2End graph on the test data's int8 YOLO."""
import json
import subprocess
import sys

import numpy as np
import onnx
import pytest

from conftest import REPO, testdata

sys.path.insert(0, str(REPO / "scripts" / "export"))
from contract import catalog_contracts, check_contract, trt_config  # noqa: E402
import yolo_end2end  # noqa: E402


@pytest.fixture(scope="module")
def contracts():
    if not (REPO / "dist" / "src" / "catalog" / "index.js").exists():
        pytest.skip("dist/ is not built: run `npm run build` first")
    return catalog_contracts()


def test_committed_contract_models_pass(contracts):
    files = sorted((REPO / "models" / "contract").glob("*.onnx"))
    assert len(files) >= 10
    for f in files:
        assert check_contract(onnx.load(str(f)), contracts[f.stem]) == [], f.name


def test_broken_exports_are_named_precisely(contracts):
    m = onnx.load(str(REPO / "models" / "contract" / "places365_resnet50_224.onnx"))
    c = contracts["places365_resnet50_224"]
    m.graph.output[0].name = "output"
    m.graph.input[0].type.tensor_type.shape.dim[2].dim_value = 256
    problems = check_contract(m, c)
    assert any("outputs are ['output']" in p for p in problems)
    assert any("input input: shape [1, 3, 256, 224]" in p for p in problems)
    m.graph.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT16
    assert any("element type FLOAT16" in p for p in check_contract(m, c))


def test_dynamic_batch_is_accepted_only_when_asked(contracts):
    m = onnx.load(str(REPO / "models" / "contract" / "midas_256.onnx"))
    for t in list(m.graph.input) + list(m.graph.output):
        t.type.tensor_type.shape.dim[0].dim_param = "batch"
    assert check_contract(m, contracts["midas_256"], batch_dynamic=True) == []
    assert check_contract(m, contracts["midas_256"]) != []


def test_trt_config_parses_as_triton_model_config(contracts):
    text_format = pytest.importorskip("google.protobuf.text_format")
    pb = pytest.importorskip("tritonclient.grpc.model_config_pb2")
    fixed = text_format.Parse(trt_config("midas_384_trt", contracts["midas_384"]), pb.ModelConfig())
    assert fixed.platform == "tensorrt_plan" and fixed.max_batch_size == 0
    assert [(t.name, list(t.dims)) for t in fixed.input] == [("pixel_values", [1, 3, 384, 384])]
    batched = text_format.Parse(trt_config("x_trt", contracts["yolo11x_640"], max_batch=64), pb.ModelConfig())
    assert batched.max_batch_size == 64 and [list(t.dims) for t in batched.input] == [[3, 640, 640]]
    assert list(batched.dynamic_batching.preferred_batch_size) == [8, 16, 32, 64]
    assert batched.dynamic_batching.max_queue_delay_microseconds == 500


def test_end2end_graph_on_the_int8_yolo(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    raw = onnx.load(str(testdata("models", "yolo11n_int8_640.onnx")))
    model = yolo_end2end.build(raw, iou=0.7, conf=0.25)
    assert [o.name for o in model.graph.output] == ["num_dets", "det_boxes", "det_scores", "det_classes"]
    path = tmp_path / "e2e.onnx"
    onnx.save(model, str(path))
    s = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = np.full((1, 3, 640, 640), 114 / 255, np.float32)
    num, boxes, scores, classes = s.run(None, {"images": x})
    assert num.dtype == np.int32 and classes.dtype == np.int32 and boxes.shape == (1, 100, 4)
    assert num[0, 0] == 0 and not scores.any()  # a grey picture: nothing


def test_end2end_script_refuses_a_non_yolo_graph(tmp_path):
    r = subprocess.run([sys.executable, str(REPO / "scripts/export/yolo_end2end.py"), str(REPO / "models/contract/places365_resnet50_224.onnx"), str(tmp_path / "x.onnx")], capture_output=True, text=True)
    assert r.returncode != 0 and "expected [N, 4 + classes, anchors]" in r.stderr


@pytest.mark.parametrize("opset", [13, 17, 19])
def test_end2end_graph_at_every_opset_with_a_dynamic_batch(opset):
    """A raw head [batch, 84, 2100] (an Identity): each image keeps its own best box, class and score."""
    ort = pytest.importorskip("onnxruntime")
    from onnx import TensorProto, helper

    vi = lambda n: helper.make_tensor_value_info(n, TensorProto.FLOAT, ["batch", 84, 2100])  # noqa: E731
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["output0"])], "raw", [vi("x")], [vi("output0")])
    model = yolo_end2end.build(helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)], ir_version=8), iou=0.7, conf=0.25)
    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.zeros((2, 84, 2100), np.float32)
    x[:, 0:4, 5] = [100, 100, 20, 20]  # cx, cy, w, h
    x[:, 4 + 3, 5] = 0.9
    x[1, 4 + 7, 5] = 0.95  # image 1: a better class for the same box -> one detection, class 7
    x[0, 0:4, 9] = [300, 300, 40, 40]
    x[0, 4 + 0, 9] = 0.5
    num, boxes, scores, classes = s.run(None, {"x": x})
    assert num.ravel().tolist() == [2, 1]
    assert classes[0, :2].tolist() == [3, 0] and classes[1, 0] == 7
    np.testing.assert_allclose(boxes[0, 0], [90, 90, 110, 110])
    np.testing.assert_allclose(scores[1, :2], [0.95, 0])


def test_dump_contracts_needs_no_family_and_feeds_contracts(tmp_path, contracts):
    """How the lent GPU machine (no node) gets the catalog: --dump-contracts here, --contracts there."""
    export = str(REPO / "scripts/export/export.py")
    r = subprocess.run([sys.executable, export, "--dump-contracts"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == contracts
    (tmp_path / "contracts.json").write_text(r.stdout)
    assert catalog_contracts(str(tmp_path / "contracts.json")) == contracts
    r = subprocess.run([sys.executable, export, "yolo11", "--random"], capture_output=True, text=True, cwd=REPO)
    assert r.returncode == 2 and "FAMILY and --out are required" in r.stderr


def test_sample_inputs_follow_every_contract(contracts):
    """The export's check inputs (no torch needed to make them) for every catalog contract: the shapes and dtypes
    it declares, images normalised as the generated preprocess does (a catalog key renamed under it failed
    the export on the GPU machine, not here)."""
    pytest.importorskip("PIL")
    sys.path.insert(0, str(REPO / "scripts" / "export"))
    try:
        import export
    finally:
        sys.path.pop(0)
    image = str(testdata("images", "bus.jpg"))
    for name, c in contracts.items():
        xs = export.sample_inputs(c, image)
        assert [list(x.shape) for x in xs] == [i["shape"] for i in c["inputs"]], name
        assert [x.dtype.name for x in xs] == ["int64" if i["datatype"] == "INT64" else "float32" for i in c["inputs"]], name
        n = c.get("normalization")
        if n and c["inputs"][0]["datatype"] == "FP32":
            lo = min((0 - m) / s for m, s in zip(n["mean"], n["std"]))
            hi = max((255 / n["divisor"] - m) / s for m, s in zip(n["mean"], n["std"]))
            assert lo - 1e-5 <= xs[0].min() and xs[0].max() <= hi + 1e-5, name
