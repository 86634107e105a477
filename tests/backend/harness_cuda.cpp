// The CUDA backends: each quantize-on-write kernel (QuantizeParams::kernel) and each
// decode split kernel (DecodeParams::kernel) forced explicitly. Score and accumulate are
// fused into decode attention on the GPU, so its kernels answer the attend op only.
#include <cuda_runtime.h>

#include <numeric>

#include "backend_ops.h"
#include "cuda/cuda_test_util.h"
#include "turboquant/cuda.h"

namespace tq::harness {
namespace {

using cuda::testing::DeviceBuffer;
using cuda::testing::check;

// Microseconds per call of `launch` over reps calls, by CUDA events on the default stream.
template <class F>
double time_us(int reps, const F& launch) {
  cudaEvent_t a, b;
  check(cudaEventCreate(&a), "cudaEventCreate");
  check(cudaEventCreate(&b), "cudaEventCreate");
  check(cudaEventRecord(a), "cudaEventRecord");
  for (int i = 0; i < reps; ++i) launch();
  check(cudaEventRecord(b), "cudaEventRecord");
  check(cudaEventSynchronize(b), "cudaEventSynchronize");
  float ms = 0;
  check(cudaEventElapsedTime(&ms, a, b), "cudaEventElapsedTime");
  cudaEventDestroy(a);
  cudaEventDestroy(b);
  return 1000.0 * ms / reps;
}

std::string cuda_unavailable() { return cuda::device_available() ? "" : "no CUDA device"; }

std::string codec_unsupported(const Problem& p) {
  if (!cuda::codec_supported(p.codec)) return "no CUDA kernels for " + p.codec;
  if (!cuda::head_dim_supported(p.dim)) return "head_dim " + std::to_string(p.dim) + " not compiled";
  return "";
}

// The problem's cache configuration with room for `tokens` tokens.
KvCacheConfig sized(const Problem& p, int tokens) {
  KvCacheConfig c = p.cfg;
  c.max_tokens = std::max(c.max_tokens, tokens);
  return c;
}

class CudaQuantize : public Backend {
 public:
  explicit CudaQuantize(cuda::QuantizeKernel k) : k_(k) {}
  std::string name() const override { return std::string("cuda-quantize-") + cuda::kernel_name(k_); }
  std::string unavailable() const override { return cuda_unavailable(); }
  std::string unsupported(Op op, const Problem& p) const override {
    if (op != Op::encode) return "a quantize kernel only encodes";
    if (auto why = codec_unsupported(p); !why.empty()) return why;
    cuda::DeviceKvCache dc(sized(p, p.n_enc));
    for (int s = 0; s < 2; ++s)
      if (auto why = cuda::quantize_kernel_unsupported(dc, 0, s, k_); !why.empty()) return why;
    return "";
  }
  std::vector<float> run(Op, const Problem& p, int reps, double* us) const override {
    cuda::DeviceKvCache dc(sized(p, p.n_enc));
    DeviceBuffer<float> k(p.enc_in[0]), v(p.enc_in[1]);
    std::vector<int32_t> slots(p.n_enc);
    std::iota(slots.begin(), slots.end(), 0);
    DeviceBuffer<int32_t> slots_dev(slots);
    cuda::QuantizeParams q;
    q.keys = k.get();
    q.values = v.get();
    q.n_tokens = p.n_enc;
    q.slots = slots_dev.get();
    q.positions = slots_dev.get();  // keys in RoPE frames need them; every token here is in frame 0
    q.kernel = k_;
    cuda::quantize_on_write(dc, q);
    std::vector<uint8_t> pools[2];
    for (int s = 0; s < 2; ++s) {
      pools[s].resize(dc.pool_bytes(0, s));
      dc.download_pool(0, s, pools[s].data(), pools[s].size());
    }
    if (reps > 0) {
      q.check = false;
      *us = time_us(reps, [&] { cuda::quantize_on_write(dc, q); });
      dc.check_writes();
    }
    const int bt = p.cfg.block_tokens;
    return decode_records(p, [&](int s, int t, int h) {
      return pools[s].data() + (t / bt) * dc.block_bytes(0, s) + (h * bt + t % bt) * dc.record_bytes(0, s);
    });
  }

