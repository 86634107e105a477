#pragma once
// Pre-tokenizers of byte-level BPE vocabularies: split text into the pieces that BPE then
// merges independently. Each is a hand-written matcher equivalent to the regex llama.cpp
// (and the Hugging Face tokenizer) uses for that `tokenizer.ggml.pre` name.
#include <string>
#include <string_view>
#include <vector>

namespace tq::pretok {

enum class Kind {
  kGpt2,    // 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
  kSmolLM,  // \p{N} (every digit alone) first, then kGpt2 on each piece
  kLlama3,  // (?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+
  kQwen2,   // as kLlama3 with \p{N} (one digit) instead of \p{N}{1,3}
};

// The kind for a GGUF `tokenizer.ggml.pre` value; tq::Error naming it if unknown.
Kind kind_from_name(std::string_view pre);

// Pieces of `text` (views into it), in order; their concatenation is `text`.
std::vector<std::string_view> split(Kind kind, std::string_view text);

}  // namespace tq::pretok
