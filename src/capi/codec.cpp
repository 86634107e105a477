// C API: the codec table and tq_codec (encode / decode of vectors with a named codec).
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "guard.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"

using tq::capi::ArgumentError;
using tq::capi::guarded;
using tq::capi::require;

struct tq_codec {
  tq::Codec codec;
};

namespace {

// The table's names and summaries as NUL-terminated strings that live as long as the
// process (the C API hands out pointers to them). string_view promises no terminator, so
// they are copied once rather than trusting that the table is built from literals.
struct TableStrings {
  std::vector<std::string> names, summaries;
};

const TableStrings& table_strings() {
  static const TableStrings strings = [] {
    TableStrings t;
    for (const auto& spec : tq::codec_table()) {
      t.names.emplace_back(spec.name);
      t.summaries.emplace_back(spec.summary);
    }
    return t;
  }();
  return strings;
}

size_t checked_index(int index) {
  const size_t count = tq::codec_table().size();
  if (index < 0 || static_cast<size_t>(index) >= count)
    throw ArgumentError{"codec index " + std::to_string(index) + " out of range [0, " + std::to_string(count) + ")"};
  return static_cast<size_t>(index);
}

void require_batch(const tq_codec* codec, size_t n) {
  require(codec, "codec");
  if (n > SIZE_MAX / codec->codec.record_bytes() || n > SIZE_MAX / sizeof(float) / codec->codec.dim())
    throw ArgumentError{"n = " + std::to_string(n) + " vectors overflow the buffer size"};
}

}  // namespace

extern "C" {

int tq_codec_count(void) { return static_cast<int>(tq::codec_table().size()); }

tq_status tq_codec_name(int index, const char** name) {
  return guarded("tq_codec_name", [&] {
    require(name, "name");
    *name = table_strings().names[checked_index(index)].c_str();
  });
}

tq_status tq_codec_summary(int index, const char** summary) {
  return guarded("tq_codec_summary", [&] {
    require(summary, "summary");
    *summary = table_strings().summaries[checked_index(index)].c_str();
  });
}

tq_status tq_codec_sizes(const char* name, int dim, size_t* record_bytes, double* bits_per_coord) {
  return guarded("tq_codec_sizes", [&] {
    require(name, "name");
    const tq::Codec c = tq::Codec::make(name, dim, 0);
    if (record_bytes) *record_bytes = c.record_bytes();
    if (bits_per_coord) *bits_per_coord = c.bits_per_coord();
  });
}

tq_status tq_codec_create(const char* name, int dim, uint64_t seed, tq_codec** codec) {
  return guarded("tq_codec_create", [&] {
    require(name, "name");
    require(codec, "codec");
    *codec = new tq_codec{tq::Codec::make(name, dim, seed)};
  });
}

void tq_codec_destroy(tq_codec* codec) { delete codec; }

int tq_codec_dim(const tq_codec* codec) { return codec ? codec->codec.dim() : 0; }

size_t tq_codec_record_bytes(const tq_codec* codec) { return codec ? codec->codec.record_bytes() : 0; }

tq_status tq_codec_encode(const tq_codec* codec, const float* x, size_t n, uint8_t* records) {
  return guarded("tq_codec_encode", [&] {
    require_batch(codec, n);
    if (n == 0) return;
    require(x, "x");
    require(records, "records");
    const tq::Codec& c = codec->codec;
    const size_t dim = static_cast<size_t>(c.dim()), rb = c.record_bytes();
    // Codec::encode rejects NaN/Inf per vector; check the whole batch first so that a bad
    // vector in the middle leaves `records` untouched, as the header promises.
    for (size_t i = 0; i < n * dim; ++i)
      if (!std::isfinite(x[i]))
        throw tq::Error("vector " + std::to_string(i / dim) + " coordinate " + std::to_string(i % dim) +
                        " is NaN or Inf");
    for (size_t i = 0; i < n; ++i) c.encode(x + i * dim, records + i * rb);
  });
}

tq_status tq_codec_decode(const tq_codec* codec, const uint8_t* records, size_t n, float* x) {
  return guarded("tq_codec_decode", [&] {
    require_batch(codec, n);
    if (n == 0) return;
    require(records, "records");
    require(x, "x");
    const tq::Codec& c = codec->codec;
    const size_t dim = static_cast<size_t>(c.dim()), rb = c.record_bytes();
    for (size_t i = 0; i < n; ++i) c.decode(records + i * rb, x + i * dim);
  });
}

}  // extern "C"
