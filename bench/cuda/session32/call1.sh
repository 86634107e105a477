#!/usr/bin/env bash
# Session 32 device call 1: q8_0 and q4_0 keys and values straight from the ring into mma
# fragments (record_frag.cuh). Builds (bench/cuda/pack_devrun.sh): base = main before the
# change, land = the change (q8_0 at d <= 128: 3 stages, 3 CTAs per SM as before), land4 =
# the change with q8_0 at 4 CTAs per SM (Q8Code::min_blocks 4: 128 registers, no spills;
# without the f16 tile, 3 stages fit 4 CTAs' shared memory); land packed with
# PACK_FILES="src/capi/libturboquant.so* tests/cuda/test_cuda tests/cuda/bench_cuda_presets",
# land4 without the last, to stay under the carry limit.
# Tests of every kernel the change touches first (plain and calibrated records on the tile
# kernel), the presets' decode on both builds (their kernel's d = 128 instance spills 4
# bytes more on land), then alternating decode rounds, then Nsight Compute of land's q8_0
# at batch 8 / 64K.
DEVRUN_BUILDS="base land land4" . bench/cuda/devrun_setup.sh
DL=${DL:-300}
F='EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0*:EveryCodec/CudaAttention.*/q4_0*:CudaAttentionShapes.*'
F="$F:CudaWindow.*:CudaSingleLaunch.*:*Sink*:Presets/CudaPresetAttention.*:CudaPresetAttentionMixed.*:CudaKernelChoice.*"
devrun_gtest test_land 150 /tmp/land/tests/cuda/test_cuda "$F"
devrun_gtest test_land4 60 /tmp/land4/tests/cuda/test_cuda 'EveryCodec/CudaAttention.*/q8_0*:CudaWindow.Plain*:CudaSingleLaunch.*'
for b in base land; do
  timeout 60 /tmp/$b/tests/cuda/bench_cuda_presets --preset tq3 --ctx 65536 > $L/presets_$b.md 2>&1
  echo "presets $b rc=$? ($(( $(date +%s) - start )) s)"
done
devrun_ab 3 4096,65536 q8_0,q4_0,f16 base land land4
devrun_ncu ncu_land_q8_0 decode_mma_tile /tmp/land/src/capi/libturboquant.so q8_0 8 65536
devrun_finish
