#!/usr/bin/env bash
# Session 26 device call 4: the lane-block encoder with the mse search and byte stores
# unrolled per code width, the corrected norm's sum only where corrected, rht's NaN/Inf
# search over the gathered inputs and the copy-out loop per word width. The whole CUDA
# suite under scripts/test_cuda.sh --memcheck, then quantize old (main 0ce8401) / new
# alternating.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
mkdir -p /tmp/flat && ln -sf /tmp/bc/tests/cuda/test_cuda /tmp/bc/tests/cuda/test_cuda_model /tmp/bc/tests/backend/test_backend_ops_cuda /tmp/bc/tests/cli/test_cli /tmp/flat/
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
TQ_CUDA_BIN=/tmp/flat timeout 420 scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 50 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 1024,16384,65536,262144 --json $L/q_${v}_$r.json --markdown $L/q_${v}_$r.md > $L/q_${v}_$r.log 2>&1
  echo "$v round $r rc=$?"; grep -E "^\| (1024|65536|262144) \| (rht3|iso3|q8_0|fp8)" $L/q_${v}_$r.md
done; done
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
