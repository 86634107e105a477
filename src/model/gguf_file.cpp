// GgufFile: opening (mmap or owned bytes) and the typed metadata accessors.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <string>

#include "gguf_impl.h"
#include "turboquant/error.h"

namespace tq::gguf {
namespace {

bool is_integer(ValueType t) {
  return t != ValueType::FLOAT32 && t != ValueType::FLOAT64 && t != ValueType::STRING && t != ValueType::ARRAY &&
         t != ValueType::BOOL;
}

std::string kind_error(std::string_view key, const Value& v, const char* wanted) {
  std::string have(value_type_name(v.type));
  if (v.type == ValueType::ARRAY) have += " of " + std::string(value_type_name(v.elem));
  return "metadata '" + std::string(key) + "' is " + have + ", not " + wanted;
}

// An integer read back from its 64-bit storage; uint64 values above INT64_MAX do not fit.
int64_t checked_int(std::string_view key, ValueType t, int64_t raw) {
  if (t == ValueType::UINT64 && raw < 0) {
    throw Error("metadata '" + std::string(key) + "' value " + std::to_string(static_cast<uint64_t>(raw)) +
                " does not fit in int64");
  }
  return raw;
}

std::string scalar_text(ValueType t, int64_t i, double f) {
  if (t == ValueType::UINT64) return std::to_string(static_cast<uint64_t>(i));
  if (t == ValueType::BOOL) return i ? "true" : "false";
  if (t == ValueType::FLOAT32 || t == ValueType::FLOAT64) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%.8g", f);
    return buf;
  }
  return std::to_string(i);
}

// Control characters shown as escapes so one value stays on one line.
std::string quoted(const std::string& s, size_t max_chars) {
  std::string out = "\"";
  for (size_t k = 0; k < s.size() && k < max_chars; ++k) {
    const unsigned char ch = static_cast<unsigned char>(s[k]);
    if (ch == '\n') out += "\\n";
    else if (ch == '\t') out += "\\t";
    else if (ch == '"') out += "\\\"";
    else if (ch == '\\') out += "\\\\";
    else if (ch < 32 || ch == 127) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", ch);
      out += buf;
    } else {
      out += static_cast<char>(ch);
    }
  }
  out += "\"";
  if (s.size() > max_chars) out += "... (" + std::to_string(s.size()) + " bytes)";
  return out;
}

std::string array_text(const Value& v) {
  constexpr size_t kShown = 8;
  std::string out = "[";
  const size_t n = static_cast<size_t>(v.count);
  for (size_t k = 0; k < n && k < kShown; ++k) {
    if (k) out += ", ";
    if (v.elem == ValueType::STRING) out += quoted(v.strings[k], 40);
    else if (v.elem == ValueType::ARRAY) out += array_text(v.nested[k]);
    else if (v.elem == ValueType::FLOAT32 || v.elem == ValueType::FLOAT64) out += scalar_text(v.elem, 0, v.floats[k]);
    else out += scalar_text(v.elem, v.ints[k], 0.0);
  }
  if (n > kShown) out += ", ...";
  out += "] (" + std::to_string(n) + " " + std::string(value_type_name(v.elem)) + ")";
  return out;
}

}  // namespace

GgufFile::Impl::~Impl() {
  if (mapping != nullptr) munmap(mapping, mapping_size);
}

const Value& GgufFile::Impl::value(std::string_view key) const {
  auto it = kv_index.find(key);
  if (it == kv_index.end()) throw Error("metadata key '" + std::string(key) + "' is missing");
  return kv[it->second].second;
}

GgufFile::GgufFile(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
GgufFile::GgufFile(GgufFile&&) noexcept = default;
GgufFile& GgufFile::operator=(GgufFile&&) noexcept = default;
GgufFile::~GgufFile() = default;

GgufFile GgufFile::open(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw Error("cannot open GGUF file '" + path + "': " + std::strerror(errno));
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw Error("'" + path + "' is not a regular file");
  }
  auto impl = std::make_unique<Impl>();
  impl->size = static_cast<uint64_t>(st.st_size);
  if (impl->size == 0) {
    ::close(fd);
    throw Error("'" + path + "' is empty, not a GGUF file");
  }
  void* m = mmap(nullptr, static_cast<size_t>(impl->size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);  // the mapping keeps the file open
  if (m == MAP_FAILED) throw Error("cannot map '" + path + "': " + std::strerror(errno));
  impl->mapping = m;
  impl->mapping_size = static_cast<size_t>(impl->size);
  impl->base = static_cast<const uint8_t*>(m);
  try {
    impl->parse();
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
  return GgufFile(std::move(impl));
}

GgufFile GgufFile::from_memory(std::vector<uint8_t> bytes) {
  auto impl = std::make_unique<Impl>();
  impl->owned = std::move(bytes);
  impl->base = impl->owned.data();
  impl->size = impl->owned.size();
  impl->parse();
  return GgufFile(std::move(impl));
}

uint32_t GgufFile::version() const { return impl_->version; }
uint64_t GgufFile::alignment() const { return impl_->alignment; }
uint64_t GgufFile::data_offset() const { return impl_->data_offset; }
uint64_t GgufFile::file_size() const { return impl_->size; }

bool GgufFile::has(std::string_view key) const { return impl_->kv_index.count(key) != 0; }
ValueType GgufFile::value_type(std::string_view key) const { return impl_->value(key).type; }

ValueType GgufFile::array_type(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::ARRAY) throw Error(kind_error(key, v, "an array"));
  return v.elem;
}

uint64_t GgufFile::array_size(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::ARRAY) throw Error(kind_error(key, v, "an array"));
  return v.count;
}

