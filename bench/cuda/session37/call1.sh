#!/usr/bin/env bash
# Session 37 device call 1. Builds made here and carried (bench/cuda/pack_devrun.sh):
# main = 088d10f's library (no CUDA source changed since fe55d10), reg3 = main +
# bench/cuda/session36/reg3_levels.patch (tq_capi and test_cuda rebuilt; packed with
# PACK_FILES="src/capi/libturboquant.so* tests/cuda/test_cuda"), qreg = main + the quantize
# kernels' code search over register boundaries (codebook_device.cuh, widths <= 3 bits;
# packed the same way).
# (The quantize A/B ran as an inline loop of this same body; devrun_quantize_ab is that loop,
# factored out after the call.)
# 1. reg3's decode tests and memcheck (session 36's call5.sh filters); qreg's quantize
#    tests (records byte-identical to the CPU's, the tensor-core near-tie contract);
# 2. three alternating A/B rounds of the decode rows, main against reg3 (q8_0: control),
#    and of the quantize rows at 64K and 262K vectors, main against qreg;
# 3. the full bench_cuda.py table of reg3 (for BENCHMARKS.md if it lands);
# 4. Nsight Compute of the quantize kernels short of their goals at 262K vectors (rht3 on
#    the lane-block warp kernel, turbo3 on the tensor-core one), with per-instruction
#    counts exported as SASS csv; then of both builds' split kernel at batch 8 / 64K.
DEVRUN_BUILDS="main reg3 qreg" . bench/cuda/devrun_setup.sh
DL=${DL:-480}
F='CudaWindow.*:CudaKernelChoice.*:EveryCodec/CudaAttention.*:CudaSingleLaunch.*:CudaAttentionShapes.*:Presets/CudaPresetAttention.*:CudaFrames.*:CudaPresetSinks.*'
devrun_gtest test_qreg 60 /tmp/qreg/tests/cuda/test_cuda '*CudaQuantize*:*CudaRange*:DenseMmaFragments.*'
devrun_gtest test_reg3 100 /tmp/reg3/tests/cuda/test_cuda "$F"
devrun_quantize_ab 3 65536,262144 main qreg
devrun_ab 3 4096,65536 turbo3,rht3,q8_0 main reg3
[ "$(devrun_left)" -gt 70 ] && devrun_memcheck memcheck_reg3 60 /tmp/reg3/tests/cuda/test_cuda \
  'EveryCodec/CudaAttention.*/turbo3:EveryCodec/CudaAttention.*/rht3:CudaAttentionShapes.*'
left=$(devrun_left)
if [ "$left" -gt 60 ]; then
  timeout $(( left - 30 )) python3 scripts/bench_cuda.py --lib /tmp/reg3/src/capi/libturboquant.so \
    --commit "088d10f + reg3_levels.patch" --json $L/full_reg3.json --markdown $L/full_reg3.md > $L/full_reg3.log 2>&1
  echo "full_reg3 rc=$? ($(( $(date +%s) - start )) s)"
fi
quantize_ncu() {
  local name=$1 regex=$2 codec=$3 left
  left=$(devrun_left)
  [ "$left" -gt 30 ] || { echo "$name skipped: $left s left"; return 0; }
  timeout $(( left < 60 ? left : 60 )) ncu --clock-control none --kernel-name "regex:$regex" --launch-skip 3 --launch-count 1 \
    --section SpeedOfLight --section Occupancy --section WarpStateStats --section InstructionStats \
    --section SourceCounters -o $L/$name python3 bench/cuda/profile_cuda.py --lib /tmp/main/src/capi/libturboquant.so \
    --codec "$codec" --quantize 262144 > $L/$name.log 2>&1
  echo "$name rc=$? ($(( $(date +%s) - start )) s)"
  ncu -i $L/$name.ncu-rep --page details >> $L/$name.log 2>&1
  ncu -i $L/$name.ncu-rep --page source --csv --print-source sass > $L/${name}_sass.csv 2>&1 || true
  xz -9 $L/${name}_sass.csv; rm -f $L/$name.ncu-rep
}
quantize_ncu ncu_q_rht3 quantize_warp rht3
quantize_ncu ncu_q_turbo3 quantize_dense_mma turbo3
devrun_ncu ncu_reg3 decode_mma_kernel /tmp/reg3/src/capi/libturboquant.so turbo3 8 65536
devrun_ncu ncu_main decode_mma_kernel /tmp/main/src/capi/libturboquant.so turbo3 8 65536
devrun_finish
