#include "model_weights_device.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "cuda_check.h"
#include "model_weights.h"
#include "qmatmul.h"
#include "turboquant/error.h"
#include "turboquant/half.h"
#include "turboquant/thread_pool.h"

namespace tq::cuda {

using detail::check_cuda;

// Rows converted per upload: bounds the host staging buffer (a few MiB).
constexpr int kRowsPerChunk = 256;

struct WeightUploader {
  DeviceWeights& dw;
  ThreadPool& pool;

  const uint16_t* matrix(const model::QMatrix& m) {
    const size_t cols = static_cast<size_t>(m.cols);
    auto* dev = static_cast<uint16_t*>(dw.allocate(cols * m.rows * sizeof(uint16_t)));
    std::vector<uint16_t> staging(cols * kRowsPerChunk);
    for (int r0 = 0; r0 < m.rows; r0 += kRowsPerChunk) {
      const int rows = std::min(kRowsPerChunk, m.rows - r0);
      std::vector<int> overflow(rows, -1);  // first column beyond f16's range, per row
      pool.parallel_for(rows, [&](int i) {
        std::vector<float> row(cols);
        model::qmatrix_row(m, r0 + i, row.data());
        for (size_t j = 0; j < cols; ++j) {
          if (std::abs(row[j]) > 65504.f && overflow[i] < 0) overflow[i] = static_cast<int>(j);
          staging[i * cols + j] = float_to_half(row[j]);
        }
      });
      for (int i = 0; i < rows; ++i)
        if (overflow[i] >= 0)
          throw Error("tensor " + m.name + " row " + std::to_string(r0 + i) + " column " + std::to_string(overflow[i]) +
                      " is beyond f16's range: the CUDA runner holds weights as f16");
      check_cuda(cudaMemcpy(dev + static_cast<size_t>(r0) * cols, staging.data(), cols * rows * sizeof(uint16_t),
                            cudaMemcpyHostToDevice),
                 "cudaMemcpy (weights)");
    }
    return dev;
  }
};

void* DeviceWeights::allocate(size_t n) {
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, std::max<size_t>(n, 1)), "cudaMalloc (model weights)");
  allocations_.push_back(p);
  bytes += n;
  return p;
}

const float* DeviceWeights::upload(const std::vector<float>& v) {
  if (v.empty()) return nullptr;
  auto* p = static_cast<float*>(allocate(v.size() * sizeof(float)));
  check_cuda(cudaMemcpy(p, v.data(), v.size() * sizeof(float), cudaMemcpyHostToDevice), "cudaMemcpy (weights)");
  return p;
}

DeviceWeights::DeviceWeights(const ModelWeights& w, const ModelConfig& c, ThreadPool& pool) {
  try {
    WeightUploader up{*this, pool};
    tok_embd = up.matrix(w.tok_embd);
    output = w.output.empty() ? tok_embd : up.matrix(w.output);
    output_norm = upload(w.output_norm);
    layers.resize(c.n_layers);
    for (int il = 0; il < c.n_layers; ++il) {
      const LayerWeights& L = w.layers[il];
      DeviceLayerWeights& D = layers[il];
      D.wq = up.matrix(L.wq);
      D.wk = up.matrix(L.wk);
      D.wv = up.matrix(L.wv);
      D.wo = up.matrix(L.wo);
      D.w_gate = up.matrix(L.w_gate);
      D.w_up = up.matrix(L.w_up);
      D.w_down = up.matrix(L.w_down);
      D.attn_norm = upload(L.attn_norm);
      D.ffn_norm = upload(L.ffn_norm);
      D.bq = upload(L.bq);
      D.bk = upload(L.bk);
      D.bv = upload(L.bv);
      D.bo = upload(L.bo);
      D.q_norm = upload(L.q_norm);
      D.k_norm = upload(L.k_norm);
      D.attn_post_norm = upload(L.attn_post_norm);
      D.ffn_post_norm = upload(L.ffn_post_norm);
    }
  } catch (...) {
    for (void* p : allocations_) cudaFree(p);
    throw;
  }
}

DeviceWeights::~DeviceWeights() {
  for (void* p : allocations_) cudaFree(p);
}

}  // namespace tq::cuda
