#!/usr/bin/env bash
# Session 33 device call 2 (after session32/call1.sh landed the fragment path's A/B): ring
# depth of the q8_0 / q4_0 fragment path. Builds (bench/cuda/pack_devrun.sh, library
# only except land): land = the fragment path (q8_0 3 stages, q4_0 4), st6 = q8_0 6
# stages and q4_0 8 (CTAs per SM unchanged: registers bound them), st6pf = st6 with the
# 16-byte copies' L2::256B prefetch hint (f16's copies too). Session 32's profile of land
# (H100): q8_0 at batch 8 / 64K DRAM 78%, L2 83%, 12 warps per SM with two stages in flight
# each (~27 KB per SM), so deeper rings should raise DRAM throughput. Then Nsight Compute
# of turbo3 at batch 8 / 64K on land (what bounds the 3-bit decode).
DEVRUN_BUILDS="land st6 st6pf" . bench/cuda/devrun_setup.sh
DL=${DL:-240}
devrun_ab 3 4096,65536 q8_0,q4_0,f16 land st6 st6pf
devrun_ncu ncu_st6_q8_0 decode_mma_tile /tmp/st6/src/capi/libturboquant.so q8_0 8 65536
devrun_ncu ncu_land_turbo3 decode_mma /tmp/land/src/capi/libturboquant.so turbo3 8 65536
devrun_finish
