#!/usr/bin/env bash
# Session 36 device call 3 (calls 2 and the first bulk_ab.sh got no machine): f16 rows and
# q8_0 / q4_0 runs by bulk copies (`bulk`) against main: tests, then three alternating rounds of
# the decode rows (turbo3 the control: its kernel is unchanged), then the full bench_cuda.py table of both builds
# (quantize rows checked record by record, decode caches written by the exact kernels; the
# landed one goes to BENCHMARKS.md), then wave_sweep.py at batch 8 on main.
DEVRUN_BUILDS="main bulk" . bench/cuda/devrun_setup.sh
DL=${DL:-540}
F='CudaWindow.*:CudaKernelChoice.*:EveryCodec/CudaAttention.*:CudaSingleLaunch.*:CudaAttentionShapes.*:CudaPresetSinks.*:CudaFrames.*'
devrun_gtest test_bulk 150 /tmp/bulk/tests/cuda/test_cuda "$F"
devrun_memcheck memcheck_bulk 120 /tmp/bulk/tests/cuda/test_cuda \
  'EveryCodec/CudaAttention.*/f16:EveryCodec/CudaAttention.*/q8_0:EveryCodec/CudaAttention.*/q4_0h:CudaAttentionShapes.*:CudaWindow.ForcedSplitsAndOddBlocks'
devrun_ab 3 4096,16384,65536,131072 f16,q8_0,q4_0h,turbo3 main bulk
for label in main bulk; do
  left=$(devrun_left); [ $left -gt 60 ] || break
  timeout 90 python3 scripts/bench_cuda.py --lib /tmp/$label/src/capi/libturboquant.so --commit "${COMMIT:-unknown}" \
    --json $L/full_$label.json --markdown $L/full_$label.md > $L/full_$label.log 2>&1
  echo "full $label rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^- |bench done" $L/full_$label.log
done
left=$(devrun_left)
[ $left -gt 60 ] && timeout $(( left - 20 )) python3 bench/cuda/session35/wave_sweep.py --lib /tmp/main/src/capi/libturboquant.so \
  --codecs f16,q8_0,turbo3 --batches 8 --contexts 4096,16384,65536 > $L/wave.txt 2>&1; echo "wave rc=$?"
devrun_finish
