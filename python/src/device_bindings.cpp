// turboquant._turboquant.DeviceKvCache (packages built with TQ_CUDA=ON): the CUDA paged cache
// of cuda.h, driven with raw device pointers and a stream handle (integers), so the torch ops
// (turboquant/cuda.py) pass tensors' data_ptr() and torch's current stream: no host copies,
// nothing that waits unless asked (check=True), capturable in a CUDA graph.
#include <cstdint>
#include <exception>
#include <string>

#include <nanobind/stl/string.h>

#include "bindings.h"
#include "decode_entry.h"
#include "turboquant/cuda.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"

namespace tq::py {
namespace {

template <class T>
T* ptr(uintptr_t p) {
  return reinterpret_cast<T*>(p);
}

cuda::DType dtype_of(int d) {
  if (d < 0 || d > 2) throw nb::value_error(("dtype must be 0 (f32), 1 (f16) or 2 (bf16), got " + std::to_string(d)).c_str());
  return static_cast<cuda::DType>(d);
}

cuda::DecodeParams decode_params(int layer, int batch, int n_q_heads, int max_blocks, int max_seq_len) {
  cuda::DecodeParams p;
  p.layer = layer;
  p.batch = batch;
  p.n_q_heads = n_q_heads;
  p.max_blocks_per_seq = max_blocks;
  p.max_seq_len = max_seq_len;
  return p;
}

// DecodeEntry (decode_entry.h): decode_attention with its exception turned into a status.
int decode_entry(const cuda::DeviceKvCache* cache, const cuda::DecodeParams* p) noexcept {
  try {
    cuda::decode_attention(*cache, *p);
    return 0;
  } catch (const std::exception&) {
    return 1;
  }
}

}  // namespace

void bind_device(nb::module_& m) {
  m.attr("has_cuda") = true;
  m.def("cuda_available", &cuda::device_available, "True when the CUDA runtime sees a device.");
  m.def("decode_entry", [] { return reinterpret_cast<uintptr_t>(static_cast<DecodeEntry>(&decode_entry)); },
        "Address of the DecodeEntry (python/src/decode_entry.h) the torch op library calls.");
  nb::class_<cuda::DeviceKvCache>(m, "DeviceKvCache",
                                  "The paged compressed KV cache in device memory (cuda.h), on raw device pointers. "
                                  "turboquant.cuda.TorchDeviceKvCache drives it from torch tensors.")
      .def("__init__",
           [](cuda::DeviceKvCache* self, int n_layers, int n_kv_heads, int head_dim, const std::string& k_codec,
              const std::string& v_codec, int block_tokens, int max_tokens, uint64_t seed, const KvProfile* profile,
              int context) {
             new (self) cuda::DeviceKvCache(cache_config(n_layers, n_kv_heads, head_dim, k_codec, v_codec,
                                                         block_tokens, max_tokens, seed, profile, context));
           },
           nb::arg("n_layers"), nb::arg("n_kv_heads"), nb::arg("head_dim"), nb::arg("k_codec"), nb::arg("v_codec"),
           nb::arg("block_tokens"), nb::arg("max_tokens"), nb::arg("seed") = 0, nb::arg("profile") = nb::none(),
           nb::arg("context") = CalibrationOptions{}.context)
      .def_prop_ro("address", [](const cuda::DeviceKvCache& c) { return reinterpret_cast<uintptr_t>(&c); },
                   "The cache's address, for the torch op library's DecodeEntry calls.")
      .def_prop_ro("num_blocks", &cuda::DeviceKvCache::num_blocks)
      .def_prop_ro("block_tokens", [](const cuda::DeviceKvCache& c) { return c.config().block_tokens; })
      .def_prop_ro("sink_tokens", [](const cuda::DeviceKvCache& c) { return c.config().sink_tokens; })
      .def("record_bytes", &cuda::DeviceKvCache::record_bytes, nb::arg("layer"), nb::arg("kv"))
      .def("pool", [](cuda::DeviceKvCache& c, int layer, int kv) { return reinterpret_cast<uintptr_t>(c.pool(layer, kv)); },
           nb::arg("layer"), nb::arg("kv"), "Device address of a layer's K (kv=0) or V (kv=1) pool.")
      .def("pool_bytes", &cuda::DeviceKvCache::pool_bytes, nb::arg("layer"), nb::arg("kv"))
      .def("quantize",
           [](cuda::DeviceKvCache& c, int layer, uintptr_t k, uintptr_t v, int dtype, int n_tokens, uintptr_t slots,
              uintptr_t positions, uintptr_t seq_ids, uintptr_t stream, bool check) {
             cuda::QuantizeParams p;
             p.layer = layer;
             p.keys = ptr<const void>(k);
             p.values = ptr<const void>(v);
             p.dtype = dtype_of(dtype);
             p.n_tokens = n_tokens;
             p.slots = ptr<const int32_t>(slots);
             p.positions = ptr<const int32_t>(positions);
             p.seq_ids = ptr<const int32_t>(seq_ids);
             p.stream = ptr<void>(stream);
             p.check = check;
             cuda::quantize_on_write(c, p);
           },
           nb::arg("layer"), nb::arg("k"), nb::arg("v"), nb::arg("dtype"), nb::arg("n_tokens"), nb::arg("slots"),
           nb::arg("positions"), nb::arg("seq_ids"), nb::arg("stream"), nb::arg("check"),
           "quantize_on_write on device addresses (cuda.h, QuantizeParams); 0 for an unused pointer.")
      .def("check_writes", &cuda::DeviceKvCache::check_writes,
           "Wait for the device; turboquant.Error for the first NaN/Inf input an unchecked write refused.")
      .def("workspace_bytes",
           [](const cuda::DeviceKvCache& c, int layer, int batch, int n_q_heads, int max_blocks, int max_seq_len) {
             return cuda::decode_workspace_bytes(c, decode_params(layer, batch, n_q_heads, max_blocks, max_seq_len));
           },
           nb::arg("layer"), nb::arg("batch"), nb::arg("n_q_heads"), nb::arg("max_blocks"), nb::arg("max_seq_len"))
      .def("decode",
           [](const cuda::DeviceKvCache& c, int layer, uintptr_t q, int q_dtype, int batch, int n_q_heads,
              uintptr_t block_tables, int max_blocks, uintptr_t seq_lens, int max_seq_len, float scale, uintptr_t out,
              uintptr_t workspace, size_t workspace_bytes, uintptr_t seq_ids, uintptr_t stream, int window, int out_dtype) {
             cuda::DecodeParams p = decode_params(layer, batch, n_q_heads, max_blocks, max_seq_len);
             p.queries = ptr<const void>(q);
             p.queries_dtype = dtype_of(q_dtype);
             p.block_tables = ptr<const int32_t>(block_tables);
             p.seq_lens = ptr<const int32_t>(seq_lens);
             p.scale = scale;
             p.out = ptr<void>(out);
             p.out_dtype = dtype_of(out_dtype);
             p.workspace = ptr<void>(workspace);
             p.workspace_bytes = workspace_bytes;
             p.seq_ids = ptr<const int32_t>(seq_ids);
             p.stream = ptr<void>(stream);
             p.window = window;
             cuda::decode_attention(c, p);
           },
           nb::arg("layer"), nb::arg("q"), nb::arg("q_dtype"), nb::arg("batch"), nb::arg("n_q_heads"),
           nb::arg("block_tables"), nb::arg("max_blocks"), nb::arg("seq_lens"), nb::arg("max_seq_len"),
           nb::arg("scale"), nb::arg("out"), nb::arg("workspace"), nb::arg("workspace_bytes"), nb::arg("seq_ids"),
           nb::arg("stream"), nb::arg("window") = 0, nb::arg("out_dtype") = 0,
           "decode_attention on device addresses (cuda.h, DecodeParams); 0 for an unused pointer.");
}

}  // namespace tq::py
