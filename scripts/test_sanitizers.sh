#!/usr/bin/env bash
# Builds the library and its CPU tests with ASan + UBSan (no CUDA, no benchmarks) and
# runs them. Any report fails the run.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTQ_SANITIZE=ON -DTQ_CUDA=OFF \
  -DTQ_BENCH=OFF -DTQ_NATIVE=ON >/dev/null
cmake --build build-asan -j"$(nproc)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd build-asan && ctest --output-on-failure -j"$(nproc)" --timeout 1800
