#!/usr/bin/env python3
"""Decodes the tier bench's JPEGs for bench/gpu/tiers-gpu.mjs on a machine without sharp: for each *.jpg in
DIR, the RGB pixels (EXIF orientation applied, as the SDK's decode and DALI do) as <name>.rgb in OUT, and
OUT/images.json listing file, width, height. The SDK's own letterbox then runs on these pixels in Node.

  python3 bench/gpu/tiers-images.py DIR OUT
"""
import json
import os
import sys

from PIL import Image, ImageOps

src, out = sys.argv[1], sys.argv[2]
os.makedirs(out, exist_ok=True)
rows = []
for f in sorted(x for x in os.listdir(src) if x.lower().endswith(".jpg")):
    im = ImageOps.exif_transpose(Image.open(os.path.join(src, f))).convert("RGB")
    with open(os.path.join(out, f + ".rgb"), "wb") as g:
        g.write(im.tobytes())
    rows.append({"file": os.path.join(src, f), "rgb": os.path.join(out, f + ".rgb"), "width": im.width, "height": im.height})
json.dump(rows, open(os.path.join(out, "images.json"), "w"))
print(f"tiers-images: {len(rows)} images in {out}")
