#pragma once
// Rewrites the inside of a saved file: a new header (magic, version, size and FNV-1a 64
// checksum, docs/FORMATS.md) around a payload, so a test can damage or convert a file
// behind a valid checksum and reach the checks that come after it.
#include <cstdint>
#include <cstring>
#include <span>
#include <vector>

namespace tq::test {

inline std::vector<uint8_t> reframe(std::span<const uint8_t> payload, const char (&magic)[5], uint32_t version) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t b : payload) h = (h ^ b) * 0x100000001b3ull;
  std::vector<uint8_t> out(magic, magic + 4);
  auto put = [&](uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) out.push_back(static_cast<uint8_t>(v >> (8 * i)));
  };
  put(version, 4);
  put(payload.size(), 8);
  put(h, 8);
  put(0, 8);
  out.insert(out.end(), payload.begin(), payload.end());
  return out;
}

// The payload of a framed file (everything after its 32-byte header).
inline std::vector<uint8_t> payload_of(const std::vector<uint8_t>& file) {
  return std::vector<uint8_t>(file.begin() + 32, file.end());
}

}  // namespace tq::test
