#!/usr/bin/env bash
# Session 34 device call 1, main at 2478548 as it is: scripts/test_cuda.sh --memcheck (every
# CUDA test, session 33's f16 / bf16 query test included, which had not run on a GPU), the
# full scripts/bench_cuda.py table (BENCHMARKS.md "CUDA"), then the end-to-end rows of the
# SmolLM2- and Gemma 3-shaped models with CUDA graphs (two rounds).
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
DL=${DL:-570}
mkdir -p /tmp/flat && ln -sf /tmp/main/tests/cuda/test_cuda /tmp/main/tests/cuda/test_cuda_model /tmp/main/tests/backend/test_backend_ops_cuda /tmp/main/tests/cli/test_cli /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout 300 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$? ($(( $(date +%s) - start )) s)"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
timeout $(devrun_left) python3 scripts/bench_cuda.py --lib /tmp/main/src/capi/libturboquant.so --json $OUT/cuda_bench.json \
  --markdown $OUT/cuda_bench.md --commit ${COMMIT:-2478548} > $L/bench.log 2>&1; echo "bench rc=$? ($(( $(date +%s) - start )) s)"
grep -E "goal|content" $OUT/cuda_bench.md | head -40
/tmp/main/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
/tmp/main/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
for r in 1 2; do
  left=$(devrun_left); [ $left -gt 70 ] || break
  timeout 60 /tmp/main/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3,rht3 --depths 32768 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_gemma_$r.md > $L/e2e_gemma_$r.log 2>&1; echo "gemma $r rc=$?"
  grep -E "^\| (f16|turbo3|rht3)" $L/e2e_gemma_$r.md
  left=$(devrun_left); [ $left -gt 70 ] || break
  timeout 60 /tmp/main/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3,rht3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$r.md > $L/e2e_smol_$r.log 2>&1; echo "smol $r rc=$?"
  grep -E "^\| (f16|turbo3|rht3)" $L/e2e_smol_$r.md
done
devrun_finish
