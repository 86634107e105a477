# Sourced by scripts/compare_llama_cpp.sh and scripts/bench_llama_cpp.sh: one CPU-only build
# of llama.cpp shared by both, and the named models' paths.
#
# llama.cpp comes from the source distribution of PyPI's llama-cpp-python (it vendors
# llama.cpp), built once into $LLAMA_DIR (default ~/.cache/turboquant/llama.cpp). One build
# tree holds libllama (for scripts/llama_cpp/llama_dump.cpp) and the llama-bench tool; each
# caller builds only the targets it needs. The first build takes ~10 minutes on 2 cores.
#
# needs: THREADS (build jobs); reads TQ_LLAMA_DIR, TQ_MODEL_DIR.

LLAMA_CPP_PYTHON_VERSION=0.3.36
LLAMA_DIR=${TQ_LLAMA_DIR:-$HOME/.cache/turboquant/llama.cpp}

# Fetches the vendored llama.cpp sources into $LLAMA_DIR/src, once.
llama_fetch_source() {
  [ -f "$LLAMA_DIR/src/CMakeLists.txt" ] && return
  mkdir -p "$LLAMA_DIR"
  echo "llama.cpp: fetching llama-cpp-python $LLAMA_CPP_PYTHON_VERSION (sdist) for its vendored llama.cpp" >&2
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$LLAMA_CPP_PYTHON_VERSION" -d "$tmp"
  tar xzf "$tmp"/llama_cpp_python-*.tar.gz -C "$tmp"
  rm -rf "$LLAMA_DIR/src"
  mv "$tmp"/llama_cpp_python-*/vendor/llama.cpp "$LLAMA_DIR/src"
  rm -rf "$tmp"
}

# ggml's x86 instruction sets for this CPU, from /proc/cpuinfo, as CMake options. Not
# -march=native: virtual machines advertise AMX tiles without enabling them, and ggml's AMX
# matmul then dies of SIGILL (tilezero), so AMX stays off.
llama_isa_options() {
  local flags opts=() pair
  flags=" $(grep -m1 '^flags' /proc/cpuinfo 2>/dev/null | cut -d: -f2) "
  for pair in avx:AVX avx2:AVX2 fma:FMA f16c:F16C bmi2:BMI2 avx_vnni:AVX_VNNI avx512f:AVX512 \
    avx512vbmi:AVX512_VBMI avx512_vnni:AVX512_VNNI avx512_bf16:AVX512_BF16; do
    if [[ $flags == *" ${pair%%:*} "* ]]; then opts+=("-DGGML_${pair#*:}=ON"); else opts+=("-DGGML_${pair#*:}=OFF"); fi
  done
  echo "-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF ${opts[*]}"
}

# Builds the named CMake targets (llama, llama-bench, ...) of the shared CPU-only tree.
# The configuration enables the common library and the tools so that every caller's
# targets exist in the one tree; only the requested targets are compiled. It is written
# to the tree (tq-configure.txt) and applied again whenever it changes.
llama_build_targets() {
  llama_fetch_source
  local b=$LLAMA_DIR/build config
  config="-DCMAKE_BUILD_TYPE=Release -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_COMMON=ON -DLLAMA_BUILD_TOOLS=ON \
-DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_SERVER=OFF -DLLAMA_BUILD_APP=OFF \
-DLLAMA_OPENSSL=OFF -DGGML_OPENMP=OFF $(llama_isa_options)"
  if [ "$(cat "$b/tq-configure.txt" 2>/dev/null)" != "$config" ]; then
    echo "llama.cpp: configuring the CPU-only build in $b" >&2
    # shellcheck disable=SC2086 # the options are words
    nice -n 19 cmake -S "$LLAMA_DIR/src" -B "$b" $config >"$b.configure.log" 2>&1 ||
      { tail -n 30 "$b.configure.log" >&2; return 1; }
    echo "$config" >"$b/tq-configure.txt"
  fi
  echo "llama.cpp: building $* (CPU only; slow on few cores the first time; log: $b/tq-build.log)" >&2
  nice -n 19 cmake --build "$b" -j"$THREADS" --target "$@" >"$b/tq-build.log" 2>&1 ||
    { tail -n 30 "$b/tq-build.log" >&2; return 1; }
}

# The llama.cpp that is built: the package it was vendored in (the sdist carries no git
# history, so llama-bench's build_commit reads "unknown").
llama_cpp_version() {
  echo "llama.cpp vendored in llama-cpp-python $LLAMA_CPP_PYTHON_VERSION"
}

# Named models: the files scripts/setup_models.sh installs (as src/model/model_paths.cpp).
MODEL_DIR=${TQ_MODEL_DIR:-$HOME/.cache/turboquant/models}
model_path() {
  case "$1" in
    smollm2) echo "$MODEL_DIR/smollm2-135m-instruct-q4_1.gguf" ;;
    gemma3) echo "$MODEL_DIR/gemma-3-270m-q4_k_m.gguf" ;;
    *) echo "$1" ;;
  esac
}
