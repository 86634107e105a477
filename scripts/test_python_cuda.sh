#!/usr/bin/env bash
# The CUDA side of the Python package and of the C API on a GPU machine (nvcc, torch, nanobind;
# GoogleTest for the C API test), in one build: the extension with TQ_CUDA=ON, libturboquant
# with the device cache, test_c_api_cuda. Runs the C API test, tests/python/test_torch_cuda.py
# and the CPU op tests, then with --bench the op-vs-C-API decode benchmark.
#   scripts/test_python_cuda.sh [--bench] [BUILD_DIR]      (default build-dev; sm_90 unless
#   CUDA_ARCH is set). Without pip: the package is assembled under BUILD_DIR/pkg.
set -euo pipefail
cd "$(dirname "$0")/.."
bench=0
[[ "${1:-}" == "--bench" ]] && { bench=1; shift; }
B=${1:-build-dev}
PY=${PYTHON:-python3}
tests=OFF
if [[ -f /usr/include/gtest/gtest.h || -f /usr/local/include/gtest/gtest.h ]]; then tests=ON; fi
gen=(); command -v ninja >/dev/null && gen=(-G Ninja)
cmake -S . -B "$B" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DTQ_CUDA=ON -DCMAKE_CUDA_ARCHITECTURES="${CUDA_ARCH:-90}" \
  -DTQ_PYTHON=ON -DTQ_MODEL=OFF -DTQ_EVAL=OFF -DTQ_TOOLS=OFF -DTQ_BENCH=OFF -DTQ_TESTS=$tests \
  -DPython_EXECUTABLE="$(command -v "$PY")" >/dev/null
targets=(_turboquant tq_capi)
[[ $tests == ON ]] && targets+=(test_c_api_cuda test_c_api)
cmake --build "$B" -j"$(nproc)" --target "${targets[@]}"
if [[ $tests == ON ]]; then
  "$B"/tests/capi/test_c_api_cuda
  "$B"/tests/capi/test_c_api --gtest_brief=1
else
  echo "GoogleTest not found: the C API test (tests/capi/test_c_api_cuda.cpp) was not built"
fi
rm -rf "$B/pkg" && mkdir -p "$B/pkg" && cp -r python/turboquant "$B/pkg/" && cp "$B"/python/_turboquant*.so "$B/pkg/turboquant/"
pkg=$(cd "$B/pkg" && pwd)
export PYTHONPATH="$pkg${PYTHONPATH:+:$PYTHONPATH}"
"$PY" -c "import turboquant.cuda as c; assert c.available(), 'the CUDA package does not see a device'"
"$PY" -m pytest -q -rs tests/python/test_torch_cuda.py tests/python/test_torch_ops.py -s
if [[ $bench == 1 ]]; then
  "$PY" scripts/bench_torch_op.py --lib "$B/src/capi/libturboquant.so" --commit "$(git rev-parse --short HEAD 2>/dev/null || echo "${TQ_COMMIT:-?}")"
fi
