#!/usr/bin/env bash
# Session 25 device call 5: the warp kernel waits for Qᵀ's cp.async copies itself (with
# misaligned inputs stage_inputs issues none and did not wait). The quantize tests of every
# codec, and memcheck over the misaligned-row and decode-sized tests of the dense codecs.
set -u
mkdir -p /tmp/bc && tar xJf build-devrun/new.tar.xz -C /tmp/bc
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 120 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*:CudaKernelChoice.*' > $OUT/test_cuda.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tests ran" $OUT/test_cuda.log | head
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 1 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.MisalignedRows*/turbo*:EveryCodec/CudaQuantize.DecodeSized*/turbo3' > $OUT/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|PASSED|FAILED" $OUT/memcheck.log | head -5
