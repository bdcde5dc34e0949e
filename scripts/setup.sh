#!/usr/bin/env bash
# Sets up a fresh machine: ffmpeg, the Python test tools, the npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq ffmpeg >/dev/null
fi

# A system Python that refuses pip (PEP 668, "externally managed": Debian 12's own python3) gets a
# project venv in .venv, which `npm test` then uses; a pyenv or venv Python is used as it is.
py=python3
if python3 -c 'import sys, sysconfig, os; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else 1)'; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv || { $sudo apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
  py=.venv/bin/python3
fi
"$py" -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# onnxruntime-node's install script would fetch CUDA binaries from a host that may be unreachable;
# its CPU binaries ship inside the npm package. `npm ci` also builds (the `prepare` script).
ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund

# NVIDIA's real tritonserver (PyPI nvidia-pytriton, ~500 MB venv in ~/.cache) for the integration tests
# in test/integration/real-triton.test.ts. Optional: where it cannot be installed or run, this says why
# and the set-up goes on (those tests then skip). VIDEO_SDK_REAL_TRITON=0 leaves it out.
if [ "${VIDEO_SDK_REAL_TRITON:-}" != 0 ]; then
  if bash scripts/tritonserver-local.sh --install; then
    # The DALI stand-in of test/integration/real-triton-tracks.test.ts decodes JPEG with Pillow in the server's venv.
    "${TRITON_VENV:-$HOME/.cache/video-analysis-sdk/pytriton-venv}/bin/pip" install -q --disable-pip-version-check pillow ||
      echo "setup: could not install pillow in the tritonserver venv; the track D tests will skip" >&2
  else
    echo "setup: no real tritonserver on this machine (reason above); test/integration/real-triton.test.ts will skip" >&2
  fi
fi
