// The ggml type table: one row per type (name, block size, bytes, reference functions),
// and the public entry points that dispatch through it.
#include <array>
#include <limits>
#include <string>

#include "ggml_types.h"
#include "turboquant/error.h"

namespace tq::gguf {
namespace {

using T = GgmlType;
// Types the reader can name but not convert have null functions; their sizes are still
// listed so that `tq inspect` can show a tensor's bytes. Types with a block struct take
// their size from it.
constexpr TypeTraits kTypes[] = {
    {T::F32, "F32", 1, 4, dequantize_f32, quantize_f32},
    {T::F16, "F16", 1, 2, dequantize_f16, quantize_f16},
    {T::Q4_0, "Q4_0", 32, sizeof(blocks::Q4_0), dequantize_q4_0, quantize_q4_0},
    {T::Q4_1, "Q4_1", 32, sizeof(blocks::Q4_1), dequantize_q4_1, quantize_q4_1},
    {T::Q5_0, "Q5_0", 32, sizeof(blocks::Q5_0), dequantize_q5_0, quantize_q5_0},
    {T::Q5_1, "Q5_1", 32, sizeof(blocks::Q5_1), dequantize_q5_1, quantize_q5_1},
    {T::Q8_0, "Q8_0", 32, sizeof(blocks::Q8_0), dequantize_q8_0, quantize_q8_0},
    {T::Q8_1, "Q8_1", 32, sizeof(blocks::Q8_1), dequantize_q8_1, nullptr},
    {T::Q2_K, "Q2_K", 256, sizeof(blocks::Q2_K), dequantize_q2_k, nullptr},
    {T::Q3_K, "Q3_K", 256, sizeof(blocks::Q3_K), dequantize_q3_k, nullptr},
    {T::Q4_K, "Q4_K", 256, sizeof(blocks::Q4_K), dequantize_q4_k, nullptr},
    {T::Q5_K, "Q5_K", 256, sizeof(blocks::Q5_K), dequantize_q5_k, nullptr},
    {T::Q6_K, "Q6_K", 256, sizeof(blocks::Q6_K), dequantize_q6_k, nullptr},
    {T::Q8_K, "Q8_K", 256, sizeof(blocks::Q8_K), dequantize_q8_k, nullptr},
    {T::IQ2_XXS, "IQ2_XXS", 256, 66, nullptr, nullptr},
    {T::IQ2_XS, "IQ2_XS", 256, 74, nullptr, nullptr},
    {T::IQ3_XXS, "IQ3_XXS", 256, 98, nullptr, nullptr},
    {T::IQ1_S, "IQ1_S", 256, 50, nullptr, nullptr},
    {T::IQ4_NL, "IQ4_NL", 32, 18, nullptr, nullptr},
    {T::IQ3_S, "IQ3_S", 256, 110, nullptr, nullptr},
    {T::IQ2_S, "IQ2_S", 256, 82, nullptr, nullptr},
    {T::IQ4_XS, "IQ4_XS", 256, 136, nullptr, nullptr},
    {T::I8, "I8", 1, 1, nullptr, nullptr},
    {T::I16, "I16", 1, 2, nullptr, nullptr},
    {T::I32, "I32", 1, 4, nullptr, nullptr},
    {T::I64, "I64", 1, 8, nullptr, nullptr},
    {T::F64, "F64", 1, 8, nullptr, nullptr},
    {T::IQ1_M, "IQ1_M", 256, 56, nullptr, nullptr},
    {T::BF16, "BF16", 1, 2, dequantize_bf16, quantize_bf16},
};

std::string type_label(GgmlType t) {
  const TypeTraits* tr = find_traits(t);
  return tr ? std::string(tr->name) : "type#" + std::to_string(static_cast<uint32_t>(t));
}

}  // namespace

const TypeTraits* find_traits(GgmlType t) {
  for (const TypeTraits& tr : kTypes) {
    if (tr.type == t) return &tr;
  }
  return nullptr;
}

const TypeTraits& supported_traits(GgmlType t) {
  const TypeTraits* tr = find_traits(t);
  if (tr == nullptr || tr->dequantize == nullptr) {
    throw Error("ggml tensor type " + type_label(t) + " is not supported");
  }
  return *tr;
}

std::string_view type_name(GgmlType t) {
  const TypeTraits* tr = find_traits(t);
  if (tr) return tr->name;
  // Unknown ids get a stable label; a small table keeps the view valid.
  static const std::array<std::string, 64> labels = [] {
    std::array<std::string, 64> a;
    for (size_t i = 0; i < a.size(); ++i) a[i] = "type#" + std::to_string(i);
    return a;
  }();
  const auto id = static_cast<uint32_t>(t);
  return id < labels.size() ? std::string_view(labels[id]) : std::string_view("type#?");
}

bool type_supported(GgmlType t) {
  const TypeTraits* tr = find_traits(t);
  return tr != nullptr && tr->dequantize != nullptr;
}

size_t type_block_elements(GgmlType t) { return supported_traits(t).block_elements; }
size_t type_block_bytes(GgmlType t) { return supported_traits(t).block_bytes; }

size_t type_bytes(GgmlType t, uint64_t n_elements) {
  const TypeTraits* tr = find_traits(t);
  if (tr == nullptr) throw Error("unknown ggml tensor type " + type_label(t));
  if (n_elements % tr->block_elements != 0) {
    throw Error(std::to_string(n_elements) + " elements is not a whole number of " + tr->name + " blocks of " +
                std::to_string(tr->block_elements));
  }
  const uint64_t blocks = n_elements / tr->block_elements;
  if (blocks > std::numeric_limits<size_t>::max() / tr->block_bytes) {
    throw Error("tensor of " + std::to_string(n_elements) + " " + tr->name + " elements is too large");
  }
  return static_cast<size_t>(blocks * tr->block_bytes);
}

void dequantize(GgmlType t, const uint8_t* data, size_t n_elements, float* out) {
  const TypeTraits& tr = supported_traits(t);
  if (n_elements % tr.block_elements != 0) {
    throw Error("dequantize " + std::string(tr.name) + ": " + std::to_string(n_elements) +
                " elements is not a multiple of the block size " + std::to_string(tr.block_elements));
  }
  if (n_elements == 0) return;  // an empty tensor may have no data pointer at all
  tr.dequantize(data, n_elements / tr.block_elements, out);
}

void dequantize_row(const TensorInfo& t, size_t row, float* out) {
  if (row >= t.rows()) {
    throw Error("tensor " + t.name + ": row " + std::to_string(row) + " out of range (" + std::to_string(t.rows()) +
                " rows)");
  }
  const size_t row_bytes = t.row_bytes();
  dequantize(t.type, t.data + row * row_bytes, static_cast<size_t>(t.row_elements()), out);
}

std::vector<float> dequantize_tensor(const TensorInfo& t) {
  std::vector<float> out(static_cast<size_t>(t.elements()));
  dequantize(t.type, t.data, out.size(), out.data());
  return out;
}

std::vector<uint8_t> quantize(GgmlType t, const float* x, size_t n_elements) {
  const TypeTraits* tr = find_traits(t);
  if (tr == nullptr || tr->quantize == nullptr) throw Error("quantizing to " + type_label(t) + " is not supported");
  std::vector<uint8_t> out(type_bytes(t, n_elements));
  tr->quantize(x, n_elements / tr->block_elements, out.data());
  return out;
}

uint64_t TensorInfo::elements() const {
  uint64_t n = 1;
  for (uint64_t d : shape) n *= d;
  return n;
}

uint64_t TensorInfo::rows() const {
  const uint64_t re = row_elements();
  return re == 0 ? 0 : elements() / re;
}

size_t TensorInfo::row_bytes() const { return type_bytes(type, row_elements()); }

}  // namespace tq::gguf
