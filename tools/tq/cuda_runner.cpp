#include "cuda_runner.h"

#include <dlfcn.h>
#include <unistd.h>

#include <climits>
#include <memory>
#include <vector>

#include "cuda_runner_backend.h"
#include "turboquant/error.h"

namespace tq::cli {

namespace {

constexpr const char* kNoBackend =
    "--device cuda: this tq was built without the CUDA backend (configure with -DTQ_CUDA=ON on a machine with nvcc)";

#ifdef TQ_HAVE_CUDA_MODEL
// Where the module is looked for: next to the tq binary (the build tree), then where
// `cmake --install` puts it relative to the binary (<libdir>/turboquant).
std::vector<std::string> module_candidates() {
  char exe[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  std::string dir = ".";
  if (n > 0) {
    dir.assign(exe, static_cast<size_t>(n));
    dir = dir.substr(0, dir.find_last_of('/'));
  }
  return {dir + "/" + kCudaRunnerModuleName, dir + "/" + TQ_CUDA_RUNNER_INSTALL_DIR + "/" + kCudaRunnerModuleName};
}

// Opens the module once per process; it stays loaded (cuBLAS does not unload cleanly).
MakeCudaRunnerFn load_module() {
  static MakeCudaRunnerFn make = nullptr;
  if (make) return make;
  std::string tried;
  for (const std::string& path : module_candidates()) {
    if (void* h = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL)) {
      make = reinterpret_cast<MakeCudaRunnerFn>(dlsym(h, kMakeCudaRunnerSymbol));
      if (!make) throw Error("--device cuda: " + path + " lacks " + kMakeCudaRunnerSymbol);
      return make;
    }
    const char* why = dlerror();  // names the path
    tried += "\n  " + (why ? std::string(why) : path + ": not loadable");
  }
  throw Error(std::string("--device cuda: cannot load the CUDA runner module ") + kCudaRunnerModuleName + tried);
}
#endif

}  // namespace

bool parse_device_is_cuda(const std::string& device) {
  if (device == "cpu") return false;
  if (device == "cuda") {
#ifndef TQ_HAVE_CUDA_MODEL
    throw Error(kNoBackend);
#endif
    return true;
  }
  throw Error("--device: expected cpu or cuda, got '" + device + "'");
}

CudaRunner::CudaRunner([[maybe_unused]] Model& model, [[maybe_unused]] bool graphs) : backend_() {
#ifdef TQ_HAVE_CUDA_MODEL
  std::string error;
  backend_.reset(load_module()(model, graphs, &error));
  if (!backend_) throw Error("--device cuda: " + error);
#else
  throw Error(kNoBackend);
#endif
}

CudaRunner::~CudaRunner() = default;

void CudaRunner::reset_cache(const KvCacheConfig& cfg, int sequences) { backend_->reset_cache(cfg, sequences); }
void CudaRunner::forward(int seq, const int32_t* tokens, int n, float* logits) {
  backend_->forward(seq, tokens, n, logits);
}
void CudaRunner::decode_all(const int32_t* tokens, float* logits) { backend_->decode_all(tokens, logits); }
int CudaRunner::length(int seq) const { return backend_->length(seq); }
std::string CudaRunner::device_name() const { return backend_->device_name(); }
size_t CudaRunner::weight_bytes() const { return backend_->weight_bytes(); }
std::unique_ptr<EvalCache> CudaRunner::new_eval_cache(const KvCacheConfig& cfg) { return backend_->new_eval_cache(cfg); }
void CudaRunner::eval_forward(EvalCache& cache, const int32_t* tokens, int n, float* logits, bool all_logits,
                              bool qk_balance) {
  backend_->eval_forward(cache, tokens, n, logits, all_logits, qk_balance);
}

namespace {

class CudaEvalDevice final : public EvalDevice {
 public:
  explicit CudaEvalDevice(Model& model) : runner_(model, false) {}
  std::string name() const override { return "CUDA (" + runner_.device_name() + ")"; }
  std::unique_ptr<EvalCache> new_cache(const KvCacheConfig& cfg) override { return runner_.new_eval_cache(cfg); }
  void forward(const int32_t* tokens, int n, EvalCache& cache, float* logits, bool all_logits,
               bool qk_balance) override {
    runner_.eval_forward(cache, tokens, n, logits, all_logits, qk_balance);
  }

 private:
  CudaRunner runner_;
};

}  // namespace

std::unique_ptr<EvalDevice> make_cuda_eval_device(Model& model) { return std::make_unique<CudaEvalDevice>(model); }

}  // namespace tq::cli
