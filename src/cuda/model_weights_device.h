#pragma once
// A model's weights in device memory: matrices as f16 in GGUF's row layout (`out` rows
// of `in`), norm weights and biases as f32. Absent optional tensors are null. Products
// that read the same input are stacked into one matrix (Q, K, V; gate, up), and query
// heads are laid out padded (HeadPadding) so one product writes decode_attention's
// layout and the output product reads it back.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "turboquant/model.h"

namespace tq {
struct ModelWeights;
class ThreadPool;
}  // namespace tq

namespace tq::cuda {

// Query heads in groups of `group` per KV head, each group followed by padded - group
// zero heads: decode_attention's group sizes (1, 2, 4, 8) then cover any model's.
struct HeadPadding {
  int group = 1, padded = 1, head_dim = 0;
  // Where coordinate i of the unpadded query layout [n_heads][head_dim] sits padded.
  int operator()(int i) const {
    const int h = i / head_dim;
    return ((h / group) * padded + h % group) * head_dim + i % head_dim;
  }
};

struct DeviceLayerWeights {
  // [n_kv·padded·head_dim + 2·n_kv·head_dim][dim]: padded query rows (zero rows for the
  // padding heads), then key rows, then value rows; its bias likewise (null: no biases).
  const uint16_t* wqkv = nullptr;
  const float* bqkv = nullptr;
  const uint16_t* wo = nullptr;         // [dim][n_kv·padded·head_dim]: zero columns for the padding
  const uint16_t* w_gate_up = nullptr;  // [2·ffn_dim][dim]: gate rows, then up rows
  const uint16_t* w_down = nullptr;
  const float *attn_norm = nullptr, *ffn_norm = nullptr;
  const float* bo = nullptr;
  const float *q_norm = nullptr, *k_norm = nullptr, *attn_post_norm = nullptr, *ffn_post_norm = nullptr;
};

class DeviceWeights {
 public:
  // Dequantizes each matrix on `pool` (qmatrix_row, the CPU runner's own conversion),
  // rounds it to f16 and uploads it. tq::Error naming the tensor when a value is beyond
  // f16's range, or for a failed allocation.
  DeviceWeights(const ModelWeights& w, const ModelConfig& c, const HeadPadding& pad, ThreadPool& pool);
  ~DeviceWeights();
  DeviceWeights(const DeviceWeights&) = delete;
  DeviceWeights& operator=(const DeviceWeights&) = delete;

  const uint16_t* tok_embd = nullptr;  // [vocab][dim]
  const uint16_t* output = nullptr;    // [vocab][dim]; tok_embd when tied
  const float* output_norm = nullptr;
  std::vector<DeviceLayerWeights> layers;
  size_t bytes = 0;

 private:
  void* allocate(size_t bytes);
  const float* upload(const std::vector<float>& v);  // null for an empty vector
  std::vector<void*> allocations_;
  friend struct WeightUploader;
};

}  // namespace tq::cuda
