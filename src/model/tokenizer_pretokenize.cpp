// Byte-level BPE pre-tokenizers as code-point scanners. Each loop mirrors its regex's
// alternatives in order: the first alternative that matches at the current position
// decides the piece, exactly as a leftmost-first regex engine would.
#include "tokenizer_pretokenize.h"

#include <string>

#include "tokenizer_unicode.h"
#include "turboquant/error.h"

namespace tq::pretok {
namespace {

using unicode::CharClass;

// The text as code points with O(1) class look-ups; positions past the end read as
// "no character" (class unassigned, not whitespace), like the regex's end of input.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text), cps_(unicode::decode_utf8(text)) {
    classes_.reserve(cps_.size());
    for (const auto& c : cps_) classes_.push_back(unicode::char_class(c.cp));
  }
  size_t size() const { return cps_.size(); }
  uint32_t cp(size_t i) const { return i < cps_.size() ? cps_[i].cp : kEnd; }
  bool letter(size_t i) const { return i < size() && classes_[i] == CharClass::kLetter; }
  bool number(size_t i) const { return i < size() && classes_[i] == CharClass::kNumber; }
  bool space(size_t i) const { return i < size() && unicode::is_whitespace(cps_[i].cp); }
  bool assigned(size_t i) const { return i < size() && classes_[i] != CharClass::kUnassigned; }
  // [^\s\p{L}\p{N}] as llama.cpp evaluates it: unassigned code points do not match.
  bool other(size_t i) const { return assigned(i) && !space(i) && !letter(i) && !number(i); }
  bool newline(size_t i) const { return cp(i) == '\r' || cp(i) == '\n'; }

  // The bytes of code points [start, end).
  std::string_view view(size_t start, size_t end) const {
    const size_t b = cps_[start].offset;
    const size_t e = cps_[end - 1].offset + cps_[end - 1].length;
    return text_.substr(b, e - b);
  }
  void emit(std::vector<std::string_view>& out, size_t start, size_t end) const {
    if (end > start) out.push_back(view(start, end));
  }

  static constexpr uint32_t kEnd = 0xffffffffu;

 private:
  std::string_view text_;
  std::vector<unicode::CodePoint> cps_;
  std::vector<CharClass> classes_;
};

uint32_t ascii_lower(uint32_t c) { return (c >= 'A' && c <= 'Z') ? c + 32 : c; }

// Length of a contraction ('s 't 're 've 'm 'll 'd) at i, 0 if none.
size_t contraction(const Scanner& s, size_t i, bool any_case) {
  if (s.cp(i) != '\'') return 0;
  const auto low = [&](size_t k) { return any_case ? ascii_lower(s.cp(k)) : s.cp(k); };
  const uint32_t a = low(i + 1);
  if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
  const uint32_t b = low(i + 2);
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
  return 0;
}

// Whitespace tail shared by both families: \s+(?!\S) leaves the last space of a run for
// the next word, unless the run ends the text; a lone space is \s+.
size_t whitespace_run(const Scanner& s, size_t i) {
  size_t n = 0;
  while (s.space(i + n)) ++n;
  if (n > 1 && i + n < s.size()) return n - 1;
  return n;
}

void split_gpt2(const Scanner& s, std::vector<std::string_view>& out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = contraction(s, i, false);
    if (len == 0) {
      const size_t j = s.cp(i) == ' ' ? i + 1 : i;  // optional leading space
      if (s.letter(j)) {
        len = j - i;
        while (s.letter(i + len)) ++len;
      } else if (s.number(j)) {
        len = j - i;
        while (s.number(i + len)) ++len;
      } else if (s.other(j)) {
        len = j - i;
        while (s.other(i + len)) ++len;
      } else {
        len = whitespace_run(s, i);
        if (len == 0) len = 1;  // a character no alternative matches stands alone
      }
    }
    s.emit(out, i, i + len);
    i += len;
  }
}

void split_llama3(const Scanner& s, size_t max_digits, std::vector<std::string_view>& out) {
  size_t i = 0;
  while (i < s.size()) {
    size_t len = contraction(s, i, true);
    if (len == 0 && !s.newline(i) && !s.number(i) && (s.letter(i) || s.letter(i + 1))) {
      // [^\r\n\p{L}\p{N}]?\p{L}+
      len = 1;
      while (s.letter(i + len)) ++len;
    }
    if (len == 0 && s.number(i)) {
      // \p{N}{1,max}: a long number becomes several pieces of at most max digits.
      while (s.number(i + len) && len < max_digits) ++len;
    }
    if (len == 0) {
      // ' ?[^\s\p{L}\p{N}]+[\r\n]*'
      const size_t j = s.cp(i) == ' ' ? i + 1 : i;
      if (s.other(j) && s.assigned(i)) {
        len = j - i;
        while (s.other(i + len)) ++len;
        while (s.newline(i + len)) ++len;
      }
    }
    if (len == 0) {
      // \s*[\r\n]+ takes whitespace up to the last newline of the run; else \s+(?!\S) | \s+.
      size_t n = 0, through_newline = 0;
      while (s.space(i + n)) {
        if (s.newline(i + n)) through_newline = n + 1;
        ++n;
      }
      len = through_newline > 0 ? through_newline : whitespace_run(s, i);
      if (len == 0) len = 1;
    }
    s.emit(out, i, i + len);
    i += len;
  }
}

}  // namespace

Kind kind_from_name(std::string_view pre) {
  if (pre == "gpt-2" || pre == "gpt2" || pre == "mpt" || pre == "olmo") return Kind::kGpt2;
  if (pre == "smollm" || pre == "starcoder" || pre == "refact") return Kind::kSmolLM;
  if (pre == "llama3" || pre == "llama-v3" || pre == "llama-bpe") return Kind::kLlama3;
  if (pre == "qwen2") return Kind::kQwen2;
  throw Error("unsupported BPE pre-tokenizer '" + std::string(pre) +
              "' (supported: gpt-2, smollm, starcoder, refact, llama-bpe, qwen2)");
}

std::vector<std::string_view> split(Kind kind, std::string_view text) {
  std::vector<std::string_view> out;
  switch (kind) {
    case Kind::kGpt2: split_gpt2(Scanner(text), out); break;
    case Kind::kSmolLM: {
      // Every \p{N} alone; each run between digits goes through the GPT-2 rules on its own,
      // its end acting as end of input (so a space before a digit is a piece by itself).
      const Scanner s(text);
      size_t start = 0;
      for (size_t i = 0; i <= s.size(); ++i) {
        if (i < s.size() && !s.number(i)) continue;
        if (i > start) split_gpt2(Scanner(s.view(start, i)), out);
        if (i < s.size()) out.push_back(s.view(i, i + 1));
        start = i + 1;
      }
      break;
    }
    case Kind::kLlama3: split_llama3(Scanner(text), 3, out); break;
    case Kind::kQwen2: split_llama3(Scanner(text), 1, out); break;
  }
  return out;
}

}  // namespace tq::pretok
