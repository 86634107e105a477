#!/usr/bin/env bash
# Fuzzes the GGUF reader (and the dequantizers and tokenizer construction behind it) for
# a bounded time: scripts/fuzz_ci.sh with one target.
# usage: scripts/fuzz_gguf.sh [SECONDS]   (default 60)
exec "$(dirname "$0")/fuzz_ci.sh" "${1:-60}" gguf_fuzz
