"""Triton python-backend preprocess for GPU benchmarks: the generated preprocess_<model> math
(UINT8 NHWC -> FP32 NCHW, out = (x / DIVISOR - MEAN[c]) / STD[c]) in PyTorch, on the instance's GPU
(KIND_GPU) or on the CPU (KIND_CPU).

The generated model.py sits beside this file as numpy_preprocess.py and stays the one source of its
constants (MODEL, DIVISOR, MEAN, STD, TENSORS). Why not run it as it is: the python-backend stub in
nvidia-pytriton 0.7.0 needs numpy < 2 (with numpy 2, as_numpy() returns wrong values and numpy outputs
are rejected), while the GPU machine's PyTorch environment has numpy 2; tensors here go through DLPack
only. On the GPU it also uploads 3 bytes a pixel instead of 12 and hands the `_onnx` model its input in
GPU memory, where the python backend allows it.
"""
import importlib.util
import json
import os

import torch
import triton_python_backend_utils as pb_utils

_spec = importlib.util.spec_from_file_location("numpy_preprocess", os.path.join(os.path.dirname(__file__), "numpy_preprocess.py"))
generated = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(generated)


class TritonPythonModel:
    def initialize(self, args):
        self.name = json.loads(args["model_config"])["name"]
        gpu = args.get("model_instance_kind") == "GPU"
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if gpu else "cpu")
        if gpu:
            torch.cuda.set_device(self.device)
        self.divisor = float(generated.DIVISOR)
        # The generated model's operations in its order, in float32, so the outputs are the same.
        self.mean = torch.tensor(generated.MEAN, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)
        self.std = torch.tensor(generated.STD, dtype=torch.float32, device=self.device).view(1, 3, 1, 1)

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                outputs = []
                for src, dst in generated.TENSORS:
                    image = torch.utils.dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(request, src).to_dlpack())
                    if image.dtype != torch.uint8 or image.ndim != 4 or image.shape[3] != 3:
                        raise ValueError(f"expected UINT8 [N, H, W, 3], got {image.dtype} {list(image.shape)}")
                    x = image.to(self.device).permute(0, 3, 1, 2).float()
                    x = ((x / self.divisor - self.mean) / self.std).contiguous()
                    outputs.append(pb_utils.Tensor.from_dlpack(dst, torch.utils.dlpack.to_dlpack(x)))
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)  # so the server's compute time covers the GPU work
                responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
            except Exception as e:  # one bad request must not fail the others
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")))
        return responses
