#include "turboquant/packing.h"

#include <cstring>

namespace tq {

void pack_bits(const uint8_t* codes, size_t count, int bits, uint8_t* out) {
  const uint8_t mask = static_cast<uint8_t>((1u << bits) - 1u);
  switch (bits) {
    case 8:
      std::memcpy(out, codes, count);
      return;
    case 4:
      for (size_t i = 0; i + 1 < count; i += 2)
        out[i / 2] = static_cast<uint8_t>((codes[i] & 15u) | ((codes[i + 1] & 15u) << 4));
      if (count & 1) out[count / 2] = codes[count - 1] & 15u;
      return;
    case 3: {  // 8 codes -> 3 bytes (24-bit little-endian word)
      size_t i = 0, o = 0;
      for (; i + 8 <= count; i += 8, o += 3) {
        uint32_t w = 0;
        for (int k = 0; k < 8; ++k) w |= static_cast<uint32_t>(codes[i + k] & 7u) << (3 * k);
        out[o] = static_cast<uint8_t>(w);
        out[o + 1] = static_cast<uint8_t>(w >> 8);
        out[o + 2] = static_cast<uint8_t>(w >> 16);
      }
      if (i == count) return;
      break;  // tail through the generic path
    }
    default:
      break;
  }
  // Generic bit stream (also the tail of the 3-bit path).
  const size_t start = (bits == 3) ? (count / 8) * 8 : 0;
  std::memset(out + packed_bytes(start, bits), 0, packed_bytes(count, bits) - packed_bytes(start, bits));
  for (size_t i = start; i < count; ++i) {
    const size_t bit = i * bits;
    const uint32_t v = static_cast<uint32_t>(codes[i] & mask) << (bit & 7);
    out[bit >> 3] |= static_cast<uint8_t>(v);
    if ((bit & 7) + bits > 8) out[(bit >> 3) + 1] |= static_cast<uint8_t>(v >> 8);
  }
}

void unpack_bits(const uint8_t* in, size_t count, int bits, uint8_t* codes) {
  switch (bits) {
    case 8:
      std::memcpy(codes, in, count);
      return;
    case 4:
      for (size_t i = 0; i < count; ++i) codes[i] = (in[i / 2] >> (4 * (i & 1))) & 15u;
      return;
    case 3: {
      size_t i = 0, o = 0;
      for (; i + 8 <= count; i += 8, o += 3) {
        const uint32_t w = in[o] | (in[o + 1] << 8) | (in[o + 2] << 16);
        for (int k = 0; k < 8; ++k) codes[i + k] = (w >> (3 * k)) & 7u;
      }
      for (; i < count; ++i) codes[i] = read_code(in, i, 3);
      return;
    }
    default:
      for (size_t i = 0; i < count; ++i) codes[i] = read_code(in, i, bits);
  }
}

}  // namespace tq
