#pragma once
// The file framing every saved format shares (src/core/file_frame.h: magic, u32 version,
// u64 payload bytes, u64 FNV-1a 64 of the payload, u64 zero), rebuilt here so the loader
// fuzz targets can put a fuzzed payload behind a valid header. Input byte 0 picks the mode:
//   even: the rest of the input is the whole file (the header checks see the damage);
//   odd:  the rest is the payload, framed with the right checksum (the parser sees it).
#include <cstddef>
#include <cstdint>
#include <vector>

namespace tq::fuzz {

inline uint64_t fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

inline void put_le(std::vector<uint8_t>& b, uint64_t v, int bytes) {
  for (int i = 0; i < bytes; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}

// `size` >= 1.
inline std::vector<uint8_t> file_from_input(const char (&magic)[5], uint32_t version, const uint8_t* data,
                                            size_t size) {
  const uint8_t* rest = data + 1;
  const size_t n = size - 1;
  if (!(data[0] & 1)) return std::vector<uint8_t>(rest, rest + n);
  std::vector<uint8_t> file(magic, magic + 4);
  put_le(file, version, 4);
  put_le(file, n, 8);
  put_le(file, fnv1a64(rest, n), 8);
  put_le(file, 0, 8);
  file.insert(file.end(), rest, rest + n);
  return file;
}

}  // namespace tq::fuzz
