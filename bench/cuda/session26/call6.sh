#!/usr/bin/env bash
# Session 26 device call 6: the lane blocks as their own kernel (quantize_warp_kernel<D,
# true>, four CTAs per SM) for launches of several tokens per warp whose sides are all
# unrotated or rht; everything else on quantize_warp_kernel<D, false> without the
# register cap (calls 4-5 had small writes 6-12% slower in one kernel). Quantize and range
# tests, memcheck over the lane-block tests, quantize old (main 0ce8401) / new
# alternating, end to end old / new.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*:CudaKernelChoice.*:CudaRangeErrors.*:CudaQuantizeBf16*' > $L/test_quantize.log 2>&1; echo "test_cuda quantize rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_quantize.log | head -20
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/bc/tests/cuda/test_cuda --gtest_filter='*LaneBlock*/rht3:*LaneBlock*/q8_0:*LaneBlock*/sq3:*LaneBlock*/rht4c:CudaRangeErrors.LaneBlock*' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 40 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 1024,16384,65536,262144 --json $L/q_${v}_$r.json --markdown $L/q_${v}_$r.md > $L/q_${v}_$r.log 2>&1
  echo "$v round $r rc=$?"; grep -E "^\| (1024|16384|262144) \| (turbo3|rht3|iso3|q8_0)" $L/q_${v}_$r.md
done; done
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/bc/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 40 $B/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma_${v}_$r.md > $L/e2e_gemma_${v}_$r.log 2>&1; echo "gemma $v $r rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_gemma_${v}_$r.md
done; done
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 60 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$v.md > $L/e2e_smol_$v.log 2>&1; echo "smol $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_smol_$v.md
done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
