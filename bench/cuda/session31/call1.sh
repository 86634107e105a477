#!/usr/bin/env bash
# Session 31 device call 1 (never ran: no device machine could be started in session 31):
# q8_0 and q4_0 keys and values straight from the ring into mma fragments.
# Builds (bench/cuda/pack_devrun.sh; land with PACK_FILES="src/capi/libturboquant.so*
# tests/cuda/test_cuda tests/cuda/bench_cuda_presets" and dkv without the last, to stay
# under the carry limit):
# base = main; land = the change to land (branch land/q8-frag c4e494c: main plus the
# fragment path, q8_0 3 stages at 3 CTAs/SM, q4_0 4 at 4); dkv = the q8_0 path on the experiment
# branch wip/frag-values 04ec4d7, whose TQ_CUDA_TILE_RING=2 gives q8_0 2 stages at 4 CTAs/SM
# and =5 f16 rows by bulk copies with the proxy fence only after zero or sink rows. Tests
# first, the presets' decode on base and land, then alternating decode rounds, then Nsight
# Compute of land's q8_0 at batch 8 / 64K.
DEVRUN_BUILDS="base land dkv" . bench/cuda/devrun_setup.sh
DL=${DL:-330}
F='EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0:EveryCodec/CudaAttention.*/q4_0:CudaAttentionShapes.*:CudaWindow.Plain*:CudaWindow.Forced*:CudaSingleLaunch.*:*Sink*'
devrun_gtest test_land 90 /tmp/land/tests/cuda/test_cuda "$F"
TQ_CUDA_TILE_RING=2 devrun_gtest test_dkv_ring2 60 /tmp/dkv/tests/cuda/test_cuda "$F"
TQ_CUDA_TILE_RING=5 devrun_gtest test_dkv_ring5 60 /tmp/dkv/tests/cuda/test_cuda 'EveryCodec/CudaAttention.*/f16:CudaAttentionShapes.*:CudaWindow.Plain*'
# The presets' kernel (kFrag off) on both: its d = 128 instance spills 4 bytes more on land.
for b in base land; do
  timeout 60 /tmp/$b/tests/cuda/bench_cuda_presets --preset tq3 --ctx 65536 > $L/presets_$b.md 2>&1
  echo "presets $b rc=$? ($(( $(date +%s) - start )) s)"
done
run() {  # label lib ring round
  left=$(( DL - ($(date +%s) - start) )); [ $left -gt 25 ] || return 1
  TQ_CUDA_TILE_RING=$3 timeout $left python3 scripts/bench_cuda.py --lib /tmp/$2/src/capi/libturboquant.so \
    --only decode --contexts 4096,65536 --codecs q8_0,q4_0,f16 --json $L/dec_$1_$4.json --markdown $L/dec_$1_$4.md > $L/dec_$1_$4.log 2>&1
  echo "round $4 $1 rc=$? ($(( $(date +%s) - start )) s)"
}
for round in 1 2 3; do
  run base base 0 $round && run land land 0 $round && run dkv2 dkv 2 $round && run dkv5 dkv 5 $round || break
done
python3 bench/cuda/ab_table.py $L base land dkv2 dkv5
left=$(( DL - ($(date +%s) - start) ))
[ $left -gt 40 ] && timeout $(( left < 75 ? left : 75 )) ncu --clock-control none --kernel-name regex:decode_mma_tile \
  --launch-skip 3 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats \
  --section MemoryWorkloadAnalysis --section LaunchStats --section InstructionStats \
  python3 bench/cuda/profile_cuda.py --lib /tmp/land/src/capi/libturboquant.so --codec q8_0 --batch 8 --ctx 65536 > $L/ncu_land_q8_0.log 2>&1
echo "ncu rc=$? ($(( $(date +%s) - start )) s)"
devrun_finish
