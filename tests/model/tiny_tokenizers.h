#pragma once
// Tokenizer metadata for tiny GGUF files, shared by the tiny models (test_model_tiny.h),
// the tokenizer tests and fuzz/tokenizer_fuzz.cpp.
#include <cstdint>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "turboquant/gguf.h"

namespace tq::test {

// The vocabulary: <unk> <s> </s>, the 256 byte tokens, then a few words.
inline std::vector<std::string> tiny_vocab() {
  std::vector<std::string> v = {"<unk>", "<s>", "</s>"};
  char buf[8];
  for (int b = 0; b < 256; ++b) {
    std::snprintf(buf, sizeof buf, "<0x%02X>", b);
    v.push_back(buf);
  }
  const std::string space = "\xe2\x96\x81";  // U+2581, SentencePiece's word-start mark
  for (const char* w : {"the", "a", "cat", "dog", "sat"}) v.push_back(space + w);
  return v;
}

// SentencePiece-style tokenizer (tokenizer.ggml.model "llama").
inline void add_spm_tokenizer(gguf::GgufWriter& g, const std::vector<std::string>& pieces,
                              const std::vector<float>& scores, const std::vector<int32_t>& types, uint32_t bos,
                              uint32_t eos, uint32_t unk) {
  g.add_string("tokenizer.ggml.model", "llama");
  g.add_string_array("tokenizer.ggml.tokens", pieces);
  g.add_float_array("tokenizer.ggml.scores", scores);
  g.add_int_array("tokenizer.ggml.token_type", types);
  g.add_uint32("tokenizer.ggml.bos_token_id", bos);
  g.add_uint32("tokenizer.ggml.eos_token_id", eos);
  g.add_uint32("tokenizer.ggml.unknown_token_id", unk);
}

// add_spm_tokenizer over tiny_vocab() (bos 1, eos 2, unk 0), then
// `extra` {piece, token type} (ids after the vocabulary, so tiny_vocab ids stay).
inline void add_tiny_spm_tokenizer(gguf::GgufWriter& g,
                                   const std::vector<std::pair<std::string, int32_t>>& extra = {}) {
  std::vector<std::string> vocab = tiny_vocab();
  std::vector<float> scores;
  std::vector<int32_t> types;
  for (size_t i = 0; i < vocab.size(); ++i) {
    scores.push_back(i < 259 ? 0.f : -static_cast<float>(i));
    types.push_back(i == 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1);
  }
  for (const auto& [piece, type] : extra) {
    vocab.push_back(piece);
    scores.push_back(-static_cast<float>(vocab.size()));
    types.push_back(type);
  }
  add_spm_tokenizer(g, vocab, scores, types, 1, 2, 0);
}

// Byte-level BPE tokenizer (tokenizer.ggml.model "gpt2") with bos id 1 and eos id 2.
inline void add_bpe_tokenizer(gguf::GgufWriter& g, const std::string& pre, const std::vector<std::string>& tokens,
                              const std::vector<int32_t>& types, const std::vector<std::string>& merges) {
  g.add_string("tokenizer.ggml.model", "gpt2");
  g.add_string("tokenizer.ggml.pre", pre);
  g.add_string_array("tokenizer.ggml.tokens", tokens);
  g.add_int_array("tokenizer.ggml.token_type", types);
  g.add_string_array("tokenizer.ggml.merges", merges);
  g.add_uint32("tokenizer.ggml.bos_token_id", 1);
  g.add_uint32("tokenizer.ggml.eos_token_id", 2);
}

}  // namespace tq::test
