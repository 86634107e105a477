#pragma once
// Helpers shared by the CUDA tests: a GPU guard that skips cleanly, a device buffer,
// the list of codecs the kernels implement and a random cache configuration.
#include <cuda_runtime.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/cuda.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"

#define TQ_REQUIRE_GPU()                                                        \
  do {                                                                          \
    if (!tq::cuda::device_available())                                          \
      GTEST_SKIP() << "no CUDA device: run scripts/test_cuda.sh on a GPU machine"; \
  } while (0)

namespace tq::cuda::testing {

inline void check(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw Error(std::string(what) + ": " + cudaGetErrorString(e));
}

template <class T>
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t n) : n_(n) { check(cudaMalloc(&p_, std::max<size_t>(1, n) * sizeof(T)), "cudaMalloc"); }
  explicit DeviceBuffer(const std::vector<T>& host) : DeviceBuffer(host.size()) { upload(host); }
  ~DeviceBuffer() { cudaFree(p_); }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  T* get() const { return static_cast<T*>(p_); }
  void upload(const std::vector<T>& h) { check(cudaMemcpy(p_, h.data(), n_ * sizeof(T), cudaMemcpyHostToDevice), "upload"); }
  std::vector<T> download() const {
    std::vector<T> h(n_);
    check(cudaMemcpy(h.data(), p_, n_ * sizeof(T), cudaMemcpyDeviceToHost), "download");
    return h;
  }
  void poison() const { check(cudaMemset(p_, 0xff, n_ * sizeof(T)), "cudaMemset"); }  // NaN for floats

 private:
  void* p_ = nullptr;
  size_t n_;
};

// Every codec-table row the CUDA kernels implement.
inline std::vector<std::string> supported_codecs() {
  std::vector<std::string> out;
  for (const auto& c : codec_table())
    if (codec_supported(c.name)) out.emplace_back(c.name);
  return out;
}

inline constexpr int kHeadDims[] = {64, 128, 256};

// Tokens of a write of K and V over n_kv_heads that fills two CTAs of the warp quantize
// kernel (8 warps x 8 tokens at d <= 128) per SM of device 0: the warp kernel then takes
// several tokens per warp, its lane-block shape (quantize_warp.cu).
inline int tokens_for_lane_block_writes(int n_kv_heads) {
  int sms = 0;
  check(cudaDeviceGetAttribute(&sms, cudaDevAttrMultiProcessorCount, 0), "multiprocessor count");
  return 2 * sms * 64 / (2 * n_kv_heads);
}

// Test names from codec names ('.' is not allowed in a GoogleTest name).
struct CodecTestName {
  template <class Info>
  std::string operator()(const Info& info) const {
    std::string n = info.param;
    for (char& ch : n)
      if (ch == '.') ch = '_';
    return n;
  }
};

inline KvCacheConfig cache_config(const std::string& k, const std::string& v, int head_dim, int n_kv_heads,
                                  int block_tokens, int max_tokens, int n_layers = 1, uint64_t seed = 0) {
  KvCacheConfig c;
  c.n_layers = n_layers;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.k_codec = k;
  c.v_codec = v;
  c.block_tokens = block_tokens;
  c.max_tokens = max_tokens;
  c.seed = seed;
  return c;
}

// The message of the tq::Error f() throws ("no error" when it throws none).
template <class F>
std::string error_message(const F& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.what();
  }
  return "no error";
}

// Quantize-on-write of n_tokens tokens of layer 0 from device arrays.
inline QuantizeParams quantize_params(const void* k, const void* v, int n_tokens, const int32_t* slots,
                                      const int32_t* positions = nullptr) {
  QuantizeParams p;
  p.keys = k;
  p.values = v;
  p.n_tokens = n_tokens;
  p.slots = slots;
  p.positions = positions;
  return p;
}

// Writes n_tokens tokens (k, v: host [n_tokens][n_kv_heads][head_dim]) of layer 0 into
// slots 0, 1, ... through quantize_on_write (the blocks in order), as positions 0, 1, ...
// of one sequence (keys in RoPE frames need them).
inline void write_in_order(DeviceKvCache& cache, const std::vector<float>& k, const std::vector<float>& v,
                           int n_tokens) {
  std::vector<int32_t> slots(n_tokens);
  for (int t = 0; t < n_tokens; ++t) slots[t] = t;
  DeviceBuffer<float> kd(k), vd(v);
  DeviceBuffer<int32_t> sd(slots);
  quantize_on_write(cache, quantize_params(kd.get(), vd.get(), n_tokens, sd.get(), sd.get()));
}

}  // namespace tq::cuda::testing
