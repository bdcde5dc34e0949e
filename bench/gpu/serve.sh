#!/usr/bin/env bash
# Starts NVIDIA's tritonserver (2.51, from the PyPI wheel nvidia-pytriton 0.7.0) on a GPU machine with the
# GPU repository built from the committed triton/models, in the background, and waits until it serves.
#
#   TRITON_SITE=<dir holding pytriton/tritonserver and nvidia_pytriton.libs> bench/gpu/serve.sh
#
# Env: TRITON_SITE (default: the site-packages of `python3 -m pip show nvidia-pytriton`), IO=gpu|cpu,
#      PRECISION=fp32|fp16, MODELS=a,b (default all), PORT=8001 (gRPC; HTTP is PORT-1, metrics PORT+1),
#      REPO_DIR=/tmp/vasdk-gpu-repo, LOG=/tmp/vasdk-tritonserver.log, LIBPYTHON_DIR (if python3 has no
#      shared libpython), READY_TIMEOUT_S=600, INSTANCE_KIND=CPU (with IO=cpu: a check without a GPU).
# python3 on PATH must have torch, torchvision and transformers; the python-backend stubs run it.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
PORT=${PORT:-8001}
REPO_DIR=${REPO_DIR:-/tmp/vasdk-gpu-repo}
LOG=${LOG:-/tmp/vasdk-tritonserver.log}
SITE=${TRITON_SITE:-$(python3 -m pip show nvidia-pytriton 2>/dev/null | sed -n 's/^Location: //p')}
TS=$SITE/pytriton/tritonserver
[ -x "$TS/bin/tritonserver" ] || { echo "serve.sh: no tritonserver under TRITON_SITE=$SITE" >&2; exit 3; }

python3 "$HERE/build_gpu_repo.py" --out "$REPO_DIR" ${SOURCE:+--source "$SOURCE"} --io "${IO:-gpu}" --precision "${PRECISION:-fp32}" \
  ${MODELS:+--models "$MODELS"} ${INSTANCE_KIND:+--instance-kind "$INSTANCE_KIND"}

# The wheel ships one python-backend stub per Python; tritonserver looks for it next to libtriton_python.so.
PYVER=$(python3 -c 'import sys; print("%d.%d" % sys.version_info[:2])')
cmp -s "$TS/python_backend_stubs/$PYVER/triton_python_backend_stub" "$TS/backends/python/triton_python_backend_stub" ||
  cp "$TS/python_backend_stubs/$PYVER/triton_python_backend_stub" "$TS/backends/python/"
# The stub embeds libpython; a stub that cannot load it makes tritonserver hang, so check first.
export LD_LIBRARY_PATH="$(python3 -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')${LIBPYTHON_DIR:+:$LIBPYTHON_DIR}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if ldd "$TS/backends/python/triton_python_backend_stub" | grep -q "not found"; then
  ldd "$TS/backends/python/triton_python_backend_stub" | grep "not found" >&2
  echo "serve.sh: the stub misses libraries (libpython$PYVER: set LIBPYTHON_DIR)" >&2; exit 3
fi
# The stub's interpreter finds its environment (torch...) through the python3 first on PATH.
export PATH="$(dirname "$(command -v python3)"):$PATH"

# CUDA memory pool: GPU tensors between the python-backend processes and the server pass through it.
setsid "$TS/bin/tritonserver" --model-repository="$REPO_DIR" --backend-directory="$TS/backends" \
  --cache-directory="$TS/caches" --grpc-port="$PORT" --http-port=$((PORT - 1)) --metrics-port=$((PORT + 1)) \
  --exit-on-error=false --cuda-memory-pool-byte-size=0:2147483648 --pinned-memory-pool-byte-size=536870912 \
  --backend-config=python,shm-default-byte-size=4194304 --backend-config=python,shm-growth-byte-size=16777216 \
  >"$LOG" 2>&1 < /dev/null &
PID=$!
echo "$PID" > "$REPO_DIR.pid"
# In the default model-control mode the endpoints open only after every model has loaded or failed.
t0=$(date +%s)
until python3 -c "import urllib.request as u; u.urlopen('http://127.0.0.1:$((PORT - 1))/v2/health/live', timeout=2)" 2>/dev/null; do
  kill -0 "$PID" 2>/dev/null || { tail -30 "$LOG" >&2; echo "serve.sh: tritonserver exited" >&2; exit 1; }
  [ $(($(date +%s) - t0)) -lt "${READY_TIMEOUT_S:-600}" ] || { tail -30 "$LOG" >&2; echo "serve.sh: not live in time" >&2; kill "$PID"; exit 1; }
  sleep 2
done
python3 - "$((PORT - 1))" <<'EOF'
import json, sys, urllib.request as u
idx = json.load(u.urlopen(u.Request(f"http://127.0.0.1:{sys.argv[1]}/v2/repository/index", data=b"{}")))
bad = [f"{m['name']}: {m.get('state')} {m.get('reason', '')}" for m in idx if m.get("state") != "READY"]
print(f"serve.sh: {len(idx) - len(bad)}/{len(idx)} models READY" + "".join(f"\n  not ready: {b}" for b in bad))
EOF
echo "serve.sh: tritonserver pid $PID, gRPC 127.0.0.1:$PORT, up after $(($(date +%s) - t0)) s, log $LOG"
