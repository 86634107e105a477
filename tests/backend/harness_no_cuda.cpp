// The CPU-only harness binary: no CUDA backends.
#include "backend_ops.h"

namespace tq::harness {
std::vector<std::unique_ptr<Backend>> cuda_backends() { return {}; }
}  // namespace tq::harness
