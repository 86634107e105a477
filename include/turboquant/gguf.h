#pragma once
// GGUF (ggml's model file format, versions 2 and 3): a memory-mapped, read-only reader,
// dequantization of ggml's tensor types to f32, and a small writer for tests.
//
// File layout (little-endian): magic "GGUF", u32 version, u64 tensor count, u64 metadata
// count, the metadata key/value pairs, the tensor infos (name, dims, type, offset), then
// padding to `general.alignment` (default 32) and the tensor data, each tensor at its
// offset relative to the start of the data section. docs/FORMATS.md, "GGUF tensor types",
// describes each block layout.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tq::gguf {

// ggml tensor types by their on-disk id. Ids absent here (4, 5: removed Q4_2/Q4_3) are
// rejected as unknown.
enum class GgmlType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
};

// Metadata value kinds by their on-disk id.
enum class ValueType : uint32_t {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
};

struct TensorInfo {
  std::string name;
  std::vector<uint64_t> shape;  // ggml order: shape[0] is the contiguous (row) dimension
  GgmlType type = GgmlType::F32;
  uint64_t offset = 0;          // from the start of the data section
  const uint8_t* data = nullptr;  // points into the file mapping; valid while the file lives
  size_t bytes = 0;             // elements() / block elements * block bytes

  uint64_t elements() const;
  uint64_t row_elements() const { return shape.empty() ? 1 : shape[0]; }
  uint64_t rows() const;        // elements() / row_elements()
  size_t row_bytes() const;     // bytes of one row of row_elements()
};

class GgufFile {  // memory-mapped, read-only; movable, not copyable
 public:
  // Throws tq::Error naming the problem: truncated, bad magic, bad version, unknown
  // metadata or tensor type, duplicate key or tensor, tensor out of bounds, misaligned, ...
  static GgufFile open(const std::string& path);
  // The same parser over bytes held in memory (tests, fuzzer).
  static GgufFile from_memory(std::vector<uint8_t> bytes);

  GgufFile(GgufFile&&) noexcept;
  GgufFile& operator=(GgufFile&&) noexcept;
  GgufFile(const GgufFile&) = delete;
  GgufFile& operator=(const GgufFile&) = delete;
  ~GgufFile();

  uint32_t version() const;
  uint64_t alignment() const;    // general.alignment, default 32
  uint64_t data_offset() const;  // file offset of the tensor data section
  uint64_t file_size() const;

  bool has(std::string_view key) const;
  ValueType value_type(std::string_view key) const;       // tq::Error if missing
  ValueType array_type(std::string_view key) const;       // element type; tq::Error if not an array
  uint64_t array_size(std::string_view key) const;        // tq::Error if not an array

  // Typed getters: tq::Error if the key is missing or holds another kind. get_int accepts
  // every integer kind (a uint64 above INT64_MAX is an error); get_float accepts float32,
  // float64 and integers.
  std::string get_string(std::string_view key) const;
  std::string get_string(std::string_view key, std::string_view fallback) const;
  int64_t get_int(std::string_view key) const;
  int64_t get_int(std::string_view key, int64_t fallback) const;
  double get_float(std::string_view key) const;
  double get_float(std::string_view key, double fallback) const;
  bool get_bool(std::string_view key) const;
  bool get_bool(std::string_view key, bool fallback) const;
  std::vector<std::string> get_string_array(std::string_view key) const;
  std::vector<float> get_float_array(std::string_view key) const;   // float32/float64/integer arrays
  std::vector<int64_t> get_int_array(std::string_view key) const;   // integer (and bool) arrays

  std::vector<std::string> keys() const;  // in file order
  // Human-readable value for `tq inspect`: long arrays are abbreviated to their first few
  // elements and their length, long strings are cut.
  std::string value_to_string(std::string_view key) const;

  const std::vector<TensorInfo>& tensors() const;
  const TensorInfo* find_tensor(std::string_view name) const;  // nullptr if absent
  const TensorInfo& tensor(std::string_view name) const;       // tq::Error if absent

 private:
  struct Impl;
  explicit GgufFile(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

std::string_view type_name(GgmlType t);           // "Q4_K", or "type#N" for unknown ids
std::string_view value_type_name(ValueType t);    // "uint32", "string", ...
bool type_supported(GgmlType t);                  // dequantize() handles it
size_t type_block_elements(GgmlType t);           // tq::Error if unsupported
size_t type_block_bytes(GgmlType t);              // tq::Error if unsupported
// Bytes of n elements of type t; tq::Error if n is not a multiple of the block size.
size_t type_bytes(GgmlType t, uint64_t n_elements);

// Reference (scalar) dequantization; n_elements must be a multiple of the block size.
void dequantize(GgmlType t, const uint8_t* data, size_t n_elements, float* out);
// One row of shape[0] elements.
void dequantize_row(const TensorInfo& t, size_t row, float* out);
// The whole tensor, elements() floats.
std::vector<float> dequantize_tensor(const TensorInfo& t);

// Reference quantization (round to nearest, ggml's reference rules), for writing test
// models. Supports F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; tq::Error otherwise.
std::vector<uint8_t> quantize(GgmlType t, const float* x, size_t n_elements);

class GgufWriter {  // builds a GGUF v3 file in memory, for tests and tiny random models
 public:
  void add_string(std::string key, std::string v);
  void add_int(std::string key, int64_t v);      // INT64
  void add_int32(std::string key, int32_t v);
  void add_uint32(std::string key, uint32_t v);
  void add_float(std::string key, float v);      // FLOAT32
  void add_bool(std::string key, bool v);
  void add_string_array(std::string key, const std::vector<std::string>& v);
  void add_float_array(std::string key, const std::vector<float>& v);   // FLOAT32 elements
  void add_int_array(std::string key, const std::vector<int32_t>& v);   // INT32 elements
  void set_alignment(uint32_t alignment);        // writes general.alignment; default 32

  // `data` must hold exactly type_bytes(type, product of shape) bytes.
  void add_tensor(std::string name, std::vector<uint64_t> shape, GgmlType type, std::vector<uint8_t> data);
  void add_tensor_f32(std::string name, std::vector<uint64_t> shape, const std::vector<float>& v);
  // Quantizes v with quantize(type, ...) first.
  void add_tensor_quantized(std::string name, std::vector<uint64_t> shape, GgmlType type, const std::vector<float>& v);

  std::vector<uint8_t> bytes() const;
  // Refuses (tq::Error) to replace an existing file unless overwrite is true.
  void write(const std::string& path, bool overwrite = false) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> shape;
    GgmlType type;
    std::vector<uint8_t> data;
  };
  void add_raw(std::string key, ValueType type, std::vector<uint8_t> payload);
  std::vector<std::pair<std::string, std::vector<uint8_t>>> kv_;  // key, (type id + value) bytes
  std::vector<Tensor> tensors_;
  uint32_t alignment_ = 32;
};

}  // namespace tq::gguf
