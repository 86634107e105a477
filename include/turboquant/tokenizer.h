#pragma once
// Tokenizer built from a GGUF file's `tokenizer.*` metadata, following llama.cpp's vocab
// conventions:
// - "gpt2": byte-level BPE (SmolLM2, Llama 3, Qwen2): a regex pre-tokenizer chosen by
//   `tokenizer.ggml.pre`, bytes mapped to printable code points, merges by rank.
// - "llama": SentencePiece-style BPE (Gemma 3, Llama 2): spaces become U+2581, pieces are
//   merged greedily by score, unknown bytes fall back to <0xXX> tokens.
// Special/control tokens written in the text (e.g. "<|im_start|>", "<start_of_turn>") are
// recognized and emitted as one id.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tq {

namespace gguf {
class GgufFile;
}

class Tokenizer {
 public:
  // tq::Error if the vocabulary is missing, inconsistent or of an unsupported kind.
  static Tokenizer from_gguf(const gguf::GgufFile& f);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  Tokenizer(const Tokenizer&) = delete;
  Tokenizer& operator=(const Tokenizer&) = delete;
  ~Tokenizer();

  // add_bos: prepend bos() (when the vocabulary has one).
  std::vector<int32_t> encode(std::string_view text, bool add_bos) const;
  // Concatenated token_text of the ids (special tokens included, as written), except that
  // a SentencePiece vocabulary with add_space_prefix drops the one space its encoder adds
  // at the start and after each special token: decode(encode(s, false)) == s for any s
  // whose bytes the vocabulary covers (checked by fuzz/tokenizer_fuzz.cpp), except that
  // SentencePiece decodes a U+2581 in s as a space (it writes spaces as U+2581). Skip
  // is_control() ids before decoding to hide special tokens.
  std::string decode(const std::vector<int32_t>& ids) const;
  // The bytes a token stands for (byte-level and <0xXX> pieces decoded, U+2581 → space;
  // special tokens as written, e.g. "<|im_end|>"); tq::Error if out of range. A single
  // token may hold part of a UTF-8 character.
  std::string token_text(int32_t id) const;
  std::string_view piece(int32_t id) const;  // the raw vocabulary entry (e.g. "Ġthe", "▁the")
  int32_t find_piece(std::string_view piece) const;  // id of a raw vocabulary entry, -1 if absent

  int32_t bos() const;  // -1 if none
  int32_t eos() const;  // -1 if none
  int32_t vocab_size() const;
  bool is_eog(int32_t id) const;     // end of generation: eos, eot, <|im_end|>, <end_of_turn>, ...
  bool is_control(int32_t id) const; // special tokens that decode to ""
  bool add_bos_default() const;      // tokenizer.ggml.add_bos_token (SentencePiece default: true)
  std::string_view model() const;    // "gpt2" or "llama"
  std::string_view pre() const;      // the pre-tokenizer name, e.g. "smollm", "default"

  bool has_chat_template() const;
  // Chat prompt for instruct models, in the format the GGUF chat template describes
  // (ChatML for SmolLM2/Qwen, Gemma's <start_of_turn> turns); tq::Error if the model has
  // no template or one of an unknown family.
  std::string format_chat(const std::vector<std::pair<std::string, std::string>>& messages,
                          bool add_generation_prompt) const;

 private:
  struct Impl;
  explicit Tokenizer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace tq
