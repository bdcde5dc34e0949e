#!/usr/bin/env bash
# Makes the demo video of the README, examples/data/demo.mp4 (committed, about 250 KB): 10 s of ffmpeg's
# testsrc2 pattern (colour bars, moving shapes, a clock), 640x360, 25 fps, H.264 (CRF 32, preset veryslow,
# moov first). Usage: examples/make-demo-video.sh [out.mp4]   (default examples/data/demo.mp4)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-examples/data/demo.mp4}"
mkdir -p "$(dirname "$out")"
ffmpeg -nostdin -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=25" -t 10 \
  -c:v libx264 -preset veryslow -crf 32 -pix_fmt yuv420p -movflags +faststart "$out"
echo "$out"
