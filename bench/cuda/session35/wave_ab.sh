#!/usr/bin/env bash
# Session 35 device call: the one-wave split rule (`wave`: main + the rule in num_splits)
# against main (`main`): the decode tests it touches, test_cuda_model (CUDA graphs split for
# the cache's capacity), then two alternating rounds of bench_cuda.py's decode rows.
DEVRUN_BUILDS="wave main" . bench/cuda/devrun_setup.sh
DL=${DL:-400}
F='CudaWindow.*:CudaKernelChoice.*:EveryCodec/CudaAttention.*:CudaSingleLaunch.*:CudaAttentionShapes.*:Presets/CudaPresetAttention.*:CudaFrames.*'
devrun_gtest test_wave 150 /tmp/wave/tests/cuda/test_cuda "$F"
grep -E "splits, window" $L/test_wave.log
devrun_gtest model_wave 60 /tmp/wave/tests/cuda/test_cuda_model '*'
devrun_ab 2 4096,16384,65536,131072 f16,q8_0,q4_0h,turbo3,rht3 main wave
devrun_finish
