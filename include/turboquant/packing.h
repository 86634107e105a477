#pragma once
// Bit packing of small unsigned codes as a little-endian bit stream: code i occupies
// bits [i*b, i*b + b) of the byte string, least significant bit first. For b = 3 this
// puts 8 codes in 3 bytes; for b = 4, code 2j is the low nibble of byte j.
#include <cstddef>
#include <cstdint>

namespace tq {

constexpr size_t packed_bytes(size_t count, int bits) { return (count * bits + 7) / 8; }

// bits in [1, 8]; codes must be < 2^bits (higher bits are masked off).
void pack_bits(const uint8_t* codes, size_t count, int bits, uint8_t* out);
void unpack_bits(const uint8_t* in, size_t count, int bits, uint8_t* codes);

// Reference single-code read, the definition the fast paths above must match.
inline uint8_t read_code(const uint8_t* in, size_t i, int bits) {
  const size_t bit = i * bits;
  const uint32_t lo = in[bit >> 3];
  const uint32_t hi = ((bit & 7) + bits > 8) ? in[(bit >> 3) + 1] : 0u;
  return static_cast<uint8_t>(((lo | (hi << 8)) >> (bit & 7)) & ((1u << bits) - 1u));
}

}  // namespace tq
