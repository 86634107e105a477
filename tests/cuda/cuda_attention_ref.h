#pragma once
// Decode attention on the GPU against the CPU reference (Codec::prepare_query / dot /
// accumulate / finish with a float64 softmax) over a cache written by the CPU encoder
// and uploaded through shuffled block tables: ‖gpu − ref‖ / ‖ref‖ (INFINITY for an
// unwritten or non-finite output).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>

#include "cuda_test_util.h"
#include "turboquant/half.h"

namespace tq::cuda::testing {

// Decode parameters over device arrays; the caller adds the workspace (and seq_ids).
inline DecodeParams decode_params(const float* q, int batch, int n_q, const int32_t* tables, int max_blocks,
                                  const int32_t* lens, int max_len, float* out) {
  DecodeParams p;
  p.queries = q;
  p.batch = batch;
  p.n_q_heads = n_q;
  p.block_tables = tables;
  p.max_blocks_per_seq = max_blocks;
  p.seq_lens = lens;
  p.max_seq_len = max_len;
  p.out = out;
  return p;
}

// Runs decode_attention with p (its workspace allocated here) into `out`, elements of
// `dtype` (f32, or f16 / bf16 as uint16_t), poisoned first so an unwritten output reads
// as NaN; waits and returns the output.
template <class T>
std::vector<T> run_decode(const DeviceKvCache& cache, DecodeParams p, const DeviceBuffer<T>& out,
                          DType dtype = DType::f32) {
  p.out = out.get();
  p.out_dtype = dtype;
  p.workspace_bytes = decode_workspace_bytes(cache, p);
  DeviceBuffer<uint8_t> ws(p.workspace_bytes);
  p.workspace = ws.get();
  out.poison();
  decode_attention(cache, p);
  check(cudaDeviceSynchronize(), "decode_attention");
  return out.download();
}

// One query head over n tokens: record(side, t) gives token t's K (side 0) or V record.
// Keys in RoPE frames (`frames` of layer `layer`): the query is turned back by each
// frame's start before it scores that frame's keys, as attend_reference does.
template <class RecordAt>
void reference_head(const Codec& kc, const Codec& vc, const float* q, int n, double scale, const RecordAt& record,
                    float* out, const RopeFrames* frames = nullptr, int layer = 0) {
  std::vector<float> state(kc.query_state_floats()), acc(vc.code_dim(), 0.f);
  std::vector<double> sc(n);
  double m = -INFINITY, sum = 0;
  int frame = -1;
  for (int t = 0; t < n; ++t) {
    const int f = frames ? frames->frame(t) : 0;
    if (f != frame) {
      std::vector<float> qt(q, q + kc.dim());
      if (frames) frames->turn_back(layer, frames->frame_start(f)).apply(qt.data());
      kc.prepare_query(qt.data(), state.data());
      frame = f;
    }
    m = std::max(m, sc[t] = scale * kc.dot(state.data(), record(0, t)));
  }
  for (int t = 0; t < n; ++t) sum += (sc[t] = std::exp(sc[t] - m));
  for (int t = 0; t < n; ++t) vc.accumulate(record(1, t), static_cast<float>(sc[t] / sum), acc.data());
  if (n > 0) vc.finish(acc.data(), out);
}

struct Shape {
  int n_kv_heads, group, block_tokens;
  std::vector<int> seq_lens;
  int num_splits;  // 0: the library's choice
  DecodeKernel kernel = DecodeKernel::auto_;
  // f16 / bf16: the step also runs with DecodeParams::out_dtype set to it, whose output
  // must be the float32 output rounded to nearest, bit for bit (else INFINITY).
  DType out_dtype = DType::f32;
  DecodeLaunch launch = DecodeLaunch::auto_;
  // > 0: each row's queries sit query_pad elements further on than packed
  // (DecodeParams::query_stride), the gaps NaN so a misread shows in the output.
  int query_pad = 0;
  // f16 / bf16: the queries are uploaded in that type (DecodeParams::queries_dtype); the
  // reference takes the same rounded values.
  DType queries_dtype = DType::f32;
};

// f rounded to bfloat16 (nearest, ties to even), as a bit pattern; inputs are finite.
inline uint16_t round_to_bf16_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return static_cast<uint16_t>((u + 0x7fffu + ((u >> 16) & 1u)) >> 16);
}

