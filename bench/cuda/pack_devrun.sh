#!/usr/bin/env bash
# Packs a CUDA build made here (-DTQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real
# -DTQ_NATIVE=OFF) for a device call: the library, tq and its runner module, the CUDA test
# binaries, and the host libraries they need that the device lacks, into
# build-devrun/<name>.tar.xz (an ignored folder; pass it in the call's carry). On the
# device: mkdir -p /tmp/x && tar xJf build-devrun/<name>.tar.xz -C /tmp/x, then
# LD_LIBRARY_PATH=/tmp/x/lib and the binaries at their build-tree paths under /tmp/x.
# Usage: bench/cuda/pack_devrun.sh BUILD_DIR NAME
# PACK_FILES="src/capi/libturboquant.so* tests/cuda/test_cuda" packs only those (a call
# carrying several builds stays under the carry limit).
set -euo pipefail
build=$1 name=$2
root=$(cd "$(dirname "$0")/../.." && pwd)
out=$root/build-devrun
mkdir -p "$out"
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cd "$build"
files=()
for f in ${PACK_FILES:-src/capi/libturboquant.so* bin/tq bin/libtq_cuda_runner.so tests/cuda/test_cuda tests/cuda/test_cuda_model \
  tests/cuda/write_shaped_gguf tests/cuda/bench_cuda_presets tests/backend/test_backend_ops_cuda tests/cli/test_cli \
  tests/capi/test_c_api_cuda}; do
  [ -e "$f" ] && files+=("$f")
done
tar cf - "${files[@]}" | tar xf - -C "$stage"
mkdir -p "$stage/lib"
for lib in libopenblas.so.0 libgfortran.so.5 libquadmath.so.0 libbenchmark.so.1debian; do
  p=$(ldconfig -p | awk -v l="$lib" '$1 == l && !p {p = $NF} END {print p}')  # no early exit: SIGPIPE under pipefail
  [ -n "$p" ] && cp -L "$p" "$stage/lib/"
done
tar cJf "$out/$name.tar.xz" -C "$stage" .
echo "pack_devrun: $out/$name.tar.xz ($(du -h "$out/$name.tar.xz" | cut -f1)): ${files[*]}"
