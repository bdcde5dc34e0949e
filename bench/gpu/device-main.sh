#!/usr/bin/env bash
# After device-bench.sh, on the same (still running) GPU machine: unpacks main.tar.xz (onnxruntime-node and
# sharp for linux-x64, which the CLI loads; ffmpeg/ffprobe) and measures `main` end to end on the 1080p
# test video against the running server (main-fps.mjs). Results in $OUT.
#
#   OUT=/somewhere bash bench/gpu/device-main.sh            # env: PORT (8001), FPS (30), PROFILES
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-results}
T=/tmp/vasdk-gpu
PORT=${PORT:-8001}
mkdir -p "$OUT"
[ -x $T/bin/node ] || { echo "device-main.sh: no $T/bin/node: run device-bench.sh first on this machine"; exit 1; }
python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$((PORT - 1))/v2/health/live', timeout=2)" ||
  { echo "device-main.sh: tritonserver is not running: run device-bench.sh first"; exit 1; }
python3 -c 'import tarfile; tarfile.open(".device/main.tar.xz").extractall(".")' || exit 1
rm -rf $T/ffmpeg $T/clip && mv ffmpeg clip $T/
export PATH="$T/bin:$PATH" FFMPEG_PATH=$T/ffmpeg/ffmpeg FFPROBE_PATH=$T/ffmpeg/ffprobe CLIP_BPE_PATH=$T/clip/bpe_simple_vocab_16e6.txt.gz
$FFMPEG_PATH -hide_banner -version | head -1
VIDEO=.device/testsrc2_1920x1080_30fps_10s.mp4

# The same benchmark through the real CLI, on two models, to show the direct runner measures the same.
node dist/src/cli/main.js bench models --url 127.0.0.1:$PORT --models midas_512,yolo11x_640 --repeats 30 --seconds 2 2>&1 | tee "$OUT/bench-cli.txt"

for p in ${PROFILES:-baseline_gpu_yolo baseline_gpu}; do
  node bench/gpu/main-fps.mjs --url 127.0.0.1:$PORT --video $VIDEO --profile profiles/$p.yaml --fps ${FPS:-30} --summary $T/summary.json --json > "$OUT/main-$p.json" 2> "$OUT/main-$p.err"
  node -e 'const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")); console.log(JSON.stringify(r, null, 1))' "$OUT/main-$p.json" || tail -20 "$OUT/main-$p.err"
done
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv
