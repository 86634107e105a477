#pragma once
// Little-endian byte streams, FNV-1a 64 checksums and atomic file writes: what every
// saved file of the project (caches, calibration profiles) is built from.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tq {

uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull);

class ByteWriter {
 public:
  std::vector<uint8_t> buf;
  template <class T>
  void put(T v) {  // little-endian integers
    for (size_t i = 0; i < sizeof(T); ++i) buf.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  void f32(float v);
  void f64(double v);
  void str(const std::string& s);  // u16 length + bytes
  void bytes(const uint8_t* p, size_t n) { buf.insert(buf.end(), p, p + n); }
};

// Bounds-checked reader; errors read "<kind> truncated: <what> needs N bytes at offset ...".
class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> b, std::string kind, size_t base_offset = 0)
      : b_(b), kind_(std::move(kind)), base_(base_offset) {}
  template <class T>
  T get(const char* what) {
    need(sizeof(T), what);
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  int32_t i32(const char* what) { return static_cast<int32_t>(get<uint32_t>(what)); }
  float f32(const char* what);
  double f64(const char* what);
  std::string str(const char* what);
  const uint8_t* take(size_t n, const char* what) {
    need(n, what);
    const uint8_t* p = b_.data() + pos_;
    pos_ += n;
    return p;
  }
  size_t left() const { return b_.size() - pos_; }

 private:
  void need(size_t n, const char* what);
  std::span<const uint8_t> b_;
  std::string kind_;
  size_t base_;
  size_t pos_ = 0;
};

// The whole file; tq::Error naming `kind` and the path when it cannot be read.
std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& kind);
// Writes to a temporary file beside `path`, fsyncs it, then links it into place (fails if
// `path` exists) or, with overwrite, renames it over `path`: no partial file ever has the name.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, bool overwrite,
                       const std::string& kind);

}  // namespace tq
