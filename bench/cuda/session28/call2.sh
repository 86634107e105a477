#!/usr/bin/env bash
# Session 28 device call 2: the presets' encode with four coordinates searched side by
# side (on top of call 1's half-warp per run, lane per trial). Preset and write tests,
# memcheck over the preset encode tests, the presets' quantize table old / new (262144
# vectors and a decode step's 1 and 16 tokens), then Gemma 3- and SmolLM2-shaped decode
# old (main f13c282) / new for f16, turbo3 and rht3 in three alternating rounds.
DEVRUN_BUILDS="new old" . bench/cuda/devrun_setup.sh
F='Presets/*:CudaPreset*:EveryCodec/CudaQuantize.DecodeSized*:CudaRangeErrors.*:CudaFrames.*:CudaSingleLaunch.*'
timeout 150 /tmp/new/tests/cuda/test_cuda --gtest_filter="$F" > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tests ran" $L/test_cuda.log | head -20
timeout 90 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/new/tests/cuda/test_cuda --gtest_filter='Presets/CudaPresetEncode.*:CudaPresetOddLayout.*' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== preset quantize ($(( $(date +%s) - start )) s)"
for p in tq3 tq4.25; do for v in old new; do
  LD_LIBRARY_PATH=/tmp/$v/lib:/usr/local/cuda/lib64 timeout 90 /tmp/$v/tests/cuda/bench_cuda_presets --quantize --preset $p > $L/preset_quantize_${p}_$v.md 2> $L/preset_quantize_${p}_$v.err; echo "$p $v rc=$?"
  cat $L/preset_quantize_${p}_$v.md
done; done
/tmp/new/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
/tmp/new/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for r in 1 2 3; do for v in old new; do
  B=/tmp/$v
  LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 60 $B/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3,rht3 --depths 32768 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_gemma-graphs-${v}_$r.md > $L/e2e_gemma-graphs-${v}_$r.log 2>&1; echo "gemma $v $r rc=$?"
  grep -E "^\| (f16|turbo3|rht3)" $L/e2e_gemma-graphs-${v}_$r.md
  LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 60 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3,rht3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol-${v}_$r.md > $L/e2e_smol-${v}_$r.log 2>&1; echo "smol $v $r rc=$?"
  grep -E "^\| (f16|turbo3|rht3)" $L/e2e_smol-${v}_$r.md
done; done
devrun_finish
