# Triton python-backend model for a batched (max_batch_size > 0) ONNX model on the CPU tritonserver of
# the tests: the rows of all requests the dynamic batcher hands over are run through onnxruntime in one
# call when the model's batch axis is dynamic, else one row at a time (the raw int8 YOLO of the test
# data is exported with batch 1), then split back per request. Used for `<model>_end2end`.
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
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("ORT_THREADS", "1"))
        options.inter_op_num_threads = 1
        path = os.path.join(args["model_repository"], args["model_version"], "model.onnx")
        self.session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        batch = self.session.get_inputs()[0].shape[0]
        self.step = batch if isinstance(batch, int) else None

    def _run(self, feed):
        names = [n for n, _ in self.outputs]
        n = next(iter(feed.values())).shape[0]
        step = self.step or n
        parts = [self.session.run(names, {k: v[i:i + step] for k, v in feed.items()}) for i in range(0, n, step)]
        return [np.concatenate([p[j] for p in parts]) for j in range(len(names))]

    def execute(self, requests):
        try:
            feeds = [{n: pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in self.inputs} for r in requests]
            sizes = [f[self.inputs[0]].shape[0] for f in feeds]
            results = self._run({n: np.concatenate([f[n] for f in feeds]) for n in self.inputs})
        except Exception as e:
            return [pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")) for _ in requests]
        responses, at = [], 0
        for size in sizes:
            tensors = [pb_utils.Tensor(n, np.ascontiguousarray(v[at:at + size].astype(t, copy=False))) for (n, t), v in zip(self.outputs, results)]
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
            at += size
        return responses