std::string GgufFile::get_string(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::STRING) throw Error(kind_error(key, v, "a string"));
  return v.s;
}

std::string GgufFile::get_string(std::string_view key, std::string_view fallback) const {
  return has(key) ? get_string(key) : std::string(fallback);
}

int64_t GgufFile::get_int(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (!is_integer(v.type)) throw Error(kind_error(key, v, "an integer"));
  return checked_int(key, v.type, v.i);
}

int64_t GgufFile::get_int(std::string_view key, int64_t fallback) const { return has(key) ? get_int(key) : fallback; }

double GgufFile::get_float(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type == ValueType::FLOAT32 || v.type == ValueType::FLOAT64) return v.f;
  if (is_integer(v.type)) {
    return v.type == ValueType::UINT64 ? static_cast<double>(static_cast<uint64_t>(v.i)) : static_cast<double>(v.i);
  }
  throw Error(kind_error(key, v, "a number"));
}

double GgufFile::get_float(std::string_view key, double fallback) const { return has(key) ? get_float(key) : fallback; }

bool GgufFile::get_bool(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::BOOL) throw Error(kind_error(key, v, "a bool"));
  return v.i != 0;
}

bool GgufFile::get_bool(std::string_view key, bool fallback) const { return has(key) ? get_bool(key) : fallback; }

std::vector<std::string> GgufFile::get_string_array(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::ARRAY || v.elem != ValueType::STRING) throw Error(kind_error(key, v, "an array of strings"));
  return v.strings;
}

std::vector<float> GgufFile::get_float_array(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::ARRAY) throw Error(kind_error(key, v, "an array of numbers"));
  std::vector<float> out;
  if (v.elem == ValueType::FLOAT32 || v.elem == ValueType::FLOAT64) {
    out.assign(v.floats.begin(), v.floats.end());
  } else if (is_integer(v.elem)) {
    for (int64_t x : v.ints) {
      out.push_back(v.elem == ValueType::UINT64 ? static_cast<float>(static_cast<uint64_t>(x)) : static_cast<float>(x));
    }
  } else {
    throw Error(kind_error(key, v, "an array of numbers"));
  }
  return out;
}

std::vector<int64_t> GgufFile::get_int_array(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type != ValueType::ARRAY || !(is_integer(v.elem) || v.elem == ValueType::BOOL)) {
    throw Error(kind_error(key, v, "an array of integers"));
  }
  for (int64_t x : v.ints) checked_int(key, v.elem, x);
  return v.ints;
}

std::vector<std::string> GgufFile::keys() const {
  std::vector<std::string> out;
  out.reserve(impl_->kv.size());
  for (const auto& [k, v] : impl_->kv) out.push_back(k);
  return out;
}

std::string GgufFile::value_to_string(std::string_view key) const {
  const Value& v = impl_->value(key);
  if (v.type == ValueType::STRING) return quoted(v.s, 200);
  if (v.type == ValueType::ARRAY) return array_text(v);
  return scalar_text(v.type, v.i, v.f);
}

const std::vector<TensorInfo>& GgufFile::tensors() const { return impl_->tensors; }

const TensorInfo* GgufFile::find_tensor(std::string_view name) const {
  auto it = impl_->tensor_index.find(name);
  return it == impl_->tensor_index.end() ? nullptr : &impl_->tensors[it->second];
}

const TensorInfo& GgufFile::tensor(std::string_view name) const {
  const TensorInfo* t = find_tensor(name);
  if (t == nullptr) throw Error("tensor '" + std::string(name) + "' is not in the GGUF file");
  return *t;
}

std::string_view value_type_name(ValueType t) {
  switch (t) {
    case ValueType::UINT8: return "uint8";
    case ValueType::INT8: return "int8";
    case ValueType::UINT16: return "uint16";
    case ValueType::INT16: return "int16";
    case ValueType::UINT32: return "uint32";
    case ValueType::INT32: return "int32";
    case ValueType::FLOAT32: return "float32";
    case ValueType::BOOL: return "bool";
    case ValueType::STRING: return "string";
    case ValueType::ARRAY: return "array";
    case ValueType::UINT64: return "uint64";
    case ValueType::INT64: return "int64";
    case ValueType::FLOAT64: return "float64";
  }
  return "unknown";
}

}  // namespace tq::gguf
