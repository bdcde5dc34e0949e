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
