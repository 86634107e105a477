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

// Where one source matrix goes in a stacked device matrix: its rows from `first_row`
// on (`row` maps a source row within its block, identity when null), its columns through
// `col` (identity when null) into rows of `cols` f16 values.
struct Placement {
  int first_row = 0;
  int cols = 0;
  const HeadPadding* row = nullptr;
  const HeadPadding* col = nullptr;
};

struct WeightUploader {
  DeviceWeights& dw;
  ThreadPool& pool;

  uint16_t* allocate(size_t rows, size_t cols) {
    return static_cast<uint16_t*>(dw.allocate(rows * cols * sizeof(uint16_t)));
  }

  // For a stacked matrix whose padding rows or columns no source fills.
  uint16_t* zeroed(size_t rows, size_t cols) {
    uint16_t* dev = allocate(rows, cols);
    check_cuda(cudaMemset(dev, 0, rows * cols * sizeof(uint16_t)), "cudaMemset (weights)");
    return dev;
  }

  // Converts m chunk by chunk and copies each run of rows that stay adjacent at their
  // destination in one transfer.
  void place(const model::QMatrix& m, uint16_t* dev, const Placement& at) {
    const size_t cols = static_cast<size_t>(at.cols);
    auto dst_row = [&](int r) { return at.first_row + (at.row ? (*at.row)(r) : r); };
    std::vector<uint16_t> staging(cols * kRowsPerChunk);
    for (int r0 = 0; r0 < m.rows; r0 += kRowsPerChunk) {
      const int rows = std::min(kRowsPerChunk, m.rows - r0);
      std::vector<int> overflow(rows, -1);  // first column beyond f16's range, per row
      pool.parallel_for(rows, [&](int i) {
        std::vector<float> row(m.cols);
        model::qmatrix_row(m, r0 + i, row.data());
        uint16_t* out = staging.data() + i * cols;
        for (int j = 0; j < m.cols; ++j) {
          if (std::abs(row[j]) > 65504.f && overflow[i] < 0) overflow[i] = j;
          out[at.col ? (*at.col)(j) : j] = float_to_half(row[j]);
        }
      });
      for (int i = 0; i < rows; ++i)
        if (overflow[i] >= 0)
          throw Error("tensor " + m.name + " row " + std::to_string(r0 + i) + " column " + std::to_string(overflow[i]) +
                      " is beyond f16's range: the CUDA runner holds weights as f16");
      for (int i = 0; i < rows;) {
        int run = 1;
        while (i + run < rows && dst_row(r0 + i + run) == dst_row(r0 + i) + run) ++run;
        check_cuda(cudaMemcpy(dev + static_cast<size_t>(dst_row(r0 + i)) * cols, staging.data() + i * cols,
                              cols * run * sizeof(uint16_t), cudaMemcpyHostToDevice),
                   "cudaMemcpy (weights)");
        i += run;
      }
    }
  }

  const uint16_t* matrix(const model::QMatrix& m) {  // every element written by place
    uint16_t* dev = allocate(m.rows, m.cols);
    place(m, dev, {0, m.cols});
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

// The stacked bias of `parts` (rows each, in order; an empty part gives zeros), or an
// empty vector when every part is empty.
std::vector<float> stacked_bias(const std::vector<std::pair<const std::vector<float>*, int>>& parts) {
  bool any = false;
  std::vector<float> out;
  for (const auto& [v, rows] : parts) {
    any = any || !v->empty();
    if (v->empty()) {
      out.insert(out.end(), rows, 0.f);
    } else {
      out.insert(out.end(), v->begin(), v->end());
    }
  }
  return any ? out : std::vector<float>{};
}

DeviceWeights::DeviceWeights(const ModelWeights& w, const ModelConfig& c, const HeadPadding& pad, ThreadPool& pool) {
  try {
    WeightUploader up{*this, pool};
    tok_embd = up.matrix(w.tok_embd);
    output = w.output.empty() ? tok_embd : up.matrix(w.output);
    output_norm = upload(w.output_norm);
    layers.resize(c.n_layers);
    const int q_dim = c.n_heads * c.head_dim, qp_dim = c.n_kv_heads * pad.padded * c.head_dim;
    const int kv_dim = c.n_kv_heads * c.head_dim;
    for (int il = 0; il < c.n_layers; ++il) {
      const LayerWeights& L = w.layers[il];
      DeviceLayerWeights& D = layers[il];
      uint16_t* qkv = up.zeroed(qp_dim + 2 * kv_dim, c.dim);
      up.place(L.wq, qkv, {0, c.dim, &pad});
      up.place(L.wk, qkv, {qp_dim, c.dim});
      up.place(L.wv, qkv, {qp_dim + kv_dim, c.dim});
      D.wqkv = qkv;
      std::vector<float> bq_padded;
      if (!L.bq.empty()) {
        bq_padded.assign(qp_dim, 0.f);
        for (int i = 0; i < q_dim; ++i) bq_padded[pad(i)] = L.bq[i];
      }
      D.bqkv = upload(stacked_bias({{&bq_padded, qp_dim}, {&L.bk, kv_dim}, {&L.bv, kv_dim}}));
      uint16_t* wo = up.zeroed(c.dim, qp_dim);
      up.place(L.wo, wo, {0, qp_dim, nullptr, &pad});
      D.wo = wo;
      uint16_t* gate_up = up.zeroed(2 * c.ffn_dim, c.dim);
      up.place(L.w_gate, gate_up, {0, c.dim});
      up.place(L.w_up, gate_up, {c.ffn_dim, c.dim});
      D.w_gate_up = gate_up;
      D.w_down = up.matrix(L.w_down);
      D.attn_norm = upload(L.attn_norm);
      D.ffn_norm = upload(L.ffn_norm);
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
