#!/usr/bin/env bash
# Session 27 device call 1: Nsight Compute on main (4b20569's kernels, build "old"): the
# tensor-core quantize (turbo3) and the lane-block warp kernel (rht3) at 262K vectors,
# per-SASS-line instructions and stall samples summed by opcode; quantize timings.
set -u
start=$(date +%s)
mkdir -p /tmp/old && tar xJf build-devrun/old.tar.xz -C /tmp/old
export LD_LIBRARY_PATH=/tmp/old/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs; mkdir -p $L
nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv,noheader
LIB=/tmp/old/src/capi/libturboquant.so
timeout 60 python3 scripts/bench_cuda.py --lib $LIB --only quantize --sizes 65536,262144 --json $L/q.json --markdown $L/q.md > $L/q.log 2>&1
grep -E "^\| (65536|262144) \|" $L/q.md
for k in dense_mma:262144 warp_kernel:262144; do
  name=${k%%:*}
  echo "== ncu $name ($(( $(date +%s) - start )) s)"
  timeout 150 ncu --section WarpStateStats --section SourceCounters -k regex:quantize_$name --launch-skip 3 --launch-count 1 --page source --print-source sass --csv python3 scripts/bench_cuda.py --lib $LIB --only quantize --sizes 262144 --json $L/n.json --markdown $L/n.md > $L/src_$name.csv 2> $L/src_$name.err; echo "ncu rc=$?"
  python3 bench/cuda/session27/ncu_opcodes.py $L/src_$name.csv 262144 | tee $L/opcodes_$name.txt
  timeout 120 ncu --section WarpStateStats --section SpeedOfLight --section Occupancy --section SchedulerStats --section LaunchStats --section MemoryWorkloadAnalysis -k regex:quantize_$name --launch-skip 3 --launch-count 1 python3 scripts/bench_cuda.py --lib $LIB --only quantize --sizes 262144 --json $L/n2.json --markdown $L/n2.md > $L/details_$name.txt 2>&1; echo "ncu2 rc=$?"
  grep -E "Duration|Compute \(SM\)|Memory Throughput|DRAM Throughput|Issued Warp|Registers Per|Achieved Occ|Theoretical Occ|Warp Cycles Per Issued|No Eligible|Block Limit|Shared Memory Config|Dynamic Shared" $L/details_$name.txt | head -24
  gzip -f $L/src_$name.csv
done
echo "done in $(( $(date +%s) - start )) s"
