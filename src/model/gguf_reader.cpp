// The GGUF parser: every read is bounds-checked against the file size, every count is
// checked against the bytes that could possibly hold it before anything is allocated, so
// a malformed or hostile file ends in a tq::Error naming the problem, never a crash.
#include <algorithm>
#include <cstring>
#include <limits>
#include <string>

#include "ggml_types.h"
#include "gguf_impl.h"
#include "turboquant/error.h"

namespace tq::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint32_t kMaxDims = 4;          // GGML_MAX_DIMS
constexpr int kMaxArrayDepth = 4;         // nested arrays deeper than this are refused
constexpr uint64_t kMaxAlignment = 1u << 20;

size_t scalar_size(ValueType t) {
  switch (t) {
    case ValueType::UINT8: case ValueType::INT8: case ValueType::BOOL: return 1;
    case ValueType::UINT16: case ValueType::INT16: return 2;
    case ValueType::UINT32: case ValueType::INT32: case ValueType::FLOAT32: return 4;
    case ValueType::UINT64: case ValueType::INT64: case ValueType::FLOAT64: return 8;
    case ValueType::STRING: return 8;   // at least its length field
    case ValueType::ARRAY: return 12;   // at least its element type and count
  }
  return 0;
}

bool known_value_type(uint32_t id) { return id <= static_cast<uint32_t>(ValueType::FLOAT64); }

class Cursor {
 public:
  Cursor(const uint8_t* base, uint64_t size) : base_(base), size_(size) {}

  uint64_t pos() const { return pos_; }
  uint64_t remaining() const { return size_ - pos_; }

  void need(uint64_t n, const std::string& what) const {
    if (n > remaining()) {
      throw Error("truncated GGUF file: " + what + " needs " + std::to_string(n) + " bytes at offset " +
                  std::to_string(pos_) + ", but the file has " + std::to_string(size_) + " bytes");
    }
  }
  template <typename U>
  U read(const std::string& what) {
    need(sizeof(U), what);
    U v;
    std::memcpy(&v, base_ + pos_, sizeof(U));
    pos_ += sizeof(U);
    return v;
  }
  std::string read_string(const std::string& what) {
    const uint64_t n = read<uint64_t>(what + " (string length)");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(base_ + pos_), static_cast<size_t>(n));
    pos_ += n;
    return s;
  }

 private:
  const uint8_t* base_;
  uint64_t size_;
  uint64_t pos_ = 0;
};

ValueType read_value_type(Cursor& c, const std::string& what) {
  const uint32_t id = c.read<uint32_t>(what + " type");
  if (!known_value_type(id)) throw Error("unknown metadata value type " + std::to_string(id) + " for " + what);
  return static_cast<ValueType>(id);
}

int64_t read_integer(Cursor& c, ValueType t, const std::string& what) {
  switch (t) {
    case ValueType::UINT8: return c.read<uint8_t>(what);
    case ValueType::INT8: return c.read<int8_t>(what);
    case ValueType::UINT16: return c.read<uint16_t>(what);
    case ValueType::INT16: return c.read<int16_t>(what);
    case ValueType::UINT32: return c.read<uint32_t>(what);
    case ValueType::INT32: return c.read<int32_t>(what);
    case ValueType::UINT64: return static_cast<int64_t>(c.read<uint64_t>(what));
    case ValueType::INT64: return c.read<int64_t>(what);
    case ValueType::BOOL: {
      const uint8_t b = c.read<uint8_t>(what);
      if (b > 1) throw Error("metadata " + what + ": bool value " + std::to_string(b) + " is neither 0 nor 1");
      return b;
    }
    default: throw Error("internal: " + what + " is not an integer");
  }
}

bool is_integer_kind(ValueType t) {
  return t != ValueType::FLOAT32 && t != ValueType::FLOAT64 && t != ValueType::STRING && t != ValueType::ARRAY;
}

Value read_value(Cursor& c, ValueType t, const std::string& what, int depth);

