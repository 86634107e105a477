// C API over DeviceKvCache for other languages (the benchmark drives it from Python with
// ctypes). Every call returns 0 on success or -1 with the message in tqc_last_error().
#include <exception>
#include <string>

#include "turboquant/cuda.h"

namespace {
thread_local std::string g_error;

template <class F>
int guarded(F&& f) {
  try {
    f();
    return 0;
  } catch (const std::exception& e) {
    g_error = e.what();
    return -1;
  }
}

tq::cuda::DecodeParams decode_params(int layer, const void* q, int q_dtype, int batch, int n_q,
                                     const int32_t* block_tables, int max_blocks, const int32_t* seq_lens,
                                     int max_seq_len, float scale, int num_splits) {
  tq::cuda::DecodeParams p;
  p.layer = layer;
  p.q = q;
  p.q_dtype = static_cast<tq::cuda::DType>(q_dtype);
  p.batch = batch;
  p.n_q_heads = n_q;
  p.block_tables = block_tables;
  p.max_blocks_per_seq = max_blocks;
  p.seq_lens = seq_lens;
  p.max_seq_len = max_seq_len;
  p.scale = scale;
  p.num_splits = num_splits;
  return p;
}
}  // namespace

extern "C" {

const char* tqc_last_error() { return g_error.c_str(); }

void* tqc_cache_create(int n_layers, int n_kv_heads, int head_dim, const char* k_codec, const char* v_codec,
                       int block_tokens, int max_tokens, unsigned long long seed) {
  tq::cuda::DeviceKvCache* cache = nullptr;
  guarded([&] {
    tq::KvCacheConfig c;
    c.n_layers = n_layers;
    c.n_kv_heads = n_kv_heads;
    c.head_dim = head_dim;
    c.k_codec = k_codec;
    c.v_codec = v_codec;
    c.block_tokens = block_tokens;
    c.max_tokens = max_tokens;
    c.seed = seed;
    cache = new tq::cuda::DeviceKvCache(c);
  });
  return cache;
}

void tqc_cache_destroy(void* cache) { delete static_cast<tq::cuda::DeviceKvCache*>(cache); }

void* tqc_pool(void* cache, int layer, int kv) {
  void* p = nullptr;
  guarded([&] { p = static_cast<tq::cuda::DeviceKvCache*>(cache)->pool(layer, kv); });
  return p;
}

long long tqc_record_bytes(void* cache, int layer, int kv) {
  long long n = -1;
  guarded([&] { n = static_cast<long long>(static_cast<tq::cuda::DeviceKvCache*>(cache)->record_bytes(layer, kv)); });
  return n;
}

// Checked (the call waits and reports NaN/Inf inputs) or asynchronous (tqc_check_writes
// reports later), QuantizeParams::check.
static int quantize(void* cache, int layer, const void* k, const void* v, int dtype, int n_tokens,
                    const int32_t* slots, void* stream, bool check) {
  return guarded([&] {
    tq::cuda::QuantizeParams p;
    p.layer = layer;
    p.k = k;
    p.v = v;
    p.dtype = static_cast<tq::cuda::DType>(dtype);
    p.n_tokens = n_tokens;
    p.slots = slots;
    p.stream = stream;
    p.check = check;
    tq::cuda::quantize_on_write(*static_cast<tq::cuda::DeviceKvCache*>(cache), p);
  });
}

int tqc_quantize(void* cache, int layer, const void* k, const void* v, int dtype, int n_tokens, const int32_t* slots,
                 void* stream) {
  return quantize(cache, layer, k, v, dtype, n_tokens, slots, stream, true);
}

int tqc_quantize_async(void* cache, int layer, const void* k, const void* v, int dtype, int n_tokens,
                       const int32_t* slots, void* stream) {
  return quantize(cache, layer, k, v, dtype, n_tokens, slots, stream, false);
}

int tqc_check_writes(void* cache) {
  return guarded([&] { static_cast<tq::cuda::DeviceKvCache*>(cache)->check_writes(); });
}

long long tqc_decode_workspace_bytes(void* cache, int layer, int batch, int n_q, int max_blocks, int max_seq_len,
                                     int num_splits) {
  long long n = -1;
  guarded([&] {
    const auto p = decode_params(layer, nullptr, 0, batch, n_q, nullptr, max_blocks, nullptr, max_seq_len, 0.f, num_splits);
    n = static_cast<long long>(tq::cuda::decode_workspace_bytes(*static_cast<tq::cuda::DeviceKvCache*>(cache), p));
  });
  return n;
}

int tqc_decode_num_splits(void* cache, int layer, int batch, int n_q, int max_blocks, int max_seq_len) {
  int n = -1;
  guarded([&] {
    const auto p = decode_params(layer, nullptr, 0, batch, n_q, nullptr, max_blocks, nullptr, max_seq_len, 0.f, 0);
    n = tq::cuda::decode_num_splits(*static_cast<tq::cuda::DeviceKvCache*>(cache), p);
  });
  return n;
}

int tqc_decode(void* cache, int layer, const void* q, int q_dtype, int batch, int n_q, const int32_t* block_tables,
               int max_blocks, const int32_t* seq_lens, int max_seq_len, float scale, int num_splits, float* out,
               void* workspace, long long workspace_bytes, void* stream) {
  return guarded([&] {
    auto p = decode_params(layer, q, q_dtype, batch, n_q, block_tables, max_blocks, seq_lens, max_seq_len, scale,
                           num_splits);
    p.out = out;
    p.workspace = workspace;
    p.workspace_bytes = static_cast<size_t>(workspace_bytes);
    p.stream = stream;
    tq::cuda::decode_attention(*static_cast<tq::cuda::DeviceKvCache*>(cache), p);
  });
}

}  // extern "C"
