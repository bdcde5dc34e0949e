"""NVIDIA's own tritonclient.grpc against the SDK's protocol-faithful test server.

If the .proto files in proto/ were not Triton's to the byte, NVIDIA's client (built from Triton's own
protobuf files) could not talk to a server built from ours. Then the SDK's TypeScript client makes the
same inference calls (test/support/crosscheck-client.ts) and must get byte-identical outputs.

Needs the compiled tree (`npx tsc -p .`, which `npm test` runs first): dist/test/support/serve.js.
"""

import base64
import json
import os
import queue
import shutil
import struct
import subprocess
import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

grpcclient = pytest.importorskip("tritonclient.grpc", reason="tritonclient[grpc] is not installed (pip install -r requirements-dev.txt)")
from tritonclient.grpc import model_config_pb2  # noqa: E402
from tritonclient.utils import InferenceServerException, np_to_triton_dtype  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
SERVE = REPO / "dist" / "test" / "support" / "serve.js"
CROSSCHECK = REPO / "dist" / "test" / "support" / "crosscheck-client.js"


def require_built(path: Path) -> None:
    if not path.exists():
        pytest.skip(f"{path.relative_to(REPO)} is absent: compile the tree first (npx tsc -p .; npm test does it)")


def node() -> str:
    exe = shutil.which("node")
    if not exe:
        pytest.skip("node is not on PATH")
    return exe


@pytest.fixture(scope="module")
def address(tmp_path_factory):
    require_built(SERVE)
    log = tmp_path_factory.mktemp("serve") / "stderr.txt"
    with open(log, "wb") as err:
        proc = subprocess.Popen([node(), str(SERVE)], cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err)
    # A server that hangs before printing its address is killed rather than hanging the test run.
    watchdog = threading.Timer(30, proc.kill)
    watchdog.start()
    line = proc.stdout.readline()
    watchdog.cancel()
    if not line:
        proc.wait(timeout=10)
        pytest.fail(f"serve.js exited ({proc.returncode}) before printing its address:\n{log.read_text()}")
    try:
        yield json.loads(line)["address"]
    finally:
        proc.stdin.close()  # serve.js stops when its stdin closes
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def client(address):
    c = grpcclient.InferenceServerClient(url=address)
    yield c
    c.close()


def raw_bytes(arr: np.ndarray, datatype: str) -> bytes:
    """Triton's raw encoding: little-endian row-major; BYTES elements with a 4-byte length prefix."""
    if datatype == "BYTES":
        return b"".join(struct.pack("<I", len(x)) + x for x in (bytes(v) for v in arr.reshape(-1)))
    return np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()


# ---- the inference cases, shared by the tritonclient checks and the TypeScript cross-check ----


@dataclass
class Case:
    id: str
    model: str
    inputs: dict
    outputs: list = None
    parameters: dict = field(default_factory=dict)

    def datatype(self, name: str) -> str:
        arr = self.inputs[name]
        return "BYTES" if arr.dtype == np.object_ else np_to_triton_dtype(arr.dtype)


def upper_ascii(b: bytes) -> bytes:
    return bytes(c - 0x20 if 0x61 <= c <= 0x7A else c for c in b)


def make_cases() -> list:
    rng = np.random.default_rng(20240611)
    frame = rng.integers(0, 256, size=(1, 48, 64, 3), dtype=np.uint8)
    a = rng.integers(-(2**40), 2**40, size=(1, 16), dtype=np.int64)
    b = rng.integers(-(2**40), 2**40, size=(1, 16), dtype=np.int64)
    a[0, 0], b[0, 0] = 2**62, 2**61  # a value beyond 2^53: int64 must not pass through a double
    f32 = rng.standard_normal((1, 33)).astype(np.float32)
    f16 = np.array([[0.5, -1.25, 1000.0, 6.1e-5, 0.0, -0.0, 3.140625, 65504 / 4]], dtype=np.float16)
    strings = np.array([b"hello", b"", "\u00e9t\u00e9 ok".encode(), b"\x00\xff Mixed Case"], dtype=np.object_)
    cases = [
        Case("uint8_echo", "echo_uint8", {"INPUT__0": frame}),
        Case("int64_add", "add_int64", {"INPUT0": a, "INPUT1": b}),
        Case("int64_add_output1_only", "add_int64", {"INPUT0": a, "INPUT1": b}, outputs=["OUTPUT1"]),
        Case("fp32_scale", "scale_fp32", {"INPUT__0": f32}),
        Case("fp32_scale_param", "scale_fp32", {"INPUT__0": f32}, parameters={"scale": 0.5}),
        Case("fp16_double", "half_fp16", {"INPUT__0": f16}),
        Case("bytes_upper", "bytes_upper", {"INPUT__0": strings}),
    ]
    for dt, arr in {
        "bool": np.array([True, False, True]),
        "uint16": np.array([0, 1, 65535], dtype=np.uint16),
        "int8": np.array([-128, 0, 127], dtype=np.int8),
        "uint64": np.array([0, 2**64 - 1, 2**63], dtype=np.uint64),
        "fp64": np.array([0.1, -2.5, 1.7e308, 5e-324]),
    }.items():
        cases.append(Case(f"identity_{dt}", f"identity_{dt}", {"INPUT__0": arr}))
    return cases


