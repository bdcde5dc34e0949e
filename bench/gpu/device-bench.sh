#!/usr/bin/env bash
# On a GPU machine with no Node and no internet, from the repository root, with pack.sh's payload in
# .device/: unpacks it, starts tritonserver with the GPU repository (serve.sh) and runs `bench models`.
# The server keeps running (its own session) for device-main.sh. Results in $OUT (default ./gpu-results).
#
#   OUT=/somewhere bash bench/gpu/device-bench.sh          # env: BENCH_ARGS, IO, PRECISION, PORT (8001)
set -uo pipefail
cd "$(dirname "$0")/../.."
OUT=${OUT:-$PWD/gpu-results}
T=/tmp/vasdk-gpu
export PORT=${PORT:-8001}
mkdir -p "$OUT" "$T/bin"
log() { echo "[$(date +%T)] $*"; }

source bench/gpu/unpack.sh || exit 1

# GPU tensors between the python-backend processes need CUDA IPC; if that fails here, measure with the
# preprocess on the CPU instead (IO=cpu) and say so.
probe() { node bench/gpu/bench-models.mjs --url 127.0.0.1:$PORT --models midas_256,raft_256 --repeats 2 --warmup 1 --seconds 0 --concurrency 1 > "$OUT/probe-$1.txt" 2>&1; }
log "starting tritonserver (IO=${IO:-gpu})"
if ! { bash bench/gpu/serve.sh && probe "${IO:-gpu}"; }; then
  cat "$OUT/probe-${IO:-gpu}.txt" 2>/dev/null; tail -20 "$LOG"
  [ "${IO:-gpu}" = gpu ] || exit 1
  pid=$(cat /tmp/vasdk-gpu-repo.pid); kill "$pid" 2>/dev/null
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
  log "GPU io failed; again with IO=cpu"; export IO=cpu LOG="$OUT/tritonserver-cpu-io.log"
  { bash bench/gpu/serve.sh && probe cpu; } || { cat "$OUT/probe-cpu.txt"; tail -20 "$LOG"; exit 1; }
fi
echo "IO=${IO:-gpu} PRECISION=${PRECISION:-fp32}" >> "$OUT/env.txt"
nvidia-smi --query-gpu=memory.used --format=csv >> "$OUT/env.txt"

log "bench models"
node bench/gpu/bench-models.mjs --url 127.0.0.1:$PORT ${BENCH_ARGS:---repeats 50 --seconds 2} --out "$OUT/summary.json" 2>&1 | tee "$OUT/bench.txt"
cp "$OUT/summary.json" "$T/summary.json" 2>/dev/null   # for device-main.sh ($OUT is emptied between calls)
log done
