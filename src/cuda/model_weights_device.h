#pragma once
// A model's weights in device memory: matrices as f16 in GGUF's row layout (`out` rows
// of `in`), norm weights and biases as f32. Absent optional tensors are null.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "turboquant/model.h"

namespace tq {
struct ModelWeights;
class ThreadPool;
}  // namespace tq

namespace tq::cuda {

struct DeviceLayerWeights {
  const uint16_t *wq = nullptr, *wk = nullptr, *wv = nullptr, *wo = nullptr;
  const uint16_t *w_gate = nullptr, *w_up = nullptr, *w_down = nullptr;
  const float *attn_norm = nullptr, *ffn_norm = nullptr;
  const float *bq = nullptr, *bk = nullptr, *bv = nullptr, *bo = nullptr;
  const float *q_norm = nullptr, *k_norm = nullptr, *attn_post_norm = nullptr, *ffn_post_norm = nullptr;
};

class DeviceWeights {
 public:
  // Dequantizes each matrix on `pool` (qmatrix_row, the CPU runner's own conversion),
  // rounds it to f16 and uploads it. tq::Error naming the tensor when a value is beyond
  // f16's range, or for a failed allocation.
  DeviceWeights(const ModelWeights& w, const ModelConfig& c, ThreadPool& pool);
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
