#!/usr/bin/env bash
# On the lent GPU machine (no Node, no internet): issue 21's tier bench through the SDK. Unpacks pack.sh's
# call-1 payload, serves tracks B, C and D of yolo11x_640 (the generated `triton-repo --tracks` configs in
# .device/tracks-repo, rewritten by build_gpu_repo.py: YOLO11x at random weights in PyTorch, NMS on the GPU
# for the End2End engine, nvJPEG + DALI's letterbox in PyTorch for the DALI steps, each tier's dynamic
# batching and queue policy as generated), then runs bench/gpu/tiers-gpu.mjs (the SDK's TritonClient and
# decoders) and keeps the server's batch statistics. Results in $OUT (at most 8 files).
#
#   here:  LIBPYTHON=... bench/gpu/pack.sh && bench/gpu/pack.sh tiers
#   there: OUT=$OUT bash bench/gpu/device-tiers.sh        # env: PRECISION (fp16), REQUESTS (256), REPEATS (3)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-results}
T=/tmp/vasdk-gpu
export PORT=${PORT:-8001}
mkdir -p "$OUT" "$T/bin"
log() { echo "[$(date +%T)] $*"; }
[ -d .device/tracks-repo ] && [ -d .device/images ] || { echo "device-tiers.sh: run bench/gpu/pack.sh tiers here and carry .device/tracks-repo and .device/images"; exit 1; }

source bench/gpu/unpack.sh || exit 1
M=yolo11x_640
export SOURCE=.device/tracks-repo PRECISION=${PRECISION:-fp16} LOG="$OUT/tritonserver.log"
export MODELS=$M,${M}_e2e,${M}_gpu_e2e,${M}_gpu_e2e_streaming,${M}_gpu_e2e_batch
log "starting tritonserver (tracks B/C/D of $M, $PRECISION)"
bash bench/gpu/serve.sh || { tail -40 "$LOG"; exit 1; }
echo "PRECISION=$PRECISION" >> "$OUT/env.txt"
python3 bench/gpu/tiers-images.py .device/images /tmp/tiers-img || exit 1
log "tiers"
node bench/gpu/tiers-gpu.mjs --url 127.0.0.1:$PORT --images /tmp/tiers-img/images.json --model $M \
  --requests "${REQUESTS:-256}" --repeats "${REPEATS:-3}" > "$OUT/tiers.json" 2> >(tee "$OUT/tiers.log" >&2)
rc=$?
# The server's own account: how many executions of which batch size each step ran (proof of the batching).
python3 - "$((PORT - 1))" > "$OUT/model-stats.json" <<'PY'
import json, sys, urllib.request as u
s = json.load(u.urlopen(f"http://127.0.0.1:{sys.argv[1]}/v2/models/stats"))
keep = []
for m in s["model_stats"]:
    if m["inference_count"]:
        keep.append({"name": m["name"], "inference_count": m["inference_count"], "execution_count": m["execution_count"],
                     "batches": {b["batch_size"]: b["compute_infer"]["count"] for b in m.get("batch_stats", [])},
                     "queue_ms_per_inference": round(int(m["inference_stats"]["queue"]["ns"]) / 1e6 / max(1, int(m["inference_count"])), 3),
                     "compute_ms_per_execution": round(int(m["inference_stats"]["compute_infer"]["ns"]) / 1e6 / max(1, int(m["execution_count"])), 3)})
json.dump(keep, sys.stdout, indent=1)
PY
nvidia-smi --query-gpu=memory.used,utilization.gpu --format=csv >> "$OUT/env.txt"
kill "$(cat /tmp/vasdk-gpu-repo.pid)" 2>/dev/null
log "done (tiers exit $rc)"
exit $rc
