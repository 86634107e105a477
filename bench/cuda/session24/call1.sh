#!/usr/bin/env bash
# Session 24 device call 1: the warp quantize kernel with every token's inputs staged by
# cp.async up front, and the tensor-core dense quantize (near-tie contract). CUDA tests,
# the backend harness, memcheck over the new kernels; quantize old (main 77f2797) vs new
# alternating; ncu of the new kernels at 262K vectors.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/bc_old.tar.xz -C /tmp/old
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 /tmp/bc/tests/cuda/test_cuda > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|near-tie|tie  " $L/test_cuda.log | head -40
timeout 100 /tmp/bc/tests/backend/test_backend_ops_cuda --backend cuda > $L/backend.log 2>&1; echo "backend rc=$?"
grep -E "cuda-quantize|FAIL|worst" $L/backend.log | head -20
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*/turbo3:EveryCodec/CudaQuantize.*/q8_0:EveryCodec/CudaQuantize.*/turbo4' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" $L/memcheck.log | head -5
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for round in 1 2; do for v in old new; do
  lib=/tmp/bc/src/capi/libturboquant.so; [ $v = old ] && lib=/tmp/old/src/capi/libturboquant.so
  timeout 100 python3 scripts/bench_cuda.py --lib $lib --only quantize --sizes 1024,16384,65536,262144 --json $L/q_${v}_$round.json --markdown $L/q_${v}_$round.md > $L/q_${v}_$round.log 2>&1
  echo "$v round $round rc=$?"; grep -E "^\| (1024|65536|262144) \| (turbo3|rht3|iso3|q8_0|fp8)" $L/q_${v}_$round.md
done; done
echo "== ncu ($(( $(date +%s) - start )) s)"
timeout 120 ncu --kernel-name regex:quantize --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis --section SchedulerStats --section InstructionStats --section ComputeWorkloadAnalysis python3 bench/cuda/session23/qprobe.py /tmp/bc/src/capi/libturboquant.so q8_0,rht3,turbo3 > $L/ncu_quant.txt 2>&1; echo rc=$?
grep -E "quantize_.*kernel|Duration|DRAM Throughput|Warp Cycles Per Issued|Achieved Occupancy|Registers Per|Issue Slots Busy|No Eligible" $L/ncu_quant.txt | head -60
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
