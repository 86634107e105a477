#!/usr/bin/env bash
# Session 25 device call 3: dense rotations at d = 256 one token per CTA (its warps share the rows)
# and the RoPE angle reduced in double, sincos in float. The whole CUDA
# suite under scripts/test_cuda.sh --memcheck; end to end and quantize old (main 69f8af4)
# vs new in one call; ncu per-kernel decode steps of the new tree.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
mkdir -p /tmp/flat && ln -sf /tmp/bc/tests/cuda/test_cuda /tmp/bc/tests/cuda/test_cuda_model /tmp/bc/tests/backend/test_backend_ops_cuda /tmp/bc/tests/cli/test_cli /tmp/flat/
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TQ_CUDA_BIN=/tmp/flat timeout 380 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/bc/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 100 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$v.md > $L/e2e_smol_$v.log 2>&1; echo "smol $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_smol_$v.md
  timeout 60 $B/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma_$v.md > $L/e2e_gemma_$v.log 2>&1; echo "gemma $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_gemma_$v.md
done
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 60 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 256,1024,16384 --json $L/q_$v.json --markdown $L/q_$v.md > $L/q_$v.log 2>&1
  echo "$v rc=$?"; grep -E "^\| (256|1024|16384) \| (turbo3|rht3|q8_0)" $L/q_$v.md
done
NCU="ncu --profile-from-start off --metrics gpu__time_duration.sum --cache-control none --clock-control none --print-summary per-kernel --csv"
export TQ_CUDA_PROFILE_DECODE=1
echo "== ncu ($(( $(date +%s) - start )) s)"
timeout 80 $NCU --launch-count 1100 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs turbo3 --depths 8192 --batch 16 --prefill 16 --decode 3 > $L/ncu_smol_turbo3.csv 2>&1; echo "ncu smol rc=$?"
timeout 60 $NCU --launch-count 700 /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 32768 --prefill 16 --decode 3 > $L/ncu_gemma_turbo3.csv 2>&1; echo "ncu gemma rc=$?"
for f in $L/ncu_*.csv; do python3 bench/cuda/ncu_decode_step.py $f 2>&1 | head -10; done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
