#include "file_frame.h"

#include <fcntl.h>
#include <unistd.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "turboquant/error.h"

namespace tq::detail {

uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
}

void ByteWriter::str(const std::string& s) {
  put<uint16_t>(static_cast<uint16_t>(s.size()));
  buf.insert(buf.end(), s.begin(), s.end());
}

void ByteWriter::f32(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  put<uint32_t>(u);
}

void ByteWriter::f64(double v) {
  uint64_t u;
  std::memcpy(&u, &v, 8);
  put<uint64_t>(u);
}

void ByteWriter::f32s(const float* p, size_t n) {
  static_assert(std::endian::native == std::endian::little, "the file formats are little-endian");
  bytes(reinterpret_cast<const uint8_t*>(p), n * sizeof(float));
}

std::vector<float> ByteReader::f32s(size_t n, const char* field) {
  if (n > left() / sizeof(float))  // before n * 4, which could wrap
    throw Error(what_ + " truncated: " + field + " needs " + std::to_string(n) + " floats at offset " +
                std::to_string(kFrameHeaderBytes + pos_) + ", " + std::to_string(left()) + " bytes left");
  const uint8_t* p = take(n * sizeof(float), field);
  std::vector<float> v(n);
  if (n > 0) std::memcpy(v.data(), p, n * sizeof(float));  // an empty vector's data() may be null
  return v;
}

std::string hex64(uint64_t v) {
  char b[19];
  std::snprintf(b, sizeof b, "0x%016llx", static_cast<unsigned long long>(v));
  return b;
}

float ByteReader::f32(const char* field) {
  const uint32_t u = get<uint32_t>(field);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

double ByteReader::f64(const char* field) {
  const uint64_t u = get<uint64_t>(field);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}

std::string ByteReader::str(const char* field) {
  const uint16_t n = get<uint16_t>(field);
  need(n, field);
  std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
  pos_ += n;
  return s;
}

const uint8_t* ByteReader::take(size_t n, const char* field) {
  need(n, field);
  const uint8_t* p = b_.data() + pos_;
  pos_ += n;
  return p;
}

void ByteReader::need(size_t n, const char* field) {
  if (n > left())
    throw Error(what_ + " truncated: " + field + " needs " + std::to_string(n) + " bytes at offset " +
                std::to_string(kFrameHeaderBytes + pos_) + ", " + std::to_string(left()) + " left");
}

std::vector<uint8_t> frame(const char (&magic)[4], uint32_t version, const std::vector<uint8_t>& payload) {
  ByteWriter out;
  out.bytes(reinterpret_cast<const uint8_t*>(magic), 4);
  out.put<uint32_t>(version);
  out.put<uint64_t>(payload.size());
  out.put<uint64_t>(fnv1a64(payload.data(), payload.size()));
  out.put<uint64_t>(0);
  out.bytes(payload.data(), payload.size());
  return std::move(out.buf);
}

Unframed unframe(std::span<const uint8_t> bytes, const char (&magic)[4], uint32_t oldest, uint32_t newest,
                 const std::string& what, const std::string& kind) {
  if (bytes.size() < kFrameHeaderBytes)
    throw Error(what + " truncated: " + std::to_string(bytes.size()) + " bytes, the header alone is 32");
  if (std::memcmp(bytes.data(), magic, 4) != 0)
    throw Error("not a " + kind + " (magic is not '" + std::string(magic, 4) + "')");
  ByteReader h(bytes.subspan(4, kFrameHeaderBytes - 4), what + " header");
  const uint32_t v = h.get<uint32_t>("version");
  if (v < oldest || v > newest)
    throw Error(what + " format version " + std::to_string(v) + " is not supported (this build reads " +
                (oldest == newest ? std::to_string(newest)
                                  : "versions " + std::to_string(oldest) + " to " + std::to_string(newest)) +
                ")");
  const uint64_t payload = h.get<uint64_t>("payload size");
  const uint64_t checksum = h.get<uint64_t>("checksum");
  if (h.get<uint64_t>("reserved") != 0) throw Error(what + " header: reserved field is not zero");
  const uint64_t have = bytes.size() - kFrameHeaderBytes;
  if (payload != have)
    throw Error(what + " " + (payload > have ? "truncated" : "has trailing bytes") + ": header says " +
                std::to_string(payload) + " payload bytes, file has " + std::to_string(have));
  const auto body = bytes.subspan(kFrameHeaderBytes);
  if (fnv1a64(body.data(), body.size()) != checksum) throw Error(what + " corrupted: checksum mismatch");
  return {body, v};
}

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& what) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + what + " '" + path + "': " + std::strerror(errno));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

namespace {

// The rename is durable only once the directory entry is on disk.
void fsync_dir_of(const std::string& path) {
  std::string dir = std::filesystem::path(path).parent_path().string();
  if (dir.empty()) dir = ".";
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;  // best effort: the file itself is complete either way
  ::fsync(fd);
  ::close(fd);
}

}  // namespace

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, bool overwrite,
                       const std::string& what) {
  if (!overwrite && access(path.c_str(), F_OK) == 0)
    throw Error(what + " '" + path + "' already exists (pass overwrite to replace it)");
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = mkstemp(tmp.data());
  if (fd < 0) throw Error("cannot create a temporary file beside '" + path + "': " + std::strerror(errno));
  size_t done = 0;
  while (done < bytes.size()) {
    const ssize_t w = ::write(fd, bytes.data() + done, bytes.size() - done);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const std::string why = std::strerror(errno);
      ::close(fd);
      ::unlink(tmp.c_str());
      throw Error("writing " + what + " '" + path + "' failed: " + why);
    }
    done += static_cast<size_t>(w);
  }
  // Nothing gets the name before its bytes are on disk.
  if (::fsync(fd) != 0) {
    const std::string why = std::strerror(errno);
    ::close(fd);
    ::unlink(tmp.c_str());
    throw Error("writing " + what + " '" + path + "' failed: fsync: " + why);
  }
  ::close(fd);
  int rc;
  if (overwrite) {
    rc = std::rename(tmp.c_str(), path.c_str());
  } else {
    rc = ::link(tmp.c_str(), path.c_str());
    ::unlink(tmp.c_str());
  }
  if (rc != 0) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot write " + what + " '" + path + "': " + (errno == EEXIST ? "it already exists" : why));
  }
  fsync_dir_of(path);
}

}  // namespace tq::detail
