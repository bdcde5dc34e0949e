#!/usr/bin/env bash
# Sets up a fresh machine: ffmpeg, the Python test tools, the npm dependencies, and the build.
set -euo pipefail
cd "$(dirname "$0")/.."

sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq ffmpeg >/dev/null
fi
# redis-server (Redis >= 6) for the BullMQ worker tests (test/batch/queue.test.ts start their own on a free port).
if ! command -v redis-server >/dev/null; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq redis-server >/dev/null
fi

# The report's browser test drives Debian's chromium (playwright-core downloads no browser); the
# annotations' text is drawn with DejaVu Sans Mono.
if ! command -v chromium >/dev/null || ! fc-list 2>/dev/null | grep -q "DejaVu Sans Mono"; then
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq chromium fonts-dejavu-core >/dev/null
fi

# A system Python that refuses pip (PEP 668, "externally managed": Debian 12's own python3) gets a
# project venv in .venv, which `npm test` then uses; a pyenv or venv Python is used as it is.
py=python3
if python3 -c 'import sys, sysconfig, os; sys.exit(0 if sys.prefix == sys.base_prefix and os.path.exists(os.path.join(sysconfig.get_paths()["stdlib"], "EXTERNALLY-MANAGED")) else 1)'; then
  [ -x .venv/bin/python3 ] || python3 -m venv .venv || { $sudo apt-get install -y -qq python3-venv >/dev/null && python3 -m venv .venv; }
  py=.venv/bin/python3
fi
"$py" -m pip install -q --disable-pip-version-check -r requirements-dev.txt

# ifzhang/ByteTrack's own tracker: the reference test/python/test_mot15_tracking.py holds the `python`
# variant to. It is not on GitHub's side of the fence here: PyPI's sdist bytetrack==0.0.1 ("packaged version
# of ifzhang/ByteTrack") carries its four tracker files, equal to ifzhang's at d1bf019 but for the package
# name in two imports. Fetched from the registry, checked, unpacked into a cache; never part of this repository.
# Optional: where it cannot be fetched, that one test skips and says why.
bt="${BYTETRACK_SRC:-$HOME/.cache/video-analysis/bytetrack}"
if [ ! -s "$bt/bytetrack/tracker/byte_tracker.py" ]; then
  bt_sdist=$(mktemp)
  if curl -fsSL https://files.pythonhosted.org/packages/82/37/edc3fe007a32973b34c9c7ac9f3471c3f46428b232bb14cf41dd73c67b3d/bytetrack-0.0.1.tar.gz -o "$bt_sdist" &&
     echo "6e796f5d05c9e1e1ccbbf9de5785d5db445784c71350799ca6473a14414fdc00  $bt_sdist" | sha256sum -c --quiet; then
    mkdir -p "$bt" && tar -xzf "$bt_sdist" -C "$bt" --strip-components=1 bytetrack-0.0.1/bytetrack/tracker bytetrack-0.0.1/LICENSE
  else
    echo "setup: could not fetch PyPI's bytetrack 0.0.1 (ifzhang/ByteTrack's tracker); the python-variant reference test will skip" >&2
  fi
  rm -f "$bt_sdist"
fi

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
