#pragma once
// Tokenizer's private state and the pieces shared by its source files: the vocabulary,
// the merge engine both BPE flavours use, and the per-model word encoders.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "tokenizer_pretokenize.h"
#include "turboquant/tokenizer.h"

namespace tq {

// GGUF tokenizer.ggml.token_type values (llama.cpp's llama_token_type).
enum class TokenType : int32_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

struct Tokenizer::Impl {
  enum class Family { kBytePairGpt2, kSentencePiece };
  Family family = Family::kBytePairGpt2;
  std::string model_name, pre_name;
  pretok::Kind pre = pretok::Kind::kGpt2;

  std::vector<std::string> pieces;
  std::vector<float> scores;
  std::vector<TokenType> types;
  std::unordered_map<std::string_view, int32_t> piece_to_id;  // views into `pieces`
  std::vector<std::string> merges;                            // "left right", rank = index
  std::unordered_map<std::string_view, int32_t> merge_rank;   // views into `merges`

  // Special tokens (control, user-defined, unknown) recognized inside text, longest first.
  std::unordered_map<std::string_view, int32_t> special_by_text;
  std::array<std::vector<size_t>, 256> special_lengths;  // per first byte, descending

  int32_t bos = -1, eos = -1, unk = -1;
  bool add_bos = false;
  bool add_space_prefix = false;
  std::vector<bool> eog;
  std::string chat_template;

  // Byte-level BPE: byte ↔ printable code point (GPT-2's bytes_to_unicode).
  std::array<std::string, 256> byte_to_char;
  std::unordered_map<uint32_t, uint8_t> char_to_byte;
  // SentencePiece: id of <0xXX> for each byte, -1 if absent.
  std::array<int32_t, 256> byte_token{};

  int32_t find(std::string_view piece) const {
    auto it = piece_to_id.find(piece);
    return it == piece_to_id.end() ? -1 : it->second;
  }

  void encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const;  // tokenizer_bpe.cpp
  void encode_spm_text(std::string_view text, std::vector<int32_t>& out) const;  // tokenizer_spm.cpp
  std::string token_text(int32_t id) const;
};

// Greedy pairwise merging shared by byte-level BPE (priority = −merge rank) and
// SentencePiece BPE (priority = score of the merged piece): start from the UTF-8
// characters of `word`, repeatedly merge the adjacent pair of highest priority (the
// leftmost one on ties) until no pair has a priority. Returns the final symbols.
using MergePriority = std::function<std::optional<double>(std::string_view left, std::string_view right)>;
std::vector<std::string_view> merge_symbols(std::string_view word, const MergePriority& priority);

// GPT-2's reversible map from bytes to printable code points.
std::array<uint32_t, 256> gpt2_byte_code_points();

}  // namespace tq
