// libtq_cuda_runner.so: the device model behind `--device cuda` (cuda_runner_backend.h).
// Built only with the CUDA model runner (tq_cuda_model); tq loads it on demand.
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include <cuda_profiler_api.h>

#include "cuda_runner_backend.h"
#include "turboquant/cuda.h"
#include "turboquant/cuda_model.h"

namespace tq::cli {
namespace {

// One sequence's cache on the device, for tq eval (which runs several side by side).
class DeviceEvalCache final : public EvalCache {
 public:
  explicit DeviceEvalCache(const KvCacheConfig& cfg) : cache(cfg), seqs(cache), seq(seqs.add_sequence()) {}
  int length() const override { return seqs.length(seq); }
  // The counts of KvCache, from the same plan: the blocks it holds, all layers, K + V.
  size_t bytes_used() const override { return cache.plan().bytes_per_block() * seqs.blocks(seq).size(); }
  size_t bytes_per_token() const override { return cache.plan().bytes_per_token(); }
  size_t sink_bytes() const override { return cache.plan().sink_bytes(); }
  cuda::DeviceKvCache cache;
  cuda::DeviceSequences seqs;
  int seq;
};

class DeviceRunner final : public CudaRunnerBackend {
 public:
  DeviceRunner(Model& m, bool graphs) : model_(m) { model_.use_graphs(graphs); }

  void reset_cache(const KvCacheConfig& cfg, int sequences) override {
    model_.drop_graphs();
    seqs_.reset();
    cache_.reset();
    cache_ = std::make_unique<cuda::DeviceKvCache>(cfg);
    seqs_ = std::make_unique<cuda::DeviceSequences>(*cache_);
    ids_.resize(sequences);
    for (int& id : ids_) id = seqs_->add_sequence();
  }
  void forward(int seq, const int32_t* tokens, int n, float* logits) override {
    model_.forward(tokens, n, *cache_, *seqs_, ids_.at(seq), logits, false);
  }
  void decode_all(const int32_t* tokens, float* logits) override {
    if (profile_decode_ && !profiling_) profiling_ = cudaProfilerStart() == cudaSuccess;
    model_.decode_batch(tokens, ids_.data(), static_cast<int>(ids_.size()), *cache_, *seqs_, logits);
  }
  int length(int seq) const override { return seqs_->length(ids_.at(seq)); }
  std::string device_name() const override { return cuda::device_name(); }
  size_t weight_bytes() const override { return model_.weight_bytes(); }
  std::unique_ptr<EvalCache> new_eval_cache(const KvCacheConfig& cfg) override {
    return std::make_unique<DeviceEvalCache>(cfg);
  }
  void eval_forward(EvalCache& cache, const int32_t* tokens, int n, float* logits, bool all_logits,
                    bool qk_balance) override {
    auto& c = dynamic_cast<DeviceEvalCache&>(cache);
    model_.use_qk_balance(qk_balance);
    model_.forward(tokens, n, c.cache, c.seqs, c.seq, logits, all_logits);
  }

 private:
  cuda::DeviceModel model_;
  std::unique_ptr<cuda::DeviceKvCache> cache_;
  std::unique_ptr<cuda::DeviceSequences> seqs_;
  std::vector<int> ids_;
  // TQ_CUDA_PROFILE_DECODE=1: a profiler started with --profile-from-start off (ncu)
  // records from the first batched decode step on, past the untimed cache fill. Read once,
  // not on every step.
  const bool profile_decode_ = std::getenv("TQ_CUDA_PROFILE_DECODE") != nullptr;
  bool profiling_ = false;
};

}  // namespace
}  // namespace tq::cli

extern "C" __attribute__((visibility("default"))) tq::cli::CudaRunnerBackend* tq_make_cuda_runner(
    tq::Model& model, bool graphs, std::string* error) {
  try {
    if (!tq::cuda::device_available()) {
      *error = "this tq has the CUDA backend but the CUDA runtime sees no GPU";
      return nullptr;
    }
    return new tq::cli::DeviceRunner(model, graphs);
  } catch (const std::exception& e) {
    *error = e.what();
    return nullptr;
  }
}
