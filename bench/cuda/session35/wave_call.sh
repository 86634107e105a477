#!/usr/bin/env bash
# Session 35 device call: every tensor-core codec of the bench at its split count, half
# and a third of it (bench/cuda/session35/wave_sweep.py), batch 1 and 8, 4K-128K.
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
DL=${DL:-300}
timeout $DL python3 bench/cuda/session35/wave_sweep.py --lib /tmp/main/src/capi/libturboquant.so 2>&1 | tee $L/wave.txt | grep -v "^$"
devrun_finish
