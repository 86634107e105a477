#!/usr/bin/env bash
# Session 29 device call (lean, after many calls that got no machine): the decode tests
# (the merge in every launch-test shape on branch wip/split-merge) and memcheck of the
# merge, then one round of the decode table A/B (TQ_CUDA_LAUNCH=split_reduce against
# auto_) at 4K and 64K, within DL seconds.
DEVRUN_BUILDS="new" . bench/cuda/devrun_setup.sh
DL=${DL:-300}
F='CudaSingleLaunch.*:CudaWindow.*:EveryCodec/CudaAttention.*:CudaAttentionShapes.*:CudaKernelChoice.*:CudaFrames.*:Presets/CudaPresetAttention.*:CudaPresetAttentionMixed.*:CudaPresetSinks.*:CudaPresetOddLayout.*'
timeout 150 /tmp/new/tests/cuda/test_cuda --gtest_filter="$F" > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tests ran" $L/test_cuda.log | head -30
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/new/tests/cuda/test_cuda --gtest_filter='CudaSingleLaunch.AnExplicitMerge*:CudaSingleLaunch.AGraph*' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== decode A/B ($(( $(date +%s) - start )) s)"
for m in split_reduce auto; do
  left=$(( DL - ($(date +%s) - start) )); [ $left -gt 30 ] || break
  env $([ $m = auto ] || echo TQ_CUDA_LAUNCH=$m) timeout $left python3 scripts/bench_cuda.py --lib /tmp/new/src/capi/libturboquant.so --only decode --contexts 4096,65536 --codecs turbo3,rht3,q8_0,f16 --json $L/dec_${m}_1.json --markdown $L/dec_${m}_1.md > $L/dec_${m}_1.log 2>&1; echo "decode $m rc=$?"
done
python3 bench/cuda/ab_table.py $L split_reduce auto 2>&1 | head -40
timeout 100 /tmp/new/tests/cuda/test_cuda_model --gtest_filter='CudaModel.*' > $L/test_cuda_model.log 2>&1; echo "test_cuda_model rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda_model.log | head
devrun_finish
