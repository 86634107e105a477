#pragma once
// `--device cuda` for tq run and tq bench model: the model on the CUDA device
// (turboquant/cuda_model.h) with a DeviceKvCache built from the same KvCacheConfig the
// CPU path would use. The device code lives in libtq_cuda_runner.so (cuda_runner_backend.h),
// loaded on the first CudaRunner. In a tq built without the CUDA backend, with the module
// missing, or on a machine without a GPU, constructing one is a tq::Error that says which.
#include <cstdint>
#include <memory>
#include <string>

#include "turboquant/eval_model.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq::cli {

class CudaRunnerBackend;  // cuda_runner_backend.h: what the module implements

// --device cpu|cuda; tq::Error otherwise.
bool parse_device_is_cuda(const std::string& device);

class CudaRunner {
 public:
  // Uploads the weights; graphs: decode steps as CUDA graphs (DeviceModel::use_graphs).
  CudaRunner(Model& model, bool graphs);
  ~CudaRunner();
  CudaRunner(const CudaRunner&) = delete;
  CudaRunner& operator=(const CudaRunner&) = delete;

  // A fresh device cache of `cfg` holding `sequences` empty sequences (ids 0..n-1).
  void reset_cache(const KvCacheConfig& cfg, int sequences);
  // n tokens of sequence `seq`; logits of the last one ([vocab], host).
  void forward(int seq, const int32_t* tokens, int n, float* logits);
  // One token for each sequence of the cache; logits [sequences][vocab].
  void decode_all(const int32_t* tokens, float* logits);
  int length(int seq) const;
  std::string device_name() const;
  size_t weight_bytes() const;
  // tq eval's caches (CudaRunnerBackend::new_eval_cache / eval_forward).
  std::unique_ptr<EvalCache> new_eval_cache(const KvCacheConfig& cfg);
  void eval_forward(EvalCache& cache, const int32_t* tokens, int n, float* logits, bool all_logits, bool qk_balance);

 private:
  std::unique_ptr<CudaRunnerBackend> backend_;
};

// tq eval --device cuda: the eval's caches and forward passes on the device, through a
// CudaRunner of `model` (decode steps without CUDA graphs).
std::unique_ptr<EvalDevice> make_cuda_eval_device(Model& model);

}  // namespace tq::cli
