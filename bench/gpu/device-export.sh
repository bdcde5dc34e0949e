#!/usr/bin/env bash
# On the lent GPU machine (no internet, no node): issue 21's GPU half. Two calls, each well inside the
# 10-minute limit of one command; each call's files in $OUT come back (at most 8 files, no deeper than 2
# folders). Copy what comes back into bench/gpu/results/h200-export-<date>/ (docs/gpu-bench.md says how).
#
#   call 1: OUT=$OUT bash bench/gpu/device-export.sh exports   # places365, clip_image, clip_text, yolo11x (+ End2End)
#   call 2: OUT=$OUT bash bench/gpu/device-export.sh heavy     # midas, raft, tracks B/C/D in PyTorch, nvJPEG vs PIL
#   (heavy = dense (midas, raft) + torch (tracks, nvJPEG); bench/gpu/device-issue21.sh runs the parts in one call)
#
# Each export: scripts/export/export.py --random (the real architecture, random weights, seed 0), checked
# against the catalog contract and against PyTorch on bus.jpg (max abs diff), on the GPU. The machine has
# torch, torchvision, transformers, onnx, onnxruntime and opencv-python-headless (KINDS.md), so no wheels
# are carried. What is carried is .device/ (`bench/gpu/pack.sh export`, here): contracts.json (the catalog,
# which needs node to read), images/*.jpg (bus.jpg among them) and yolo11n_int8_640.onnx from ../shared/testdata.
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-bench/gpu/results/h200-export-$(date -u +%F)}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1
part=${1:?usage: device-export.sh exports|heavy|dense|torch}
for f in .device/contracts.json .device/images/bus.jpg .device/yolo11n_int8_640.onnx; do
  [ -f "$f" ] || { echo "device-export.sh: $f missing: run bench/gpu/pack.sh export here and carry .device"; exit 1; }
done
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, torchvision, transformers, onnx, onnxruntime; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"
  nproc; git log -1 --format='commit %H' 2>/dev/null; } > "$OUT/env-$part.txt" 2>&1
REPO=/tmp/export-repo
run() {  # run SECONDS FAMILY [export.py options]: one JSON line per model in export-<part>.jsonl
  local t0=$SECONDS
  timeout "$1" python3 scripts/export/export.py "${@:2}" --random --out $REPO --image .device/images/bus.jpg --contracts .device/contracts.json \
    >> "$OUT/export-$part.jsonl" 2>> "$OUT/export-$part.log"
  echo "exit $? after $((SECONDS - t0)) s: ${*:2}" | tee -a "$OUT/export-$part.log"
}
exports() {  # ~5 min on this machine's CPU (docs/tracks.md); budget 520 s
  run 90 places365
  run 120 clip_image
  run 150 clip_text
  run 160 yolo11 --size 640 --end2end
}
dense() {    # budget 320 s
  run 150 midas --size 256
  run 170 raft --size 256
}
torch_tracks() {  # budget 220 s
  timeout 120 python3 bench/gpu/tracks_torch.py > "$OUT/tracks_torch.json" 2>> "$OUT/export-$part.log"; echo "tracks_torch exit $?" | tee -a "$OUT/export-$part.log"
  timeout 100 python3 bench/gpu/nvjpeg_parity.py --images .device/images --model .device/yolo11n_int8_640.onnx > "$OUT/nvjpeg_parity.txt" 2>> "$OUT/export-$part.log"
  echo "nvjpeg_parity exit $?" | tee -a "$OUT/export-$part.log"
}
case $part in
  exports) exports ;;
  heavy) dense; torch_tracks ;;  # budget 540 s
  dense) dense ;;
  torch) torch_tracks ;;
  *) echo "device-export.sh: unknown part $part (exports|heavy|dense|torch)"; exit 2 ;;
esac
ls -la $REPO/*/1/ > "$OUT/repo-files-$part.txt" 2>&1
ls -la "$OUT"
