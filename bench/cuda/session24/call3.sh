#!/usr/bin/env bash
# Session 24 device call 3: the whole CUDA suite on the final tree (scripts/test_cuda.sh
# --memcheck over prebuilt binaries). The library is call 2's; only the tests changed.
set -u
start=$(date +%s)
mkdir -p /tmp/bc && tar xJf build-devrun/bc.tar.xz -C /tmp/bc && tar xJf build-devrun/libs.tar.xz -C /tmp/bc
mkdir -p /tmp/flat && ln -sf /tmp/bc/tests/cuda/test_cuda /tmp/bc/tests/cuda/test_cuda_model /tmp/bc/tests/backend/test_backend_ops_cuda /tmp/bc/tests/cli/test_cli /tmp/flat/
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:/usr/local/cuda/lib:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TQ_CUDA_BIN=/tmp/flat timeout 380 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== |near-tie" $L/test_cuda.log | head -60
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
