// _torch_ops.so: the CUDA kernel of torch.ops.turboquant.attend in C++, so an eager decode
// step runs no Python between torch's dispatcher and the decode launch (the Python kernel
// in turboquant/ops.py cost ~5 us of host time per call, a third of a short step).
//
// turboquant/cuda.py loads this library when the package has it and registers each
// TorchDeviceKvCache here under its handle (the id in its state tensor): the cache's
// address, the DecodeEntry of turboquant._turboquant (decode_entry.h) and the fixed device
// arrays every call passes. The kernel handles the well-formed decode call; anything else
// (a cache it does not know, a wrong shape, device or dtype, softcap, a library error) it
// hands to the Python kernel, registered as turboquant::_attend_python, which raises the
// error the Python path always raised. So both paths give the same results and messages.
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "decode_entry.h"

namespace {

using tq::cuda::DecodeParams;
using tq::cuda::DeviceKvCache;
using tq::cuda::DType;

// What a registered cache's calls pass (turboquant/cuda.py, TorchDeviceKvCache).
struct Entry {
  const DeviceKvCache* cache;
  tq::py::DecodeEntry decode;
  int device;
  int64_t batch, n_kv_heads, head_dim, capacity, blocks_per_row, max_q_heads;
  const int32_t* block_tables;
  const int32_t* seq_ids;
  void* workspace;
  size_t workspace_bytes;
  std::vector<const int32_t*> seq_lens;  // per layer, device [batch]
};

// The order of register_device_cache's fields.
enum Field {
  kCache, kDecode, kDevice, kBatch, kKvHeads, kHeadDim, kCapacity, kBlocksPerRow, kMaxQHeads, kTables, kSeqIds,
  kWorkspace, kWorkspaceBytes, kSeqLens  // then one seq_lens address per layer
};

// Entries are shared, so a call copies a pointer under the lock, not the per-layer array.
// (The cache itself must outlive calls that attend over it, as on the Python path.)
std::mutex registry_mu;
std::unordered_map<int64_t, std::shared_ptr<const Entry>> registry;

template <class T>
T* address(int64_t v) {
  return reinterpret_cast<T*>(static_cast<uintptr_t>(v));
}

void register_device_cache(int64_t handle, c10::ArrayRef<int64_t> f) {
  TORCH_CHECK_VALUE(f.size() > kSeqLens, "turboquant::_register_device_cache: ", f.size(), " fields, expected more than ",
                    static_cast<int>(kSeqLens));
  Entry e{address<const DeviceKvCache>(f[kCache]), reinterpret_cast<tq::py::DecodeEntry>(static_cast<uintptr_t>(f[kDecode])),
          static_cast<int>(f[kDevice]), f[kBatch], f[kKvHeads], f[kHeadDim], f[kCapacity], f[kBlocksPerRow],
          f[kMaxQHeads], address<const int32_t>(f[kTables]), address<const int32_t>(f[kSeqIds]),
          address<void>(f[kWorkspace]), static_cast<size_t>(f[kWorkspaceBytes]), {}};
  for (size_t i = kSeqLens; i < f.size(); ++i) e.seq_lens.push_back(address<const int32_t>(f[i]));
  std::lock_guard<std::mutex> lock(registry_mu);
  registry[handle] = std::make_shared<const Entry>(std::move(e));
}

void unregister_device_cache(int64_t handle) {
  std::lock_guard<std::mutex> lock(registry_mu);
  registry.erase(handle);
}

std::optional<DType> dtype_of(at::ScalarType t) {
  switch (t) {
    case at::kFloat: return DType::f32;
    case at::kHalf: return DType::f16;
    case at::kBFloat16: return DType::bf16;
    default: return std::nullopt;
  }
}

at::Tensor attend_python(const at::Tensor& state, int64_t layer, const at::Tensor& query, std::optional<double> scale,
                         int64_t window, double softcap) {
  static const auto op = c10::Dispatcher::singleton()
                             .findSchemaOrThrow("turboquant::_attend_python", "")
                             .typed<at::Tensor(const at::Tensor&, int64_t, const at::Tensor&, std::optional<double>,
                                               int64_t, double)>();
  return op.call(state, layer, query, scale, window, softcap);
}

at::Tensor attend_cuda(const at::Tensor& state, int64_t layer, const at::Tensor& query, std::optional<double> scale,
                       int64_t window, double softcap) {
  auto python = [&] { return attend_python(state, layer, query, scale, window, softcap); };
  if (!state.is_cpu() || state.scalar_type() != at::kLong || state.numel() != 2 || !state.is_contiguous())
    return python();
  std::shared_ptr<const Entry> found;
  {
    std::lock_guard<std::mutex> lock(registry_mu);
    const auto it = registry.find(state.data_ptr<int64_t>()[0]);
    if (it == registry.end()) return python();
    found = it->second;
  }
  const Entry& e = *found;
  const std::optional<DType> dtype = dtype_of(query.scalar_type());
  if (!dtype || layer < 0 || layer >= static_cast<int64_t>(e.seq_lens.size()) || query.dim() != 4 ||
      !query.is_cuda() || query.get_device() != e.device || softcap != 0.0 || window < 0)
    return python();
  const int64_t b = query.size(0), hq = query.size(1), d = query.size(3);
  if (b != e.batch || d != e.head_dim || query.size(2) != 1 || hq <= 0 || hq % e.n_kv_heads != 0 ||
      hq > e.max_q_heads)
    return python();

  const at::Tensor q = query.contiguous();  // (b, hq, 1, d) is the kernel's [b][hq][d]
  at::Tensor out = at::empty({b, hq, 1, d}, q.options());
  DecodeParams p;
  p.layer = static_cast<int>(layer);
  p.queries = q.data_ptr();
  p.queries_dtype = *dtype;
  p.batch = static_cast<int>(b);
  p.n_q_heads = static_cast<int>(hq);
  p.block_tables = e.block_tables;
  p.max_blocks_per_seq = static_cast<int>(e.blocks_per_row);
  p.seq_lens = e.seq_lens[layer];
  p.max_seq_len = static_cast<int>(e.capacity);
  p.scale = scale ? static_cast<float>(*scale) : 0.f;
  p.out = out.data_ptr();
  p.out_dtype = *dtype;
  p.workspace = e.workspace;
  p.workspace_bytes = e.workspace_bytes;
  p.seq_ids = e.seq_ids;
  p.stream = c10::cuda::getCurrentCUDAStream(static_cast<c10::DeviceIndex>(e.device)).stream();
  p.window = static_cast<int>(window);
  if (e.decode(e.cache, &p) != 0) return python();  // raises the library's error as turboquant.Error
  return out;
}

}  // namespace

TORCH_LIBRARY_FRAGMENT(turboquant, m) {
  m.def("_register_device_cache(int handle, int[] fields) -> ()", &register_device_cache);
  m.def("_unregister_device_cache(int handle) -> ()", &unregister_device_cache);
}

TORCH_LIBRARY_IMPL(turboquant, CUDA, m) { m.impl("attend", &attend_cuda); }
