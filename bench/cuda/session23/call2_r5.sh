#!/usr/bin/env bash
# Session 23 device call 2: the dense quantize split over a cluster, the sliced reduce,
# the pipelined warp kernel. Tests (memcheck subset), quantize old vs new, e2e, ncu.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/libs.tar.xz -C /tmp/bc
tar xJf build-devrun/bc_old.tar.xz -C /tmp/old
mkdir -p /tmp/flat && ln -sf /tmp/bc/tests/cuda/test_cuda /tmp/bc/tests/cuda/test_cuda_model /tmp/bc/tests/backend/test_backend_ops_cuda /tmp/bc/tests/cli/test_cli /tmp/flat/
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
echo "== test_cuda.sh --memcheck"
TQ_CUDA_BIN=/tmp/flat timeout 330 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for round in 1 2; do for v in old new; do
  lib=/tmp/bc/src/capi/libturboquant.so; [ $v = old ] && lib=/tmp/old/src/capi/libturboquant.so
  timeout 100 python3 scripts/bench_cuda.py --lib $lib --only quantize --sizes 1024,65536,262144 --json $L/q_${v}_$round.json --markdown $L/q_${v}_$round.md > $L/q_${v}_$round.log 2>&1
  echo "$v round $round rc=$?"; grep -E "^\| (1024|262144) \| (turbo3|rht3|q8_0|fp8)" $L/q_${v}_$round.md
done; done
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/bc/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 100 $B/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma_$v.md > $L/e2e_gemma_$v.log 2>&1; echo "gemma $v rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_gemma_$v.md
done
timeout 150 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_graphs.md > $L/e2e_smol.log 2>&1; echo "smol rc=$?"
grep -E "^\| (f16|turbo3)" $L/e2e_smol_graphs.md
NCU="ncu --profile-from-start off --metrics gpu__time_duration.sum --cache-control none --clock-control none --print-summary per-kernel --csv"
export TQ_CUDA_PROFILE_DECODE=1
echo "== ncu ($(( $(date +%s) - start )) s)"
timeout 80 $NCU --launch-count 700 /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 32768 --prefill 16 --decode 3 > $L/ncu_gemma_turbo3.csv 2>&1; echo rc=$?
for c in f16 turbo3; do
  timeout 80 $NCU --launch-count 1100 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs $c --depths 8192 --batch 16 --prefill 16 --decode 3 > $L/ncu_smol_$c.csv 2>&1; echo rc=$?
done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