Value read_array(Cursor& c, const std::string& what, int depth) {
  if (depth >= kMaxArrayDepth) throw Error("metadata " + what + ": arrays nested deeper than " + std::to_string(kMaxArrayDepth));
  Value v;
  v.type = ValueType::ARRAY;
  v.elem = read_value_type(c, what + " element");
  v.count = c.read<uint64_t>(what + " array length");
  // Every element takes at least scalar_size bytes: refuse counts the file cannot hold
  // before reserving memory for them.
  const uint64_t min_bytes = scalar_size(v.elem);
  if (v.count > c.remaining() / min_bytes) {
    throw Error("truncated GGUF file: metadata " + what + " claims " + std::to_string(v.count) +
                " elements, more than the " + std::to_string(c.remaining()) + " bytes left can hold");
  }
  const auto n = static_cast<size_t>(v.count);
  if (v.elem == ValueType::STRING) {
    v.strings.reserve(n);
    for (size_t k = 0; k < n; ++k) v.strings.push_back(c.read_string(what + "[" + std::to_string(k) + "]"));
  } else if (v.elem == ValueType::FLOAT32) {
    v.floats.reserve(n);
    for (size_t k = 0; k < n; ++k) v.floats.push_back(c.read<float>(what));
  } else if (v.elem == ValueType::FLOAT64) {
    v.floats.reserve(n);
    for (size_t k = 0; k < n; ++k) v.floats.push_back(c.read<double>(what));
  } else if (v.elem == ValueType::ARRAY) {
    v.nested.reserve(n);
    for (size_t k = 0; k < n; ++k) v.nested.push_back(read_array(c, what + "[" + std::to_string(k) + "]", depth + 1));
  } else {
    v.ints.reserve(n);
    for (size_t k = 0; k < n; ++k) v.ints.push_back(read_integer(c, v.elem, what));
  }
  return v;
}

Value read_value(Cursor& c, ValueType t, const std::string& what, int depth) {
  if (t == ValueType::ARRAY) return read_array(c, what, depth);
  Value v;
  v.type = t;
  if (t == ValueType::STRING) {
    v.s = c.read_string(what);
  } else if (t == ValueType::FLOAT32) {
    v.f = c.read<float>(what);
  } else if (t == ValueType::FLOAT64) {
    v.f = c.read<double>(what);
  } else {
    v.i = read_integer(c, t, what);
  }
  return v;
}

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

TensorInfo read_tensor_info(Cursor& c, uint64_t index) {
  TensorInfo t;
  const std::string what = "tensor #" + std::to_string(index);
  t.name = c.read_string(what + " name");
  const std::string named = "tensor '" + t.name + "'";
  const uint32_t n_dims = c.read<uint32_t>(named + " dimension count");
  if (n_dims == 0 || n_dims > kMaxDims) {
    throw Error(named + " has " + std::to_string(n_dims) + " dimensions (1 to " + std::to_string(kMaxDims) + " allowed)");
  }
  uint64_t elements = 1;
  for (uint32_t d = 0; d < n_dims; ++d) {
    const uint64_t dim = c.read<uint64_t>(named + " dimension");
    if (dim > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      throw Error(named + " dimension " + std::to_string(d) + " is too large: " + std::to_string(dim));
    }
    if (dim != 0 && elements > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()) / dim) {
      throw Error(named + " has too many elements (overflow in its shape)");
    }
    elements *= dim;
    t.shape.push_back(dim);
  }
  const uint32_t type_id = c.read<uint32_t>(named + " type");
  t.type = static_cast<GgmlType>(type_id);
  const TypeTraits* tr = find_traits(t.type);
  if (tr == nullptr) throw Error(named + " has unknown ggml type " + std::to_string(type_id));
  if (t.shape[0] % tr->block_elements != 0) {
    throw Error(named + " of type " + tr->name + " has a row of " + std::to_string(t.shape[0]) +
                " elements, not a multiple of its block size " + std::to_string(tr->block_elements) +
                " (shape " + shape_text(t.shape) + ")");
  }
  t.offset = c.read<uint64_t>(named + " offset");
  t.bytes = type_bytes(t.type, elements);
  return t;
}

}  // namespace

