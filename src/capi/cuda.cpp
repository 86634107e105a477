// C API: the CUDA paged cache (c_api_cuda.h) over tq::cuda::DeviceKvCache. Compiled into
// every libturboquant; without the CUDA backend (TQ_HAVE_CUDA undefined) each call reports
// "built without CUDA" instead.
#include <string>
#include <utility>

#include "cache_config.h"
#include "guard.h"
#include "turboquant/c_api_cuda.h"
#include "turboquant/error.h"

#ifdef TQ_HAVE_CUDA
#include "turboquant/cuda.h"
#endif

using tq::capi::ArgumentError;
using tq::capi::guarded;
using tq::capi::require;

#ifdef TQ_HAVE_CUDA
struct tq_cuda_cache {
  tq::cuda::DeviceKvCache cache;
  explicit tq_cuda_cache(tq::KvCachePlan plan) : cache(std::move(plan)) {}
};
#else
struct tq_cuda_cache {};
#endif

namespace {

#ifdef TQ_HAVE_CUDA
static_assert(static_cast<int>(tq::cuda::QuantizeKernel::tiled) == TQ_CUDA_QUANTIZE_TILED &&
              static_cast<int>(tq::cuda::QuantizeKernel::warp) == TQ_CUDA_QUANTIZE_WARP &&
              static_cast<int>(tq::cuda::QuantizeKernel::tensor) == TQ_CUDA_QUANTIZE_TENSOR,
              "tq_cuda_quantize_kernel mirrors tq::cuda::QuantizeKernel");

tq::cuda::QuantizeKernel quantize_kernel_of(tq_cuda_quantize_kernel k) {
  if (k < TQ_CUDA_QUANTIZE_AUTO || k > TQ_CUDA_QUANTIZE_TENSOR)
    throw ArgumentError{"kernel must be TQ_CUDA_QUANTIZE_AUTO, _TILED, _WARP or _TENSOR, got " +
                        std::to_string(static_cast<int>(k))};
  return static_cast<tq::cuda::QuantizeKernel>(k);
}

tq::cuda::DType dtype_of(tq_dtype d, const char* what) {
  if (d != TQ_DTYPE_F32 && d != TQ_DTYPE_F16 && d != TQ_DTYPE_BF16)
    throw ArgumentError{std::string(what) + " must be TQ_DTYPE_F32, TQ_DTYPE_F16 or TQ_DTYPE_BF16, got " +
                        std::to_string(static_cast<int>(d))};
  return static_cast<tq::cuda::DType>(d);
}

tq::cuda::DecodeParams decode_params(const tq_cuda_decode_params& p) {
  tq::cuda::DecodeParams d;
  d.layer = p.layer;
  d.queries = p.q;
  d.queries_dtype = dtype_of(p.q_dtype, "q_dtype");
  d.batch = p.batch;
  d.n_q_heads = p.n_q_heads;
  d.block_tables = p.block_tables;
  d.max_blocks_per_seq = p.max_blocks_per_seq;
  d.seq_lens = p.seq_lens;
  d.max_seq_len = p.max_seq_len;
  d.scale = p.scale;
  d.num_splits = p.num_splits;
  d.out = p.out;
  d.out_dtype = dtype_of(p.out_dtype, "out_dtype");
  d.workspace = p.workspace;
  d.workspace_bytes = p.workspace_bytes;
  d.stream = p.stream;
  d.seq_ids = p.seq_ids;
  d.window = p.window;
  return d;
}
#else
[[noreturn]] void no_cuda() {
  throw tq::Error("libturboquant was built without CUDA (TQ_CUDA=OFF or no nvcc at build time): the device cache "
                  "is not available");
}
#endif

}  // namespace

