// libtq_cuda_runner.so: the device model behind `--device cuda` (cuda_runner_backend.h).
// Built only with the CUDA model runner (tq_cuda_model); tq loads it on demand.
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "cuda_runner_backend.h"
#include "turboquant/cuda.h"
#include "turboquant/cuda_model.h"

namespace tq::cli {
namespace {

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
    model_.decode_batch(tokens, ids_.data(), static_cast<int>(ids_.size()), *cache_, *seqs_, logits);
  }
  int length(int seq) const override { return seqs_->length(ids_.at(seq)); }
  std::string device_name() const override { return cuda::device_name(); }
  size_t weight_bytes() const override { return model_.weight_bytes(); }

 private:
  cuda::DeviceModel model_;
  std::unique_ptr<cuda::DeviceKvCache> cache_;
  std::unique_ptr<cuda::DeviceSequences> seqs_;
  std::vector<int> ids_;
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
