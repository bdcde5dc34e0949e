"""Triton python-backend stand-in for the generated `yolo_preprocess_dali_<S>[_tier]` on a GPU: the wheel's
tritonserver has no DALI backend and DALI's wheel cannot travel to the lent machine. Same contract
(encoded_images UINT8 [-1], ragged, batched -> preprocessed_images FP32 [3, S, S]) and the same steps as the
generated DALI pipeline (src/triton-repo/dali.ts), on the instance's GPU:

- decode: nvJPEG through torchvision.io.decode_jpeg(device="cuda"), every request of the batch in one call,
  RGB, EXIF orientation applied (DALI's adjust_orientation);
- resize "not_larger" with DALI's geometry: r = float32 min(S/h, S/w), extents roundf(extent * r) (halves
  away from zero), bilinear without antialias on the whole image (F.interpolate, half-pixel centres: DALI's
  sampling with subpixel_scale=False), rounded to uint8 as DALI's resize outputs uint8;
- centred pad to S x S with 114, anchor roundf((resized - S) / 2);
- x * float32(1/255), CHW.

The arithmetic is PyTorch's, not DALI's kernels' (test/support/dali_standin.py is the exact CPU model of
those): values may differ by one grey level. What this is for is timing the tiers' batching on a GPU.
"""
import json

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
import triton_python_backend_utils as pb_utils

FILL = 114
F32 = np.float32


def round_half_away(v):
    return int(np.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def geometry(w, h, size):
    """DALI's resize(mode="not_larger") + centred crop/pad: (resized w, h, left, top) of the picture in S x S."""
    r = F32(min(F32(size) / F32(h), F32(size) / F32(w)))
    rw = max(1, round_half_away(float(F32(w * r))))
    rh = max(1, round_half_away(float(F32(h * r))))
    return rw, rh, -round_half_away(float(F32(0.5 * (rw - size)))), -round_half_away(float(F32(0.5 * (rh - size))))


def letterbox(img, size):
    """[3, h, w] uint8 on the GPU -> [3, S, S] float32 in 0..1, as the DALI step."""
    h, w = img.shape[1:]
    rw, rh, left, top = geometry(w, h, size)
    x = F.interpolate(img[None].float(), size=(rh, rw), mode="bilinear", align_corners=False, antialias=False)[0]
    x = x.round_().clamp_(0, 255)
    out = torch.full((3, size, size), float(FILL), device=img.device)
    # The picture can be larger than S on one axis by rounding (roundf): crop it as DALI's crop does.
    sy, sx = max(0, -top), max(0, -left)
    dy, dx = max(0, top), max(0, left)
    ch, cw = min(rh - sy, size - dy), min(rw - sx, size - dx)
    out[:, dy:dy + ch, dx:dx + cw] = x[:, sy:sy + ch, sx:sx + cw]
    return out * F32(1.0 / 255.0)


def decode(blobs, device):
    """nvJPEG, the whole list in one call; EXIF orientation applied where this torchvision does it on the GPU."""
    rgb = torchvision.io.ImageReadMode.RGB
    try:
        return torchvision.io.decode_jpeg(blobs, mode=rgb, device=device, apply_exif_orientation=True)
    except (TypeError, RuntimeError, NotImplementedError):
        return torchvision.io.decode_jpeg(blobs, mode=rgb, device=device)


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        self.name = cfg["name"]
        self.size = int(cfg["output"][0]["dims"][-1])
        gpu = args.get("model_instance_kind") == "GPU"
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if gpu else "cpu")
        if gpu:
            torch.cuda.set_device(self.device)

    def execute(self, requests):
        try:
            # Each request: [n, L] bytes (n images of one length) or [1, L]; all images of all requests decode in one call.
            blobs, counts = [], []
            for r in requests:
                x = torch.utils.dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(r, "encoded_images").to_dlpack()).cpu()
                counts.append(x.shape[0])
                blobs.extend(x[i].contiguous() for i in range(x.shape[0]))
            imgs = decode(blobs, self.device)
            out = torch.stack([letterbox(i, self.size) for i in imgs])
            if self.device.type == "cuda":
                torch.cuda.synchronize(self.device)
        except Exception as e:  # a bad JPEG fails the batch it came in, with the decoder's words
            return [pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")) for _ in requests]
        responses, k = [], 0
        for n in counts:
            t = pb_utils.Tensor.from_dlpack("preprocessed_images", torch.utils.dlpack.to_dlpack(out[k:k + n].contiguous()))
            responses.append(pb_utils.InferenceResponse(output_tensors=[t]))
            k += n
        return responses
