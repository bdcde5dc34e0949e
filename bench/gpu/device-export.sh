#!/usr/bin/env bash
# On the lent GPU machine (no internet): every family exported with random weights of the real
# architecture by scripts/export/export.py, each checked against the catalog contract and PyTorch, then
# YOLO11x timed in PyTorch at the batch sizes of the tiers (bench/gpu/tracks_torch.py).
#   .device/ carries bus.jpg (the real image of the check) and contracts.json (export.py --dump-contracts).
set -uo pipefail
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; python3 -c "import torch, torchvision, transformers, onnx, onnxruntime; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'torchvision', torchvision.__version__, 'transformers', transformers.__version__, 'onnx', onnx.__version__, 'onnxruntime', onnxruntime.__version__)"; nproc; } > "$OUT/env.txt" 2>&1
REPO=/tmp/export-repo
run() { local t0=$SECONDS; timeout "$1" python3 scripts/export/export.py "${@:2}" --random --out $REPO --image .device/bus.jpg --contracts .device/contracts.json >> "$OUT/export.jsonl" 2>> "$OUT/export.log"; echo "exit $? after $((SECONDS - t0)) s: ${*:2}" >> "$OUT/export.log"; }
run 120 places365
run 120 clip_image
run 120 clip_text
run 150 midas --size 256
run 150 raft --size 256
run 200 yolo11 --size 640 --end2end
timeout 120 python3 bench/gpu/tracks_torch.py > "$OUT/tracks_torch.json" 2>> "$OUT/export.log"
ls -la $REPO/*/1/ > "$OUT/repo-files.txt" 2>&1
