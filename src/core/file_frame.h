#pragma once
// What every saved file shares (cache, session, calibration profile; internal to the library): a 32-byte header
// {4-byte magic, u32 version, u64 payload bytes, u64 FNV-1a 64 of the payload, u64 zero}
// around a payload of little-endian fields, bounds-checked reads that name the field, and
// an atomic file write. One implementation, so both formats refuse damage the same way.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

namespace tq::detail {

constexpr size_t kFrameHeaderBytes = 32;

// FNV-1a 64; `h` continues a running hash (a file read in pieces).
uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h = 0xcbf29ce484222325ull);

class ByteWriter {
 public:
  std::vector<uint8_t> buf;
  template <class T>
  void put(T v) {  // little-endian integers
    for (size_t i = 0; i < sizeof(T); ++i) buf.push_back(static_cast<uint8_t>(static_cast<uint64_t>(v) >> (8 * i)));
  }
  void str(const std::string& s);  // u16 length + bytes
  void f32(float v);               // IEEE bits, little-endian
  void f64(double v);
  void bytes(const uint8_t* p, size_t n) { buf.insert(buf.end(), p, p + n); }
  void f32s(const float* p, size_t n);  // n floats, as f32() each
};

// Reads a payload; `what` ("cache file", "session file") starts every error message.
class ByteReader {
 public:
  ByteReader(std::span<const uint8_t> b, std::string what) : b_(b), what_(std::move(what)) {}
  template <class T>
  T get(const char* field) {
    need(sizeof(T), field);
    uint64_t v = 0;
    for (size_t i = 0; i < sizeof(T); ++i) v |= static_cast<uint64_t>(b_[pos_ + i]) << (8 * i);
    pos_ += sizeof(T);
    return static_cast<T>(v);
  }
  int32_t i32(const char* field) { return static_cast<int32_t>(get<uint32_t>(field)); }
  std::string str(const char* field);
  float f32(const char* field);
  double f64(const char* field);
  const uint8_t* take(size_t n, const char* field);
  std::vector<float> f32s(size_t n, const char* field);  // checked against the bytes left first
  size_t left() const { return b_.size() - pos_; }
  const std::string& what() const { return what_; }

 private:
  void need(size_t n, const char* field);
  std::span<const uint8_t> b_;
  std::string what_;
  size_t pos_ = 0;
};

// "0x0123456789abcdef": how hashes and checksums appear in messages.
std::string hex64(uint64_t v);

// Header + payload.
std::vector<uint8_t> frame(const char (&magic)[4], uint32_t version, const std::vector<uint8_t>& payload);
// Checks magic, version (one of [oldest, newest]), size and checksum; returns the payload
// and the file's version. `kind` names the format in the magic message ("turboquant cache file").
struct Unframed {
  std::span<const uint8_t> payload;
  uint32_t version = 0;
};
Unframed unframe(std::span<const uint8_t> bytes, const char (&magic)[4], uint32_t oldest, uint32_t newest,
                 const std::string& what, const std::string& kind);
// A format with a single version.
inline std::span<const uint8_t> unframe(std::span<const uint8_t> bytes, const char (&magic)[4], uint32_t version,
                                        const std::string& what, const std::string& kind) {
  return unframe(bytes, magic, version, version, what, kind).payload;
}

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& what);
// Writes a temporary file beside `path`, fsyncs it, then links it into place (fails if
// `path` exists) or, with overwrite, renames it over `path`, and fsyncs the directory:
// a reader sees the old file or the whole new one, never a partial file under that name.
void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, bool overwrite,
                       const std::string& what);

}  // namespace tq::detail