 private:
  cuda::QuantizeKernel k_;
};

class CudaDecode : public Backend {
 public:
  explicit CudaDecode(cuda::DecodeKernel k) : k_(k) {}
  std::string name() const override { return std::string("cuda-decode-") + cuda::kernel_name(k_); }
  std::string unavailable() const override { return cuda_unavailable(); }
  std::string unsupported(Op op, const Problem& p) const override {
    if (op != Op::attend && op != Op::attend_window) return "a decode kernel only attends";
    if (auto why = codec_unsupported(p); !why.empty()) return why;
    cuda::DeviceKvCache dc(p.cfg);
    return cuda::decode_kernel_unsupported(dc, 0, k_);
  }
  // The CPU cache's records of the sequence, uploaded into blocks 0, 1, ...
  std::vector<float> run(Op op, const Problem& p, int reps, double* us) const override {
    cuda::DeviceKvCache dc(p.cfg);
    const int bt = p.cfg.block_tokens, n_blocks = (Problem::kSeqLen + bt - 1) / bt;
    for (int s = 0; s < 2; ++s) {
      std::vector<uint8_t> pool(dc.pool_bytes(0, s), 0);
      const size_t rb = dc.record_bytes(0, s);
      for (int t = 0; t < Problem::kSeqLen; ++t)
        for (int h = 0; h < Problem::kNkv; ++h) {
          const uint8_t* rec = s ? p.cache->v_record(0, p.seq, h, t) : p.cache->k_record(0, p.seq, h, t);
          std::copy(rec, rec + rb, pool.data() + (t / bt) * dc.block_bytes(0, s) + (h * bt + t % bt) * rb);
        }
      dc.upload_pool(0, s, pool.data(), pool.size());
    }
    std::vector<int32_t> table(n_blocks);
    std::iota(table.begin(), table.end(), 0);
    DeviceBuffer<int32_t> table_dev(table), lens(std::vector<int32_t>{Problem::kSeqLen});
    DeviceBuffer<float> q(p.query), out(p.query.size());
    cuda::DecodeParams d;
    d.queries = q.get();
    d.batch = 1;
    d.n_q_heads = Problem::kHeads;
    d.block_tables = table_dev.get();
    d.max_blocks_per_seq = n_blocks;
    d.seq_lens = lens.get();
    d.max_seq_len = Problem::kSeqLen;
    d.scale = p.scale;
    d.out = out.get();
    d.kernel = k_;
    d.window = op == Op::attend_window ? Problem::kWindow : 0;
    d.workspace_bytes = cuda::decode_workspace_bytes(dc, d);
    DeviceBuffer<uint8_t> ws(d.workspace_bytes);
    d.workspace = ws.get();
    out.poison();
    cuda::decode_attention(dc, d);
    check(cudaDeviceSynchronize(), "decode_attention");
    if (reps > 0) *us = time_us(reps, [&] { cuda::decode_attention(dc, d); });
    return out.download();
  }

 private:
  cuda::DecodeKernel k_;
};

}  // namespace

std::vector<std::unique_ptr<Backend>> cuda_backends() {
  std::vector<std::unique_ptr<Backend>> b;
  for (auto k : {cuda::QuantizeKernel::tiled, cuda::QuantizeKernel::warp, cuda::QuantizeKernel::tensor})
    b.push_back(std::make_unique<CudaQuantize>(k));
  for (auto k : {cuda::DecodeKernel::simt, cuda::DecodeKernel::mma}) b.push_back(std::make_unique<CudaDecode>(k));
  return b;
}

}  // namespace tq::harness
