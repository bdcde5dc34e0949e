# Triton python-backend model that serves `<version>/model.onnx` with onnxruntime on the CPU.
#
# NVIDIA's tritonserver from the PyPI wheel nvidia-pytriton has no onnxruntime backend, so the
# integration tests (test/support/real-tritonserver.ts) put this file as `<model>_onnx/1/model.py`, next
# to the contract model as `1/model.onnx`, and turn the generated `platform: "onnxruntime_onnx"` into
# `backend: "python"`. Tensor names and types come from the model's config.pbtxt, so one file serves
# every `<model>_onnx` of the catalog. The ensembles and preprocess_* models stay as generated.
#
# Threads: ORT_THREADS (default 1) intra-op threads per session and one inter-op thread, so ~16
# sessions on a 2-core CI machine do not oversubscribe it.
import json
import os

import numpy as np
import onnxruntime as ort
import triton_python_backend_utils as pb_utils


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.name = config["name"]
        self.inputs = [t["name"] for t in config["input"]]
        self.outputs = [(t["name"], pb_utils.triton_string_to_numpy(t["data_type"])) for t in config["output"]]
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "1"))
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        have = {i.name for i in self.session.get_inputs()}
        missing = [n for n in self.inputs if n not in have]
        if missing:
            raise ValueError(f"{self.name}: {path} has no input(s) {missing}; it has {sorted(have)}")

    def execute(self, requests):
        names = [n for n, _ in self.outputs]
        responses = []
        for request in requests:
            try:
                feed = {n: pb_utils.get_input_tensor_by_name(request, n).as_numpy() for n in self.inputs}
                results = self.session.run(names, feed)
                tensors = [
                    pb_utils.Tensor(n, np.ascontiguousarray(v.astype(t, copy=False)))
                    for (n, t), v in zip(self.outputs, results)
                ]
                responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            except Exception as e:  # one bad request must not fail the others
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")))
        return responses
