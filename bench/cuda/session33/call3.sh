#!/usr/bin/env bash
# Session 33 device call 4: what the prepare launch costs. One library (np: main 791aa1c
# plus an experiment switch TQ_EXP_NOPREP that skips the prepare kernel; its outputs are
# wrong, so every content check fails: timing only), run as np (three launches) and
# np_skip (two launches, the split kernel reading stale queries). The difference bounds
# what a split kernel that rotates its own queries (no prepare launch) could gain.
DEVRUN_BUILDS="np" . bench/cuda/devrun_setup.sh
DL=${DL:-200}
ln -s /tmp/np /tmp/np_skip
devrun_decode_skip() { TQ_EXP_NOPREP=1 devrun_decode "$@"; }
for round in 1 2 3 4; do
  devrun_decode np $round 4096,16384 f16,q8_0,q4_0,rht3,turbo3 || break
  devrun_decode_skip np_skip $round 4096,16384 f16,q8_0,q4_0,rht3,turbo3 || break
done
python3 bench/cuda/ab_table.py $L np np_skip | tee $L/ab_table.md
devrun_finish
