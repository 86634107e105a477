#!/usr/bin/env bash
# Fuzzes the KV-cache file loader (fuzz/cache_load_fuzz.cpp) with libFuzzer + ASan/UBSan
# for a bounded time, from a seed corpus of valid cache files; stops at the first crash
# and leaves the reproducer in build-fuzz/cache_crashes/.
# usage: scripts/fuzz_cache.sh [SECONDS]   (default 60)
# Needs clang and its runtime (Debian: apt-get install -y clang libclang-rt-14-dev).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_TO_RUN="${1:-60}"
BUILD=build-fuzz
cmake -S . -B "$BUILD" -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DTQ_FUZZ=ON -DTQ_TESTS=OFF -DTQ_BENCH=OFF -DTQ_CUDA=OFF >/dev/null
cmake --build "$BUILD" -j"$(nproc)" --target cache_load_fuzz cache_seed_corpus >/dev/null
CORPUS="$BUILD/cache_corpus"
mkdir -p "$CORPUS" "$BUILD/cache_crashes"
"$BUILD/bin/cache_seed_corpus" "$CORPUS"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "fuzz_cache: running for ${SECONDS_TO_RUN}s (corpus $CORPUS)"
"$BUILD/bin/cache_load_fuzz" "$CORPUS" -max_total_time="$SECONDS_TO_RUN" -max_len=8192 -timeout=10 \
  -rss_limit_mb=2048 -artifact_prefix="$BUILD/cache_crashes/" -print_final_stats=1
echo "fuzz_cache: no crash in ${SECONDS_TO_RUN}s"
