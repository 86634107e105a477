#!/usr/bin/env bash
# Session 30 device call 1: the f16 / q8_0 tile kernel's ring depth (TQ_CUDA_TILE_RING on
# branch wip/tile-ring: 3 = main; q8_0 2 stages at 4 CTAs/SM, 4 at 2; f16 2 at 3, 4 at 1;
# f16 with bulk copies on mbarriers: 5 = 3 stages at 2 CTAs/SM, 6 = 2 at 3),
# correctness of the variants, Nsight Compute of the main kernels at batch 8 / 64K, and
# alternating decode rounds, within DL seconds.
DEVRUN_BUILDS="new" . bench/cuda/devrun_setup.sh
DL=${DL:-420}
LIB=/tmp/new/src/capi/libturboquant.so
for r in 2 5 6; do
  TQ_CUDA_TILE_RING=$r timeout 60 /tmp/new/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0:CudaAttentionShapes.*:CudaWindow.Plain*:CudaWindow.Forced*' > $L/test_ring$r.log 2>&1; echo "test ring $r rc=$?"
  grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_ring$r.log | head -8
done
for round in 1 2; do
  for r in 3 2 5 6; do
    left=$(( DL - ($(date +%s) - start) )); [ $left -gt 25 ] || break 2
    TQ_CUDA_TILE_RING=$r timeout $left python3 scripts/bench_cuda.py --lib $LIB --only decode --contexts 4096,65536 \
      --codecs q8_0,f16 --json $L/dec_ring${r}_$round.json --markdown $L/dec_ring${r}_$round.md > $L/dec_ring${r}_$round.log 2>&1
    echo "round $round ring $r rc=$? ($(( $(date +%s) - start )) s)"
  done
done
for c in q8_0 f16; do
  left=$(( DL - ($(date +%s) - start) )); [ $left -gt 40 ] || break
  timeout $(( left < 75 ? left : 75 )) ncu --clock-control none --kernel-name regex:decode_mma_tile --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section SchedulerStats \
    --section MemoryWorkloadAnalysis --section LaunchStats --section InstructionStats \
    python3 bench/cuda/profile_cuda.py --lib $LIB --codec $c --batch 8 --ctx 65536 > $L/ncu_$c.log 2>&1; echo "ncu $c rc=$? ($(( $(date +%s) - start )) s)"
done
python3 bench/cuda/ab_table.py $L ring3 ring2 ring5 ring6
devrun_finish
