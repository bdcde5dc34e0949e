# Triton python-backend stand-in for the generated `yolo_preprocess_dali_<S>[_tier]` (DALI) on the CPU
# tritonserver of the tests, which has no DALI backend. Same contract (encoded_images UINT8 [-1], ragged,
# batched -> preprocessed_images FP32 [3, S, S]) and the arithmetic of the DALI pipeline of
# src/triton-repo/dali.ts as DALI's GPU kernels compute it (DALI's source: resize_attr, crop_attr,
# kernels/imgproc/resample/{resampling_setup.cc, resampling_batch.cu, bilinear_impl.cuh},
# core/convert.h, new_crop_mirror_normalize.cu), in numpy/PIL:
# - decode: PIL (libjpeg-turbo), RGB, the EXIF orientation applied (fn.decoders.image's adjust_orientation,
#   on by default); byte-identical to DALI's CPU decoder on the test images, rotated ones included. The
#   generated pipeline asks nvJPEG for libjpeg-turbo's fancy upsampling (not checked here: no GPU);
# - fn.resize(mode="not_larger", linear, antialias=False, subpixel_scale=False): r = float32
#   min(S/h, S/w), extents roundf(in * r) (halves away from zero), the whole image stretched onto them.
#   Per axis, scale = float32(in / out), sampled at fmaf(x, scale, 0.5 * scale - 0.5), left tap floor,
#   q the float32 fraction, both tap indices clamped to the image; value fmaf(b - a, q, a) in float32.
#   Two passes with a float32 intermediate, vertical first when in_w * out_h < out_w * in_h (DALI's
#   cost model, equal supports), else horizontal first; the second pass rounds to uint8 half to even
#   (__float2int_rn) and saturates;
# - fn.crop(crop=(S, S), crop_pos 0.5, out_of_bounds_policy="pad", fill 114): anchor roundf((out - S) / 2);
# - fn.crop_mirror_normalize(mean 0, std 255, CHW, FLOAT): x * float32(1 / 255) (DALI multiplies by the
#   inverse; x / 255 differs in the last bit for half the levels).
# test/support/tracks-repository.ts puts it in place of the DALI model.py.
import json

import numpy as np
import triton_python_backend_utils as pb_utils
from io import BytesIO
from PIL import Image, ImageOps

FILL = 114
F32 = np.float32
INV_255 = F32(1.0 / 255.0)


def round_half_away(v):
    return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def geometry(w, h, size):
    r = min(F32(size) / F32(h), F32(size) / F32(w))
    r = F32(r)
    rw = max(1, round_half_away(float(F32(w * r))))
    rh = max(1, round_half_away(float(F32(h * r))))
    left = -round_half_away(float(F32(0.5 * (rw - size))))
    top = -round_half_away(float(F32(0.5 * (rh - size))))
    return float(r), rw, rh, left, top


def _fmaf(a, b, c):
    """fmaf: a * b + c rounded once to float32 (float64 holds the product of two float32 exactly)."""
    return (np.asarray(a, np.float64) * np.asarray(b, np.float64) + np.asarray(c, np.float64)).astype(F32)


def _taps(n_in, n_out):
    scale = F32(F32(n_in) / F32(n_out))
    origin = F32(F32(0.5) * scale - F32(0.5))
    pos = _fmaf(np.arange(n_out, dtype=F32), scale, origin)
    left = np.floor(pos)
    q = (pos - left).astype(F32)
    left = left.astype(np.int64)
    return np.clip(left, 0, n_in - 1), np.clip(left + 1, 0, n_in - 1), q


def _resample(src, n_out, axis):
    """One linear pass along `axis` (0 rows, 1 columns) of an HWC float32 image."""
    i0, i1, q = _taps(src.shape[axis], n_out)
    a = np.take(src, i0, axis=axis)
    b = np.take(src, i1, axis=axis)
    shape = [1, 1, 1]
    shape[axis] = n_out
    return _fmaf((b - a).astype(F32), q.reshape(shape), a)


def resize(rgb, rw, rh):
    """DALI's GPU linear resize (no antialias, whole image) of HWC uint8 to rw x rh, uint8."""
    h, w = rgb.shape[:2]
    src = rgb.astype(F32)
    if w * rh < rw * h:
        out = _resample(_resample(src, rh, 0), rw, 1)
    else:
        out = _resample(_resample(src, rw, 1), rh, 0)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def letterbox(rgb, size):
    h, w = rgb.shape[:2]
    r, rw, rh, left, top = geometry(w, h, size)
    resized = resize(rgb, rw, rh)
    canvas = np.full((size, size, 3), FILL, np.uint8)
    # The crop window may cut as well as pad (an extent rounded up past S): take the overlap.
    sy, sx = max(0, -top), max(0, -left)
    dy, dx = max(0, top), max(0, left)
    hh, ww = min(rh - sy, size - dy), min(rw - sx, size - dx)
    canvas[dy:dy + hh, dx:dx + ww] = resized[sy:sy + hh, sx:sx + ww]
    return canvas


def decode(jpeg: np.ndarray) -> np.ndarray:
    return np.asarray(ImageOps.exif_transpose(Image.open(BytesIO(jpeg.tobytes()))).convert("RGB"))


def preprocess(jpeg: np.ndarray, size: int) -> np.ndarray:
    """One encoded image (UINT8 [L]) -> FP32 [3, S, S] in 0..1."""
    return np.ascontiguousarray(letterbox(decode(jpeg), size).transpose(2, 0, 1).astype(F32) * INV_255)


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
