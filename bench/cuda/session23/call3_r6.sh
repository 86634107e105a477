#!/usr/bin/env bash
# Session 23 device call 3: split only for small launches, slots prefetched, warp kernel
# reverted. Tests, quantize, e2e, ncu of the decode-step quantize kernel.
set -u
start=$(date +%s)
mkdir -p /tmp/bc && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/libs.tar.xz -C /tmp/bc
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name --format=csv,noheader
T=/tmp/bc/tests/cuda
timeout 150 $T/test_cuda > $L/test_cuda.log 2>&1; echo "test_cuda rc=$?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda.log | head
timeout 60 $T/test_cuda_model > $L/test_cuda_model.log 2>&1; echo "test_cuda_model rc=$?"; grep -E "^\[  (PASSED|FAILED)|FAILED  \]" $L/test_cuda_model.log | head
timeout 60 /tmp/bc/tests/cli/test_cli --gtest_filter='CliCudaModule.*' > $L/test_cli.log 2>&1; echo "test_cli rc=$?"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 1 $T/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*/turbo3:EveryCodec/CudaQuantize.*/turbo4:CudaPreset*' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"; grep -E "ERROR SUMMARY|PASSED|FAILED" $L/memcheck.log | head -4
echo "== quantize ($(( $(date +%s) - start )) s)"
timeout 100 python3 scripts/bench_cuda.py --lib /tmp/bc/src/capi/libturboquant.so --only quantize --sizes 1024,16384,65536,262144 --json $L/q.json --markdown $L/q.md > $L/q.log 2>&1; echo "rc=$?"
grep -E "^\| [0-9]+ \| (turbo3|rht3|q8_0)" $L/q.md
/tmp/bc/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
/tmp/bc/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
echo "== e2e ($(( $(date +%s) - start )) s)"
timeout 100 /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs f16,turbo3 --depths 32768 --prefill 128 --decode 64 --markdown $L/e2e_gemma.md > $L/e2e_gemma.log 2>&1; echo "gemma rc=$?"
grep -E "^\| (f16|turbo3)" $L/e2e_gemma.md
timeout 150 /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 8192 --batch 16 --prefill 128 --decode 64 --cuda-graphs --markdown $L/e2e_smol_graphs.md > $L/e2e_smol.log 2>&1; echo "smol rc=$?"
grep -E "^\| (f16|turbo3)" $L/e2e_smol_graphs.md
echo "== ncu ($(( $(date +%s) - start )) s)"
export TQ_CUDA_PROFILE_DECODE=1
timeout 60 ncu --profile-from-start off --kernel-name regex:quantize_kernel --launch-skip 40 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats --section Occupancy /tmp/bc/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs turbo3 --depths 1024 --batch 16 --prefill 16 --decode 3 > $L/ncu_q_smol.txt 2>&1; echo rc=$?
timeout 60 ncu --profile-from-start off --kernel-name regex:quantize_kernel --launch-skip 20 --launch-count 1 --section SpeedOfLight --section WarpStateStats --section SchedulerStats --section LaunchStats --section Occupancy /tmp/bc/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 1024 --prefill 16 --decode 3 > $L/ncu_q_gemma.txt 2>&1; echo rc=$?
grep -E "Duration|Warp Cycles Per Issued|Stall|Executed Ipc|Achieved Occupancy" $L/ncu_q_*.txt | head -20
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
