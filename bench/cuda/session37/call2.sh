#!/usr/bin/env bash
# Session 37 device call 2 (short: the session's device time was nearly spent). Builds:
# main (as call 1) and qdense = main + the register code search in the tensor-core
# quantize kernel only (call 1's qreg made rht3's lane-block kernel 1-2% slower and took
# turbo3 6-8% faster; the lane kernel keeps its shared-memory search). The tensor-core
# kernel's tests call 1 did not reach (its 60 s limit), then two quantize A/B rounds.
DEVRUN_BUILDS="main qdense" . bench/cuda/devrun_setup.sh
DL=${DL:-120}
devrun_gtest test_qdense 60 /tmp/qdense/tests/cuda/test_cuda \
  '*CudaQuantize.TensorCore*/turbo*:*CudaQuantize.LargeWrites*/turbo*:*CudaQuantize.Records*/turbo*:CudaRangeErrors.TensorCore*:DenseMmaFragments.*'
devrun_quantize_ab 2 65536,262144 main qdense
devrun_finish
