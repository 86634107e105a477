#!/usr/bin/env bash
# Session 35: the memcheck part of scripts/test_cuda.sh on main's build, alone (call 2's
# test_cuda.sh --memcheck ran every plain part, 334 + 24 + 3 tests and the harness, and
# reached its 300 s limit inside memcheck).
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
mkdir -p /tmp/flat && ln -sf /tmp/main/tests/cuda/test_cuda /tmp/main/tests/backend/test_backend_ops_cuda /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout ${MEMCHECK_S:-540} scripts/test_cuda.sh --memcheck-only > $L/memcheck.log 2>&1; echo "test_cuda.sh --memcheck-only rc=$? ($(( $(date +%s) - start )) s)"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== |all cases" $L/memcheck.log | head -20
devrun_finish
