"""An independent YOLO detection reference: numpy + onnxruntime, written from Ultralytics' own
definitions of the prediction pipeline, to check the TypeScript implementation against.

- LetterBox (ultralytics/data/augment.py) for prediction: r = min(H / h, W / w), new size
  (round(w * r), round(h * r)) with Python's round, the padding halved and split as
  round(d - 0.1) / round(d + 0.1), border value 114; resized with cv2.INTER_LINEAR.
- cv2.resize INTER_LINEAR on uint8 as OpenCV computes it: half-pixel centres in float32, 11-bit
  fixed-point weights, an exact integer horizontal pass, then the vertical pass as OpenCV's uint8
  kernel computes it ((a >> 4) * b >> 16 per row, + 2 >> 2, on every value); an exact 2x downscale
  takes OpenCV's INTER_AREA fast path (rounded 2x2 mean).
- Normalisation x / 255 in float32, RGB, NCHW.
- non_max_suppression (ultralytics/utils/nms.py): candidates with max class score > conf, best class
  (conf > conf), at most max_nms by score, boxes offset by class x 7680 (max_wh) and handed to
  torchvision-style greedy NMS (descending score, stable; drop IoU > iou), first max_det.
- scale_boxes + clip_boxes (ultralytics/utils/ops.py): gain from the shapes, padding
  round((W - w * gain) / 2 - 0.1), subtract, divide, clip.

The image pixels come from sharp (libvips with libjpeg-turbo, the same JPEG decoder cv2.imread uses,
ICC profiles ignored as cv2.imread ignores them) through Node, because this environment has no
Python image decoder; everything after decoding is computed here independently.
"""

from __future__ import annotations

import json
import pathlib
import subprocess
import tempfile

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[2]

_DECODE_JS = r"""
import sharp from "sharp";
import { writeFileSync } from "node:fs";
const [src, dst] = process.argv.slice(1);
const { data, info } = await sharp(src, { autoOrient: true, ignoreIcc: true }).removeAlpha().toColourspace("srgb")
  .raw({ depth: "uchar" }).toBuffer({ resolveWithObject: true });
writeFileSync(dst, data);
console.log(JSON.stringify({ width: info.width, height: info.height, channels: info.channels }));
"""


