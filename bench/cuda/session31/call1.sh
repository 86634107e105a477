#!/usr/bin/env bash
# Session 31 device call 1: q8_0 keys straight from the ring into mma fragments (build dk,
# branch wip/tile-ring e4b922a) against main (build base, 2d8f6b0), and the f16 bulk ring
# with the proxy fence only after zero or sink rows (dk, TQ_CUDA_TILE_RING=5). dk's tests
# first, then alternating decode rounds, then Nsight Compute of dk's q8_0 at batch 8 / 64K.
DEVRUN_BUILDS="base dk" . bench/cuda/devrun_setup.sh
DL=${DL:-400}
F='EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0:CudaAttentionShapes.*:CudaWindow.Plain*:CudaWindow.Forced*:CudaSingleLaunch.*:*Sink*'
for r in 3 2 5; do
  TQ_CUDA_TILE_RING=$r devrun_gtest test_dk_ring$r 60 /tmp/dk/tests/cuda/test_cuda "$F"
done
run() {  # label lib ring round
  left=$(( DL - ($(date +%s) - start) )); [ $left -gt 25 ] || return 1
  TQ_CUDA_TILE_RING=$3 timeout $left python3 scripts/bench_cuda.py --lib /tmp/$2/src/capi/libturboquant.so \
    --only decode --contexts 4096,65536 --codecs q8_0,f16 --json $L/dec_$1_$4.json --markdown $L/dec_$1_$4.md > $L/dec_$1_$4.log 2>&1
  echo "round $4 $1 rc=$? ($(( $(date +%s) - start )) s)"
}
for round in 1 2; do
  run base base 3 $round && run dk3 dk 3 $round && run dk2 dk 2 $round && run dk5 dk 5 $round || break
done
python3 bench/cuda/ab_table.py $L base dk3 dk2 dk5
left=$(( DL - ($(date +%s) - start) ))
[ $left -gt 40 ] && TQ_CUDA_TILE_RING=3 timeout $(( left < 75 ? left : 75 )) ncu --clock-control none --kernel-name regex:decode_mma_tile \
  --launch-skip 3 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section LaunchStats --section InstructionStats \
  python3 bench/cuda/profile_cuda.py --lib /tmp/dk/src/capi/libturboquant.so --codec q8_0 --batch 8 --ctx 65536 > $L/ncu_dk_q8_0.log 2>&1
echo "ncu rc=$? ($(( $(date +%s) - start )) s)"
devrun_finish
