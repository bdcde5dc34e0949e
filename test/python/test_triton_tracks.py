"""`triton-repo --tracks` output (tracks C and D) read by Triton's own ModelConfig protobuf, checked
against the seeds' settings (seed 000: tiers, batch sizes, windows, queue policy; track C engine)."""
import re
import subprocess
import sys

import pytest

from conftest import REPO

text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

CLI = REPO / "dist" / "src" / "cli" / "main.js"

# tier -> (ensemble suffix, max batch, window us, preferred sizes, queue timeout us, max queue size)
TIERS = {
    "streaming": ("_streaming", 8, 100, [1, 2, 4, 8], 50_000, 8),
    "balanced": ("", 64, 500, [4, 8, 16, 32, 64], 50_000, 64),  # seed 000's example config, verbatim
    "batch": ("_batch", 128, 5000, [16, 32, 64, 128], 1_000_000, 128),
}
E2E_OUTPUTS = [
    ("num_dets", model_config_pb2.TYPE_INT32, [1]),
    ("det_boxes", model_config_pb2.TYPE_FP32, [100, 4]),
    ("det_scores", model_config_pb2.TYPE_FP32, [100]),
    ("det_classes", model_config_pb2.TYPE_INT32, [100]),
]


@pytest.fixture(scope="module")
def repo(tmp_path_factory):
    if not CLI.exists():
        pytest.skip("dist/ is not built: run `npm run build` first")
    out = tmp_path_factory.mktemp("tracks") / "models"
    r = subprocess.run(["node", str(CLI), "triton-repo", "--out", str(out), "--tracks", "--architecture", "yolo11n"], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    return out


def config(repo, name):
    path = repo / name / "config.pbtxt"
    assert path.exists(), f"{name} was not generated"
    cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    assert cfg.name == name
    return cfg


def io(tensors):
    return [(t.name, t.data_type, list(t.dims)) for t in tensors]


def test_every_generated_config_parses(repo):
    configs = sorted(repo.glob("*/config.pbtxt"))
    assert len(configs) > 47
    for p in configs:
        text_format.Parse(p.read_text(), model_config_pb2.ModelConfig())


@pytest.mark.parametrize("arch", ["yolo11n", "yolo11x"])
@pytest.mark.parametrize("size", [320, 640, 960])
@pytest.mark.parametrize("tier", list(TIERS))
def test_track_d_tier(repo, arch, size, tier):
    suffix, max_batch, window, preferred, timeout, queue = TIERS[tier]
    ens = config(repo, f"{arch}_{size}_gpu_e2e{suffix}")
    assert ens.platform == "ensemble" and ens.max_batch_size == max_batch
    assert io(ens.input) == [("INPUT__0", model_config_pb2.TYPE_UINT8, [-1])]
    assert io(ens.output) == E2E_OUTPUTS
    # Triton's ModelConfig keeps ensemble_scheduling and dynamic_batching in one oneof: the ensemble
    # cannot batch, so the tier's batching is on its first step.
    assert ens.WhichOneof("scheduling_choice") == "ensemble_scheduling"
    dali_step, e2e_step = ens.ensemble_scheduling.step
    assert dali_step.model_name == f"yolo_preprocess_dali_{size}{suffix}"
    assert dict(dali_step.input_map) == {"encoded_images": "INPUT__0"}
    assert e2e_step.model_name == f"{arch}_{size}_end2end"
    assert dict(e2e_step.input_map) == {"images": dict(dali_step.output_map)["preprocessed_images"]}
    assert set(dict(e2e_step.output_map).values()) == {o.name for o in ens.output}

    dali = config(repo, dali_step.model_name)
    assert dali.backend == "dali" and dali.max_batch_size == max_batch
    assert io(dali.input) == [("encoded_images", model_config_pb2.TYPE_UINT8, [-1])]
    assert dali.input[0].allow_ragged_batch, "JPEGs of different lengths batch only as a ragged input"
    assert io(dali.output) == [("preprocessed_images", model_config_pb2.TYPE_FP32, [3, size, size])]
    db = dali.dynamic_batching
    assert list(db.preferred_batch_size) == preferred and db.max_queue_delay_microseconds == window
    assert max(preferred) == max_batch
    qp = db.default_queue_policy
    assert qp.timeout_action == model_config_pb2.ModelQueuePolicy.REJECT
    assert (qp.default_timeout_microseconds, qp.allow_timeout_override, qp.max_queue_size) == (timeout, False, queue)
    assert [g.kind for g in dali.instance_group] == [model_config_pb2.ModelInstanceGroup.KIND_GPU]
    assert dali.parameters["num_threads"].string_value == "4"
    script = (repo / dali_step.model_name / "1" / "model.py").read_text()
    assert f"SIZE = {size}" in script and f"MAX_BATCH = {max_batch}" in script and '"not_larger"' in script
    assert 'name="encoded_images"' in script and "out_of_bounds_policy=\"pad\"" in script


@pytest.mark.parametrize("arch", ["yolo11n", "yolo11x"])
@pytest.mark.parametrize("size", [320, 640, 960])
def test_end2end_engine_and_track_c(repo, arch, size):
    e2e = config(repo, f"{arch}_{size}_end2end")
    assert e2e.platform == "onnxruntime_onnx" and e2e.max_batch_size == 128
    assert io(e2e.input) == [("images", model_config_pb2.TYPE_FP32, [3, size, size])]
    assert io(e2e.output) == E2E_OUTPUTS
    db = e2e.dynamic_batching
    assert list(db.preferred_batch_size) == [8, 16, 32, 64, 128] and db.max_queue_delay_microseconds == 500

    c = config(repo, f"{arch}_{size}_e2e")
    assert c.platform == "ensemble" and c.max_batch_size == 0
    assert io(c.input) == [("INPUT__0", model_config_pb2.TYPE_UINT8, [1, size, size, 3])]
    assert io(c.output) == [(n, t, [1] + d) for n, t, d in E2E_OUTPUTS]
    assert [s.model_name for s in c.ensemble_scheduling.step] == [f"preprocess_{arch}_{size}", f"{arch}_{size}_end2end"]


def test_without_tracks_nothing_of_them_is_written(tmp_path):
    if not CLI.exists():
        pytest.skip("dist/ is not built")
    out = tmp_path / "m"
    subprocess.run(["node", str(CLI), "triton-repo", "--out", str(out)], check=True, capture_output=True)
    names = {p.parent.name for p in out.glob("*/config.pbtxt")}
    assert len(names) == 47 and not any("e2e" in n or "dali" in n or "end2end" in n for n in names)


def test_the_seed_ensemble_config_is_rejected_by_triton_s_schema():
    """Seed 000's balanced ensemble puts dynamic_batching on the ensemble: Triton's schema refuses it."""
    seed = 'name: "e" platform: "ensemble" max_batch_size: 64 ensemble_scheduling { step [ { model_name: "a" model_version: -1 } ] } dynamic_batching { max_queue_delay_microseconds: 500 }'
    with pytest.raises(text_format.ParseError, match="oneof"):
        text_format.Parse(seed, model_config_pb2.ModelConfig())


def test_gpu_bench_repository_keeps_the_tiers(repo, tmp_path):
    """bench/gpu/build_gpu_repo.py (the H200 tier bench's server) swaps the DALI steps and the End2End engine
    for its PyTorch stand-ins and must keep every tier's batching and queue policy as generated."""
    out = tmp_path / "gpu"
    models = ",".join(["yolo11n_640", "yolo11n_640_e2e"] + [f"yolo11n_640_gpu_e2e{TIERS[t][0]}" for t in TIERS])
    r = subprocess.run([sys.executable, str(REPO / "bench" / "gpu" / "build_gpu_repo.py"), "--out", str(out), "--source", str(repo), "--models", models],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["preprocess_yolo11n_640", "yolo11n_640", "yolo11n_640_e2e", "yolo11n_640_end2end", "yolo11n_640_onnx"]
        + [f"yolo11n_640_gpu_e2e{s}" for s, *_ in TIERS.values()] + [f"yolo_preprocess_dali_640{s}" for s, *_ in TIERS.values()])
    for tier, (suffix, max_batch, window, preferred, timeout_us, queue) in TIERS.items():
        gpu, gen = config(out, f"yolo_preprocess_dali_640{suffix}"), config(repo, f"yolo_preprocess_dali_640{suffix}")
        assert gpu.backend == "python" and gen.backend == "dali"
        assert (out / gpu.name / "1" / "model.py").read_text() == (REPO / "bench" / "gpu" / "torch_dali.py").read_text()
        assert gpu.max_batch_size == max_batch and list(gpu.dynamic_batching.preferred_batch_size) == preferred
        assert gpu.dynamic_batching == gen.dynamic_batching and io(gpu.input) == io(gen.input) and io(gpu.output) == io(gen.output)
        assert gpu.input[0].allow_ragged_batch
        assert config(out, f"yolo11n_640_gpu_e2e{suffix}") == config(repo, f"yolo11n_640_gpu_e2e{suffix}")  # ensembles byte for byte
    # The PyTorch preprocess reads its constants from the generated model.py beside it: every name it takes
    # must be there (a renamed constant failed the model's load on the GPU machine, not here).
    generated = (out / "preprocess_yolo11n_640" / "1" / "numpy_preprocess.py").read_text()
    taken = set(re.findall(r"generated\.([A-Z_]+)", (REPO / "bench" / "gpu" / "torch_preprocess.py").read_text()))
    assert taken and all(re.search(rf"^{name} = ", generated, re.M) for name in taken), taken
    e2e, gen = config(out, "yolo11n_640_end2end"), config(repo, "yolo11n_640_end2end")
    assert e2e.backend == "python" and not e2e.platform and e2e.dynamic_batching == gen.dynamic_batching and e2e.max_batch_size == 128
    assert io(e2e.output) == E2E_OUTPUTS and e2e.instance_group[0].kind == model_config_pb2.ModelInstanceGroup.KIND_GPU
