#!/usr/bin/env bash
# Session 28 device call 3, the tree that lands (call 2's minus the PDL launch of the
# cluster-split quantize, which measured no change): scripts/test_cuda.sh --memcheck, then
# with the time left the tq3 quantize table old (main f13c282) / new.
DEVRUN_BUILDS="new old" . bench/cuda/devrun_setup.sh
mkdir -p /tmp/flat && ln -sf /tmp/new/tests/cuda/test_cuda /tmp/new/tests/cuda/test_cuda_model /tmp/new/tests/backend/test_backend_ops_cuda /tmp/new/tests/cli/test_cli /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout 480 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
echo "== preset quantize ($(( $(date +%s) - start )) s)"
for v in new old; do
  left=$(( 570 - ($(date +%s) - start) ))
  [ $left -gt 20 ] || break
  LD_LIBRARY_PATH=/tmp/$v/lib:/usr/local/cuda/lib64 timeout $left /tmp/$v/tests/cuda/bench_cuda_presets --quantize --preset tq3 > $L/preset_quantize_tq3_$v.md 2> $L/preset_quantize_tq3_$v.err; echo "tq3 $v rc=$?"
  cat $L/preset_quantize_tq3_$v.md
done
devrun_finish
