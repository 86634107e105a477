#!/usr/bin/env bash
# Speed of tq's runner against llama.cpp's llama-bench, side by side, on the same GGUF
# file, the same threads and the same context depths, in one run:
#   - llama-bench with an f16 cache and with a q4_0 cache (-ctk q4_0 -ctv q4_0; flash
#     attention on for both, as llama.cpp requires it for a quantized V cache),
#   - tq bench model with the tq codecs (default f16, q4_0h, turbo3, tq3),
# each filling a depth with random tokens (untimed), then timing a prefill of PREFILL
# tokens and a decode of DECODE tokens. One markdown table per model gives every tq row's
# tok/s against llama.cpp's f16 and q4_0 caches at that depth, the ratios, tq's resident
# memory against GGUF + cache + 150 MB, and the issue-12 goals met or missed.
#
# llama.cpp is built CPU-only once (scripts/llama_cpp/common.sh, shared with
# scripts/compare_llama_cpp.sh; ~10 minutes on 2 cores the first time).
#
# usage: scripts/bench_llama_cpp.sh [MODEL...]     (default: smollm2 gemma3)
#   env: DEPTHS (default 0,4096; e.g. 0,4096,16384 — a 16K depth fill takes minutes per
#        cache), PREFILL (128), DECODE (32), THREADS (2), REPS (llama-bench repetitions, 2),
#        TQ_CODECS (f16,q4_0h,turbo3,tq3), TQ_BIN, TQ_MODEL_DIR, TQ_LLAMA_DIR,
#        LLAMA_PREFILL (llama-bench's -p, default PREFILL; 0 skips its prefill test, whose
#        own depth fill doubles the time at 16K),
#        OUT (markdown file; default: stdout), UPDATE=1 (also write it into BENCHMARKS.md,
#        section llama-bench, through scripts/update_benchmarks.py)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
THREADS=${THREADS:-2}
DEPTHS=${DEPTHS:-0,4096}
PREFILL=${PREFILL:-128}
LLAMA_PREFILL=${LLAMA_PREFILL:-$PREFILL}
DECODE=${DECODE:-32}
REPS=${REPS:-2}
TQ_CODECS=${TQ_CODECS:-f16,q4_0h,turbo3,tq3}
TQ_BIN=${TQ_BIN:-$ROOT/build/bin/tq}
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(smollm2 gemma3)
# shellcheck source=llama_cpp/common.sh
source "$ROOT/scripts/llama_cpp/common.sh"

[ -x "$TQ_BIN" ] || { echo "bench: $TQ_BIN not found: build tq first (scripts/build.sh) or set TQ_BIN" >&2; exit 1; }
llama_build_targets llama-bench
BENCH=$LLAMA_DIR/build/bin/llama-bench

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for m in "${MODELS[@]}"; do
  path=$(model_path "$m")
  [ -f "$path" ] || { echo "bench: $path missing: run scripts/setup_models.sh" >&2; exit 1; }
  load_before=$(cut -d' ' -f1-3 /proc/loadavg)
  for cache in f16 q4_0; do
    cmd=("$BENCH" -m "$path" -t "$THREADS" -p "$LLAMA_PREFILL" -n "$DECODE" -d "$DEPTHS" -fa on -ctk "$cache" -ctv "$cache"
      -r "$REPS" -o json)
    echo "bench: $m: llama-bench, $cache cache, depths $DEPTHS" >&2
    "${cmd[@]}" >"$work/$m.llama.$cache.json" 2>"$work/$m.llama.$cache.log" ||
      { cat "$work/$m.llama.$cache.log" >&2; exit 1; }
    echo "llama-bench ${cmd[*]:1}" | sed "s|$HOME|~|g" >"$work/$m.llama.$cache.cmd"
  done
  cmd=("$TQ_BIN" bench model --model "$path" --codecs "$TQ_CODECS" --depths "$DEPTHS" --prefill "$PREFILL"
    --decode "$DECODE" --threads "$THREADS" --json "$work/$m.tq.json")
  echo "bench: $m: tq bench model, codecs $TQ_CODECS, depths $DEPTHS" >&2
  (cd "$ROOT" && "${cmd[@]}" >/dev/null)
  echo "tq ${cmd[*]:1}" | sed "s|$HOME|~|g; s| --json [^ ]*||" >"$work/$m.tq.cmd"
  load_after=$(cut -d' ' -f1-3 /proc/loadavg)
  echo "$load_before -> $load_after" >"$work/$m.load"
done

report() {
  echo "## Speed against llama.cpp (llama-bench), same GGUF, threads and depths"
  echo
  echo "Written by \`DEPTHS=$DEPTHS PREFILL=$PREFILL LLAMA_PREFILL=$LLAMA_PREFILL DECODE=$DECODE REPS=$REPS scripts/bench_llama_cpp.sh ${MODELS[*]}\`:"
  echo "tq $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') against $(llama_cpp_version),"
  echo "$(date -u '+%Y-%m-%d %H:%M UTC'), CPU:$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2), $THREADS threads,"
  echo "prefill $PREFILL tokens and decode $DECODE tokens after each depth (random token ids)."
  echo "Each model's load average is printed with it: on a shared machine, rows measured under"
  echo "a load above the core count are not comparable (both programs' threads spin-wait between jobs)."
  for m in "${MODELS[@]}"; do
    echo
    python3 "$ROOT/scripts/llama_cpp/side_by_side.py" --model "$m" --gguf "$(model_path "$m")" \
      --tq "$work/$m.tq.json" --tq-cmd "$(cat "$work/$m.tq.cmd")" \
      --llama-f16 "$work/$m.llama.f16.json" --llama-f16-cmd "$(cat "$work/$m.llama.f16.cmd")" \
      --llama-q4 "$work/$m.llama.q4_0.json" --llama-q4-cmd "$(cat "$work/$m.llama.q4_0.cmd")" \
      --load "$(cat "$work/$m.load")"
  done
}
if [ -n "${OUT:-}" ]; then report >"$OUT"; else report | tee "$work/report.md"; fi
if [ "${UPDATE:-0}" = 1 ]; then python3 "$ROOT/scripts/update_benchmarks.py" llama-bench "${OUT:-$work/report.md}"; fi
