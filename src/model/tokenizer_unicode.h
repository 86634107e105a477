#pragma once
// The Unicode facts the tokenizers need: lenient UTF-8 decoding, the general-category
// class of a code point (\p{L}, \p{N}, other, unassigned) and White_Space (\s).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tq::unicode {

enum class CharClass : uint8_t { kUnassigned = 0, kLetter = 1, kNumber = 2, kOther = 3 };

// Generated table (tokenizer_unicode_data.cpp): sorted runs, first code point << 8 | class.
extern const uint32_t kClassRuns[];
extern const size_t kClassRunCount;

CharClass char_class(uint32_t cp);
bool is_whitespace(uint32_t cp);  // Unicode White_Space, as regex \s

// Bytes of the UTF-8 sequence starting with `lead` (1 for stray continuation bytes).
size_t utf8_length(uint8_t lead);

// One decoded code point with the byte range it came from. Invalid or truncated
// sequences decode byte by byte to U+FFFD so no input byte is ever lost.
struct CodePoint {
  uint32_t cp;
  size_t offset;  // first byte in the text
  size_t length;  // bytes
};
std::vector<CodePoint> decode_utf8(std::string_view text);

void append_utf8(std::string& out, uint32_t cp);

}  // namespace tq::unicode
