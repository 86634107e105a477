#!/usr/bin/env bash
# Session 34 device call 2: rht keys' queries rotated in the split kernel (no prepare
# launch; build `rhtq`: rht*, q8_0h, q4_0h) against main 2478548 (`main`). The tests of the
# paths it touches first (the new path's bits against the three launches', the quantize and prepare
# kernels' Hadamard now one function), memcheck over the new test, then two
# alternating decode rounds (rht3 and q4_0h change; turbo3 and f16 are the control) and
# Gemma 3-shaped end-to-end rows (head_dim 256), one round.
DEVRUN_BUILDS="rhtq main" . bench/cuda/devrun_setup.sh
DL=${DL:-450}
F='CudaSingleLaunch.*:CudaAttentionShapes.*:EveryCodec/CudaAttention.*:EveryCodec/CudaQuantize.*/rht*:EveryCodec/CudaQuantize.*/q*h'
F="$F:EveryCodec/CudaQuantize.*/turbo3:CudaWindow.*:CudaKernelChoice.*:Presets/CudaPresetAttention.*:CudaFrames.*"
devrun_gtest test_rhtq 200 /tmp/rhtq/tests/cuda/test_cuda "$F"
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/rhtq/tests/cuda/test_cuda \
  --gtest_filter='CudaSingleLaunch.RhtQueriesRotatedInTheSplitKernelGiveThePreparedBits' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head -5
devrun_ab 2 4096,65536 rht3,q4_0h,turbo3,f16 main rhtq
/tmp/rhtq/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
for r in 1; do for v in main rhtq; do
  left=$(devrun_left); [ $left -gt 70 ] || break 2
  LD_LIBRARY_PATH=/tmp/$v/lib:/usr/local/cuda/lib64 timeout 60 /tmp/$v/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,rht3 --depths 32768 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_gemma-${v}_$r.md > $L/e2e_gemma-${v}_$r.log 2>&1; echo "gemma $v $r rc=$?"
  grep -E "^\| (f16|rht3)" $L/e2e_gemma-${v}_$r.md
done; done
devrun_finish
