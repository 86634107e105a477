// SentencePiece-style BPE (llama.cpp's "llama" vocabularies: Gemma, Llama 2): spaces are
// U+2581, adjacent pieces merge while the merged piece is in the vocabulary, highest
// score first, and characters outside the vocabulary fall back to <0xXX> byte tokens.
#include <cstdio>
#include <string>

#include "tokenizer_impl.h"
#include "turboquant/error.h"

namespace tq {

void Tokenizer::Impl::encode_spm_text(std::string_view text, std::vector<int32_t>& out) const {
  std::string escaped;
  escaped.reserve(text.size() + 8);
  for (char c : text) {
    if (c == ' ') escaped += "\xe2\x96\x81";  // U+2581
    else escaped += c;
  }
  const auto score = [&](std::string_view l, std::string_view r) -> std::optional<double> {
    std::string joined(l);
    joined += r;
    const int32_t id = find(joined);
    if (id < 0) return std::nullopt;
    return static_cast<double>(scores[static_cast<size_t>(id)]);
  };
  for (std::string_view s : merge_symbols(escaped, score)) {
    if (const int32_t id = find(s); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char c : s) {  // byte fallback
      const int32_t id = byte_token[static_cast<uint8_t>(c)];
      if (id >= 0) {
        out.push_back(id);
      } else if (const int32_t single = find(std::string_view(&c, 1)); single >= 0) {
        out.push_back(single);
      } else if (unk >= 0) {
        out.push_back(unk);
      } else {
        char hex[8];
        std::snprintf(hex, sizeof(hex), "<0x%02X>", static_cast<unsigned>(static_cast<uint8_t>(c)));
        throw Error(std::string("tokenizer: byte ") + hex + " has no token and the vocabulary has no <unk>");
      }
    }
  }
}

}  // namespace tq
