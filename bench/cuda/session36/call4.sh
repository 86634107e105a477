#!/usr/bin/env bash
# Session 36 device call 4: scripts/test_cuda.sh (every plain part: test_cuda, test_cuda_model,
# the backend harness, CliCudaModule) on main's build (fe55d10's library, the one-wave split
# rule included) and the C API test.
DEVRUN_BUILDS="main" . bench/cuda/devrun_setup.sh
DL=${DL:-400}
mkdir -p /tmp/flat && ln -sf /tmp/main/tests/cuda/test_cuda /tmp/main/tests/cuda/test_cuda_model \
  /tmp/main/tests/backend/test_backend_ops_cuda /tmp/main/tests/cli/test_cli /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout 300 scripts/test_cuda.sh > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$? ($(( $(date +%s) - start )) s)"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|skipped" $L/test_cuda.log | head -20
devrun_gtest capi 60 /tmp/main/tests/capi/test_c_api_cuda '*'
devrun_finish
