#include "cuda_runner.h"

#include <vector>

#include "turboquant/error.h"

#ifdef TQ_HAVE_CUDA_MODEL
#include "turboquant/cuda.h"
#include "turboquant/cuda_model.h"
#endif

namespace tq::cli {

bool parse_device_is_cuda(const std::string& device) {
  if (device == "cpu") return false;
  if (device == "cuda") {
#ifndef TQ_HAVE_CUDA_MODEL
    throw Error("--device cuda: this tq was built without the CUDA backend (configure with -DTQ_CUDA=ON on a machine "
                "with nvcc)");
#endif
    return true;
  }
  throw Error("--device: expected cpu or cuda, got '" + device + "'");
}

#ifdef TQ_HAVE_CUDA_MODEL

struct CudaRunner::Impl {
  cuda::DeviceModel model;
  std::unique_ptr<cuda::DeviceKvCache> cache;
  std::unique_ptr<cuda::DeviceSequences> seqs;
  std::vector<int> ids;
  explicit Impl(Model& m) : model(m) {}
};

namespace {
Model& require_device(Model& m) {
  if (!cuda::device_available())
    throw Error("--device cuda: this tq has the CUDA backend but the CUDA runtime sees no GPU");
  return m;
}
}  // namespace

CudaRunner::CudaRunner(Model& model, bool graphs) : impl_(new Impl(require_device(model))) {
  impl_->model.use_graphs(graphs);
}

void CudaRunner::reset_cache(const KvCacheConfig& cfg, int sequences) {
  impl_->model.drop_graphs();
  impl_->seqs.reset();
  impl_->cache.reset();
  impl_->cache = std::make_unique<cuda::DeviceKvCache>(cfg);
  impl_->seqs = std::make_unique<cuda::DeviceSequences>(*impl_->cache);
  impl_->ids.resize(sequences);
  for (int& id : impl_->ids) id = impl_->seqs->add_sequence();
}

void CudaRunner::forward(int seq, const int32_t* tokens, int n, float* logits) {
  impl_->model.forward(tokens, n, *impl_->cache, *impl_->seqs, impl_->ids.at(seq), logits, false);
}

void CudaRunner::decode_all(const int32_t* tokens, float* logits) {
  impl_->model.decode_batch(tokens, impl_->ids.data(), static_cast<int>(impl_->ids.size()), *impl_->cache,
                            *impl_->seqs, logits);
}

int CudaRunner::length(int seq) const { return impl_->seqs->length(impl_->ids.at(seq)); }
std::string CudaRunner::device_name() const { return cuda::device_name(); }
size_t CudaRunner::weight_bytes() const { return impl_->model.weight_bytes(); }

#else  // a tq without the CUDA backend

struct CudaRunner::Impl {};

CudaRunner::CudaRunner(Model&, bool) {
  throw Error("--device cuda: this tq was built without the CUDA backend (configure with -DTQ_CUDA=ON on a machine "
              "with nvcc)");
}
void CudaRunner::reset_cache(const KvCacheConfig&, int) {}
void CudaRunner::forward(int, const int32_t*, int, float*) {}
void CudaRunner::decode_all(const int32_t*, float*) {}
int CudaRunner::length(int) const { return 0; }
std::string CudaRunner::device_name() const { return ""; }
size_t CudaRunner::weight_bytes() const { return 0; }

#endif

CudaRunner::~CudaRunner() = default;

}  // namespace tq::cli