CASES = make_cases()


def expected(case: Case) -> dict:
    x = case.inputs
    if case.model == "echo_uint8" or case.model.startswith("identity_"):
        return {"OUTPUT__0": x["INPUT__0"]}
    if case.model == "add_int64":
        out = {"OUTPUT0": x["INPUT0"] + x["INPUT1"], "OUTPUT1": x["INPUT0"] - x["INPUT1"]}
        return {k: v for k, v in out.items() if case.outputs is None or k in case.outputs}
    if case.model == "scale_fp32":
        return {"OUTPUT__0": x["INPUT__0"] * np.float32(case.parameters.get("scale", 2))}
    if case.model == "half_fp16":
        return {"OUTPUT__0": x["INPUT__0"] * np.float16(2)}
    if case.model == "bytes_upper":
        return {"OUTPUT__0": np.array([upper_ascii(s) for s in x["INPUT__0"]], dtype=np.object_)}
    raise AssertionError(f"no expectation for {case.model}")


def infer_with_tritonclient(client, case: Case):
    inputs = []
    for name, arr in case.inputs.items():
        i = grpcclient.InferInput(name, list(arr.shape), case.datatype(name))
        i.set_data_from_numpy(arr)
        inputs.append(i)
    outputs = [grpcclient.InferRequestedOutput(n) for n in case.outputs] if case.outputs else None
    return client.infer(case.model, inputs, outputs=outputs, parameters=case.parameters or None, request_id=case.id)


def outputs_as_raw(result) -> dict:
    """Every output of a tritonclient result as (datatype, shape, raw bytes)."""
    out = {}
    for o in result.get_response().outputs:
        out[o.name] = (o.datatype, list(o.shape), raw_bytes(result.as_numpy(o.name), o.datatype))
    return out


# ---- health, metadata, repository ----


def test_health(client):
    assert client.is_server_live()
    assert client.is_server_ready()
    assert client.is_model_ready("echo_uint8")
    # Triton reports an unknown model as not ready, not as an error.
    assert not client.is_model_ready("no_such_model")


def test_server_metadata(client):
    md = client.get_server_metadata()
    assert md.name == "triton"
    assert md.version
    assert {"model_repository", "system_shared_memory", "statistics"} <= set(md.extensions)


def test_model_metadata(client):
    md = client.get_model_metadata("add_int64")
    assert md.name == "add_int64"
    assert list(md.versions) == ["1"]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.inputs] == [("INPUT0", "INT64", [1, 16]), ("INPUT1", "INT64", [1, 16])]
    assert [(t.name, t.datatype, list(t.shape)) for t in md.outputs] == [("OUTPUT0", "INT64", [1, 16]), ("OUTPUT1", "INT64", [1, 16])]
    as_json = client.get_model_metadata("bytes_upper", as_json=True)
    assert as_json["inputs"] == [{"name": "INPUT__0", "datatype": "BYTES", "shape": ["-1"]}]


def test_model_config(client):
    config = client.get_model_config("half_fp16").config
    assert config.name == "half_fp16"
    assert config.backend == "python"
    assert config.max_batch_size == 0
    assert [(t.name, t.data_type, list(t.dims)) for t in config.input] == [("INPUT__0", model_config_pb2.TYPE_FP16, [1, -1])]
    assert [(t.name, t.data_type, list(t.dims)) for t in config.output] == [("OUTPUT__0", model_config_pb2.TYPE_FP16, [1, -1])]
    assert client.get_model_config("bytes_upper").config.input[0].data_type == model_config_pb2.TYPE_STRING


def test_repository_index(client):
    index = {m.name: m for m in client.get_model_repository_index().models}
    assert {"echo_uint8", "add_int64", "scale_fp32", "half_fp16", "bytes_upper", "identity_bf16"} <= set(index)
    assert all(m.state == "READY" and m.version == "1" for m in index.values())


