#!/usr/bin/env bash
# Session 24 device call 2: call 1 found a hang (a short-circuited shuffle in the plain
# warp encoder, reached only by saturating inputs) and q8_0/fp8 2.7x slower (uncoalesced
# per-lane record stores). Both mended: CUDA tests, the backend harness, memcheck over the
# range tests and the changed paths, quantize old (main 77f2797) vs new alternating.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/bc_old.tar.xz -C /tmp/old
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 45 /tmp/bc/tests/cuda/test_cuda --gtest_filter='CudaRangeErrors.*' > $L/range.log 2>&1; echo "range rc=$?"
timeout 280 /tmp/bc/tests/cuda/test_cuda > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|near-tie|tie  " $L/test_cuda.log | head -40
timeout 60 /tmp/bc/tests/backend/test_backend_ops_cuda --backend cuda > $L/backend.log 2>&1; echo "backend rc=$?"
grep -E "cuda-quantize|FAIL" $L/backend.log | head -20
echo "== memcheck ($(( $(date +%s) - start )) s)"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 /tmp/bc/tests/cuda/test_cuda --gtest_filter='CudaRangeErrors.*:EveryCodec/CudaQuantize.*/q8_0:EveryCodec/CudaQuantize.*/fp8:EveryCodec/CudaQuantize.*/q4_0:EveryCodec/CudaQuantize.*/f16:EveryCodec/CudaQuantize.*/turbo3' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" $L/memcheck.log | head -5
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for round in 1; do for v in old new; do
  lib=/tmp/bc/src/capi/libturboquant.so; [ $v = old ] && lib=/tmp/old/src/capi/libturboquant.so
  timeout 60 python3 scripts/bench_cuda.py --lib $lib --only quantize --sizes 1024,65536,262144 --json $L/q_${v}_$round.json --markdown $L/q_${v}_$round.md > $L/q_${v}_$round.log 2>&1
  echo "$v round $round rc=$?"; grep -E "^\| (1024|65536|262144) \| (turbo3|rht3|iso3|q8_0|fp8)" $L/q_${v}_$round.md
done; done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