extern "C" {

tq_cuda_quantize_params tq_cuda_quantize_params_default(void) {
  tq_cuda_quantize_params p{};
  p.dtype = TQ_DTYPE_F32;
  p.check = 1;
  return p;
}

tq_cuda_decode_params tq_cuda_decode_params_default(void) {
  tq_cuda_decode_params p{};
  p.q_dtype = TQ_DTYPE_F32;
  p.out_dtype = TQ_DTYPE_F32;
  return p;
}

#ifdef TQ_HAVE_CUDA

int tq_cuda_available(void) { return tq::cuda::device_available() ? 1 : 0; }

tq_status tq_cuda_cache_create(const tq_cache_config* config, tq_cuda_cache** cache) {
  return guarded("tq_cuda_cache_create", [&] {
    require(cache, "cache");
    *cache = new tq_cuda_cache(tq::capi::cache_plan(config, "DeviceKvCache"));
  });
}

void tq_cuda_cache_destroy(tq_cuda_cache* cache) { delete cache; }

tq_status tq_cuda_cache_num_blocks(const tq_cuda_cache* cache, int* num_blocks) {
  return guarded("tq_cuda_cache_num_blocks", [&] {
    require(cache, "cache");
    require(num_blocks, "num_blocks");
    *num_blocks = cache->cache.num_blocks();
  });
}

tq_status tq_cuda_cache_record_bytes(const tq_cuda_cache* cache, int layer, int kv, size_t* record_bytes) {
  return guarded("tq_cuda_cache_record_bytes", [&] {
    require(cache, "cache");
    require(record_bytes, "record_bytes");
    *record_bytes = cache->cache.record_bytes(layer, kv);
  });
}

tq_status tq_cuda_cache_pool(tq_cuda_cache* cache, int layer, int kv, void** pool, size_t* bytes) {
  return guarded("tq_cuda_cache_pool", [&] {
    require(cache, "cache");
    require(pool, "pool");
    void* p = cache->cache.pool(layer, kv);
    if (bytes) *bytes = cache->cache.pool_bytes(layer, kv);
    *pool = p;
  });
}

tq_status tq_cuda_quantize(tq_cuda_cache* cache, const tq_cuda_quantize_params* params) {
  return guarded("tq_cuda_quantize", [&] {
    require(cache, "cache");
    require(params, "params");
    tq::cuda::QuantizeParams q;
    q.layer = params->layer;
    q.keys = params->k;
    q.values = params->v;
    q.dtype = dtype_of(params->dtype, "dtype");
    q.n_tokens = params->n_tokens;
    q.token_stride = params->token_stride;
    q.slots = params->slots;
    q.positions = params->positions;
    q.seq_ids = params->seq_ids;
    q.stream = params->stream;
    q.check = params->check != 0;
    q.kernel = quantize_kernel_of(params->kernel);
    tq::cuda::quantize_on_write(cache->cache, q);
  });
}

tq_status tq_cuda_check_writes(tq_cuda_cache* cache) {
  return guarded("tq_cuda_check_writes", [&] {
    require(cache, "cache");
    cache->cache.check_writes();
  });
}

tq_status tq_cuda_decode_workspace_bytes(const tq_cuda_cache* cache, const tq_cuda_decode_params* params,
                                         size_t* bytes) {
  return guarded("tq_cuda_decode_workspace_bytes", [&] {
    require(cache, "cache");
    require(params, "params");
    require(bytes, "bytes");
    *bytes = tq::cuda::decode_workspace_bytes(cache->cache, decode_params(*params));
  });
}

tq_status tq_cuda_decode_num_splits(const tq_cuda_cache* cache, const tq_cuda_decode_params* params,
                                    int* num_splits) {
  return guarded("tq_cuda_decode_num_splits", [&] {
    require(cache, "cache");
    require(params, "params");
    require(num_splits, "num_splits");
    *num_splits = tq::cuda::decode_num_splits(cache->cache, decode_params(*params));
  });
}

tq_status tq_cuda_decode(const tq_cuda_cache* cache, const tq_cuda_decode_params* params) {
  return guarded("tq_cuda_decode", [&] {
    require(cache, "cache");
    require(params, "params");
    tq::cuda::decode_attention(cache->cache, decode_params(*params));
  });
}

#else  // built without CUDA: every call says so

int tq_cuda_available(void) { return 0; }

tq_status tq_cuda_cache_create(const tq_cache_config*, tq_cuda_cache**) {
  return guarded("tq_cuda_cache_create", [] { no_cuda(); });
}
void tq_cuda_cache_destroy(tq_cuda_cache*) {}
tq_status tq_cuda_cache_num_blocks(const tq_cuda_cache*, int*) {
  return guarded("tq_cuda_cache_num_blocks", [] { no_cuda(); });
}
tq_status tq_cuda_cache_record_bytes(const tq_cuda_cache*, int, int, size_t*) {
  return guarded("tq_cuda_cache_record_bytes", [] { no_cuda(); });
}
tq_status tq_cuda_cache_pool(tq_cuda_cache*, int, int, void**, size_t*) {
  return guarded("tq_cuda_cache_pool", [] { no_cuda(); });
}
tq_status tq_cuda_quantize(tq_cuda_cache*, const tq_cuda_quantize_params*) {
  return guarded("tq_cuda_quantize", [] { no_cuda(); });
}
tq_status tq_cuda_check_writes(tq_cuda_cache*) {
  return guarded("tq_cuda_check_writes", [] { no_cuda(); });
}
tq_status tq_cuda_decode_workspace_bytes(const tq_cuda_cache*, const tq_cuda_decode_params*, size_t*) {
  return guarded("tq_cuda_decode_workspace_bytes", [] { no_cuda(); });
}
tq_status tq_cuda_decode_num_splits(const tq_cuda_cache*, const tq_cuda_decode_params*, int*) {
  return guarded("tq_cuda_decode_num_splits", [] { no_cuda(); });
}
tq_status tq_cuda_decode(const tq_cuda_cache*, const tq_cuda_decode_params*) {
  return guarded("tq_cuda_decode", [] { no_cuda(); });
}

#endif

}  // extern "C"
