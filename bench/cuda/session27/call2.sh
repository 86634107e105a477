#!/usr/bin/env bash
# Session 27 device call 2: the tensor-core quantize rewritten (one wave of CTAs over all
# heads' tiles, 16 warps, next tile staged during the encode, fragment-layout scan, f16
# inputs without the low half, code width as a template argument) and the iso3 fix (large
# one-vector writes on a 64-register instantiation). Quantize tests, memcheck, old
# (4b20569) / new quantize alternating, Nsight Compute by opcode of the new tensor-core
# kernel, SmolLM2-shaped prefill old / new, then scripts/test_cuda.sh --memcheck.
DEVRUN_BUILDS="new old" . bench/cuda/devrun_setup.sh
F='*LaneBlock*/q8_0:*LaneBlock*/fp8:*LaneBlock*/iso3:*LaneBlock*/iso3f:*LaneBlock*/rotor3:*LaneBlock*/planar4:*LaneBlock*/rht3:EveryCodec/CudaQuantize.TensorCore*:EveryCodec/CudaQuantize.LargeWrites*:CudaRangeErrors.*:CudaQuantizeBf16*:DenseMma*:EveryCodec/CudaQuantize.DecodeSized*'
timeout 100 /tmp/new/tests/cuda/test_cuda --gtest_filter="$F" > $L/test.log 2>&1; echo "test_cuda rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|near-tie|tie  " $L/test.log | sort | uniq -c | sort -rn | head -40
echo "== memcheck ($(( $(date +%s) - start )) s)"
timeout 60 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/new/tests/cuda/test_cuda --gtest_filter='*TensorCore*/turbo3:*TensorCore*/turbo2_5:*TensorCore*/turbo4c:CudaRangeErrors.TensorCore*' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/new; [ $v = old ] && B=/tmp/old
  LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 60 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 1024,65536,262144 --json $L/q_${v}_$r.json --markdown $L/q_${v}_$r.md > $L/q_${v}_$r.log 2>&1
  echo "$v round $r rc=$?"; grep -E "^\| (1024|65536|262144) \| (turbo3|rht3|iso3|q8_0)" $L/q_${v}_$r.md
done; done
/tmp/new/tests/cuda/write_shaped_gguf smollm2 /tmp/smol.gguf > /dev/null
echo "== prefill ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/new; [ $v = old ] && B=/tmp/old
  LD_LIBRARY_PATH=$B/lib:/usr/local/cuda/lib64 timeout 40 $B/bin/tq bench model --model /tmp/smol.gguf --device cuda --codecs f16,turbo3 --depths 0 --prefill 8192 --decode 8 --markdown $L/e2e_smollm2-prefill_${v}_$r.md > $L/e2e_smollm2-prefill_${v}_$r.log 2>&1; echo "smol prefill $v $r rc=$?"
  grep -E "^\| (f16|turbo3)" $L/e2e_smollm2-prefill_${v}_$r.md
done; done
echo "== ncu ($(( $(date +%s) - start )) s)"
timeout 60 ncu --section WarpStateStats --section SourceCounters -k regex:quantize_dense_mma --launch-skip 3 --launch-count 1 --page source --print-source sass --csv python3 scripts/bench_cuda.py --lib /tmp/new/src/capi/libturboquant.so --only quantize --sizes 262144 --json $L/n.json --markdown $L/n.md > $L/src.csv 2> $L/src.err; echo "ncu rc=$?"
python3 bench/cuda/session27/ncu_opcodes.py $L/src.csv 262144 | tee $L/opcodes.txt | head -60
rm -f $L/src.csv  # megabytes; opcodes.txt keeps its summary
echo "== test_cuda.sh --memcheck ($(( $(date +%s) - start )) s)"
mkdir -p /tmp/flat && ln -sf /tmp/new/tests/cuda/test_cuda /tmp/new/tests/cuda/test_cuda_model /tmp/new/tests/backend/test_backend_ops_cuda /tmp/new/tests/cli/test_cli /tmp/flat/
TQ_CUDA_BIN=/tmp/flat timeout $(( 560 - ($(date +%s) - start) )) scripts/test_cuda.sh --memcheck > $L/test_cuda.log 2>&1; echo "test_cuda.sh rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|test_cuda.sh:|ERROR SUMMARY|^== " $L/test_cuda.log | head -40
devrun_finish
