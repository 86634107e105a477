#pragma once
// The interface between tq and its CUDA runner module (libtq_cuda_runner.so). The module
// holds the device model and links cuBLAS; tq loads it with dlopen only for --device cuda,
// so a CPU run does not map cuBLAS (about 140 MiB resident once loaded: its code and
// its static data, most of it initialized at load).
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "turboquant/eval.h"
#include "turboquant/kv_cache.h"
#include "turboquant/model.h"

namespace tq::cli {

class CudaRunnerBackend {
 public:
  virtual ~CudaRunnerBackend() = default;
  virtual void reset_cache(const KvCacheConfig& cfg, int sequences) = 0;
  virtual void forward(int seq, const int32_t* tokens, int n, float* logits) = 0;
  virtual void decode_all(const int32_t* tokens, float* logits) = 0;
  virtual int length(int seq) const = 0;
  virtual std::string device_name() const = 0;
  virtual size_t weight_bytes() const = 0;
  // tq eval --device cuda: caches side by side, one sequence each (EvalDevice, eval_model.h).
  virtual std::unique_ptr<EvalCache> new_eval_cache(const KvCacheConfig& cfg) = 0;
  virtual void eval_forward(EvalCache& cache, const int32_t* tokens, int n, float* logits, bool all_logits,
                            bool qk_balance) = 0;
};

// The module's one exported function: the runner for `model` (weights uploaded), or
// nullptr with *error set (no GPU, a CUDA error); never throws across the boundary.
using MakeCudaRunnerFn = CudaRunnerBackend* (*)(Model& model, bool graphs, std::string* error);
inline constexpr const char* kMakeCudaRunnerSymbol = "tq_make_cuda_runner";
inline constexpr const char* kCudaRunnerModuleName = "libtq_cuda_runner.so";

}  // namespace tq::cli
