#!/usr/bin/env bash
# Session 26 device call 3: the lane-block encoder for unrotated and rht records only
# (block rotations back on the one-vector path), rht's permutation and first signs as
# one shared-memory table, the Hadamard's cross-lane stages as one fma, NaN/Inf search
# only in warps that hold one; 64 registers (4 CTAs per SM). Quantize tests, memcheck
# over the lane-block test of a few codecs, quantize old (main 0ce8401) / new alternating,
# and ncu warp-stall sampling per SASS line of the new kernel on rht3 at 262K vectors.
set -u
start=$(date +%s)
mkdir -p /tmp/bc /tmp/old && tar xJf build-devrun/new.tar.xz -C /tmp/bc && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/bc/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader
timeout 200 /tmp/bc/tests/cuda/test_cuda --gtest_filter='EveryCodec/CudaQuantize.*:CudaKernelChoice.*:CudaRange*:CudaQuantizeBf16*' > $L/test_quantize.log 2>&1; echo "test_cuda quantize rc=$?"
grep -E "^\[  (PASSED|FAILED)|FAILED  \]|tie  " $L/test_quantize.log | head -30
echo "== memcheck ($(( $(date +%s) - start )) s)"
timeout 120 compute-sanitizer --tool memcheck --error-exitcode 9 /tmp/bc/tests/cuda/test_cuda --gtest_filter='*LaneBlock*/rht3:*LaneBlock*/q8_0:*LaneBlock*/rht2:*LaneBlock*/turbo2_5:*LaneBlock*/q4_0h:*LaneBlock*/fp8:*LaneBlock*/f16' > $L/memcheck.log 2>&1; echo "memcheck rc=$?"
grep -E "ERROR SUMMARY|^\[  (PASSED|FAILED)|FAILED  \]" $L/memcheck.log | head
echo "== quantize old/new ($(( $(date +%s) - start )) s)"
for r in 1 2; do for v in old new; do
  B=/tmp/bc; [ $v = old ] && B=/tmp/old
  timeout 60 python3 scripts/bench_cuda.py --lib $B/src/capi/libturboquant.so --only quantize --sizes 1024,16384,65536,262144 --json $L/q_${v}_$r.json --markdown $L/q_${v}_$r.md > $L/q_${v}_$r.log 2>&1
  echo "$v round $r rc=$?"; grep -E "^\| (1024|65536|262144) \| (rht3|iso3|q8_0|fp8)" $L/q_${v}_$r.md
done; done
echo "== ncu ($(( $(date +%s) - start )) s)"
timeout 120 ncu --section WarpStateStats --section SourceCounters --section SpeedOfLight --section Occupancy -k regex:quantize_warp_kernel --launch-skip 3 --launch-count 1 --page source --print-source sass --csv python3 scripts/bench_cuda.py --lib /tmp/bc/src/capi/libturboquant.so --only quantize --sizes 262144 --json $L/qn.json --markdown $L/qn.md > $L/ncu_src.csv 2> $L/ncu_src.err; echo "ncu rc=$?"
timeout 120 ncu --section WarpStateStats --section SpeedOfLight --section Occupancy --section SchedulerStats -k regex:quantize_warp_kernel --launch-skip 3 --launch-count 1 python3 scripts/bench_cuda.py --lib /tmp/bc/src/capi/libturboquant.so --only quantize --sizes 262144 --json $L/qn2.json --markdown $L/qn2.md > $L/ncu_details.txt 2>&1; echo "ncu2 rc=$?"
grep -E "Duration|Compute \(SM\)|Memory Throughput|Issued Warp|Registers|Achieved Occ|Stall|Warp Cycles Per Issued" $L/ncu_details.txt | head -20
python3 - "$L/ncu_src.csv" <<'PY'
import csv, sys
rows = list(csv.reader(open(sys.argv[1], errors="replace")))
hdr = next((i for i, r in enumerate(rows) if any("Source" == c for c in r)), None)
if hdr is None:
    print("no source table; first lines:"); [print(",".join(r)[:200]) for r in rows[:8]]; sys.exit()
h = rows[hdr]; print("columns:", [c for c in h][:30])
col = next((i for i, c in enumerate(h) if "Warp Stall Sampling (All" in c), None)
src = h.index("Source")
body = [r for r in rows[hdr + 1:] if len(r) == len(h)]
def num(x):
    try: return float(x.replace(",", ""))
    except ValueError: return 0.0
if col is not None:
    tot = sum(num(r[col]) for r in body) or 1
    for r in sorted(body, key=lambda r: -num(r[col]))[:40]:
        print(f"{100*num(r[col])/tot:5.1f}%  {r[src][:110]}")
PY
tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
echo "done in $(( $(date +%s) - start )) s"
