"""Triton python-backend stand-in for a `<model>_onnx` of the committed repository, for GPU benchmarks.

tritonserver from the nvidia-pytriton wheel has no onnxruntime backend, and the real exports are not
committed, so each `<model>_onnx` runs the SAME ARCHITECTURE as the export it stands in for, at full size,
with random weights (seed 0), in PyTorch on the model instance's GPU. The tensor names, types and shapes
come from this model's config.pbtxt, i.e. from the committed `_onnx` config. Timings are what matters;
the outputs are meaningless numbers of the right shape.

  midas_*          transformers DPTForDepthEstimation, DPT-Hybrid (ViT-B/16 on a BiT-ResNet stem), from config
  raft_*           torchvision raft_large, 12 flow updates (torchvision's default)
  clip_image_*     transformers CLIPVisionModelWithProjection, ViT-B/32 (CLIPConfig defaults), image_size = S
  clip_text        transformers CLIP text tower (CLIPConfig defaults) + text_projection on every token
  places365_*      torchvision resnet50 with 365 classes
  yolo11x_*        YOLO11x written out below from Ultralytics' published yolo11.yaml (scale x), raw head [1,84,N]
  yolo11x_*_end2end  the same YOLO11x with NMS on the GPU (torchvision batched_nms, best class per box, top
                   100): num_dets, det_boxes, det_scores, det_classes, as track C/D's End2End engine

A config with max_batch_size > 0 (the End2End engine, dynamic batching) gets its requests in one forward
pass: the batch the dynamic batcher formed is run as one tensor, as TensorRT or onnxruntime would.

Config parameters (set by bench/gpu/build_gpu_repo.py): PRECISION "fp32" (TF32 allowed, as onnxruntime's
CUDA provider does by default) or "fp16" (autocast); GPU_OUTPUT "yes" hands outputs back in GPU memory.
"""
import json
import math
import re

import torch
import torch.nn as nn
import torch.nn.functional as F
import triton_python_backend_utils as pb_utils


# ---------------------------------------------------------------------------------------------------
# YOLO11x from Ultralytics' yolo11.yaml: scale x = depth 1.00, width 1.50, max_channels 512; every C3k2
# uses C3k blocks at scales m/l/x. Published size: 56,919,424 parameters fused (56,966,176 unfused),
# 194.9 GFLOPs at 640. Written here from that yaml and the published module definitions (Conv, C3k2, C3k,
# SPPF, C2PSA, Detect); only the layout matters, not Ultralytics' weights.

def autopad(k, d=1):
    return (d * (k - 1) + 1) // 2


class Conv(nn.Module):
    def __init__(self, c1, c2, k=1, s=1, g=1, act=True):
        super().__init__()
        self.conv = nn.Conv2d(c1, c2, k, s, autopad(k), groups=g, bias=False)
        self.bn = nn.BatchNorm2d(c2, eps=0.001, momentum=0.03)
        self.act = nn.SiLU() if act else nn.Identity()

    def forward(self, x):
        return self.act(self.bn(self.conv(x)))


def DWConv(c1, c2, k=1, s=1, act=True):
    return Conv(c1, c2, k, s, g=math.gcd(c1, c2), act=act)


class Bottleneck(nn.Module):
    def __init__(self, c1, c2, shortcut=True, g=1, k=(3, 3), e=0.5):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, k[0], 1)
        self.cv2 = Conv(c_, c2, k[1], 1, g=g)
        self.add = shortcut and c1 == c2

    def forward(self, x):
        y = self.cv2(self.cv1(x))
        return x + y if self.add else y


class C3k(nn.Module):
    def __init__(self, c1, c2, n=1, shortcut=True, g=1, e=0.5, k=3):
        super().__init__()
        c_ = int(c2 * e)
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c1, c_, 1, 1)
        self.cv3 = Conv(2 * c_, c2, 1)
        self.m = nn.Sequential(*(Bottleneck(c_, c_, shortcut, g, k=(k, k), e=1.0) for _ in range(n)))

    def forward(self, x):
        return self.cv3(torch.cat((self.m(self.cv1(x)), self.cv2(x)), 1))


