#!/usr/bin/env bash
# Session 25 device call 4: the warp quantize kernel takes one token per warp on writes whose
# CTAs of 8 (4) tokens per warp would leave SMs idle. The write tests (every codec, both
# kernels forced, decode-sized writes, ranges, frames, presets) and test_cuda_model, a
# memcheck pass over the quantize tests of three codecs; quantize and end to end old (main
# 69f8af4) vs new in one call.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
F='*Quantize*:*Range*:*KernelChoice*:*Frames*:*Preset*:*Fp8*'
timeout 150 /tmp/bc/tests/cuda/test_cuda --gtest_filter="$F" > $L/test_cuda.log 2>&1; echo "test_cuda ($F) rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tests ran" $L/test_cuda.log | head -20
timeout 60 /tmp/bc/tests/cuda/test_cuda_model > $L/test_cuda_model.log 2>&1; echo "test_cuda_model rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda_model.log | head
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*/rht3:EveryCodec/CudaQuantize.*/q8_0:EveryCodec/CudaQuantize.*/turbo3' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|PASSED|FAILED" $L/memcheck.log | head -5
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 60 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 256,1024,16384 --json $L/q_${v}_1.json --markdown $L/q_$v.md > $L/q_$v.log 2>&1
  echo "$v rc=$?"
done
python3 bench/cuda/session24/quantize_table.py $L
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 100 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,rht3,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$v.md > $L/e2e_smol_$v.log 2>&1; echo "smol $v rc=$?"
  grep -E "^\| (f16|rht3|turbo3)" $L/e2e_smol_$v.md
done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
