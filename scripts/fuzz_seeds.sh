#!/usr/bin/env bash
# Regenerates the committed seed corpora in fuzz/corpus/<target>/ (small valid inputs the
# fuzzers start from; scripts/fuzz_ci.sh reads them). GGUF and tokenizer seeds are written
# by Python from the formats; cache, session and calibration-profile seeds by
# fuzz/seed_corpus.cpp through the library (records need the codecs), built in BUILD
# (default build-fuzz, configured by fuzz_ci.sh, or any build of this tree with -DTQ_FUZZ=ON).
# usage: scripts/fuzz_seeds.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD="${1:-build-fuzz}"
for t in gguf_fuzz cache_load_fuzz session_load_fuzz profile_load_fuzz tokenizer_fuzz; do rm -rf "fuzz/corpus/$t"; mkdir -p "fuzz/corpus/$t"; done
python3 scripts/fuzz_seeds_gguf.py fuzz/corpus/gguf_fuzz
python3 scripts/fuzz_seeds_tokenizer.py fuzz/corpus/tokenizer_fuzz
cmake --build "$BUILD" -j"$(nproc)" --target seed_corpus >/dev/null
"$BUILD/bin/seed_corpus" fuzz/corpus
du -sh fuzz/corpus