def test_unload_and_load(client):
    model = "identity_int16"
    client.unload_model(model)
    try:
        assert not client.is_model_ready(model)
        entry = next(m for m in client.get_model_repository_index().models if m.name == model)
        assert (entry.state, entry.reason) == ("UNAVAILABLE", "unloaded")
        assert client.is_server_ready()  # strict readiness forgives models unloaded on purpose
        inp = grpcclient.InferInput("INPUT__0", [1], "INT16")
        inp.set_data_from_numpy(np.array([1], dtype=np.int16))
        with pytest.raises(InferenceServerException) as e:
            client.infer(model, [inp])
        assert e.value.status() == "StatusCode.NOT_FOUND"
        assert e.value.message() == f"Request for unknown model: '{model}' has no available versions"
    finally:
        client.load_model(model)
    assert client.is_model_ready(model)


def test_statistics(client):
    inp = grpcclient.InferInput("INPUT__0", [2], "INT32")
    inp.set_data_from_numpy(np.array([1, 2], dtype=np.int32))
    before = client.get_inference_statistics("identity_int32").model_stats[0].inference_stats.success.count
    client.infer("identity_int32", [inp])
    stats = client.get_inference_statistics("identity_int32").model_stats[0]
    assert (stats.name, stats.version) == ("identity_int32", "1")
    assert stats.inference_stats.success.count == before + 1
    assert stats.inference_count >= 1 and stats.execution_count >= 1


# ---- inference ----


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_infer(client, case):
    result = infer_with_tritonclient(client, case)
    response = result.get_response()
    assert (response.model_name, response.model_version, response.id) == (case.model, "1", case.id)
    want = expected(case)
    assert [o.name for o in response.outputs] == list(want)
    for name, arr in want.items():
        got = result.as_numpy(name)
        assert got.dtype == arr.dtype and got.shape == arr.shape, name
        # Exact, bit for bit (-0.0 and NaN included): compare the encodings.
        assert raw_bytes(got, result.get_output(name).datatype) == raw_bytes(arr, result.get_output(name).datatype), name


def test_frame_sized_tensors(client):
    frame = np.random.default_rng(1).integers(0, 256, size=(1, 960, 960, 3), dtype=np.uint8)
    inp = grpcclient.InferInput("INPUT__0", list(frame.shape), "UINT8")
    inp.set_data_from_numpy(frame)
    out = client.infer("yolo_shape_960", [inp]).as_numpy("OUTPUT__0")
    assert out.shape == (1, 84, 18900) and out.dtype == np.float32
    i = np.arange(out.size)
    flat = frame.reshape(-1)
    np.testing.assert_array_equal(out.reshape(-1), (flat[i % flat.size] / np.float32(255) + i).astype(np.float32))


