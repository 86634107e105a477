// libFuzzer target for the GGUF reader and everything that reads through it: any byte
// string must either parse or throw tq::Error, and a parsed file must be safe to query,
// dequantize and build a tokenizer from. Crashes, sanitizer reports and exceptions other
// than tq::Error are bugs.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/tokenizer.h"

namespace {

constexpr uint64_t kMaxDequantizedElements = 1 << 20;  // keep each input fast

void exercise(const tq::gguf::GgufFile& f) {
  for (const std::string& key : f.keys()) {
    (void)f.value_to_string(key);
    try {
      (void)f.get_int(key);
    } catch (const tq::Error&) {
    }
    try {
      (void)f.get_float_array(key);
    } catch (const tq::Error&) {
    }
  }
  for (const auto& t : f.tensors()) {
    if (!tq::gguf::type_supported(t.type) || t.elements() > kMaxDequantizedElements) continue;
    std::vector<float> out = tq::gguf::dequantize_tensor(t);
    if (t.rows() > 0) tq::gguf::dequantize_row(t, t.rows() - 1, out.data());
  }
  try {
    const tq::Tokenizer tok = tq::Tokenizer::from_gguf(f);
    const std::vector<int32_t> ids = tok.encode("Hello, world! 123 <|im_start|> \xff\xc3 日本", true);
    (void)tok.decode(ids);
    try {
      (void)tok.format_chat({{"user", "hi"}}, true);
    } catch (const tq::Error&) {
    }
  } catch (const tq::Error&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const tq::gguf::GgufFile f = tq::gguf::GgufFile::from_memory(std::vector<uint8_t>(data, data + size));
    exercise(f);
  } catch (const tq::Error&) {
  }
  return 0;
}
