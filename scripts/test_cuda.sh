#!/usr/bin/env bash
# Builds the CUDA backend and its tests into build-cuda/ and runs them: the one command
# for a GPU machine (nvcc, GoogleTest and CMake installed). Without a GPU every device
# test skips with a message.
#   scripts/test_cuda.sh              build + run every CUDA test
#   scripts/test_cuda.sh --memcheck   also run a representative subset under
#                                     compute-sanitizer memcheck
#   scripts/test_cuda.sh --memcheck-only   only that subset (a second call when one
#                                     call's time cannot hold both)
# Then the backend harness (tests/backend) over the CUDA kernels, each forced explicitly.
# TQ_CUDA_BIN=DIR runs an already built test_cuda, test_cuda_model and
# test_backend_ops_cuda (and test_cli, when DIR has it) from DIR instead of building.
set -euo pipefail
cd "$(dirname "$0")/.."
MEMCHECK_FILTER='CudaAttentionShapes.*:EveryCodec/*/turbo3:EveryCodec/*/rht3:EveryCodec/*/iso3f:EveryCodec/*/planar2:EveryCodec/*/turbo2_5:EveryCodec/*/v3g32:EveryCodec/*/q4_0h:EveryCodec/*/q8_0:EveryCodec/*/f16:EveryCodec/*/fp8:CudaFp8.*:CudaQuantizeBf16.*:CudaRangeErrors.*:CudaPresetSinks.*:CudaPresetAttentionMixed.*:CudaWindow.ForcedSplitsAndOddBlocks:CudaFrames.*'
if [[ -n "${TQ_CUDA_BIN:-}" ]]; then
  bin="$TQ_CUDA_BIN/test_cuda"
  model_bin="$TQ_CUDA_BIN/test_cuda_model"
  harness="$TQ_CUDA_BIN/test_backend_ops_cuda"
else
  cmake -S . -B build-cuda -DCMAKE_BUILD_TYPE=Release -DTQ_CUDA=ON >/dev/null
  cmake --build build-cuda -j"$(nproc)" --target test_cuda test_cuda_model test_backend_ops_cuda tq_capi test_c_api_cuda \
    test_cli tq tq_cuda_runner
  bin=build-cuda/tests/cuda/test_cuda
  model_bin=build-cuda/tests/cuda/test_cuda_model
  harness=build-cuda/tests/backend/test_backend_ops_cuda
  cli=build-cuda/tests/cli/test_cli
fi
# Every part runs even when an earlier one fails (one GPU session shows everything); the
# script fails when any part did, naming them at the end.
failed=()
part() {
  echo "== $*"
  "$@" || failed+=("$(basename "$1")${2:+ $2}")
}
mode=${1:-}
if [[ "$mode" != "--memcheck-only" ]]; then
  part "$bin"
  part "$model_bin"
  part "$harness" --backend cuda
  [[ -n "${TQ_CUDA_BIN:-}" ]] || part build-cuda/tests/capi/test_c_api_cuda
  # tq run/bench/eval --device cuda through the CLI (the runner module; tq eval's table
  # against the CPU runner's). A prebuilt test_cli finds tq where it was built.
  cli=${cli:-${TQ_CUDA_BIN:+$TQ_CUDA_BIN/test_cli}}
  if [[ -x "$cli" ]]; then part "$cli" --gtest_filter='CliCudaModule.*'; fi
fi
if [[ "$mode" == "--memcheck" || "$mode" == "--memcheck-only" ]]; then
  part compute-sanitizer --tool memcheck --error-exitcode 1 "$bin" --gtest_filter="$MEMCHECK_FILTER"
  part compute-sanitizer --tool memcheck --error-exitcode 1 "$harness" --backend cuda --codec turbo3
fi
if ((${#failed[@]})); then
  echo "test_cuda.sh: FAILED: ${failed[*]}"
  exit 1
fi
echo "test_cuda.sh: every part passed"
