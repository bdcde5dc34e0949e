#!/usr/bin/env bash
# A small ffmpeg/ffprobe 5.1 for a machine that has none and no internet: only what `main` asks of it
# (H.264/HEVC/MPEG-4 decode from MP4/MKV/TS, the concat and subfile protocols of sparse decoding,
# select/showinfo/scale/format/transpose filters, rawvideo out).
# Linked against glibc and libm alone, so it runs on any newer glibc. Needs gcc, make, nasm here; ~4 min.
#
#   bench/gpu/build-ffmpeg.sh [PREFIX=/tmp/ffmin]      -> PREFIX/bin/ffmpeg, PREFIX/bin/ffprobe (~4.5 MB each)
set -euo pipefail
PREFIX=${1:-/tmp/ffmin}
W=$(mktemp -d)
cd "$W"
# Debian's source package, through apt's own client: the machine's own apt sources, turned into
# deb-src entries in a private copy (the system's sources are left unchanged).
mkdir -p lists/partial parts
for f in /etc/apt/sources.list.d/*.sources; do sed 's/^Types: deb$/Types: deb-src/' "$f" > "parts/$(basename "$f")"; done
o="-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts=$W/parts -o Dir::State::Lists=$W/lists"
apt-get $o update -qq
apt-get $o source --download-only -qq ffmpeg
tar xf ffmpeg_5.1.*.orig.tar.xz
cd ffmpeg-5.1.*/
./configure --prefix="$PREFIX" --disable-everything --disable-autodetect --disable-doc --disable-debug \
  --enable-static --disable-shared --disable-ffplay --enable-ffmpeg --enable-ffprobe \
  --enable-protocol=file,pipe,concat,subfile --enable-demuxer=mov,matroska,mpegts,rawvideo --enable-decoder=h264,hevc,mpeg4,rawvideo \
  --enable-parser=h264,hevc,mpeg4video --enable-filter=select,showinfo,scale,format,transpose,hflip,vflip,null,fps,copy \
  --enable-muxer=rawvideo,null --enable-encoder=rawvideo --enable-swscale --enable-pthreads --extra-ldflags=-static-libgcc
make -j"$(nproc)"
make install
rm -rf "$W"
"$PREFIX/bin/ffmpeg" -hide_banner -version | head -1
