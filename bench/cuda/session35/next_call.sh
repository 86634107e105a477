#!/usr/bin/env bash
# The first device call after session 35 (written then, not yet run). Build main here
# (-DTQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES=90-real -DTQ_NATIVE=OFF, targets tq_capi test_cuda
# test_cuda_model test_backend_ops_cuda test_c_api_cuda test_cli tq tq_cuda_runner
# write_shaped_gguf) and pack it: bench/cuda/pack_devrun.sh BUILD main; carry build-devrun.
#  1. the C API's new quantize kernel field on a GPU (test_c_api_cuda) and memcheck;
#  2. records the tensor-core quantize writes differently from the exact tiled kernel
#     (pool_diff.py), and the decode rows' content check over exact records
#     (bench_cuda.py --fill-kernel tiled) beside the default fill;
#  3. end to end with the one-wave split rule (two rounds).
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
DL=${DL:-560}
devrun_gtest capi 60 /tmp/main/tests/capi/test_c_api_cuda '*'
mkdir -p /tmp/flat && ln -sf /tmp/main/tests/cuda/test_cuda /tmp/main/tests/backend/test_backend_ops_cuda /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout 200 scripts/test_cuda.sh --memcheck-only > $L/memcheck.log 2>&1; echo "memcheck-only rc=$?"
grep -E "^\[  (PASSED|FAILED)|ERROR SUMMARY|test_cuda.sh:" $L/memcheck.log
lib=/tmp/main/src/capi/libturboquant.so
timeout 90 python3 bench/cuda/session35/pool_diff.py --lib $lib 2>&1 | tee $L/pool_diff.txt
for fill in tiled auto; do
  timeout 90 python3 scripts/bench_cuda.py --lib $lib --only decode --fill-kernel $fill --codecs f16,q8_0,q4_0h,turbo3,rht3 \
    --json $L/fill_$fill.json --markdown $L/fill_$fill.md > $L/fill_$fill.log 2>&1; echo "fill $fill rc=$?"
  grep -E "content" $L/fill_$fill.md
done
/tmp/main/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
/tmp/main/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
for r in 1 2; do
  left=$(devrun_left); [ $left -gt 70 ] || break
  timeout 60 /tmp/main/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3,rht3 --depths 32768 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_gemma_$r.md > $L/e2e_gemma_$r.log 2>&1; echo "gemma $r rc=$?"
  left=$(devrun_left); [ $left -gt 70 ] || break
  timeout 60 /tmp/main/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3,rht3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$r.md > $L/e2e_smol_$r.log 2>&1; echo "smol $r rc=$?"
done
python3 bench/cuda/e2e_ratios.py $L/e2e_*.md
devrun_finish
