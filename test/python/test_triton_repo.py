"""The committed triton/models read by Triton's own ModelConfig protobuf (from tritonclient), and the
committed contract models compared with what scripts/make_contract_models.py makes from the catalog."""
import subprocess
import sys

import pytest

from conftest import REPO

text_format = pytest.importorskip("google.protobuf.text_format")
model_config_pb2 = pytest.importorskip("tritonclient.grpc.model_config_pb2")

CONFIGS = sorted((REPO / "triton" / "models").glob("*/config.pbtxt"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name)
def test_config_parses_as_triton_model_config(path):
    cfg = text_format.Parse(path.read_text(), model_config_pb2.ModelConfig())
    assert cfg.name == path.parent.name
    assert cfg.max_batch_size == 0
    for t in list(cfg.input) + list(cfg.output):
        assert all(d > 0 for d in t.dims), f"{cfg.name}.{t.name} has a dynamic dimension"
    if cfg.platform == "ensemble":
        names = {p.parent.name for p in CONFIGS}
        steps = cfg.ensemble_scheduling.step
        assert steps and all(s.model_name in names for s in steps)
        # What the ensemble takes in is what its first step reads, and its outputs come out of the last step.
        assert {i.name for i in cfg.input} == set(steps[0].input_map.values())
        assert {o.name for o in cfg.output} == set(steps[-1].output_map.values())


def test_contract_models_are_what_the_generator_makes():
    if not (REPO / "dist" / "src" / "catalog" / "index.js").exists():
        pytest.skip("dist/ is not built: run `npm run build` first")
    r = subprocess.run([sys.executable, "scripts/make_contract_models.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
