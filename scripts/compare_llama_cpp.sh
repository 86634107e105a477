#!/usr/bin/env bash
# Checks tq's forward pass against llama.cpp, an independent implementation, on the
# same GGUF file and the same prompt token ids, both with an f16 KV cache:
#   - next-token logits after the prompt: max and mean absolute difference, top-1/top-5,
#   - greedy continuation: tokens that match before the first divergence,
#   - tokenization: whether llama.cpp's tokenizer gives tq's prompt ids.
# Each model runs twice: on the installed (quantized) file, and on a copy with every
# tensor dequantized to F32 (scripts/gguf_to_f32.py). On quantized weights llama.cpp
# rounds activations to 8 bits for its dot products while tq multiplies dequantized f32
# weights exactly, so only the F32 copy isolates the two implementations' own difference.
# Two prompts: a short sentence and a long text (> 512 tokens, so Gemma 3's sliding
# window is in play).
#
# llama.cpp comes from the source distribution of PyPI's llama-cpp-python (it vendors
# llama.cpp), built CPU-only once into $TQ_LLAMA_DIR (default ~/.cache/turboquant/llama.cpp;
# scripts/llama_cpp/common.sh, shared with scripts/bench_llama_cpp.sh) with
# scripts/llama_cpp/llama_dump.cpp, a small program against libllama. The first
# build takes ~10 minutes on 2 cores; later runs reuse it and the F32 copies.
#
# usage: scripts/compare_llama_cpp.sh [MODEL...]     (default: smollm2 gemma3)
#   env: TQ_BIN (default build/bin/tq), N_PREDICT (default 32), THREADS (default 2),
#        PROMPT (short prompt), LONG_PROMPT_FILE (default: 4000 characters of the
#        evaluation text, scripts/setup_text.sh), TQ_MODEL_DIR, TQ_LLAMA_DIR
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
TQ_BIN=${TQ_BIN:-$ROOT/build/bin/tq}
PROMPT=${PROMPT:-"The capital of Italy is Rome. The capital of France is"}
N_PREDICT=${N_PREDICT:-32}
THREADS=${THREADS:-2}
TEXT=${TQ_TEXT_DIR:-$HOME/.cache/turboquant/text}/austen.txt
MODELS=("$@")
[ ${#MODELS[@]} -eq 0 ] && MODELS=(smollm2 gemma3)
# shellcheck source=llama_cpp/common.sh
source "$ROOT/scripts/llama_cpp/common.sh"

build_llama_dump() {
  local dump=$LLAMA_DIR/llama_dump
  [ -x "$dump" ] && [ "$dump" -nt "$ROOT/scripts/llama_cpp/llama_dump.cpp" ] && return
  llama_build_targets llama
  local b=$LLAMA_DIR/build
  nice -n 19 g++ -O2 -std=c++17 "$ROOT/scripts/llama_cpp/llama_dump.cpp" -I"$LLAMA_DIR/src/include" \
    -I"$LLAMA_DIR/src/ggml/include" "$b/src/libllama.a" "$b/ggml/src/libggml.a" "$b/ggml/src/libggml-cpu.a" \
    "$b/ggml/src/libggml-base.a" -lpthread -ldl -o "$dump"
}

# F32 copy of a GGUF file, made once.
f32_copy() {
  local out
  out="$LLAMA_DIR/f32/$(basename "${1%.gguf}").f32.gguf"
  if [ ! -f "$out" ]; then
    mkdir -p "$LLAMA_DIR/f32"
    nice python3 "$ROOT/scripts/gguf_to_f32.py" "$LLAMA_DIR/src/gguf-py" "$1" "$out.tmp" >&2
    mv "$out.tmp" "$out"
  fi
  echo "$out"
}

[ -x "$TQ_BIN" ] || { echo "compare: $TQ_BIN not found: build tq first (scripts/build.sh) or set TQ_BIN" >&2; exit 1; }
build_llama_dump

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
printf '%s' "$PROMPT" >"$work/short.txt"
prompts=(short)
if [ -n "${LONG_PROMPT_FILE:-}" ]; then
  cp "$LONG_PROMPT_FILE" "$work/long.txt"
  prompts+=(long)
elif [ -f "$TEXT" ]; then
  head -c 6000 "$TEXT" | tail -c 4000 >"$work/long.txt"
  prompts+=(long)
else
  echo "compare: no long prompt ($TEXT missing: scripts/setup_text.sh, or set LONG_PROMPT_FILE)" >&2
fi

echo "tq $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?') vs llama.cpp from llama-cpp-python $LLAMA_CPP_PYTHON_VERSION;" \
  "greedy, $N_PREDICT tokens, f16 KV cache in both, $THREADS threads; short prompt: \"$PROMPT\""
echo
echo "| model | weights | prompt tokens | max abs diff | mean abs diff | max abs logit | top-1 agrees | top-5 overlap | greedy tokens matching |"
echo "|---|---|---|---|---|---|---|---|---|"
notes=()
for m in "${MODELS[@]}"; do
  path=$(model_path "$m")
  [ -f "$path" ] || { echo "compare: $path missing: run scripts/setup_models.sh" >&2; exit 1; }
  f32=$(f32_copy "$path")
  for weights in file f32; do
    file=$path
    [ "$weights" = f32 ] && file=$f32
    label="$(basename "$path" .gguf | sed 's/.*-//')"
    [ "$weights" = f32 ] && label="F32 copy"
    for p in "${prompts[@]}"; do
      w="$work/$m.$weights.$p"
      "$TQ_BIN" run --model "$file" --prompt-file "$work/$p.txt" --n "$N_PREDICT" --temp 0 --threads "$THREADS" \
        --k-codec f16 --v-codec f16 --dump-logits "$w.tq.f32" --dump-ids "$w.tq.ids" >"$w.tq.txt" 2>"$w.tq.log"
      head -n1 "$w.tq.ids" >"$w.prompt.ids"
      tokenization=$("$LLAMA_DIR/llama_dump" "$file" "$w.prompt.ids" "$N_PREDICT" "$w.llama.f32" "$w.llama.cont" \
        "$THREADS" "$work/$p.txt")
      [ "$weights" = file ] && notes+=("$m, $p prompt: $tokenization")
      python3 "$ROOT/scripts/compare_logits.py" "$m" "$w.tq.f32" "$w.llama.f32" "$w.tq.ids" "$w.llama.cont" |
        sed "s/^| $m |/| $m | $label |/"
    done
  done
done
echo
for n in "${notes[@]}"; do echo "- $n"; done
