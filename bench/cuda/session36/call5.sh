#!/usr/bin/env bash
# Session 36 device call 5: 3-bit codes to f16 operands from register byte tables (`reg3`:
# no pair-table load per operand) against main: the decode tests (every codec, shapes,
# windows, single launch, presets), memcheck over the 3-bit attention tests, then three
# alternating rounds of bench_cuda.py's decode rows (q8_0 the control: another kernel).
# Not run in session 36 (its device time was spent). Build main, pack it as `main`; then
# `git apply bench/cuda/session36/reg3_levels.patch`, rebuild tq_capi and test_cuda, and
# PACK_FILES="src/capi/libturboquant.so* tests/cuda/test_cuda" bench/cuda/pack_devrun.sh BUILD reg3.
DEVRUN_BUILDS="main reg3" . bench/cuda/devrun_setup.sh
DL=${DL:-480}
F='CudaWindow.*:CudaKernelChoice.*:EveryCodec/CudaAttention.*:CudaSingleLaunch.*:CudaAttentionShapes.*:Presets/CudaPresetAttention.*:CudaFrames.*:CudaPresetSinks.*'
devrun_gtest test_reg3 100 /tmp/reg3/tests/cuda/test_cuda "$F"
devrun_memcheck memcheck_reg3 60 /tmp/reg3/tests/cuda/test_cuda \
  'EveryCodec/CudaAttention.*/turbo3:EveryCodec/CudaAttention.*/rht3:EveryCodec/CudaAttention.*/iso3f:CudaAttentionShapes.*'
devrun_ab 3 4096,16384,65536,131072 turbo3,rht3,q8_0 main reg3
# What moved: Nsight Compute of the split kernel at batch 8 / 64K (shared pipe, issue).
devrun_ncu ncu_reg3 decode_mma_kernel /tmp/reg3/src/capi/libturboquant.so turbo3 8 65536
devrun_ncu ncu_main decode_mma_kernel /tmp/main/src/capi/libturboquant.so turbo3 8 65536
devrun_finish