def test_unknown_model(client):
    inp = grpcclient.InferInput("INPUT__0", [1], "FP32")
    inp.set_data_from_numpy(np.zeros(1, dtype=np.float32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("no_such_model", [inp])
    assert e.value.status() == "StatusCode.NOT_FOUND"
    assert e.value.message() == "Request for unknown model: 'no_such_model' is not found"
    with pytest.raises(InferenceServerException) as e:
        client.get_model_metadata("no_such_model")
    assert e.value.status() == "StatusCode.NOT_FOUND"


def test_wrong_shape(client):
    inputs = []
    for name in ("INPUT0", "INPUT1"):
        i = grpcclient.InferInput(name, [1, 8], "INT64")
        i.set_data_from_numpy(np.zeros((1, 8), dtype=np.int64))
        inputs.append(i)
    with pytest.raises(InferenceServerException) as e:
        client.infer("add_int64", inputs, request_id="bad-shape")
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert e.value.message() == "[request id: bad-shape] unexpected shape for input 'INPUT0' for model 'add_int64'. Expected [1,16], got [1,8]. "


def test_wrong_datatype_and_missing_input(client):
    i = grpcclient.InferInput("INPUT0", [1, 16], "INT32")
    i.set_data_from_numpy(np.zeros((1, 16), dtype=np.int32))
    with pytest.raises(InferenceServerException) as e:
        client.infer("add_int64", [i])
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert e.value.message() == (
        "[request id: <id_unknown>] expected 2 inputs but got 1 inputs for model 'add_int64'. "
        "Got input(s) ['INPUT0'], but missing required input(s) ['INPUT1']. Please provide all required input(s)."
    )
    j = grpcclient.InferInput("INPUT__0", [1, 2], "FP64")
    j.set_data_from_numpy(np.zeros((1, 2)))
    with pytest.raises(InferenceServerException) as e:
        client.infer("scale_fp32", [j])
    assert e.value.message() == "[request id: <id_unknown>] inference input 'INPUT__0' data-type is 'FP64', but model 'scale_fp32' expects 'FP32'"


def test_stream_in_order_with_a_failed_request(address):
    c = grpcclient.InferenceServerClient(url=address)
    got = queue.Queue()
    c.start_stream(callback=lambda result, error: got.put((result, error)))
    try:
        values = [1, 2, -3, 4, 5]
        for k, v in enumerate(values):
            i = grpcclient.InferInput("INPUT__0", [1], "INT32")
            i.set_data_from_numpy(np.array([v], dtype=np.int32))
            c.async_stream_infer("fails_on_negative", [i], request_id=f"r{k}")
        replies = [got.get(timeout=10) for _ in values]
    finally:
        c.stop_stream()
        c.close()
    for k, (v, (result, error)) in enumerate(zip(values, replies)):
        if v < 0:
            assert result is None
            assert "negative input -3" in error.message()
        else:
            assert error is None
            assert result.get_response().id == f"r{k}"
            assert result.as_numpy("OUTPUT__0").tolist() == [2 * v]


def test_system_shared_memory(client):
    shm = pytest.importorskip("tritonclient.utils.shared_memory")
    key = f"/va_sdk_crosscheck_{os.getpid()}"
    handle = shm.create_shared_memory_region("crosscheck", key, 64)
    try:
        data = np.array([1.5, -2.0, 3.25, 4.0], dtype=np.float32)
        shm.set_shared_memory_region(handle, [data])
        client.register_system_shared_memory("region0", key, 64)
        status = client.get_system_shared_memory_status(as_json=True)
        assert status["regions"] == {"region0": {"name": "region0", "key": key, "byte_size": "64"}}
        inp = grpcclient.InferInput("INPUT__0", [4], "FP32")
        inp.set_shared_memory("region0", 16)
        out = grpcclient.InferRequestedOutput("OUTPUT__0")
        out.set_shared_memory("region0", 16, offset=32)
        result = client.infer("identity_fp32", [inp], outputs=[out])
        o = result.get_output("OUTPUT__0")
        assert (o.datatype, list(o.shape)) == ("FP32", [4])
        np.testing.assert_array_equal(shm.get_contents_as_numpy(handle, np.float32, [4], offset=32), data)
        with pytest.raises(InferenceServerException) as e:
            client.register_system_shared_memory("region0", key, 64)
        assert e.value.status() == "StatusCode.ALREADY_EXISTS"
    finally:
        client.unregister_system_shared_memory()
        shm.destroy_shared_memory_region(handle)
    assert client.get_system_shared_memory_status(as_json=True) == {}


def test_cuda_shared_memory_is_refused_as_on_a_cpu_only_server(client):
    with pytest.raises(InferenceServerException) as e:
        client.register_cuda_shared_memory("gpu0", b"\0" * 64, 0, 64)
    assert e.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "GPUs not supported" in e.value.message()


# ---- the TypeScript client, same calls, same bytes ----


def test_typescript_client_matches_tritonclient(client, address, tmp_path):
    require_built(CROSSCHECK)
    spec = {
        "cases": [
            {
                "id": c.id,
                "model": c.model,
                "inputs": [
                    {"name": n, "datatype": c.datatype(n), "shape": list(a.shape), "raw_b64": base64.b64encode(raw_bytes(a, c.datatype(n))).decode()}
                    for n, a in c.inputs.items()
                ],
                **({"outputs": c.outputs} if c.outputs else {}),
                **({"parameters": c.parameters} if c.parameters else {}),
            }
            for c in CASES
        ]
    }
    path = tmp_path / "cases.json"
    path.write_text(json.dumps(spec))
    run = subprocess.run([node(), str(CROSSCHECK), address, str(path)], cwd=REPO, capture_output=True, timeout=120)
    assert run.returncode == 0, run.stderr.decode()
    ts = json.loads(run.stdout)["results"]
    for c in CASES:
        py = outputs_as_raw(infer_with_tritonclient(client, c))
        assert "error" not in ts[c.id], f"{c.id}: {ts[c.id]}"
        got = {n: (o["datatype"], o["shape"], base64.b64decode(o["raw_b64"])) for n, o in ts[c.id]["outputs"].items()}
        assert got == py, c.id
