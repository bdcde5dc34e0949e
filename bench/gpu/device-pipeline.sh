#!/usr/bin/env bash
# `bench pipeline --quick` on a lent machine's CPUs (no Node, no ffmpeg, no internet there), in two calls
# on the same warm machine, from pack.sh pipeline's payload in .device/:
#   call 1 (carry .device/node.xz .device/pipeline.tar.xz .device/bench-10s):  bash bench/gpu/device-pipeline.sh unpack
#   call 2 (carry .device/bench-60s):                                           OUT=$OUT bash bench/gpu/device-pipeline.sh run
# The payload is unpacked into /tmp/vasdk-cpu, which outlives call 1 on the warm machine.
set -uo pipefail
cd "$(dirname "$0")/../.."
T=/tmp/vasdk-cpu
OUT=${OUT:-$PWD/cpu-results}
if [ "${1:-}" = unpack ]; then
  rm -rf "$T" && mkdir -p "$T/bin" "$T/cache" || exit 1
  python3 - "$T" <<'PY' || exit 1
import lzma, os, shutil, sys, tarfile
t = sys.argv[1]
with lzma.open(".device/node.xz") as f, open(f"{t}/bin/node", "wb") as g:
    shutil.copyfileobj(f, g)
os.chmod(f"{t}/bin/node", 0o755)
with tarfile.open(".device/pipeline.tar.xz") as tf:
    tf.extractall(f"{t}/app")
PY
  cp .device/bench-10s/*.mp4 "$T/cache/"
  "$T/bin/node" --version && nproc && lscpu | grep -E "Model name|^CPU\(s\)|Thread|Socket" && free -g | head -2
  exit
fi
mkdir -p "$OUT"
cp .device/bench-60s/*.mp4 "$T/cache/" || exit 1
cd "$T/app"
export PATH="$T/bin:$PATH" FFMPEG_PATH=$T/app/ffmpeg/ffmpeg FFPROBE_PATH=$T/app/ffmpeg/ffprobe CLIP_BPE_PATH=$T/app/clip/bpe_simple_vocab_16e6.txt.gz
chmod +x ffmpeg/*
{ nproc; ffmpeg/ffmpeg -hide_banner -version | head -1; node --version; } | tee "$OUT/env.txt"
node dist/src/cli/main.js bench pipeline --quick --cache "$T/cache" ${BENCH_ARGS:-} 2>&1 | tee "$OUT/bench-pipeline.txt"

