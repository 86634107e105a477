// Tokenizer: vocabulary from GGUF metadata, special-token partitioning, encode/decode.
#include <algorithm>
#include <cstdio>
#include <string>

#include "tokenizer_impl.h"
#include "tokenizer_unicode.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"

namespace tq {
namespace {

constexpr std::string_view kSpaceMarker = "\xe2\x96\x81";  // U+2581, SentencePiece's space

// Texts that end a generation turn in the families we know (llama.cpp's EOG list).
constexpr std::string_view kEndOfGenerationTexts[] = {
    "<|eot_id|>", "<|im_end|>", "<|end|>", "<end_of_turn>", "<|endoftext|>", "<EOT>", "<|eom_id|>",
};

int32_t read_token_id(const gguf::GgufFile& f, std::string_view key, int32_t vocab) {
  if (!f.has(key)) return -1;
  const int64_t id = f.get_int(key);
  if (id < 0 || id >= vocab) {
    throw Error("tokenizer: " + std::string(key) + " = " + std::to_string(id) + " is outside the vocabulary of " +
                std::to_string(vocab) + " tokens");
  }
  return static_cast<int32_t>(id);
}

// The byte of a "<0xXX>" piece, -1 if the piece is not of that form.
int parse_byte_piece(std::string_view p) {
  if (p.size() != 6 || p.substr(0, 3) != "<0x" || p[5] != '>') return -1;
  int value = 0;
  for (char c : p.substr(3, 2)) {
    const int digit = (c >= '0' && c <= '9') ? c - '0' : (c >= 'A' && c <= 'F') ? c - 'A' + 10 : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
    if (digit < 0) return -1;
    value = value * 16 + digit;
  }
  return value;
}

// A piece of the input: raw text, or a special token found in it.
struct Fragment {
  std::string_view text;
  int32_t special = -1;
};

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_gguf(const gguf::GgufFile& f) {
  auto t = std::make_unique<Impl>();
  if (!f.has("tokenizer.ggml.model")) throw Error("tokenizer: the GGUF file has no tokenizer.ggml.model");
  t->model_name = f.get_string("tokenizer.ggml.model");
  t->pre_name = f.get_string("tokenizer.ggml.pre", "default");
  if (t->model_name == "gpt2") {
    t->family = Impl::Family::kBytePairGpt2;
    t->pre = pretok::kind_from_name(t->pre_name);
  } else if (t->model_name == "llama") {
    t->family = Impl::Family::kSentencePiece;
  } else {
    throw Error("tokenizer: unsupported tokenizer model '" + t->model_name + "' (supported: gpt2, llama)");
  }

  t->pieces = f.get_string_array("tokenizer.ggml.tokens");
  const auto n = static_cast<int32_t>(t->pieces.size());
  if (n == 0) throw Error("tokenizer: tokenizer.ggml.tokens is empty");
  if (f.has("tokenizer.ggml.scores")) t->scores = f.get_float_array("tokenizer.ggml.scores");
  else t->scores.assign(t->pieces.size(), 0.0f);
  if (t->scores.size() != t->pieces.size()) {
    throw Error("tokenizer: " + std::to_string(t->scores.size()) + " scores for " + std::to_string(n) + " tokens");
  }
  t->types.assign(t->pieces.size(), TokenType::kNormal);
  if (f.has("tokenizer.ggml.token_type")) {
    const std::vector<int64_t> types = f.get_int_array("tokenizer.ggml.token_type");
    if (types.size() != t->pieces.size()) {
      throw Error("tokenizer: " + std::to_string(types.size()) + " token types for " + std::to_string(n) + " tokens");
    }
    for (size_t i = 0; i < types.size(); ++i) {
      if (types[i] < 0 || types[i] > 6) throw Error("tokenizer: token " + std::to_string(i) + " has unknown type " + std::to_string(types[i]));
      t->types[i] = static_cast<TokenType>(types[i]);
    }
  }
  t->piece_to_id.reserve(t->pieces.size());
  for (int32_t id = 0; id < n; ++id) t->piece_to_id.emplace(t->pieces[static_cast<size_t>(id)], id);  // first id wins

  if (t->family == Impl::Family::kBytePairGpt2) {
    if (!f.has("tokenizer.ggml.merges")) throw Error("tokenizer: a gpt2 (BPE) vocabulary needs tokenizer.ggml.merges");
    t->merges = f.get_string_array("tokenizer.ggml.merges");
    t->merge_rank.reserve(t->merges.size());
    for (size_t r = 0; r < t->merges.size(); ++r) {
      const std::string& m = t->merges[r];
      if (m.find(' ', 1) == std::string::npos) throw Error("tokenizer: merge #" + std::to_string(r) + " '" + m + "' has no space");
      t->merge_rank.emplace(m, static_cast<int32_t>(r));
    }
    const auto cps = gpt2_byte_code_points();
    for (int b = 0; b < 256; ++b) {
      unicode::append_utf8(t->byte_to_char[b], cps[b]);
      t->char_to_byte[cps[b]] = static_cast<uint8_t>(b);
    }
  } else {
    t->byte_token.fill(-1);
    for (int b = 0; b < 256; ++b) {
      char name[8];
      std::snprintf(name, sizeof(name), "<0x%02X>", b);
      t->byte_token[b] = t->find(name);
    }
  }

  t->bos = read_token_id(f, "tokenizer.ggml.bos_token_id", n);
  t->eos = read_token_id(f, "tokenizer.ggml.eos_token_id", n);
  t->unk = read_token_id(f, "tokenizer.ggml.unknown_token_id", n);
  const bool spm = t->family == Impl::Family::kSentencePiece;
  t->add_bos = f.get_bool("tokenizer.ggml.add_bos_token", spm);
  t->add_space_prefix = f.get_bool("tokenizer.ggml.add_space_prefix", spm);
  t->chat_template = f.get_string("tokenizer.chat_template", "");

  t->eog.assign(t->pieces.size(), false);
  if (t->eos >= 0) t->eog[static_cast<size_t>(t->eos)] = true;
  for (const char* key : {"tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id"}) {
    if (const int32_t id = read_token_id(f, key, n); id >= 0) t->eog[static_cast<size_t>(id)] = true;
  }
  for (std::string_view text : kEndOfGenerationTexts) {
    const int32_t id = t->find(text);
    if (id >= 0 && t->types[static_cast<size_t>(id)] == TokenType::kControl) t->eog[static_cast<size_t>(id)] = true;
  }

  for (int32_t id = 0; id < n; ++id) {
    const TokenType ty = t->types[static_cast<size_t>(id)];
    const std::string& p = t->pieces[static_cast<size_t>(id)];
    if (p.empty() || !(ty == TokenType::kControl || ty == TokenType::kUserDefined || ty == TokenType::kUnknown)) continue;
    if (!t->special_by_text.emplace(p, id).second) continue;
    auto& lengths = t->special_lengths[static_cast<uint8_t>(p[0])];
    if (std::find(lengths.begin(), lengths.end(), p.size()) == lengths.end()) lengths.push_back(p.size());
  }
  for (auto& lengths : t->special_lengths) std::sort(lengths.rbegin(), lengths.rend());
  return Tokenizer(std::move(t));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos) const {
  const Impl& t = *impl_;
  // Split out special tokens, longest match first at each position.
  std::vector<Fragment> fragments;
  size_t raw_start = 0;
  for (size_t i = 0; i < text.size();) {
    int32_t found = -1;
    size_t found_len = 0;
    for (size_t len : t.special_lengths[static_cast<uint8_t>(text[i])]) {
      if (len > text.size() - i) continue;
      auto it = t.special_by_text.find(text.substr(i, len));
      if (it != t.special_by_text.end()) {
        found = it->second;
        found_len = len;
        break;
      }
    }
    if (found < 0) {
      ++i;
      continue;
    }
    if (i > raw_start) fragments.push_back({text.substr(raw_start, i - raw_start), -1});
    fragments.push_back({text.substr(i, found_len), found});
    i += found_len;
    raw_start = i;
  }
  if (raw_start < text.size()) fragments.push_back({text.substr(raw_start), -1});

  std::vector<int32_t> out;
  if (add_bos && t.bos >= 0) out.push_back(t.bos);
  bool after_special = true;  // SentencePiece adds its space prefix at the start and after specials
  for (const Fragment& fr : fragments) {
    if (fr.special >= 0) {
      out.push_back(fr.special);
      after_special = true;
      continue;
    }
    if (t.family == Impl::Family::kBytePairGpt2) {
      for (std::string_view piece : pretok::split(t.pre, fr.text)) t.encode_bpe_word(piece, out);
    } else {
      std::string s;
      if (t.add_space_prefix && after_special) s = " ";
      s += fr.text;
      t.encode_spm_text(s, out);
    }
    after_special = false;
  }
  return out;
}

std::string Tokenizer::Impl::token_text(int32_t id) const {
  if (id < 0 || static_cast<size_t>(id) >= pieces.size()) {
    throw Error("token id " + std::to_string(id) + " is outside the vocabulary of " + std::to_string(pieces.size()));
  }
  const std::string& p = pieces[static_cast<size_t>(id)];
  const TokenType ty = types[static_cast<size_t>(id)];
  if (ty != TokenType::kNormal && ty != TokenType::kByte && ty != TokenType::kUndefined) return p;  // specials as written
  if (family == Family::kSentencePiece) {
    if (ty == TokenType::kByte) {
      if (const int byte = parse_byte_piece(p); byte >= 0) return std::string(1, static_cast<char>(byte));
    }
    std::string out;
    for (size_t i = 0; i < p.size();) {
      if (p.compare(i, kSpaceMarker.size(), kSpaceMarker) == 0) {
        out += ' ';
        i += kSpaceMarker.size();
      } else {
        out += p[i++];
      }
    }
    return out;
  }
  std::string out;
  for (const auto& c : unicode::decode_utf8(p)) {
    auto it = char_to_byte.find(c.cp);
    if (it != char_to_byte.end()) out += static_cast<char>(it->second);
    else out += p.substr(c.offset, c.length);
  }
  return out;
}

std::string Tokenizer::token_text(int32_t id) const { return impl_->token_text(id); }

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const Impl& t = *impl_;
  // The space SentencePiece's encoder puts in front of the text and after every special
  // token it splits out (encode above) is not part of the text: drop one there, so that
  // decode(encode(s)) == s (fuzz/tokenizer_fuzz.cpp found "<end_of_turn>x" losing it).
  const bool strip = t.family == Impl::Family::kSentencePiece && t.add_space_prefix;
  std::string out;
  bool after_special = true;
  for (int32_t id : ids) {
    std::string text = t.token_text(id);
    const auto it = t.special_by_text.find(t.pieces[static_cast<size_t>(id)]);
    const bool special = it != t.special_by_text.end() && it->second == id;
    if (strip && after_special && !special && !text.empty() && text[0] == ' ') text.erase(0, 1);
    after_special = special;
    out += text;
  }
  return out;
}

std::string_view Tokenizer::piece(int32_t id) const {
  if (id < 0 || id >= vocab_size()) throw Error("token id " + std::to_string(id) + " is outside the vocabulary");
  return impl_->pieces[static_cast<size_t>(id)];
}
int32_t Tokenizer::find_piece(std::string_view p) const { return impl_->find(p); }
int32_t Tokenizer::bos() const { return impl_->bos; }
int32_t Tokenizer::eos() const { return impl_->eos; }
int32_t Tokenizer::vocab_size() const { return static_cast<int32_t>(impl_->pieces.size()); }
bool Tokenizer::is_eog(int32_t id) const { return id >= 0 && id < vocab_size() && impl_->eog[static_cast<size_t>(id)]; }
bool Tokenizer::is_control(int32_t id) const {
  return id >= 0 && id < vocab_size() && impl_->types[static_cast<size_t>(id)] == TokenType::kControl;
}
bool Tokenizer::add_bos_default() const { return impl_->add_bos; }
std::string_view Tokenizer::model() const { return impl_->model_name; }
std::string_view Tokenizer::pre() const { return impl_->pre_name; }
bool Tokenizer::has_chat_template() const { return !impl_->chat_template.empty(); }

}  // namespace tq
