#!/usr/bin/env bash
# The README's test command: installs dependencies, builds everything, runs every CPU
# test with ctest. (CUDA tests need a GPU: see scripts/test_cuda.sh.)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install_deps.sh
bash scripts/build.sh
cd build && ctest --output-on-failure -j"$(nproc)" --timeout 900
