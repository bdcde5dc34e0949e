# Triton python-backend stand-in for the generated `yolo_preprocess_dali_<S>[_tier]` (DALI) on the CPU
# tritonserver of the tests, which has no DALI backend. Same contract (encoded_images UINT8 [-1], ragged,
# batched -> preprocessed_images FP32 [3, S, S]) and the same geometry as the DALI pipeline of
# src/triton-repo/dali.ts, in numpy/PIL:
# - decode: PIL (libjpeg), RGB;
# - fn.resize(mode="not_larger", antialias=False, subpixel_scale=False, linear): r = float32 min(S/h, S/w),
#   extents roundf(in * r) (halves away from zero), the whole image stretched onto them: sampled at
#   x_src = (x + 0.5) * in / out - 0.5, edge pixels repeated, rounded to uint8 (cv2.INTER_LINEAR's mapping);
# - fn.crop(crop=(S, S), crop_pos 0.5, out_of_bounds_policy="pad", fill 114): anchor roundf((out - S) / 2);
# - fn.crop_mirror_normalize(std 255, CHW, FLOAT).
# test/support/real-tritonserver.ts's buildTracksRepository puts it in place of the DALI model.py.
import json

import numpy as np
import triton_python_backend_utils as pb_utils
from io import BytesIO
from PIL import Image

FILL = 114


def round_half_away(v):
    return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def geometry(w, h, size):
    r = min(np.float32(size) / np.float32(h), np.float32(size) / np.float32(w))
    r = np.float32(r)
    rw = max(1, round_half_away(float(np.float32(w * r))))
    rh = max(1, round_half_away(float(np.float32(h * r))))
    left = -round_half_away(float(np.float32(0.5 * (rw - size))))
    top = -round_half_away(float(np.float32(0.5 * (rh - size))))
    return float(r), rw, rh, left, top


def _taps(n_in, n_out):
    x = (np.arange(n_out, dtype=np.float64) + 0.5) * (n_in / n_out) - 0.5
    x0 = np.floor(x)
    f = (x - x0).astype(np.float32)
    i0 = np.clip(x0.astype(np.int64), 0, n_in - 1)
    i1 = np.clip(x0.astype(np.int64) + 1, 0, n_in - 1)
    return i0, i1, f


def letterbox(rgb, size):
    h, w = rgb.shape[:2]
    r, rw, rh, left, top = geometry(w, h, size)
    src = rgb.astype(np.float32)
    y0, y1, fy = _taps(h, rh)
    x0, x1, fx = _taps(w, rw)
    rows = src[y0] * (1 - fy)[:, None, None] + src[y1] * fy[:, None, None]
    out = rows[:, x0] * (1 - fx)[None, :, None] + rows[:, x1] * fx[None, :, None]
    resized = np.clip(np.floor(out + 0.5), 0, 255).astype(np.uint8)
    canvas = np.full((size, size, 3), FILL, np.uint8)
    # The crop window may cut as well as pad (an extent rounded up past S): take the overlap.
    sy, sx = max(0, -top), max(0, -left)
    dy, dx = max(0, top), max(0, left)
    hh, ww = min(rh - sy, size - dy), min(rw - sx, size - dx)
    canvas[dy:dy + hh, dx:dx + ww] = resized[sy:sy + hh, sx:sx + ww]
    return canvas


def preprocess(jpeg: np.ndarray, size: int) -> np.ndarray:
    """One encoded image (UINT8 [L]) -> FP32 [3, S, S] in 0..1."""
    image = Image.open(BytesIO(jpeg.tobytes()))
    rgb = np.asarray(image.convert("RGB"))
    return np.ascontiguousarray(letterbox(rgb, size).transpose(2, 0, 1).astype(np.float32) / np.float32(255))


class TritonPythonModel:
    def initialize(self, args):
        config = json.loads(args["model_config"])
        self.name = config["name"]
        self.input = config["input"][0]["name"]
        self.output = config["output"][0]["name"]
        self.size = int(config["output"][0]["dims"][-1])

    def execute(self, requests):
        responses = []
        for request in requests:
            try:
                rows = pb_utils.get_input_tensor_by_name(request, self.input).as_numpy()
                out = np.stack([preprocess(row, self.size) for row in rows])
                responses.append(pb_utils.InferenceResponse(output_tensors=[pb_utils.Tensor(self.output, out)]))
            except Exception as e:  # one bad image must not fail the others of the batch
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: cannot decode/letterbox: {e}")))
        return responses
