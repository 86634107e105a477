#!/usr/bin/env bash
# Session 33 device call 3: what lands. Builds (bench/cuda/pack_devrun.sh): base = main
# 56601c1, land = the fragment path (session32/fragment_path.patch), pf = land with the
# 16-byte cp.async copies' L2::256B prefetch hint (every kernel's copies), pf4 = pf with
# q8_0 at 4 stages (three CTAs per SM still: 70 KB each). Call 2 (H100): the hint 1-2%
# faster for f16 and q8_0 at 64K; 6 stages (two CTAs per SM) slower for q4_0 and at 4K.
# Tests of the fragment path's kernels on pf4 first, then alternating rounds.
DEVRUN_BUILDS="base land pf pf4" . bench/cuda/devrun_setup.sh
DL=${DL:-300}
F='EveryCodec/CudaAttention.*:CudaAttentionShapes.*'
F="$F:CudaWindow.*:CudaSingleLaunch.*:*Sink*:Presets/CudaPresetAttention.*:CudaPresetAttentionMixed.*:CudaKernelChoice.*"
devrun_gtest test_pf4 120 /tmp/pf4/tests/cuda/test_cuda "$F"
devrun_ab 3 4096,65536 q8_0,q4_0,f16,turbo3,rht3 base land pf pf4
devrun_finish
