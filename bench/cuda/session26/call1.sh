#!/usr/bin/env bash
# Session 26 device call 1: where the quantize kernels spend their time (main 0ce8401):
# ncu details of the q8_0 / rht3 warp kernel at 262K vectors and of Gemma 3's turbo3
# decode-step write (d = 256, cluster split), with warp-stall sampling by source line.
set -u
start=$(date +%s)
mkdir -p /tmp/old && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/old/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
SEC="--section SpeedOfLight --section Occupancy --section LaunchStats --section WarpStateStats --section SchedulerStats --section MemoryWorkloadAnalysis --section SourceCounters"
timeout 120 ncu $SEC -k regex:quantize_warp_kernel --launch-skip 3 --launch-count 2 python3 scripts/bench_cuda.py --lib /tmp/old/src/capi/libturboquant.so --only quantize --sizes 262144 --json $L/q.json --markdown $L/q.md > $L/ncu_warp_262k.txt 2>&1; echo "ncu warp rc=$?"
grep -E "quantize_warp_kernel|Duration|DRAM Throughput|Memory Throughput|Compute \(SM\)|Achieved Occupancy|Theoretical Occupancy|Registers Per|Issue Slots|Executed Ipc A|No Eligible|Block Limit" $L/ncu_warp_262k.txt | head -60
/tmp/old/tests/cuda/write_shaped_gguf gemma3 /tmp/gemma.gguf > /dev/null
export TQ_CUDA_PROFILE_DECODE=1
timeout 120 ncu $SEC -k regex:quantize_kernel --launch-count 2 /tmp/old/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 32768 --prefill 16 --decode 2 > $L/ncu_gemma_q.txt 2>&1; echo "ncu gemma rc=$?"
grep -E "quantize_kernel|Duration|Registers Per|Issue Slots|Executed Ipc A|No Eligible|Achieved Occupancy" $L/ncu_gemma_q.txt | head -20
timeout 60 ncu --section WarpStateStats --section SourceCounters --import-source no -k regex:decode_reduce --launch-count 1 /tmp/old/bin/tq bench model --model /tmp/gemma.gguf --device cuda --codecs turbo3 --depths 32768 --prefill 16 --decode 2 > $L/ncu_gemma_reduce.txt 2>&1; echo "ncu reduce rc=$?"
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