def decode_rgb(path: "pathlib.Path | str") -> np.ndarray:
    """The image as uint8 RGB, shape (h, w, 3)."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = pathlib.Path(tmp) / "rgb.bin"
        out = subprocess.run(
            ["node", "--input-type=module", "-e", _DECODE_JS, str(path), str(raw)],
            cwd=REPO, check=True, capture_output=True, text=True,
        )
        info = json.loads(out.stdout)
        pixels = np.frombuffer(raw.read_bytes(), dtype=np.uint8)
    return pixels.reshape(info["height"], info["width"], info["channels"])[..., :3].copy()


def _linear_taps(src: int, dst: int, clamp: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """First and second tap and their 11-bit weights along one axis, per cv2 INTER_LINEAR.

    Along x OpenCV clamps a tap outside the image to the border with weight 0 on the far tap; along y
    it keeps the fraction and clamps only the row indices (both taps then read the border row).
    """
    inv = dst / src
    scale = 1.0 / inv
    pos = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    first = np.floor(pos).astype(np.int64)
    frac = (pos - first.astype(np.float32)).astype(np.float32)
    if clamp:
        low = first < 0
        frac[low] = 0
        first[low] = 0
        high = first >= src - 1
        frac[high] = 0
        first[high] = src - 1
    second = np.clip(first + 1, 0, src - 1)
    first = np.clip(first, 0, src - 1)
    # np.rint rounds halves to even, as cvRound does.
    w_first = np.rint((np.float32(1) - frac) * np.float32(2048)).astype(np.int64)
    w_second = np.rint(frac * np.float32(2048)).astype(np.int64)
    return first, second, w_first, w_second


def cv2_resize_linear(img: np.ndarray, width: int, height: int) -> np.ndarray:
    """cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR) for uint8 (h, w, c)."""
    h, w, c = img.shape
    if (w, h) == (width, height):
        return img.copy()
    if w == 2 * width and h == 2 * height:
        # OpenCV switches an exact 2x reduction to its INTER_AREA fast path: rounded 2x2 means.
        s = img.astype(np.int64)
        total = s[0::2, 0::2] + s[0::2, 1::2] + s[1::2, 0::2] + s[1::2, 1::2]
        return ((total + 2) >> 2).astype(np.uint8)
    x0, x1, a0, a1 = _linear_taps(w, width, clamp=True)
    y0, y1, b0, b1 = _linear_taps(h, height, clamp=False)
    src = img.astype(np.int64)
    horiz = src[:, x0, :] * a0[None, :, None] + src[:, x1, :] * a1[None, :, None]  # (h, width, c)
    horiz = horiz.reshape(h, width * c)
    top = horiz[y0]
    bottom = horiz[y1]
    bt = b0[:, None]
    bb = b1[:, None]
    # OpenCV's uint8 vertical kernel (vector loops and, for bit-identical results, its scalar tail):
    # (a >> 4) * b keeping the high 16 bits, per row, then + 2 >> 2. Not the exact rounding.
    out = ((((top >> 4) * bt) >> 16) + (((bottom >> 4) * bb) >> 16) + 2) >> 2
    return np.clip(out, 0, 255).astype(np.uint8).reshape(height, width, c)


def letterbox(img: np.ndarray, size: int) -> tuple[np.ndarray, float, tuple[int, int]]:
    """Ultralytics LetterBox(new_shape=(size, size), auto=False, scaleup=True, center=True)."""
    h, w = img.shape[:2]
    r = min(size / h, size / w)
    new_w, new_h = int(round(w * r)), int(round(h * r))
    dw, dh = (size - new_w) / 2, (size - new_h) / 2
    if (w, h) != (new_w, new_h):
        img = cv2_resize_linear(img, new_w, new_h)
    top, bottom = int(round(dh - 0.1)), int(round(dh + 0.1))
    left, right = int(round(dw - 0.1)), int(round(dw + 0.1))
    out = np.full((new_h + top + bottom, new_w + left + right, 3), 114, dtype=np.uint8)
    out[top:top + new_h, left:left + new_w] = img
    return out, r, (left, top)


def _greedy_nms(boxes: np.ndarray, scores: np.ndarray, iou_thres: float) -> np.ndarray:
    """torchvision.ops.nms: visit by descending score (stable), drop boxes with IoU > iou_thres."""
    order = np.argsort(-scores, kind="stable")
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    suppressed = np.zeros(len(boxes), dtype=bool)
    keep = []
    for pos, i in enumerate(order):
        if suppressed[i]:
            continue
        keep.append(i)
        rest = order[pos + 1:]
        rest = rest[~suppressed[rest]]
        if rest.size == 0:
            continue
        iw = np.clip(np.minimum(x2[i], x2[rest]) - np.maximum(x1[i], x1[rest]), 0, None)
        ih = np.clip(np.minimum(y2[i], y2[rest]) - np.maximum(y1[i], y1[rest]), 0, None)
        inter = iw * ih
        iou = inter / (areas[i] + areas[rest] - inter)
        suppressed[rest[iou > iou_thres]] = True
    return np.asarray(keep, dtype=np.int64)


def non_max_suppression(pred: np.ndarray, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
                        max_nms: int = 30000, max_wh: int = 7680) -> np.ndarray:
    """pred (1, 4 + nc, N) -> (k, 6) rows x1, y1, x2, y2, score, class, in letterboxed pixels."""
    x = pred[0]
    nc = x.shape[0] - 4
    conf32 = np.float32(conf)
    candidates = x[4:4 + nc].max(axis=0) > conf32
    x = x.T[candidates]  # (n, 4 + nc)
    if x.shape[0] == 0:
        return np.zeros((0, 6), dtype=np.float32)
    xy, half = x[:, :2], x[:, 2:4] / np.float32(2)
    boxes = np.concatenate([xy - half, xy + half], axis=1).astype(np.float32)
    cls = x[:, 4:4 + nc]
    best = cls.max(axis=1)
    label = cls.argmax(axis=1)  # first maximum, as torch.max
    keep = best > conf32
    det = np.concatenate([boxes, best[:, None], label[:, None].astype(np.float32)], axis=1)[keep]
    if det.shape[0] > max_nms:
        det = det[np.argsort(-det[:, 4], kind="stable")[:max_nms]]
    offset = det[:, 5:6] * np.float32(max_wh)
    kept = _greedy_nms((det[:, :4] + offset).astype(np.float32), det[:, 4], iou)[:max_det]
    return det[kept]


def scale_boxes(boxes: np.ndarray, input_hw: tuple[int, int], image_hw: tuple[int, int]) -> np.ndarray:
    """ultralytics.utils.ops.scale_boxes with clip_boxes, for xyxy boxes."""
    gain = min(input_hw[0] / image_hw[0], input_hw[1] / image_hw[1])
    pad_x = round((input_hw[1] - image_hw[1] * gain) / 2 - 0.1)
    pad_y = round((input_hw[0] - image_hw[0] * gain) / 2 - 0.1)
    out = boxes.astype(np.float64).copy()
    out[:, [0, 2]] -= pad_x
    out[:, [1, 3]] -= pad_y
    out /= gain
    out[:, [0, 2]] = out[:, [0, 2]].clip(0, image_hw[1])
    out[:, [1, 3]] = out[:, [1, 3]].clip(0, image_hw[0])
    return out


def detect(image_path: pathlib.Path, model_path: pathlib.Path, conf: float = 0.25, iou: float = 0.7) -> list[dict]:
    """Detections as dicts (class_id, score, box) in source pixels, best first."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(model_path), providers=["CPUExecutionProvider"])
    inp = session.get_inputs()[0]
    size = int(inp.shape[2])
    img = decode_rgb(image_path)
    boxed, _, _ = letterbox(img, size)
    x = (boxed.astype(np.float32) / np.float32(255)).transpose(2, 0, 1)[None]
    pred = session.run(None, {inp.name: np.ascontiguousarray(x)})[0]
    det = non_max_suppression(pred, conf=conf, iou=iou)
    boxes = scale_boxes(det[:, :4], boxed.shape[:2], img.shape[:2])
    return [
        {"class_id": int(d[5]), "score": float(d[4]), "box": [float(v) for v in b]}
        for d, b in zip(det, boxes)
    ]