void GgufFile::Impl::parse() {
  Cursor c(base, size);
  const uint32_t magic = c.read<uint32_t>("magic");
  if (magic != kMagic) {
    char text[5] = {};
    std::memcpy(text, &magic, 4);
    for (char& ch : text) {
      if (ch != 0 && (ch < 32 || ch > 126)) ch = '?';
    }
    throw Error(std::string("bad magic: not a GGUF file (starts with \"") + text + "\", expected \"GGUF\")");
  }
  version = c.read<uint32_t>("version");
  if (version == 1) throw Error("GGUF version 1 (32-bit counts) is not supported; convert the file to version 3");
  if (version != 2 && version != 3) throw Error("bad GGUF version " + std::to_string(version) + " (2 and 3 are supported)");

  const uint64_t n_tensors = c.read<uint64_t>("tensor count");
  const uint64_t n_kv = c.read<uint64_t>("metadata count");
  // A key/value pair takes at least 8 (key length) + 4 (type) + 1 bytes.
  if (n_kv > c.remaining() / 13) {
    throw Error("truncated GGUF file: " + std::to_string(n_kv) + " metadata entries cannot fit in " +
                std::to_string(c.remaining()) + " bytes");
  }
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.read_string("metadata key #" + std::to_string(k));
    if (kv_index.count(key)) throw Error("duplicate metadata key '" + key + "'");
    const ValueType t = read_value_type(c, "metadata '" + key + "'");
    Value v = read_value(c, t, "'" + key + "'", 0);
    kv_index.emplace(key, kv.size());
    kv.emplace_back(std::move(key), std::move(v));
  }

  if (auto it = kv_index.find("general.alignment"); it != kv_index.end()) {
    const Value& a = kv[it->second].second;
    if (!is_integer_kind(a.type) || a.type == ValueType::BOOL) throw Error("general.alignment is not an integer");
    const auto al = static_cast<uint64_t>(a.i);
    if (a.i <= 0 || (al & (al - 1)) != 0 || al > kMaxAlignment) {
      throw Error("general.alignment " + std::to_string(a.i) + " is not a power of two up to " + std::to_string(kMaxAlignment));
    }
    alignment = al;
  }

  // A tensor info takes at least 8 (name length) + 4 (dims) + 8 (one dim) + 4 (type) + 8 (offset).
  if (n_tensors > c.remaining() / 32) {
    throw Error("truncated GGUF file: " + std::to_string(n_tensors) + " tensor infos cannot fit in " +
                std::to_string(c.remaining()) + " bytes");
  }
  tensors.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    TensorInfo t = read_tensor_info(c, k);
    if (tensor_index.count(t.name)) throw Error("duplicate tensor name '" + t.name + "'");
    tensor_index.emplace(t.name, tensors.size());
    tensors.push_back(std::move(t));
  }

  data_offset = (c.pos() + alignment - 1) / alignment * alignment;
  if (n_tensors > 0 && data_offset > size) {
    throw Error("truncated GGUF file: tensor data would start at offset " + std::to_string(data_offset) +
                " beyond the end of the file (" + std::to_string(size) + " bytes)");
  }
  const uint64_t data_size = data_offset <= size ? size - data_offset : 0;
  for (TensorInfo& t : tensors) {
    if (t.offset % alignment != 0) {
      throw Error("tensor '" + t.name + "' is misaligned: offset " + std::to_string(t.offset) +
                  " is not a multiple of the alignment " + std::to_string(alignment));
    }
    if (t.offset > data_size || t.bytes > data_size - t.offset) {
      throw Error("tensor '" + t.name + "' is out of bounds: its " + std::to_string(t.bytes) + " bytes at data offset " +
                  std::to_string(t.offset) + " run past the end of the file (data section holds " +
                  std::to_string(data_size) + " bytes); the file may be truncated");
    }
    t.data = base + data_offset + t.offset;
  }
  // Tensors must not overlap (a corrupt table could alias one weight onto another).
  std::vector<const TensorInfo*> by_offset;
  for (const TensorInfo& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(), [](const TensorInfo* a, const TensorInfo* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const TensorInfo& prev = *by_offset[k - 1];
    if (prev.offset + prev.bytes > by_offset[k]->offset) {
      throw Error("tensors '" + prev.name + "' and '" + by_offset[k]->name + "' overlap in the data section");
    }
  }
}

}  // namespace tq::gguf
