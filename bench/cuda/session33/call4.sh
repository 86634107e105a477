#!/usr/bin/env bash
# Session 33 device calls 5 and 6: the split kernel reading its own queries, no prepare
# launch. One build run as `own` (auto_) and `prep` (TQ_CUDA_LAUNCH=prepared: three
# launches always). Call 5 (build `own`): the split kernel rotated the queries in the
# single launch's prologue where the keys' rotation is not dense (f16, q8_0, q4_0, rht3):
# slower than the prepare launch (the copies waited for the prologue). Call 6 (build
# `direct`, passed as BUILD=direct): keys without a rotation only (f16, q8_0, q4_0 here;
# rht3 and turbo3 keep three launches), the queries read once the first copies are in
# flight. Call 4 bounded the gain: skipping the prepare launch saved 1.1-2.8 us at batch 1
# / 4K. Tests first. (Call 6: BUILD=direct CODECS=f16,q8_0,q4_0,fp8,turbo3; call 7: BUILD=directpdl,
# the same launched with PDL, waiting for the previous kernel before its first read; call 8:
# BUILD=directpair, the queries in element pairs, all loads issued before any conversion.)
BUILD=${BUILD:-own} CODECS=${CODECS:-f16,q8_0,q4_0,rht3,turbo3}
DEVRUN_BUILDS="$BUILD" . bench/cuda/devrun_setup.sh
DL=${DL:-300}
F='CudaSingleLaunch.*:EveryCodec/CudaAttention.*:CudaAttentionShapes.*:CudaWindow.*:*Sink*:*Frame*'
F="$F:CudaKernelChoice.*:Presets/CudaPresetAttention.*:CudaPresetAttentionMixed.*"
devrun_gtest test_own 120 /tmp/$BUILD/tests/cuda/test_cuda "$F"
ln -s /tmp/$BUILD /tmp/prep; [ "$BUILD" = own ] || ln -s /tmp/$BUILD /tmp/own
for round in 1 2 3; do
  devrun_decode own $round 4096,65536 $CODECS || break
  TQ_CUDA_LAUNCH=prepared devrun_decode prep $round 4096,65536 $CODECS || break
done
python3 bench/cuda/ab_table.py $L prep own | tee $L/ab_table.md
devrun_finish
