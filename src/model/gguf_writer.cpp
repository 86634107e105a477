// GgufWriter: GGUF v3 in memory, for tests and tiny random models. Metadata is written in
// the order it was added, then the tensor infos, then the data with each tensor padded to
// the alignment, exactly as the reader expects it.
#include <cstring>
#include <filesystem>
#include <fstream>

#include "ggml_types.h"
#include "turboquant/error.h"

namespace tq::gguf {
namespace {

template <typename U>
void put(std::vector<uint8_t>& out, U v) {
  const size_t at = out.size();
  out.resize(at + sizeof(U));
  std::memcpy(out.data() + at, &v, sizeof(U));
}

void put_string(std::vector<uint8_t>& out, const std::string& s) {
  put<uint64_t>(out, s.size());
  out.insert(out.end(), s.begin(), s.end());
}

void put_type(std::vector<uint8_t>& out, ValueType t) { put<uint32_t>(out, static_cast<uint32_t>(t)); }

template <typename U>
std::vector<uint8_t> scalar_bytes(U v) {
  std::vector<uint8_t> out;
  put<U>(out, v);
  return out;
}

uint64_t product(const std::vector<uint64_t>& shape) {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

}  // namespace

void GgufWriter::add_raw(std::string key, ValueType type, std::vector<uint8_t> payload) {
  for (const auto& kv : kv_) {
    if (kv.first == key) throw Error("GgufWriter: metadata key '" + key + "' added twice");
  }
  std::vector<uint8_t> bytes;
  put_type(bytes, type);
  bytes.insert(bytes.end(), payload.begin(), payload.end());
  kv_.emplace_back(std::move(key), std::move(bytes));
}

void GgufWriter::add_string(std::string key, std::string v) {
  std::vector<uint8_t> p;
  put_string(p, v);
  add_raw(std::move(key), ValueType::STRING, std::move(p));
}

void GgufWriter::add_int(std::string key, int64_t v) { add_raw(std::move(key), ValueType::INT64, scalar_bytes(v)); }

void GgufWriter::add_int32(std::string key, int32_t v) { add_raw(std::move(key), ValueType::INT32, scalar_bytes(v)); }

void GgufWriter::add_uint32(std::string key, uint32_t v) { add_raw(std::move(key), ValueType::UINT32, scalar_bytes(v)); }

void GgufWriter::add_float(std::string key, float v) { add_raw(std::move(key), ValueType::FLOAT32, scalar_bytes(v)); }

void GgufWriter::add_bool(std::string key, bool v) {
  add_raw(std::move(key), ValueType::BOOL, scalar_bytes<uint8_t>(v ? 1 : 0));
}

void GgufWriter::add_string_array(std::string key, const std::vector<std::string>& v) {
  std::vector<uint8_t> p;
  put_type(p, ValueType::STRING);
  put<uint64_t>(p, v.size());
  for (const auto& s : v) put_string(p, s);
  add_raw(std::move(key), ValueType::ARRAY, std::move(p));
}

void GgufWriter::add_float_array(std::string key, const std::vector<float>& v) {
  std::vector<uint8_t> p;
  put_type(p, ValueType::FLOAT32);
  put<uint64_t>(p, v.size());
  for (float x : v) put<float>(p, x);
  add_raw(std::move(key), ValueType::ARRAY, std::move(p));
}

void GgufWriter::add_int_array(std::string key, const std::vector<int32_t>& v) {
  std::vector<uint8_t> p;
  put_type(p, ValueType::INT32);
  put<uint64_t>(p, v.size());
  for (int32_t x : v) put<int32_t>(p, x);
  add_raw(std::move(key), ValueType::ARRAY, std::move(p));
}

void GgufWriter::set_alignment(uint32_t alignment) {
  if (alignment == 0 || (alignment & (alignment - 1)) != 0) {
    throw Error("GgufWriter: alignment " + std::to_string(alignment) + " is not a power of two");
  }
  alignment_ = alignment;
  add_uint32("general.alignment", alignment);
}

void GgufWriter::add_tensor(std::string name, std::vector<uint64_t> shape, GgmlType type, std::vector<uint8_t> data) {
  for (const Tensor& t : tensors_) {
    if (t.name == name) throw Error("GgufWriter: tensor '" + name + "' added twice");
  }
  if (shape.empty() || shape.size() > 4) throw Error("GgufWriter: tensor '" + name + "' needs 1 to 4 dimensions");
  const size_t expected = type_bytes(type, product(shape));
  if (data.size() != expected) {
    throw Error("GgufWriter: tensor '" + name + "' has " + std::to_string(data.size()) + " bytes, its shape and type need " +
                std::to_string(expected));
  }
  tensors_.push_back({std::move(name), std::move(shape), type, std::move(data)});
}

void GgufWriter::add_tensor_f32(std::string name, std::vector<uint64_t> shape, const std::vector<float>& v) {
  add_tensor_quantized(std::move(name), std::move(shape), GgmlType::F32, v);
}

void GgufWriter::add_tensor_quantized(std::string name, std::vector<uint64_t> shape, GgmlType type,
                                      const std::vector<float>& v) {
  if (v.size() != product(shape)) {
    throw Error("GgufWriter: tensor '" + name + "' has " + std::to_string(v.size()) + " values for " +
                std::to_string(product(shape)) + " elements");
  }
  add_tensor(std::move(name), std::move(shape), type, quantize(type, v.data(), v.size()));
}

std::vector<uint8_t> GgufWriter::bytes() const {
  std::vector<uint8_t> out;
  put<uint32_t>(out, 0x46554747);  // "GGUF"
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_.size());
  for (const auto& [key, value] : kv_) {
    put_string(out, key);
    out.insert(out.end(), value.begin(), value.end());
  }
  const auto padded = [this](uint64_t n) { return (n + alignment_ - 1) / alignment_ * alignment_; };
  uint64_t offset = 0;
  for (const Tensor& t : tensors_) {
    put_string(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.shape.size()));
    for (uint64_t d : t.shape) put<uint64_t>(out, d);
    put<uint32_t>(out, static_cast<uint32_t>(t.type));
    put<uint64_t>(out, offset);
    offset = padded(offset + t.data.size());
  }
  out.resize(padded(out.size()), 0);
  for (const Tensor& t : tensors_) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(padded(out.size()), 0);
  }
  return out;
}

void GgufWriter::write(const std::string& path, bool overwrite) const {
  if (!overwrite && std::filesystem::exists(path)) {
    throw Error("GgufWriter: '" + path + "' exists; refusing to overwrite it");
  }
  const std::vector<uint8_t> b = bytes();
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  if (!f) throw Error("GgufWriter: cannot create '" + path + "'");
  f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  if (!f) throw Error("GgufWriter: writing '" + path + "' failed");
}

}  // namespace tq::gguf
