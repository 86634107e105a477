#include "turboquant/byte_io.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

#include "turboquant/error.h"

namespace tq {

uint64_t fnv1a64(const uint8_t* p, size_t n, uint64_t h) {
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 0x100000001b3ull;
  return h;
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

void ByteWriter::str(const std::string& s) {
  put<uint16_t>(static_cast<uint16_t>(s.size()));
  buf.insert(buf.end(), s.begin(), s.begin() + std::min<size_t>(s.size(), 65535));
}

float ByteReader::f32(const char* what) {
  const uint32_t u = get<uint32_t>(what);
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

double ByteReader::f64(const char* what) {
  const uint64_t u = get<uint64_t>(what);
  double v;
  std::memcpy(&v, &u, 8);
  return v;
}

std::string ByteReader::str(const char* what) {
  const uint16_t n = get<uint16_t>(what);
  need(n, what);
  std::string s(reinterpret_cast<const char*>(b_.data() + pos_), n);
  pos_ += n;
  return s;
}

void ByteReader::need(size_t n, const char* what) {
  if (n > left())
    throw Error(kind_ + " truncated: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                std::to_string(base_ + pos_) + ", " + std::to_string(left()) + " left");
}

std::vector<uint8_t> read_whole_file(const std::string& path, const std::string& kind) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open " + kind + " '" + path + "': " + std::strerror(errno));
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void write_file_atomic(const std::string& path, const std::vector<uint8_t>& bytes, bool overwrite,
                       const std::string& kind) {
  if (!overwrite && access(path.c_str(), F_OK) == 0)
    throw Error(kind + " '" + path + "' already exists (pass overwrite to replace it)");
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
      throw Error("writing " + kind + " '" + path + "' failed: " + why);
    }
    done += static_cast<size_t>(w);
  }
  const bool synced = ::fsync(fd) == 0;
  ::close(fd);
  int rc;
  if (overwrite) {
    rc = std::rename(tmp.c_str(), path.c_str());
  } else {
    rc = ::link(tmp.c_str(), path.c_str());
    ::unlink(tmp.c_str());
  }
  if (rc != 0 || !synced) {
    const std::string why = std::strerror(errno);
    ::unlink(tmp.c_str());
    throw Error("cannot write " + kind + " '" + path + "': " + (errno == EEXIST ? "it already exists" : why));
  }
}

}  // namespace tq
