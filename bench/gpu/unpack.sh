# Sourced by device-bench.sh and device-tiers.sh (bash, from the repository root, with OUT, T and log() set):
# writes the machine's facts to $OUT/env.txt and unpacks pack.sh's call-1 payload from .device/ (node,
# tritonserver from the pytriton wheel, the SDK's build, libpython when carried) into $T; exports PATH,
# TRITON_SITE, LIBPYTHON_DIR and LOG for serve.sh.
{ nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv
  python3 -c 'import sys, torch, torchvision, transformers, numpy; print(sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda, "torchvision", torchvision.__version__, "transformers", transformers.__version__, "numpy", numpy.__version__)'
  command -v ffmpeg node xz || true; df -h /dev/shm /tmp | tail -2; nproc; } > "$OUT/env.txt" 2>&1
cat "$OUT/env.txt"

# Unpack with Python's lzma/tarfile: nothing else is sure to be there.
log unpacking
python3 - "$T" <<'EOF' || return 1
import lzma, os, shutil, sys, tarfile
t = sys.argv[1]
with lzma.open(".device/node.xz") as f, open(f"{t}/bin/node", "wb") as g:
    shutil.copyfileobj(f, g)
os.chmod(f"{t}/bin/node", 0o755)
for name, dest in [("triton", f"{t}/site"), ("app", "."), ("libpython", f"{t}/libpython")]:
    if os.path.exists(f".device/{name}.tar.xz"):
        with tarfile.open(f".device/{name}.tar.xz") as tf:
            tf.extractall(dest)
EOF
chmod +x "$T"/site/pytriton/tritonserver/bin/* "$T"/site/pytriton/tritonserver/python_backend_stubs/*/*
export PATH="$T/bin:$PATH" TRITON_SITE="$T/site" LIBPYTHON_DIR="$T/libpython" LOG="$OUT/tritonserver.log"
node --version || return 1