class C3k2(nn.Module):
    def __init__(self, c1, c2, n=1, c3k=False, e=0.5, g=1, shortcut=True):
        super().__init__()
        self.c = int(c2 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv((2 + n) * self.c, c2, 1)
        self.m = nn.ModuleList(
            C3k(self.c, self.c, 2, shortcut, g) if c3k else Bottleneck(self.c, self.c, shortcut, g) for _ in range(n)
        )

    def forward(self, x):
        y = list(self.cv1(x).chunk(2, 1))
        y.extend(m(y[-1]) for m in self.m)
        return self.cv2(torch.cat(y, 1))


class SPPF(nn.Module):
    def __init__(self, c1, c2, k=5):
        super().__init__()
        c_ = c1 // 2
        self.cv1 = Conv(c1, c_, 1, 1)
        self.cv2 = Conv(c_ * 4, c2, 1, 1)
        self.m = nn.MaxPool2d(k, 1, k // 2)

    def forward(self, x):
        y = [self.cv1(x)]
        y.extend(self.m(y[-1]) for _ in range(3))
        return self.cv2(torch.cat(y, 1))


class Attention(nn.Module):
    def __init__(self, dim, num_heads=8, attn_ratio=0.5):
        super().__init__()
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.key_dim = int(self.head_dim * attn_ratio)
        self.scale = self.key_dim**-0.5
        self.qkv = Conv(dim, dim + self.key_dim * num_heads * 2, 1, act=False)
        self.proj = Conv(dim, dim, 1, act=False)
        self.pe = Conv(dim, dim, 3, 1, g=dim, act=False)

    def forward(self, x):
        B, C, H, W = x.shape
        q, k, v = self.qkv(x).view(B, self.num_heads, self.key_dim * 2 + self.head_dim, H * W).split(
            [self.key_dim, self.key_dim, self.head_dim], dim=2
        )
        attn = ((q.transpose(-2, -1) @ k) * self.scale).softmax(dim=-1)
        x = (v @ attn.transpose(-2, -1)).view(B, C, H, W) + self.pe(v.reshape(B, C, H, W))
        return self.proj(x)


class PSABlock(nn.Module):
    def __init__(self, c, attn_ratio=0.5, num_heads=4):
        super().__init__()
        self.attn = Attention(c, attn_ratio=attn_ratio, num_heads=num_heads)
        self.ffn = nn.Sequential(Conv(c, c * 2, 1), Conv(c * 2, c, 1, act=False))

    def forward(self, x):
        x = x + self.attn(x)
        return x + self.ffn(x)


class C2PSA(nn.Module):
    def __init__(self, c1, c2, n=1, e=0.5):
        super().__init__()
        self.c = int(c1 * e)
        self.cv1 = Conv(c1, 2 * self.c, 1, 1)
        self.cv2 = Conv(2 * self.c, c1, 1)
        self.m = nn.Sequential(*(PSABlock(self.c, attn_ratio=0.5, num_heads=self.c // 64) for _ in range(n)))

    def forward(self, x):
        a, b = self.cv1(x).split((self.c, self.c), dim=1)
        return self.cv2(torch.cat((a, self.m(b)), 1))


class Detect(nn.Module):
    """YOLO11 head at inference: [B, 4 + nc, N] with xywh boxes in input pixels and class scores."""

    def __init__(self, nc, ch, strides=(8, 16, 32), reg_max=16):
        super().__init__()
        self.nc, self.reg_max, self.strides = nc, reg_max, strides
        c2, c3 = max(16, ch[0] // 4, reg_max * 4), max(ch[0], min(nc, 100))
        self.cv2 = nn.ModuleList(nn.Sequential(Conv(x, c2, 3), Conv(c2, c2, 3), nn.Conv2d(c2, 4 * reg_max, 1)) for x in ch)
        self.cv3 = nn.ModuleList(
            nn.Sequential(nn.Sequential(DWConv(x, x, 3), Conv(x, c3, 1)), nn.Sequential(DWConv(c3, c3, 3), Conv(c3, c3, 1)), nn.Conv2d(c3, nc, 1))
            for x in ch
        )
        self.dfl = nn.Conv2d(reg_max, 1, 1, bias=False).requires_grad_(False)
        self.dfl.weight.data[:] = torch.arange(reg_max, dtype=torch.float).view(1, reg_max, 1, 1)
        # Ultralytics' Detect.bias_init, which its DetectionModel applies on construction: box biases 1, class
        # biases log(5 / nc / (640 / stride)^2), i.e. ~5 objects per picture before training. Without it a
        # random head scores every one of the 8400 anchors near 0.5 and NMS sees thousands of candidates.
        with torch.no_grad():
            for a, b, s in zip(self.cv2, self.cv3, strides):
                a[-1].bias.fill_(1.0)
                b[-1].bias.fill_(math.log(5 / nc / (640 / s) ** 2))

    def forward(self, xs):
        b = xs[0].shape[0]
        out, anchors, stride_t = [], [], []
        for i, x in enumerate(xs):
            _, _, h, w = x.shape
            out.append(torch.cat((self.cv2[i](x), self.cv3[i](x)), 1).view(b, 4 * self.reg_max + self.nc, -1))
            sy, sx = torch.meshgrid(torch.arange(h, device=x.device) + 0.5, torch.arange(w, device=x.device) + 0.5, indexing="ij")
            anchors.append(torch.stack((sx, sy), 0).view(2, -1))
            stride_t.append(torch.full((1, h * w), self.strides[i], device=x.device))
        y = torch.cat(out, 2)
        box, cls = y.split((4 * self.reg_max, self.nc), 1)
        a = box.shape[2]
        dist = self.dfl(box.view(b, 4, self.reg_max, a).transpose(2, 1).softmax(1)).view(b, 4, a)
        anc, st = torch.cat(anchors, 1).to(dist.dtype), torch.cat(stride_t, 1).to(dist.dtype)
        lt, rb = dist.chunk(2, 1)
        x1y1, x2y2 = anc - lt, anc + rb
        dbox = torch.cat(((x1y1 + x2y2) / 2, x2y2 - x1y1), 1) * st
        return torch.cat((dbox, cls.sigmoid()), 1)


class YOLO11x(nn.Module):
    def __init__(self, nc=80):
        super().__init__()
        # Channels after width 1.50 and max_channels 512: 64->96, 128->192, 256->384, 512/1024->768; n=2.
        self.b = nn.ModuleList([
            Conv(3, 96, 3, 2), Conv(96, 192, 3, 2), C3k2(192, 384, 2, True, 0.25),                 # 0-2
            Conv(384, 384, 3, 2), C3k2(384, 768, 2, True, 0.25),                                   # 3-4 P3
            Conv(768, 768, 3, 2), C3k2(768, 768, 2, True),                                         # 5-6 P4
            Conv(768, 768, 3, 2), C3k2(768, 768, 2, True), SPPF(768, 768, 5), C2PSA(768, 768, 2),  # 7-10 P5
        ])
        self.h13 = C3k2(1536, 768, 2, True)
        self.h16 = C3k2(1536, 384, 2, True)
        self.h17 = Conv(384, 384, 3, 2)
        self.h19 = C3k2(1152, 768, 2, True)
        self.h20 = Conv(768, 768, 3, 2)
        self.h22 = C3k2(1536, 768, 2, True)
        self.detect = Detect(nc, (384, 768, 768))

    def forward(self, x):
        saved = {}
        for i, m in enumerate(self.b):
            x = m(x)
            if i in (4, 6, 10):
                saved[i] = x
        up = lambda t: F.interpolate(t, scale_factor=2.0, mode="nearest")
        p13 = self.h13(torch.cat((up(saved[10]), saved[6]), 1))
        p16 = self.h16(torch.cat((up(p13), saved[4]), 1))
        p19 = self.h19(torch.cat((self.h17(p16), p13), 1))
        p22 = self.h22(torch.cat((self.h20(p19), saved[10]), 1))
        return self.detect([p16, p19, p22])


# ---------------------------------------------------------------------------------------------------

def build(stem, size):
    """The network for a model stem and branch size, and a function from input tensors (config order) to outputs."""
    if stem == "midas":
        from transformers import DPTConfig, DPTForDepthEstimation

        # DPT-Hybrid as in Intel/dpt-hybrid-midas: ViT-B/16 over a BiT-ResNet50 stem (3 stages), project readout.
        cfg = DPTConfig(
            is_hybrid=True, image_size=size, patch_size=16, neck_hidden_sizes=[256, 512, 768, 768],
            reassemble_factors=[1, 1, 1, 0.5], backbone_featmap_shape=[1, 1024, size // 16, size // 16],
        )
        net = DPTForDepthEstimation(cfg)
        return net, lambda x: (net(pixel_values=x).predicted_depth,)
    if stem == "raft":
        from torchvision.models.optical_flow import raft_large

        net = raft_large(weights=None, progress=False)
        return net, lambda a, b: (net(a, b, num_flow_updates=12)[-1],)
    if stem == "clip_image":
        from transformers import CLIPConfig, CLIPVisionModelWithProjection

        vc = CLIPConfig().vision_config
        vc.image_size = size
        net = CLIPVisionModelWithProjection(vc)
        return net, lambda x: (net(pixel_values=x).image_embeds,)
    if stem == "clip_text":
        from transformers import CLIPConfig, CLIPTextModelWithProjection

        net = CLIPTextModelWithProjection(CLIPConfig().text_config)
        # token_embeds: every token projected; the client picks the end-of-text row.
        return net, lambda ids: (net.text_projection(net.text_model(input_ids=ids).last_hidden_state),)
    if stem == "places365_resnet50":
        from torchvision.models import resnet50

        net = resnet50(weights=None, num_classes=365)
        return net, lambda x: (net(x),)
    if stem == "yolo11x":
        net = YOLO11x()
        return net, lambda x: (net(x),)
    raise ValueError(f"torch_model.py has no architecture for '{stem}'")


TORCH_TYPES = {"TYPE_FP32": torch.float32, "TYPE_INT64": torch.int64, "TYPE_FP16": torch.float16, "TYPE_INT32": torch.int32}


def end2end_rows(pred, k=100, conf=0.25, iou=0.7):
    """[b, 4 + nc, N] raw YOLO -> the End2End outputs: num_dets [b, 1], det_boxes [b, k, 4] (xyxy),
    det_scores [b, k], det_classes [b, k]; the best class per box, as Ultralytics' NMS and the exported
    End2End graph (scripts/export/yolo_end2end.py) keep. The whole batch in one batched_nms call (image and
    class as its category), as an engine's NMS plugin does, not one call per image."""
    from torchvision.ops import batched_nms

    b, dev = pred.shape[0], pred.device
    p = pred.float().transpose(1, 2)  # [b, N, 4 + nc]
    scores, cls = p[..., 4:].max(2)
    img, anchor = (scores > conf).nonzero(as_tuple=True)
    xywh, s, c = p[img, anchor, :4], scores[img, anchor], cls[img, anchor]
    xyxy = torch.cat((xywh[:, :2] - xywh[:, 2:] / 2, xywh[:, :2] + xywh[:, 2:] / 2), 1)
    keep = batched_nms(xyxy, s, img * (p.shape[2] - 4) + c, iou)  # by score, highest first
    # Rank within each image: a stable sort by image keeps the score order inside it.
    keep = keep[torch.sort(img[keep], stable=True).indices]
    per = torch.bincount(img[keep], minlength=b)
    rank = torch.arange(len(keep), device=dev) - (torch.cumsum(per, 0) - per)[img[keep]]
    keep, rank = keep[rank < k], rank[rank < k]
    row = img[keep]
    num = per.clamp(max=k).to(torch.int32).view(b, 1)
    boxes = torch.zeros(b, k, 4, device=dev)
    scores_out = torch.zeros(b, k, device=dev)
    classes = torch.zeros(b, k, dtype=torch.int32, device=dev)
    boxes[row, rank], scores_out[row, rank], classes[row, rank] = xyxy[keep], s[keep], c[keep].int()
    return num, boxes, scores_out, classes


class TritonPythonModel:
    def initialize(self, args):
        cfg = json.loads(args["model_config"])
        params = {k: v["string_value"] for k, v in cfg.get("parameters", {}).items()}
        self.name = cfg["name"]
        m = re.fullmatch(r"(.+?)(?:_(\d+))?_(onnx|end2end)", self.name)
        stem, size = m.group(1), int(m.group(2)) if m.group(2) else None
        self.inputs = [(t["name"], TORCH_TYPES[t["data_type"]]) for t in cfg["input"]]
        self.outputs = [(t["name"], [int(d) for d in t["dims"]], TORCH_TYPES[t["data_type"]]) for t in cfg["output"]]
        self.batched = int(cfg.get("max_batch_size", 0)) > 0  # dims leave the batch axis out
        cuda = torch.cuda.is_available() and args.get("model_instance_kind") == "GPU"
        self.device = torch.device(f"cuda:{args['model_instance_device_id']}" if cuda else "cpu")
        if cuda:
            torch.cuda.set_device(self.device)
            torch.backends.cudnn.benchmark = True  # fixed shapes: let cuDNN pick the fastest algorithms once
            torch.backends.cuda.matmul.allow_tf32 = True
            torch.backends.cudnn.allow_tf32 = True
        self.fp16 = cuda and params.get("PRECISION", "fp32") == "fp16"
        self.gpu_output = cuda and params.get("GPU_OUTPUT", "no") == "yes"
        torch.manual_seed(0)
        net, self.run = build(stem, size)
        if m.group(3) == "end2end":
            raw = self.run
            self.run = lambda x: end2end_rows(raw(x)[0])
        self.net = net.eval().to(self.device)
        # One pass at load, so the first request does not pay for cuDNN's algorithm search alone.
        dummy = []
        for (n, dt), spec in zip(self.inputs, cfg["input"]):
            shape = ([1] if self.batched else []) + [int(d) for d in spec["dims"]]
            dummy.append(torch.randint(1, 1000, shape, device=self.device) if dt == torch.int64 else torch.rand(shape, device=self.device, dtype=dt))
        self.forward(dummy)
        pb_utils.Logger.log_info(f"{self.name}: {stem} {size or ''} on {self.device}, {sum(p.numel() for p in net.parameters()):,} parameters, fp16={self.fp16}")

    def forward(self, xs):
        with torch.inference_mode(), torch.autocast(self.device.type, dtype=torch.float16, enabled=self.fp16):
            ys = self.run(*xs)
        return [y.to(dt).contiguous() for y, (_, _, dt) in zip(ys, self.outputs)]

    def tensor_in(self, request, name, dtype):
        # DLPack both ways, never numpy: the wheel's python-backend stub mishandles numpy 2 arrays (empty
        # tensors), and GPU inputs (from the torch preprocess) arrive without a copy.
        x = torch.utils.dlpack.from_dlpack(pb_utils.get_input_tensor_by_name(request, name).to_dlpack())
        return x.to(self.device, dtype)

    def execute(self, requests):
        if self.batched and len(requests) > 1:
            return self.execute_batch(requests)
        responses = []
        for request in requests:
            try:
                responses.append(self.respond(self.forward([self.tensor_in(request, n, dt) for n, dt in self.inputs])))
            except Exception as e:  # one bad request must not fail the others
                responses.append(pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")))
        return responses

    def execute_batch(self, requests):
        """The dynamic batcher's requests as one forward pass, the outputs split back per request."""
        try:
            xs = [[self.tensor_in(r, n, dt) for n, dt in self.inputs] for r in requests]
            sizes = [x[0].shape[0] for x in xs]
            ys = self.forward([torch.cat([x[i] for x in xs]) for i in range(len(self.inputs))])
            parts = [y.split(sizes) for y in ys]
            return [self.respond([p[j] for p in parts]) for j in range(len(requests))]
        except Exception as e:
            return [pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(f"{self.name}: {e}")) for _ in requests]

    def respond(self, ys):
        out = []
        for (name, dims, _), y in zip(self.outputs, ys):
            if list(y.shape[1:] if self.batched else y.shape) != dims:
                raise ValueError(f"output {name} is {list(y.shape)}, config says {dims}")
            out.append(pb_utils.Tensor.from_dlpack(name, torch.utils.dlpack.to_dlpack(y.contiguous() if self.gpu_output else y.cpu())))
        if self.gpu_output:
            torch.cuda.synchronize(self.device)  # so the server's compute time covers the GPU work
        return pb_utils.InferenceResponse(output_tensors=out)
