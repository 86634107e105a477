// Byte-level BPE (GPT-2 family: SmolLM2, Llama 3, Qwen2): each pre-tokenized piece is
// mapped byte by byte to printable code points, then merged by merge rank.
#include <string>

#include "tokenizer_impl.h"
#include "tokenizer_unicode.h"

namespace tq {

std::array<uint32_t, 256> gpt2_byte_code_points() {
  // Printable Latin-1 bytes keep their code point; the other 68 bytes are numbered
  // from U+0100 upwards in byte order.
  std::array<uint32_t, 256> map{};
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    map[b] = printable ? b : next++;
  }
  return map;
}

void Tokenizer::Impl::encode_bpe_word(std::string_view word, std::vector<int32_t>& out) const {
  std::string mapped;
  mapped.reserve(word.size() * 2);
  for (char c : word) mapped += byte_to_char[static_cast<uint8_t>(c)];

  // Llama 3's tokenizer takes a piece that is itself a token as is (ignore_merges).
  if (pre == pretok::Kind::kLlama3) {
    if (const int32_t id = find(mapped); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::string key;
  const auto rank = [&](std::string_view l, std::string_view r) -> std::optional<double> {
    key.assign(l);
    key += ' ';
    key += r;
    auto it = merge_rank.find(key);
    if (it == merge_rank.end()) return std::nullopt;
    return -static_cast<double>(it->second);
  };
  for (std::string_view s : merge_symbols(mapped, rank)) {
    if (const int32_t id = find(s); id >= 0) {
      out.push_back(id);
      continue;
    }
    // A symbol with no token: its characters one by one. A byte whose character is not in
    // the vocabulary at all (SmolLM2 lacks 21 of the 256, e.g. 0xFF, which valid UTF-8 never
    // holds) is dropped, as llama.cpp and Hugging Face do; an <unk> there would be worse
    // (SmolLM2's unknown_token_id is <|endoftext|>, an end-of-generation token).
    for (size_t i = 0; i < s.size();) {
      const size_t n = std::min(unicode::utf8_length(static_cast<uint8_t>(s[i])), s.size() - i);
      if (const int32_t id = find(s.substr(i, n)); id >= 0) out.push_back(id);
      i += n;
    }
  }
}

}  // namespace tq
