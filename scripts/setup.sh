#!/usr/bin/env bash
# Sets up a fresh machine: ffmpeg, the Python test tools, the npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq ffmpeg >/dev/null
fi

python3 -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# onnxruntime-node's install script would fetch CUDA binaries from a host that may be unreachable;
# its CPU binaries ship inside the npm package. `npm ci` also builds (the `prepare` script).
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

# NVIDIA's real tritonserver (PyPI nvidia-pytriton, ~500 MB venv in ~/.cache) for the integration tests
# in test/integration/real-triton.test.ts. Optional: where it cannot be installed or run, this says why
# and the set-up goes on (those tests then skip). VIDEO_SDK_REAL_TRITON=0 leaves it out.
if [ "${VIDEO_SDK_REAL_TRITON:-}" != 0 ]; then
  bash scripts/tritonserver-local.sh --install ||
    echo "setup: no real tritonserver on this machine (reason above); test/integration/real-triton.test.ts will skip" >&2
fi
