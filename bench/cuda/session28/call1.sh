#!/usr/bin/env bash
# Session 28 device call 1: the cluster-split quantize (dense rotations, decode-sized
# writes, d = 256) launched with PDL behind qk_prepare, its slice of Qᵀ loaded before it
# waits; mma_occupancy keyed by device and block. Full test_cuda and test_cuda_model,
# Gemma 3- and SmolLM2-shaped decode old (main f13c282) / new for f16, turbo3 and rht3,
# and the presets' quantize-on-write (a half-warp per run, a lane per trial) old / new.
DEVRUN_BUILDS="new old" . bench/cuda/devrun_setup.sh
F='Presets/*:CudaPreset*:CudaSingleLaunch.*:CudaWindow.*:CudaAttentionShapes.*:EveryCodec/CudaQuantize.DecodeSized*:EveryCodec/CudaQuantize.TensorCore*:EveryCodec/CudaQuantize.RecordsMatch*:DenseMma*:CudaRangeErrors.*:CudaFrames.*:EveryCodec/CudaAttention.*/turbo3:EveryCodec/CudaAttention.*/q8_0:EveryCodec/CudaAttention.*/f16'
timeout 200 /tmp/new/tests/cuda/test_cuda --gtest_filter="$F" > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tests ran" $L/test_cuda.log | head -20
timeout 60 /tmp/new/tests/cuda/test_cuda_model > $L/test_cuda_model.log 2>&1; echo "test_cuda_model rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda_model.log | head
/tmp/new/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
/tmp/new/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
for r in 1; do for v in old new; do
  B=/tmp/$v
  for g in direct graphs; do
    G=""; [ $g = graphs ] && G=--cuda-graphs
    LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 90 $B/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3,rht3 --depths 32768 --prefill 128 --decode 64 $G --markdown $L/e2e_gemma-$g-${v}_$r.md > $L/e2e_gemma-$g-${v}_$r.log 2>&1; echo "gemma $g $v $r rc=$?"
    grep -E "^\| (f16|turbo3|rht3)" $L/e2e_gemma-$g-${v}_$r.md
  done
done; done
echo "== smol ($(( $(date +%s) - start )) s)"
for v in old new; do
  B=/tmp/$v
  LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 100 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3,rht3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_$v.md > $L/e2e_smol_$v.log 2>&1; echo "smol $v rc=$?"
  grep -E "^\| (f16|turbo3|rht3)" $L/e2e_smol_$v.md
done
echo "== preset quantize ($(( $(date +%s) - start )) s)"
# old: main's kernels with this tree's bench source (the --quantize table is new).
for p in tq3 tq4.25; do for v in old new; do
  LD_LIBRARY_PATH=/tmp/$v/lib:/usr/local/cuda/lib64 timeout 90 /tmp/$v/tests/cuda/bench_cuda_presets --quantize --preset $p > $L/preset_quantize_${p}_$v.md 2> $L/preset_quantize_${p}_$v.err; echo "$p $v rc=$?"
  cat $L/preset_quantize_${p}_$v.md
done; done
devrun_finish
