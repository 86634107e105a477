#!/usr/bin/env bash
# Session 23 device call 1: tq eval --device cuda on a GPU; e2e kernel breakdown (ncu);
# quantize baseline and its ncu sections.
set -u
start=$(date +%s)
mkdir -p /tmp/bc && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/libs.tar.xz -C /tmp/bc
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 150 /tmp/bc/tests/cli/test_cli --gtest_filter='CliCudaModule.*:CliValidation.Device*' > $L/test_cli.log 2>&1
echo "test_cli rc=$?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]|OK \]" $L/test_cli.log | head -20
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/bc/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e plain ($(( $(date +%s) - start )) s)"
timeout 150 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_graphs.md > $L/e2e_smol.log 2>&1; echo rc=$?
timeout 120 /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma.md > $L/e2e_gemma.log 2>&1; echo rc=$?
grep -E "^\| (f16|turbo3)" $L/e2e_smol_graphs.md $L/e2e_gemma.md
NCU="ncu --profile-from-start off --metrics gpu__time_duration.sum --cache-control none --clock-control none --print-summary per-kernel --csv"
export TQ_CUDA_PROFILE_DECODE=1
for c in f16 turbo3; do
  echo "== ncu smol $c ($(( $(date +%s) - start )) s)"
  timeout 100 $NCU --launch-count 1100 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs $c --depths 8192 --batch 16 --prefill 16 --decode 3 > $L/ncu_smol_$c.csv 2>&1; echo rc=$?
  echo "== ncu gemma $c ($(( $(date +%s) - start )) s)"
  timeout 100 $NCU --launch-count 700 /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs $c --depths 32768 --prefill 16 --decode 3 > $L/ncu_gemma_$c.csv 2>&1; echo rc=$?
done
unset TQ_CUDA_PROFILE_DECODE
echo "== quantize ($(( $(date +%s) - start )) s)"
timeout 120 python3 scripts/bench_cuda.py --lib /tmp/bc/src/capi/libturboquant.so --only quantize --sizes 65536,262144 --json $L/q.json --markdown $L/q.md > $L/q.log 2>&1; echo rc=$?
grep -E "^\| (65536|262144)" $L/q.md
timeout 100 ncu --kernel-name regex:quantize --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats --section MemoryWorkloadAnalysis --section SchedulerStats python3 bench/cuda/session23/qprobe.py /tmp/bc/src/capi/libturboquant.so q8_0,rht3,turbo3 > $L/ncu_quant.txt 2>&1; echo rc=$?
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
