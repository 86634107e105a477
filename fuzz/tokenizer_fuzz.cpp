// libFuzzer target for the tokenizer on arbitrary text. Input byte 0 picks one of four
// tiny vocabularies (byte-level BPE under three pre-tokenizers, SentencePiece with byte
// fallback); the rest is the text. Every vocabulary covers all 256 bytes, so these hold
// for any input and are checked, not just "no crash":
//   - every id is in [0, vocab_size);
//   - decode(encode(s)) == s (the documented round trip), special tokens included,
//     except SentencePiece text holding U+2581 itself: the encoder writes spaces as
//     U+2581, so that character decodes to a space (as in SentencePiece and llama.cpp);
//   - encode(s, true) == [bos] + encode(s, false).
// A violation aborts, which libFuzzer reports as a crash with the input saved.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "tiny_tokenizers.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/tokenizer.h"

namespace {

// UTF-8 of one code point (< 0x800 suffices for GPT-2's byte map).
std::string utf8(uint32_t cp) {
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's byte -> printable code point map: printable Latin-1 bytes map to themselves,
// the rest to 256, 257, ... in byte order.
std::vector<std::string> gpt2_byte_pieces() {
  std::vector<std::string> out(256);
  uint32_t next = 256;
  for (uint32_t b = 0; b < 256; ++b) {
    const bool printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174);
    out[b] = utf8(printable ? b : next++);
  }
  return out;
}

tq::Tokenizer bpe(const std::string& pre) {
  tq::gguf::GgufWriter w;
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>"};
  std::vector<int32_t> types = {3, 3, 3};
  for (const std::string& p : gpt2_byte_pieces()) {
    tokens.push_back(p);
    types.push_back(1);
  }
  const std::string sp = utf8(0x120);  // 'Ġ', the space byte
  const std::vector<std::string> merges = {"t h", "th e", sp + " th", sp + "th e", "a b", sp + " a", "1 2"};
  for (const std::string& m : {std::string("th"), std::string("the"), sp + "th", sp + "the", std::string("ab"),
                               sp + "a", std::string("12")}) {
    tokens.push_back(m);
    types.push_back(1);
  }
  tq::test::add_bpe_tokenizer(w, pre, tokens, types, merges);
  return tq::Tokenizer::from_gguf(tq::gguf::GgufFile::from_memory(w.bytes()));
}

// The tiny models' SentencePiece vocabulary (every byte has a <0xXX> token), plus the
// space mark U+2581 as a piece (as every real SentencePiece vocabulary has: without it a
// space falls back to the mark's three bytes) and Gemma's turn markers as control
// tokens, so special tokens split the text in the middle.
tq::Tokenizer spm() {
  tq::gguf::GgufWriter w;
  tq::test::add_tiny_spm_tokenizer(w, {{"\xe2\x96\x81", 1}, {"<start_of_turn>", 3}, {"<end_of_turn>", 3}});
  return tq::Tokenizer::from_gguf(tq::gguf::GgufFile::from_memory(w.bytes()));
}

void fail(const char* what, std::string_view text) {
  std::fprintf(stderr, "tokenizer_fuzz: %s for a text of %zu bytes\n", what, text.size());
  std::abort();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Built once: building is not what is fuzzed, and the ids must stay comparable.
  static const tq::Tokenizer toks[4] = {bpe("smollm"), bpe("llama-bpe"), bpe("qwen2"), spm()};
  if (size == 0) return 0;
  const tq::Tokenizer& tok = toks[data[0] % 4];
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(text, false);
  } catch (const tq::Error&) {
    fail("encode threw on a vocabulary that covers every byte", text);
  }
  for (int32_t id : ids)
    if (id < 0 || id >= tok.vocab_size()) fail("id out of range", text);
  const bool has_space_mark = tok.model() == "llama" && text.find("\xe2\x96\x81") != std::string_view::npos;
  if (!has_space_mark && tok.decode(ids) != text) fail("decode(encode(s)) != s", text);
  std::vector<int32_t> with_bos = tok.encode(text, true);
  if (with_bos.empty() || with_bos[0] != tok.bos() ||
      !std::equal(ids.begin(), ids.end(), with_bos.begin() + 1, with_bos.end()))
    fail("encode(s, true) != [bos] + encode(s, false)", text);
  return 0;
}
