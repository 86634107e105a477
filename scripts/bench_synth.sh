#!/usr/bin/env bash
# Runs `tq synth` over every codec at d = 64/128/256 and records the table in
# BENCHMARKS.md (section "synth") with the command, commit, machine and date.
set -euo pipefail
cd "$(dirname "$0")/.."
VECTORS=${VECTORS:-4000}
[ -x build/bin/tq ] || bash scripts/build.sh
out=$(mktemp)
{
  echo "## Synthetic codec quality (tq synth)"
  echo
  echo "- command: \`scripts/bench_synth.sh\` (= \`build/bin/tq synth --vectors $VECTORS\`)"
  echo "- commit: $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- src include || echo ' (+ uncommitted changes)'), date: $(date -u +%Y-%m-%d), CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
  echo "- $VECTORS random unit vectors per row (Gaussian, normalized) and as many with 4 fixed outlier channels at 20x;"
  echo "  IP error against queries with <q,u> ≈ 0.7 (so the shrinkage bias of MSE codecs shows). Lloyd-Max = d x the"
  echo "  per-coordinate distortion of the exact coordinate law; MSE/LM = measured over that."
  echo
  echo '```'
  build/bin/tq synth --vectors "$VECTORS" 2>/dev/null
  echo '```'
} >"$out"
python3 scripts/update_benchmarks.py synth "$out"
rm -f "$out"
