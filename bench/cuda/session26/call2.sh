#!/usr/bin/env bash
# Session 26 device call 2: the warp quantize kernel's lane-block encoder (every rotation
# but dense, mse codes included, for writes of several tokens per warp; records leave in
# words as wide as the pool allows). The quantize and kernel-choice tests, memcheck over
# the lane-block test of a few codecs, and quantize old (main 0ce8401) / new alternating.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 240 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*:CudaKernelChoice.*:CudaRange*:CudaQuantizeBf16*' > $L/test_quantize.log 2>&1; echo "test_cuda quantize rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tie  " $L/test_quantize.log | head -30
echo "== memcheck ($(( $(date +%s) - start )) s)"
timeout 150 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/bc/tests/cuda/test_cuda --gtest_filter='*LaneBlock*/rht3:*LaneBlock*/q8_0:*LaneBlock*/iso3:*LaneBlock*/planar3:*LaneBlock*/turbo2_5:*LaneBlock*/sq3:*LaneBlock*/q4_0h:*LaneBlock*/fp8' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 60 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 1024,16384,65536,262144 --json $L/q_${v}_$r.json --markdown $L/q_${v}_$r.md > $L/q_${v}_$r.log 2>&1
  echo "$v round $r rc=$?"; grep -E "^\| (1024|65536|262144) \| (rht3|iso3|q8_0|fp8|turbo3)" $L/q_${v}_$r.md
done; done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
