"""Compares two run folders array for array: every .npz member equal (numpy array_equal, same dtype and
shape), the same members in each file, and the manifests equal apart from timings, created_at,
interruptions, outages, the per-model call statistics (calls, latency_ms), report.html's size (it shows those
latencies) and where its pictures came from (a resumed run decodes them again). Prints what differs and exits 1, or prints "equal" and exits 0.

usage: python3 compare_runs.py RUN_A RUN_B
"""
import json
import pathlib
import sys

import numpy as np

IGNORED = {"timings", "created_at", "interruptions", "outages"}


def manifest(run):
    m = json.loads((run / "manifest.json").read_text())
    for k in IGNORED:
        m.pop(k, None)
    # Call statistics are of the process that made the calls (a resumed run makes fewer): like timings.
    for u in m.get("models_used", []):
        u.pop("calls", None)
        u.pop("latency_ms", None)
    # report.html shows those latencies too, so its size varies by a few bytes as they do.
    # Its pictures are taken during the run; a resumed run missed those before the interruption, so it
    # decodes the video for them (frames_from "video" instead of "run"): the same frames, other JPEG bytes.
    if isinstance(m.get("report"), dict):
        m["report"].pop("bytes", None)
        m["report"].pop("frames_from", None)
        m["report"].get("thumbnails", {}).pop("image_bytes", None)
    return m


def main(a, b):
    a, b = pathlib.Path(a), pathlib.Path(b)
    problems = []
    files_a = sorted(p.relative_to(a).as_posix() for p in a.rglob("*.npz"))
    files_b = sorted(p.relative_to(b).as_posix() for p in b.rglob("*.npz"))
    if files_a != files_b:
        problems.append(f"artifacts differ: {files_a} vs {files_b}")
    if not files_a:
        problems.append("no artifacts")
    arrays = 0
    for f in files_a:
        if f not in files_b:
            continue
        za, zb = np.load(a / f), np.load(b / f)
        if sorted(za.files) != sorted(zb.files):
            problems.append(f"{f}: members {za.files} vs {zb.files}")
            continue
        for k in za.files:
            x, y = za[k], zb[k]
            arrays += 1
            if x.dtype != y.dtype or x.shape != y.shape or not np.array_equal(x, y):
                problems.append(f"{f}:{k}: {x.dtype}{x.shape} vs {y.dtype}{y.shape}, equal={x.shape == y.shape and np.array_equal(x, y)}")
    ma, mb = manifest(a), manifest(b)
    for k in sorted(set(ma) | set(mb)):
        if ma.get(k) != mb.get(k):
            va, vb = ma.get(k), mb.get(k)
            sub = sorted(x for x in (set(va) | set(vb)) if va.get(x) != vb.get(x)) if isinstance(va, dict) and isinstance(vb, dict) else []
            problems.append(f"manifest.{k} differs" + (f" ({', '.join(f'{x}: {va.get(x)!r} vs {vb.get(x)!r}' for x in sub)})" if sub else ""))
    if problems:
        print("\n".join(problems))
        return 1
    print(f"equal ({len(files_a)} files, {arrays} arrays)")
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
