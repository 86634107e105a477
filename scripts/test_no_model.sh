#!/usr/bin/env bash
# The build without the model runner (TQ_MODEL=OFF, as when OpenBLAS is missing): tq links,
# every model command exits 2 naming what is missing, and the other commands still run.
set -euo pipefail
cd "$(dirname "$0")/.."
build=build-nomodel
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$build" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTQ_MODEL=OFF -DTQ_CUDA=OFF -DTQ_NATIVE=OFF >/dev/null
cmake --build "$build" --target tq -j "$(nproc)" >/dev/null
fail=0
for cmd in run calibrate eval "bench model"; do
  set +e
  msg=$("$build/bin/tq" $cmd 2>&1)
  rc=$?
  set -e
  if [ $rc -ne 2 ] || ! grep -q "built without the model runner" <<<"$msg"; then
    echo "test_no_model: 'tq $cmd' gave rc $rc: $msg"; fail=1
  fi
done
"$build/bin/tq" codecs | grep -q "^q8_0 " || { echo "test_no_model: 'tq codecs' lacks q8_0"; fail=1; }
[ $fail -eq 0 ] && echo "test_no_model: ok (tq run / calibrate / eval / bench model say the runner is missing)"
exit $fail
