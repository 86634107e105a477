#!/usr/bin/env bash
# Session 36 device call: f16 rows by bulk copies (`bulk`: cp.async.bulk, one per 256-byte
# row, completing on a per-stage mbarrier) against main's 16-byte cp.async (`main`): the
# decode tests that run f16 caches on the tile kernel, then two alternating rounds of
# bench_cuda.py's decode rows (q8_0 as the control: its path is unchanged).
DEVRUN_BUILDS="main bulk" . bench/cuda/devrun_setup.sh
DL=${DL:-420}
F='CudaWindow.*:CudaKernelChoice.*:EveryCodec/CudaAttention.*:CudaSingleLaunch.*:CudaAttentionShapes.*:CudaPresetSinks.*:CudaFrames.*'
devrun_gtest test_bulk 150 /tmp/bulk/tests/cuda/test_cuda "$F"
devrun_ab 2 4096,16384,65536,131072 f16,q8_0 main bulk
devrun_finish
