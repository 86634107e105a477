#!/usr/bin/env bash
# Session 36 device call 2: the full bench_cuda.py table (quantize rows checked record by
# record against the exact kernel, decode caches written by the exact kernels) on the
# machine the call gets, for BENCHMARKS.md "CUDA"; then wave_sweep.py over the codecs whose
# goals are missed at batch 8 (f16, q8_0, turbo3): does one wave beat two on this device?
# Build and pack as session35/next_call.sh says; carry build-devrun.
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
DL=${DL:-540}
lib=/tmp/main/src/capi/libturboquant.so
timeout 330 python3 scripts/bench_cuda.py --lib $lib --commit "${COMMIT:-$(git rev-parse --short HEAD)}" \
  --json $L/cuda_bench.json --markdown $L/cuda_bench.md > $L/bench.log 2>&1; echo "bench rc=$? ($(( $(date +%s) - start )) s)"
grep -E "^- |bench done" $L/bench.log
left=$(devrun_left)
[ $left -gt 40 ] && timeout $(( left - 15 )) python3 bench/cuda/session35/wave_sweep.py --lib $lib --codecs f16,q8_0,turbo3 \
  --batches 8 --contexts 4096,16384,65536 2>&1 | tee $L/wave.txt | grep -v "^$"
devrun_finish
