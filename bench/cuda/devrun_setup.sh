# Sourced at the top of a device call's script: unpacks the builds named in DEVRUN_BUILDS
# (build-devrun/<name>.tar.xz from pack_devrun.sh, each into /tmp/<name>; the first also
# gives LD_LIBRARY_PATH), makes $L (logs under $OUT, packed by devrun_finish) and prints
# the GPU. Sets `start` for elapsed-time marks: $(( $(date +%s) - start )).
set -u
start=$(date +%s)
for b in ${DEVRUN_BUILDS:-new}; do
  mkdir -p /tmp/$b && tar xJf build-devrun/$b.tar.xz -C /tmp/$b
done
first=${DEVRUN_BUILDS:-new}; first=${first%% *}
# test_cli runs tq from the path the build was configured in here (/tmp/bc).
[ -e /tmp/bc ] || ln -s /tmp/$first /tmp/bc
export LD_LIBRARY_PATH=/tmp/$first/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
L=$OUT/logs
mkdir -p $L
nvidia-smi --query-gpu=name,driver_version --format=csv,noheader

# Packs $L into $OUT/logs.tgz (one file comes back however many logs there are).
devrun_finish() {
  tar czf $OUT/logs.tgz -C $OUT logs && rm -rf $L
  echo "done in $(( $(date +%s) - start )) s"
}

# Runs one gtest binary with a filter under a time limit, logs to $L/NAME.log and prints
# rc and the pass/fail summary. Usage: devrun_gtest NAME SECONDS BINARY FILTER
# (environment for the binary goes before the call: TQ_X=1 devrun_gtest ...).
devrun_gtest() {
  local name=$1 secs=$2 bin=$3 filter=$4
  timeout "$secs" "$bin" --gtest_filter="$filter" > "$L/$name.log" 2>&1
  echo "$name rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^\[  (PASSED|FAILED)|FAILED  \]" "$L/$name.log" | head -8
}

# devrun_gtest under compute-sanitizer memcheck (fails on any error): rc, pass/fail and the
# error summary. Usage: devrun_memcheck NAME SECONDS BINARY FILTER
devrun_memcheck() {
  local name=$1 secs=$2 bin=$3 filter=$4
  timeout "$secs" compute-sanitizer --tool memcheck --error-exitcode 1 "$bin" --gtest_filter="$filter" > "$L/$name.log" 2>&1
  echo "$name rc=$? ($(( $(date +%s) - start )) s)"
  grep -E "^\[  (PASSED|FAILED)|ERROR SUMMARY" "$L/$name.log"
}

# Seconds left of the call's budget DL (set by the script) since `start`.
devrun_left() { echo $(( DL - ($(date +%s) - start) )); }

# Nsight Compute of one decode kernel launch (the 4th) through profile_cuda.py, within the
# budget left (at most 75 s; skipped under 40), logged to $L/NAME.log.
# Usage: devrun_ncu NAME KERNEL_REGEX LIB CODEC BATCH CTX
devrun_ncu() {
  local name=$1 kernel=$2 lib=$3 codec=$4 batch=$5 ctx=$6 left
  left=$(devrun_left)
  [ "$left" -gt 40 ] || { echo "$name skipped: $left s left"; return 0; }
  timeout $(( left < 75 ? left : 75 )) ncu --clock-control none --kernel-name "regex:$kernel" \
    --launch-skip 3 --launch-count 1 --section SpeedOfLight --section Occupancy --section WarpStateStats \
    --section MemoryWorkloadAnalysis --section LaunchStats --section InstructionStats \
    python3 bench/cuda/profile_cuda.py --lib "$lib" --codec "$codec" --batch "$batch" --ctx "$ctx" > "$L/$name.log" 2>&1
  echo "$name rc=$? ($(( $(date +%s) - start )) s)"
}

# One decode round of bench_cuda.py on build LABEL's library within the budget left,
# logged to $L/dec_LABEL_ROUND.{json,md,log} (what ab_table.py reads); fails when fewer than
# 25 s are left. Usage: devrun_decode LABEL ROUND CONTEXTS CODECS
devrun_decode() {
  local label=$1 round=$2 contexts=$3 codecs=$4 left
  left=$(devrun_left)
  [ "$left" -gt 25 ] || return 1
  timeout "$left" python3 scripts/bench_cuda.py --lib /tmp/$label/src/capi/libturboquant.so --only decode \
    --contexts "$contexts" --codecs "$codecs" --json $L/dec_${label}_$round.json --markdown $L/dec_${label}_$round.md \
    > $L/dec_${label}_$round.log 2>&1
  echo "round $round $label rc=$? ($(( $(date +%s) - start )) s)"
}

# ROUNDS alternating decode rounds over the builds LABEL... (one devrun_decode each, in
# order, stopping when the budget runs out), then their A/B table (ab_table.py, first label
# the baseline) printed and saved as $L/ab_table.md.
# Usage: devrun_ab ROUNDS CONTEXTS CODECS LABEL...
devrun_ab() {
  local rounds=$1 contexts=$2 codecs=$3 round label
  shift 3
  for round in $(seq "$rounds"); do
    for label in "$@"; do
      devrun_decode "$label" "$round" "$contexts" "$codecs" || break 2
    done
  done
  python3 bench/cuda/ab_table.py $L "$@" | tee $L/ab_table.md
}

# ROUNDS alternating quantize rounds of bench_cuda.py (--only quantize --sizes SIZES) over
# the builds LABEL... (each within the budget left, logged to $L/q_LABEL_ROUND.*), then
# their A/B table (bench/cuda/quantize_ab.py, first label the baseline) printed
# and saved as $L/quantize_ab.md. Usage: devrun_quantize_ab ROUNDS SIZES LABEL...
devrun_quantize_ab() {
  local rounds=$1 sizes=$2 round label
  shift 2
  for round in $(seq "$rounds"); do
    for label in "$@"; do
      [ "$(devrun_left)" -gt 15 ] || break 2
      timeout 60 python3 scripts/bench_cuda.py --lib /tmp/$label/src/capi/libturboquant.so --only quantize \
        --sizes "$sizes" --json $L/q_${label}_$round.json --markdown $L/q_${label}_$round.md > $L/q_${label}_$round.log 2>&1
      echo "quantize round $round $label rc=$? ($(( $(date +%s) - start )) s)"
    done
  done
  python3 bench/cuda/quantize_ab.py $L "$@" | tee $L/quantize_ab.md
}