// Whether `half` (the 16-bit output of the same step) is `got` rounded to `dtype`.
inline bool is_rounded_output(const std::vector<float>& got, const std::vector<uint16_t>& half, DType dtype) {
  for (size_t i = 0; i < got.size(); ++i) {
    const uint16_t want = dtype == DType::f16 ? float_to_half(got[i]) : round_to_bf16_bits(got[i]);
    if (half[i] != want) {
      std::fprintf(stderr, "  out_dtype %s: element %zu is 0x%04x, the float32 output %.9g rounds to 0x%04x\n",
                   dtype == DType::f16 ? "f16" : "bf16", i, half[i], got[i], want);
      return false;
    }
  }
  return true;
}

// `base` names the codecs, head_dim and (for presets) the calibrated codecs; the shape
// fills in heads, blocks and capacity.
inline double attention_error(KvCacheConfig cfg, const Shape& s, uint64_t seed) {
  const int dim = cfg.head_dim;
  const int batch = static_cast<int>(s.seq_lens.size());
  const int max_len = *std::max_element(s.seq_lens.begin(), s.seq_lens.end());
  const int max_blocks = (max_len + s.block_tokens - 1) / s.block_tokens;
  cfg.n_layers = 1;
  cfg.n_kv_heads = s.n_kv_heads;
  cfg.block_tokens = s.block_tokens;
  cfg.max_tokens = batch * max_blocks * s.block_tokens + 3 * s.block_tokens;
  cfg.seed = seed;
  DeviceKvCache cache(cfg);

  // Shuffled physical blocks: sequences interleave in the pool.
  std::mt19937_64 rng(seed);
  std::vector<int32_t> phys(cache.num_blocks());
  std::iota(phys.begin(), phys.end(), 0);
  std::shuffle(phys.begin(), phys.end(), rng);
  std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks, -1);
  size_t next = 0;
  for (int b = 0; b < batch; ++b)
    for (int lb = 0; lb < (s.seq_lens[b] + s.block_tokens - 1) / s.block_tokens; ++lb)
      tables[b * max_blocks + lb] = phys[next++];

  // Keys and values written by the CPU encoder into host pools, then uploaded.
  std::normal_distribution<float> normal;
  std::vector<uint8_t> pools[2];
  for (int side = 0; side < 2; ++side) pools[side].assign(cache.pool_bytes(0, side), 0);
  std::vector<float> vec(dim);
  auto record = [&](int side, int b, int t, int h) {
    const int32_t block = tables[b * max_blocks + t / s.block_tokens];
    const size_t rb = cache.record_bytes(0, side);
    return &pools[side][block * cache.block_bytes(0, side) + (h * s.block_tokens + t % s.block_tokens) * rb];
  };
  for (int b = 0; b < batch; ++b)
    for (int t = 0; t < s.seq_lens[b]; ++t)
      for (int h = 0; h < s.n_kv_heads; ++h)
        for (int side = 0; side < 2; ++side) {
          for (float& e : vec) e = normal(rng);
          cache.codec(0, h, side).encode(vec.data(), record(side, b, t, h));
        }
  for (int side = 0; side < 2; ++side) cache.upload_pool(0, side, pools[side].data(), pools[side].size());

  const int n_q = s.n_kv_heads * s.group;
  std::vector<float> q(static_cast<size_t>(batch) * n_q * dim);
  const bool q16 = s.queries_dtype != DType::f32;
  auto q_bits = [&](float f) { return s.queries_dtype == DType::f16 ? float_to_half(f) : round_to_bf16_bits(f); };
  auto q_value = [&](uint16_t h) {
    if (s.queries_dtype == DType::f16) return half_to_float(h);
    const uint32_t u = static_cast<uint32_t>(h) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  };
  for (float& e : q) e = q16 ? q_value(q_bits(normal(rng))) : normal(rng);

  const int64_t q_stride = static_cast<int64_t>(n_q) * dim + s.query_pad;
  std::vector<float> q_rows(batch * q_stride, NAN);
  for (int b = 0; b < batch; ++b)
    std::copy_n(q.begin() + static_cast<int64_t>(b) * n_q * dim, n_q * dim, q_rows.begin() + b * q_stride);
  std::vector<uint16_t> q_rows16(q_rows.size());
  for (size_t i = 0; i < q_rows.size(); ++i) q_rows16[i] = q16 ? q_bits(q_rows[i]) : 0;
  DeviceBuffer<float> q_dev(q_rows), out_dev(q.size());
  DeviceBuffer<uint16_t> q16_dev(q_rows16);
  DeviceBuffer<int32_t> tables_dev(tables), lens_dev(std::vector<int32_t>(s.seq_lens.begin(), s.seq_lens.end()));
  DecodeParams p = decode_params(q_dev.get(), batch, n_q, tables_dev.get(), max_blocks, lens_dev.get(), max_len,
                                 out_dev.get());
  if (q16) {
    p.queries = q16_dev.get();
    p.queries_dtype = s.queries_dtype;
  }
  p.num_splits = s.num_splits;
  p.kernel = s.kernel;
  p.launch = s.launch;
  if (s.query_pad > 0) p.query_stride = q_stride;
  const std::vector<float> got = run_decode(cache, p, out_dev);
  if (s.out_dtype != DType::f32) {
    const std::vector<uint16_t> half = run_decode(cache, p, DeviceBuffer<uint16_t>(got.size()), s.out_dtype);
    for (float g : got)
      if (!std::isfinite(g)) return INFINITY;
    if (!is_rounded_output(got, half, s.out_dtype)) return INFINITY;
  }

  const double scale = 1.0 / std::sqrt(static_cast<double>(dim));
  double d2 = 0, r2 = 0;
  for (int b = 0; b < batch; ++b)
    for (int hq = 0; hq < n_q; ++hq) {
      const int h = hq / s.group;
      std::vector<float> ref(dim, 0.f);
      reference_head(cache.codec(0, h, 0), cache.codec(0, h, 1), &q[(static_cast<size_t>(b) * n_q + hq) * dim],
                     s.seq_lens[b], scale, [&](int side, int t) { return record(side, b, t, h); }, ref.data(),
                     cache.plan().key_frames(0), 0);
      for (int i = 0; i < dim; ++i) {
        const double g = got[(static_cast<size_t>(b) * n_q + hq) * dim + i];
        if (!std::isfinite(g)) return INFINITY;  // unwritten (poisoned) or broken output
        d2 += (g - ref[i]) * (g - ref[i]);
        r2 += double(ref[i]) * ref[i];
      }
    }
  return r2 > 0 ? std::sqrt(d2 / r2) : std::sqrt(d2);
}

