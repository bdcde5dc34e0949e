#!/usr/bin/env bash
# Packs what a GPU machine WITHOUT Node and WITHOUT internet needs, into .device/ (ignored by git), for
# bench/gpu/device-bench.sh and device-main.sh. Run here, from a built checkout (npm ci && npm run build),
# on Linux x86-64 with internet (pip download). Files already there are kept (delete one to remake it),
# except app.tar.xz, which is rebuilt from the tree every time.
#
#   bench/gpu/pack.sh              # call 1: node.xz, triton.tar.xz, app.tar.xz (+ libpython.tar.xz)
#   FFMPEG_DIR=/tmp/ffmin/bin bench/gpu/pack.sh main   # call 2: main.tar.xz (+ the 1080p test video)
#   bench/gpu/pack.sh export       # device-export.sh (issue 21): contracts.json, images/ (bus.jpg among them), yolo11n_int8_640.onnx
#   bench/gpu/pack.sh tiers        # device-tiers.sh (issue 21), with call 1's payload: tracks-repo/ (yolo11x_640's
#                                    tracks B/C/D configs from `triton-repo --tracks`), images/
#   FFMPEG_DIR=/tmp/ffmin/bin bench/gpu/pack.sh pipeline   # `bench pipeline` on the machine's CPUs (device-pipeline.sh):
#                                    node.xz, pipeline.tar.xz, bench-10s/ for call 1; bench-60s/ for call 2
#   (CLIP_BPE=path/to/bpe_simple_vocab_16e6.txt.gz, default ../shared/testdata/clip/)
#
# Why so careful about size: a lent GPU machine takes at most 64 MiB per call (tree + carried files).
set -euo pipefail
cd "$(dirname "$0")/../.."
P=.device
PYVER=${PYVER:-3.12}   # the GPU machine's python3 (the python-backend stub must match it)
mkdir -p "$P"
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
xzc() { xz -T0 -9 -c; }

