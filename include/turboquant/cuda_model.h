#pragma once
// The GGUF model runner on a CUDA device: the forward pass of tq::Model (model.h) with
// its weights in device memory as f16 and its KV cache a DeviceKvCache (cuda.h), written
// by quantize_on_write (prefill included) and read by decode_attention.
//
// Matrix products are cuBLAS GEMMs, f16 weights and activations, f32 accumulation and
// output; the residual stream, norms, RoPE and activations stay f32. Weights are
// dequantized once on the host from the file's types (the CPU runner's dequantization)
// and rounded to f16, so logits differ from the CPU's WeightFormat::f32 run by f16
// rounding of weights and GEMM inputs (relative 2^-11 per element), not by 8-bit
// activation rounding as the quantized CPU kernels do.
//
// Prefill is causal attention over the compressed cache in one launch: the n new tokens
// are written first, then decode_attention runs with one "sequence" per token, every
// row's block table the sequence's own and row i's length pos0 + i + 1. Sliding-window
// layers (Gemma 3) pass the window to decode_attention, which applies it to each row's
// own length: row i sees positions (pos0 + i - window, pos0 + i], as the CPU runner.
//
// Not supported (a tq::Error naming it, never a silent difference): attention logit
// softcapping (decode_attention has none).
#include <cstdint>
#include <memory>
#include <vector>

#include "turboquant/cuda.h"
#include "turboquant/model.h"

namespace tq::cuda {

// Which physical blocks of a DeviceKvCache each sequence owns, and how many tokens it
// holds: the host-side page table the forward pass hands to the kernels.
class DeviceSequences {
 public:
  explicit DeviceSequences(const DeviceKvCache& cache);
  int add_sequence();  // the smallest unused id; tq::Error when num_blocks() ids are live
  void remove_sequence(int seq);
  bool has_sequence(int seq) const;
  int length(int seq) const;
  const std::vector<int32_t>& blocks(int seq) const;
  // Gives `seq` the blocks for n more tokens (tq::Error naming the pool when it is full,
  // nothing taken then), without changing its length.
  void reserve(int seq, int n);
  void advance(int seq, int n);  // after the tokens were written
  int block_tokens() const { return block_tokens_; }
  int free_blocks() const { return static_cast<int>(free_.size()); }

 private:
  struct Seq {
    bool live = false;
    int length = 0;
    std::vector<int32_t> blocks;
  };
  const Seq& at(int seq) const;
  Seq& at(int seq);
  int block_tokens_ = 0;
  std::vector<Seq> seqs_;
  std::vector<int32_t> free_;  // physical block ids, taken from the back
};

class DeviceModel {
 public:
  // Uploads `model`'s weights (dequantized on its thread pool, rounded to f16) and keeps
  // its configuration and Q/K balance as they are now. tq::Error without a device, for
  // an architecture switch the device path lacks (above), or a failed allocation.
  explicit DeviceModel(Model& model);
  ~DeviceModel();
  DeviceModel(const DeviceModel&) = delete;
  DeviceModel& operator=(const DeviceModel&) = delete;

  const ModelConfig& config() const;
  size_t weight_bytes() const;  // device bytes of the f16 weights

  // Runs n tokens of `seq` at positions seqs.length(seq) .. +n-1, as Model::forward:
  // logits (host) [n][vocab] when all_logits, else [vocab] for the last token.
  void forward(const int32_t* tokens, int n, DeviceKvCache& cache, DeviceSequences& seqs, int seq, float* logits,
               bool all_logits);

  // One decode step of `batch` sequences sharing the cache's pool: token i goes to
  // seq_ids[i] (distinct) at its next position; logits (host) [batch][vocab].
  void decode_batch(const int32_t* tokens, const int* seq_ids, int batch, DeviceKvCache& cache,
                    DeviceSequences& seqs, float* logits);

  // Decode steps (one token per sequence) as CUDA graphs: each step's launches replayed
  // from one capture per (cache, batch size), the attention split for the cache's whole
  // capacity so the shapes stay fixed. Off by default.
  void use_graphs(bool on);
  // Frees the captured steps; call it before destroying a cache that stepped with graphs
  // (a later cache could otherwise be taken for it).
  void drop_graphs();

  // The Q/K balance taken from the model at construction (if it had one) applied to later
  // forward passes, or not: a calibrated cache (tq3, ...) takes the keys as the model makes
  // them, as on the CPU (QkBalancePause). On by default; a change drops captured steps.
  void use_qk_balance(bool on);

  // Waits for the device (timings).
  void synchronize() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace tq::cuda
