#!/usr/bin/env bash
# Session 25 device call 1: the leaner decode step (stacked QKV and gate-up products, query
# padding in the weights, one QK kernel, queries read in place) and dense rotations on the
# warp quantize kernel for small writes. CUDA tests; end to end old (main 69f8af4) vs new in
# one call; quantize old vs new at small sizes; ncu per-kernel decode steps of the new tree.
set -u
start=$(date +%s)
mkdir -p /tmp/new /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/new && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/new/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 /tmp/new/tests/cuda/test_cuda_model > $L/test_cuda_model.log 2>&1; echo "test_cuda_model rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda_model.log | head -20
timeout 200 /tmp/new/tests/cuda/test_cuda > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda.log | head -30
/tmp/new/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/new/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for v in old new; do
  timeout 120 /tmp/$v/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$v.md > $L/e2e_smol_$v.log 2>&1; echo "smol $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_smol_$v.md
  timeout 60 /tmp/$v/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma_$v.md > $L/e2e_gemma_$v.log 2>&1; echo "gemma $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_gemma_$v.md
done
TQ_CUDA_LAUNCH=single timeout 120 /tmp/new/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_single.md > $L/e2e_smol_single.log 2>&1; echo "smol single rc=$?"
grep -E "^\| (f16|turbo3)" $L/e2e_smol_single.md
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for v in old new; do
  timeout 60 python3 scripts/bench_cuda.py --lib /tmp/$v/src/capi/libturboquant.so --only quantize --sizes 1024,16384,262144 --json $L/q_$v.json --markdown $L/q_$v.md > $L/q_$v.log 2>&1
  echo "$v rc=$?"; grep -E "^\| (1024|16384|262144) \| (turbo3|rht3|q8_0)" $L/q_$v.md
done
NCU="ncu --profile-from-start off --metrics gpu__time_duration.sum --cache-control none --clock-control none --print-summary per-kernel --csv"
export TQ_CUDA_PROFILE_DECODE=1
echo "== ncu ($(( $(date +%s) - start )) s)"
for c in f16 turbo3; do
  timeout 90 $NCU --launch-count 1100 /tmp/new/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs $c --depths 8192 --batch 16 --prefill 16 --decode 3 > $L/ncu_smol_$c.csv 2>&1; echo "ncu $c rc=$?"
done
timeout 60 $NCU --launch-count 700 /tmp/new/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 32768 --prefill 16 --decode 3 > $L/ncu_gemma_turbo3.csv 2>&1; echo "ncu gemma rc=$?"
for f in $L/ncu_*.csv; do python3 bench/cuda/ncu_decode_step.py $f 2>&1 | head -22; done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
