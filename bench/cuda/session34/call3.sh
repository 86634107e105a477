#!/usr/bin/env bash
# Session 34 device call 3 (call 2, which never got a machine, cut to the device time left):
# the tests of the paths build `rhtq` touches (rht*, q8_0h, q4_0h queries rotated in the
# split kernel; the prepare and quantize kernels' Hadamard now one function), then
# alternating decode rounds against main 2478548 while the budget lasts.
DEVRUN_BUILDS="rhtq main" . bench/cuda/devrun_setup.sh
DL=${DL:-250}
F='CudaSingleLaunch.*:CudaAttentionShapes.*:EveryCodec/CudaAttention.*:EveryCodec/CudaQuantize.*/rht*:EveryCodec/CudaQuantize.*/q*h'
F="$F:EveryCodec/CudaQuantize.*/turbo3:CudaWindow.*:CudaKernelChoice.*:CudaFrames.*"
devrun_gtest test_rhtq 130 /tmp/rhtq/tests/cuda/test_cuda "$F"
devrun_ab 2 4096,65536 rht3,q4_0h,turbo3,f16 main rhtq
devrun_finish