// Copies layer `layer` of a CPU cache into a device cache of the same plan: the K and V
// pools, and for a cache with sinks the sink rows of sequences `ids` (the device store's
// layout [seq_id][sink position][kv_head][head_dim]).
inline void upload_cpu_cache(const KvCache& cpu, int layer, const std::vector<int>& ids, DeviceKvCache& dev) {
  const KvCacheConfig& c = cpu.config();
  for (int side = 0; side < 2; ++side) {
    dev.upload_pool(layer, side, side ? cpu.v_pool(layer) : cpu.k_pool(layer), cpu.pool_bytes(layer, side == 1));
    if (c.sink_tokens == 0) continue;
    std::vector<float> rows(dev.sink_floats(layer, side), 0.f);
    for (int id : ids)
      for (int t = 0; t < std::min(c.sink_tokens, cpu.length(layer, id)); ++t)
        for (int h = 0; h < c.n_kv_heads; ++h) {
          const float* r = side ? cpu.v_sink(layer, id, h, t) : cpu.k_sink(layer, id, h, t);
          std::copy(r, r + c.head_dim,
                    rows.begin() + ((static_cast<size_t>(id) * c.sink_tokens + t) * c.n_kv_heads + h) * c.head_dim);
        }
    dev.upload_sinks(layer, side, rows.data(), rows.size());
  }
}

inline double attention_error(const std::string& k_codec, const std::string& v_codec, int dim, const Shape& s,
                              uint64_t seed) {
  return attention_error(cache_config(k_codec, v_codec, dim, s.n_kv_heads, s.block_tokens, 0), s, seed);
}


}  // namespace tq::cuda::testing
