#pragma once
// GgufFile's private state: the bytes (a read-only mapping or an owned buffer), the parsed
// metadata and the tensor table. Shared by the parser (gguf_reader.cpp) and the accessors
// (gguf_file.cpp).
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "turboquant/gguf.h"

namespace tq::gguf {

// One metadata value. Arrays keep their elements in the vector that fits their type;
// integers of every width are widened to 64 bits (uint64 keeps its bit pattern in `ints`,
// `elem` says how to read it back).
struct Value {
  ValueType type = ValueType::UINT8;
  ValueType elem = ValueType::UINT8;  // element type of an ARRAY
  uint64_t count = 0;                 // elements of an ARRAY
  int64_t i = 0;                      // integer kinds and BOOL (uint64 as its bit pattern)
  double f = 0.0;                     // FLOAT32 / FLOAT64
  std::string s;                      // STRING
  std::vector<int64_t> ints;          // ARRAY of integers or bools
  std::vector<double> floats;         // ARRAY of FLOAT32 / FLOAT64
  std::vector<std::string> strings;   // ARRAY of STRING
  std::vector<Value> nested;          // ARRAY of ARRAY
};

struct GgufFile::Impl {
  // Exactly one of mapping / owned holds the bytes.
  void* mapping = nullptr;
  size_t mapping_size = 0;
  std::vector<uint8_t> owned;
  const uint8_t* base = nullptr;
  uint64_t size = 0;

  uint32_t version = 0;
  uint64_t alignment = 32;
  uint64_t data_offset = 0;
  std::vector<std::pair<std::string, Value>> kv;  // file order
  std::map<std::string, size_t, std::less<>> kv_index;
  std::vector<TensorInfo> tensors;
  std::map<std::string, size_t, std::less<>> tensor_index;

  ~Impl();
  // Parses base[0, size): fills everything above or throws tq::Error.
  void parse();
  const Value& value(std::string_view key) const;  // tq::Error if missing
};

}  // namespace tq::gguf
