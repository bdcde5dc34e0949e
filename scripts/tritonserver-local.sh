#!/usr/bin/env bash
# Runs NVIDIA's real tritonserver (2.51, as shipped in the PyPI wheel nvidia-pytriton) without Docker
# or a GPU, for local runs and integration tests. Only the python backend and ensembles are in the
# wheel, so ONNX models are served by a python-backend model.py that uses onnxruntime
# (test/support/ort_python_model.py).
#
#   scripts/tritonserver-local.sh --model-repository=DIR [other tritonserver flags]   # installs if needed
#   scripts/tritonserver-local.sh --install    # install (if needed) + preflight, start nothing
#   scripts/tritonserver-local.sh --check      # preflight only, never installs, start nothing
#
# Env: TRITON_VENV (default $HOME/.cache/video-analysis-sdk/pytriton-venv), TRITON_PYTHON (python3),
#      PYTRITON_VERSION (0.7.0), TRITON_VENV_PACKAGES (extra pip packages, default "numpy onnxruntime").
# Exit 3: the server cannot run on this machine, or (--check) is not installed; the message on stderr
# says which. Callers should skip, not fail.
set -euo pipefail

VENV=${TRITON_VENV:-$HOME/.cache/video-analysis-sdk/pytriton-venv}
PY=${TRITON_PYTHON:-python3}
SPEC="nvidia-pytriton==${PYTRITON_VERSION:-0.7.0} ${TRITON_VENV_PACKAGES:-numpy onnxruntime}"
MODE=start
case "${1:-}" in --check) MODE=check ;; --install) MODE=install ;; esac
cant() { echo "tritonserver-local: cannot run tritonserver on this machine: $*" >&2; exit 3; }

[ "$(uname -sm)" = "Linux x86_64" ] || cant "the wheel is Linux x86-64 only (this is $(uname -sm))"

# A marker records what was installed, so a changed SPEC reinstalls and an unchanged one costs nothing.
if [ "$(cat "$VENV/.installed" 2>/dev/null)" != "$SPEC" ]; then
  # --check is what test harnesses call: it must stay fast and offline, so it never installs.
  if [ "$MODE" = check ]; then
    echo "tritonserver-local: not installed: '$SPEC' is not in $VENV; run scripts/tritonserver-local.sh --install (scripts/setup.sh does)" >&2
    exit 3
  fi
  echo "tritonserver-local: installing $SPEC into $VENV (first run takes ~30-50 s, ~500 MB)" >&2
  { "$PY" -m venv "$VENV" && "$VENV/bin/pip" install -q --disable-pip-version-check $SPEC >&2; } ||
    cant "could not create $VENV or pip install '$SPEC' (needs python3-venv, PyPI access, glibc >= 2.35, Python 3.8-3.12)"
  echo "$SPEC" > "$VENV/.installed"
fi

SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])') ||
  cant "the venv's Python $VENV/bin/python does not run; delete $VENV and run --install again"
PYVER=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')
# The stub embeds libpython; using the venv's base interpreter's copy keeps it in step with the stdlib
# it will load (a system libpython of another patch release also works, but is not what we tested).
PYLIBDIR=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_config_var("LIBDIR"))')
TS=$SITE/pytriton/tritonserver
STUB=$TS/backends/python/triton_python_backend_stub
[ -x "$TS/bin/tritonserver" ] || cant "$TS/bin/tritonserver is missing; delete $VENV and run --install again"

# The wheel ships one python-backend stub per Python version and leaves choosing one to pytriton;
# tritonserver only looks for it next to libtriton_python.so.
[ -f "$TS/python_backend_stubs/$PYVER/triton_python_backend_stub" ] || cant "no python-backend stub for Python $PYVER"
cmp -s "$TS/python_backend_stubs/$PYVER/triton_python_backend_stub" "$STUB" ||
  cp "$TS/python_backend_stubs/$PYVER/triton_python_backend_stub" "$STUB"

# A stub that cannot load makes tritonserver wait forever on that model instead of failing, so check
# its libraries up front (the usual miss: libpython3.X.so.1.0 from a statically linked Python).
export LD_LIBRARY_PATH="$PYLIBDIR${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
missing=$(ldd "$TS/bin/tritonserver" "$STUB" 2>&1 | awk '/not found/ {print $1}' | sort -u | tr '\n' ' ')
[ -z "$missing" ] || cant "missing shared libraries: $missing(for libpython3.X: apt-get install libpython$PYVER, or use a Python built with --enable-shared via TRITON_PYTHON)"
# model.py files (the preprocess models, the onnxruntime wrapper) import these inside the stub.
"$VENV/bin/python" -c 'import numpy, onnxruntime' 2>/dev/null ||
  cant "numpy or onnxruntime does not import in $VENV; delete $VENV and run --install again"

[ "$MODE" != start ] && { echo "tritonserver-local: ok ($SPEC, Python $PYVER, $TS/bin/tritonserver)"; exit 0; }

# The stub's embedded interpreter finds its environment by looking up `python3` on PATH, so the venv
# must come first for model.py to import numpy/onnxruntime from it.
export PATH="$VENV/bin:$PATH"
# No CUDA driver here: zero pools skip the pinned/CUDA allocations (which only warn, but noisily).
exec "$TS/bin/tritonserver" --backend-directory="$TS/backends" --cache-directory="$TS/caches" \
  --pinned-memory-pool-byte-size=0 --cuda-memory-pool-byte-size=0:0 "$@"
