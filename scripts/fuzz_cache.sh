#!/usr/bin/env bash
# Fuzzes the KV-cache file loader for a bounded time: scripts/fuzz_ci.sh with one target.
# usage: scripts/fuzz_cache.sh [SECONDS]   (default 60)
exec "$(dirname "$0")/fuzz_ci.sh" "${1:-60}" cache_load_fuzz