if [ "${1:-}" = export ]; then
  # The GPU machine has the Python packages; it lacks node (the catalog's contracts) and ../shared/testdata.
  TD=${TESTDATA:-../shared/testdata}
  python3 scripts/export/export.py --dump-contracts > $P/contracts.json
  mkdir -p $P/images && cp "$TD"/images/*.jpg $P/images/ && cp "$TD"/models/yolo11n_int8_640.onnx $P/
elif [ "${1:-}" = tiers ]; then
  TD=${TESTDATA:-../shared/testdata}
  node dist/src/cli/main.js triton-repo --out "$W/tr" --tracks > /dev/null
  rm -rf $P/tracks-repo && mkdir -p $P/tracks-repo $P/images && cp "$TD"/images/*.jpg $P/images/
  for m in "$W"/tr/*yolo11x_640* "$W"/tr/yolo_preprocess_dali_640*; do cp -r "$m" $P/tracks-repo/; done
elif [ "${1:-}" = pipeline ]; then
  # An embedded `main` loads neither sharp nor gRPC, but the CLI's bench command imports the transport
  # bench (gRPC); onnxruntime-node for linux-x64 only. Always remade, like app.tar.xz.
  : "${FFMPEG_DIR:?set FFMPEG_DIR to a folder with ffmpeg and ffprobe}"
  [ -f $P/node.xz ] || xzc < "$(command -v node)" > $P/node.xz
  npx tsc -p .
  mkdir -p "$W/ffmpeg" "$W/clip" && cp "$FFMPEG_DIR/ffmpeg" "$FFMPEG_DIR/ffprobe" "$W/ffmpeg/"
  cp "${CLIP_BPE:-../shared/testdata/clip/bpe_simple_vocab_16e6.txt.gz}" "$W/clip/"
  ort=node_modules/onnxruntime-node
  mods=$(cd node_modules && ls -d onnxruntime-common fluent-ffmpeg which isexe async @grpc/grpc-js @grpc/proto-loader @js-sdsl/ordered-map @protobufjs/* lodash.camelcase long protobufjs yaml zod 2>/dev/null)
  tar -cf - --exclude=node_modules/fluent-ffmpeg/coverage --exclude=node_modules/fluent-ffmpeg/doc dist/src dist/bench package.json profiles models/contract \
    $ort/package.json $ort/dist $ort/bin/napi-v6/linux/x64 $(for m in $mods; do echo "node_modules/$m"; done) -C "$W" ffmpeg clip | xzc > $P/pipeline.tar.xz
  # bench pipeline's inputs (its cache folder's names), one folder per call: 10 s with call 1, 60 s with call 2.
  for s in 10 60; do
    mkdir -p $P/bench-${s}s
    v=$P/bench-${s}s/testsrc2_1920x1080_30fps_${s}s.mp4
    [ -f $v ] || ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t $s \
      -c:v libx264 -preset veryfast -crf 23 -g 60 -pix_fmt yuv420p $v
  done
elif [ "${1:-}" != main ]; then
  # Node: this machine's node 20 binary; it links only glibc, libstdc++ and libgcc_s.
  [ -f $P/node.xz ] || xzc < "$(command -v node)" > $P/node.xz
  # tritonserver 2.51 from the nvidia-pytriton 0.7.0 wheel: the server, the python backend, the stub for
  # PYVER and the bundled libraries; not pytriton's Python code, not the libpython 3.13 it also bundles.
  if [ ! -f $P/triton.tar.xz ]; then
    python3 -m pip download -q --no-deps -d "$W" nvidia-pytriton==0.7.0
    python3 -m zipfile -e "$W"/nvidia_pytriton-*.whl "$W/site"
    find "$W/site/pytriton/tritonserver/python_backend_stubs" -mindepth 1 -maxdepth 1 ! -name "$PYVER" -exec rm -rf {} +
    tar -C "$W/site" -cf - --exclude='libpython3-*' --exclude=__pycache__ pytriton/tritonserver nvidia_pytriton.libs | xzc > $P/triton.tar.xz
  fi
  # The SDK's build and the node_modules that `bench models` loads (bench/gpu/bench-models.mjs). Always
  # remade: a dist/ older than the tree's profiles fails on their newer keys.
  npx tsc -p .
  mods=$(cd node_modules && ls -d @grpc/grpc-js @grpc/proto-loader @js-sdsl/ordered-map @protobufjs/* lodash.camelcase long protobufjs yaml zod)
  tar -cf - dist/src dist/bench $(for m in $mods; do echo "node_modules/$m"; done) | xzc > $P/app.tar.xz
  # Only used when the GPU machine's python3 has no shared libpython (LIBPYTHON=path/to/libpython3.X.so.1.0).
  if [ -n "${LIBPYTHON:-}" ] && [ ! -f $P/libpython.tar.xz ]; then tar -C "$(dirname "$LIBPYTHON")" -cf - "$(basename "$LIBPYTHON")" | xzc > $P/libpython.tar.xz; fi
else
  # `main` loads every command, so onnxruntime-node and sharp must load too (linux-x64 parts only), and
  # decodes with ffmpeg/ffprobe (>= 5.1) from FFMPEG_DIR (e.g. bench/gpu/build-ffmpeg.sh's static build).
  if [ ! -f $P/main.tar.xz ]; then
    : "${FFMPEG_DIR:?set FFMPEG_DIR to a folder with ffmpeg and ffprobe}"
    mkdir -p "$W/ffmpeg" "$W/clip" && cp "$FFMPEG_DIR/ffmpeg" "$FFMPEG_DIR/ffprobe" "$W/ffmpeg/"
    # CLIP's BPE vocabulary for the profile's text prompts (not in the repository; MIT, from openai/CLIP).
    cp "${CLIP_BPE:-../shared/testdata/clip/bpe_simple_vocab_16e6.txt.gz}" "$W/clip/"
    ort=node_modules/onnxruntime-node
    mods=$(cd node_modules && ls -d onnxruntime-common sharp @img/colour @img/sharp-linux-x64 @img/sharp-libvips-linux-x64 detect-libc semver fluent-ffmpeg which isexe async adm-zip global-agent 2>/dev/null)
    tar -cf - --exclude=node_modules/fluent-ffmpeg/coverage --exclude=node_modules/fluent-ffmpeg/doc $ort/package.json $ort/dist \
      $ort/bin/napi-v6/linux/x64 $(for m in $mods; do echo "node_modules/$m"; done) -C "$W" ffmpeg clip | xzc > $P/main.tar.xz
  fi
  # The input of `main`: 10 s of testsrc2, 1920x1080, 30 fps, H.264, as bench/pipeline.ts makes it.
  v=$P/testsrc2_1920x1080_30fps_10s.mp4
  [ -f $v ] || ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i testsrc2=size=1920x1080:rate=30 -t 10 \
    -c:v libx264 -preset veryfast -crf 23 -g 60 -pix_fmt yuv420p $v
fi
ls -la $P
du -cb $P/* | tail -1
