"""ifzhang/ByteTrack's own tracker (yolox/tracker/*.py at d1bf019), run unchanged on MOTChallenge
detections, as the reference the SDK's `python` variant must reproduce.

Its four source files are not part of this repository: scripts/setup.sh takes them from PyPI's sdist
bytetrack==0.0.1 (a packaging of ifzhang/ByteTrack: the same files, with `yolox.tracker` renamed
`bytetrack.tracker` in two imports) into $BYTETRACK_SRC (default ~/.cache/video-analysis/bytetrack).
The code is imported as it is;
only what it imports and this environment lacks is supplied here:
- `np.float` (removed in numpy 1.24) is aliased to float, as it was;
- `torch` and `cv2` are imported but not used by the tracker on numpy input: empty modules stand in;
- `cython_bbox.bbox_overlaps` (a small Cython package that does not build on Python 3.11): the same
  formula, the +1 pixel convention, in float64.
"""

from __future__ import annotations

import importlib
import os
import pathlib
import sys
import types

import numpy as np

FILES = ["byte_tracker.py", "matching.py", "kalman_filter.py", "basetrack.py"]


def source_dir() -> pathlib.Path:
    return pathlib.Path(os.environ.get("BYTETRACK_SRC", pathlib.Path.home() / ".cache" / "video-analysis" / "bytetrack"))


def missing() -> str | None:
    """Why the reference cannot run here, or None."""
    d = source_dir() / "bytetrack" / "tracker"
    absent = [f for f in FILES if not (d / f).exists()]
    if absent:
        return f"ifzhang/ByteTrack's tracker sources are not in {d} ({', '.join(absent)} missing): run scripts/setup.sh or set BYTETRACK_SRC"
    try:
        import lap  # noqa: F401
        import scipy  # noqa: F401
    except ImportError as e:
        return f"ifzhang/ByteTrack needs {e.name}: pip install -r requirements-dev.txt"
    return None


def _bbox_overlaps(boxes: np.ndarray, query_boxes: np.ndarray) -> np.ndarray:
    """cython_bbox.bbox_overlaps: IoU of (N, 4) and (K, 4) tlbr boxes with the +1 pixel convention."""
    n, k = boxes.shape[0], query_boxes.shape[0]
    out = np.zeros((n, k), dtype=np.float64)
    for j in range(k):
        q = query_boxes[j]
        q_area = (q[2] - q[0] + 1) * (q[3] - q[1] + 1)
        for i in range(n):
            b = boxes[i]
            iw = min(b[2], q[2]) - max(b[0], q[0]) + 1
            if iw > 0:
                ih = min(b[3], q[3]) - max(b[1], q[1]) + 1
                if ih > 0:
                    ua = float((b[2] - b[0] + 1) * (b[3] - b[1] + 1) + q_area - iw * ih)
                    out[i, j] = iw * ih / ua
    return out


def _load():
    if not hasattr(np, "float"):
        np.float = float  # what numpy < 1.24 had, and the reference uses
    for name in ("torch", "torch.nn", "torch.nn.functional", "cv2"):
        sys.modules.setdefault(name, types.ModuleType(name))
    cb = types.ModuleType("cython_bbox")
    cb.bbox_overlaps = _bbox_overlaps
    sys.modules["cython_bbox"] = cb
    root = source_dir()
    for pkg, path in (("bytetrack", root / "bytetrack"), ("bytetrack.tracker", root / "bytetrack" / "tracker")):
        if pkg not in sys.modules:
            m = types.ModuleType(pkg)
            m.__path__ = [str(path)]
            sys.modules[pkg] = m
    return importlib.import_module("bytetrack.tracker.byte_tracker")


def read_det(path: pathlib.Path) -> dict[int, np.ndarray]:
    """MOTChallenge det.txt -> frame -> (n, 5) rows x1, y1, x2, y2, score (float64, as the demo feeds it)."""
    rows = np.loadtxt(path, delimiter=",", ndmin=2)
    out: dict[int, np.ndarray] = {}
    for f in np.unique(rows[:, 0]).astype(int):
        r = rows[rows[:, 0] == f]
        out[f] = np.stack([r[:, 2], r[:, 3], r[:, 2] + r[:, 4], r[:, 3] + r[:, 5], r[:, 6]], axis=1)
    return out


def track(det_path: pathlib.Path, fps: float, track_thresh: float = 0.5, track_buffer: int = 30, match_thresh: float = 0.8) -> list[tuple]:
    """ifzhang's BYTETracker over every frame 1..last: rows (frame, id, left, top, width, height)."""
    bt = _load()
    bt.BaseTrack._count = 0
    args = types.SimpleNamespace(track_thresh=track_thresh, track_buffer=track_buffer, match_thresh=match_thresh, mot20=False)
    tracker = bt.BYTETracker(args, frame_rate=fps)
    dets = read_det(det_path)
    rows = []
    for f in range(1, max(dets) + 1):
        d = dets.get(f, np.zeros((0, 5)))
        # img_info == img_size: the boxes are already in the image's pixels (scale 1).
        for t in tracker.update(d.copy(), (1, 1), (1, 1)):
            x, y, w, h = t.tlwh
            rows.append((f, t.track_id, x, y, w, h))
    return rows
