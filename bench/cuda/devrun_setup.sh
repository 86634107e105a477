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
