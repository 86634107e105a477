#!/usr/bin/env bash
# Session 32 device call 2 (with too little device time left for call 1): only the tests of
# the kernels the fragment path touches, on its build (land, as in call1.sh).
DEVRUN_BUILDS="land" . bench/cuda/devrun_setup.sh
F='EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0*:EveryCodec/CudaAttention.*/q4_0*:CudaAttentionShapes.*'
F="$F:CudaWindow.*:CudaSingleLaunch.*:*Sink*:Presets/CudaPresetAttention.*:CudaPresetAttentionMixed.*:CudaKernelChoice.*"
devrun_gtest test_land 120 /tmp/land/tests/cuda/test_cuda "$F"
devrun_finish
