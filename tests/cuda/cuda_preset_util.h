#pragma once
// Calibrated presets in the CUDA tests: codecs built from a synthetic calibration profile
// (tests/core/calib_test_util.h), cached per (preset, head_dim, KV heads, sinks, RoPE
// frame range); and sequences written into a CPU KvCache and a device cache side by side,
// attended on both.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

#include "core/calib_test_util.h"
#include "cuda_attention_ref.h"
#include "cuda_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq::cuda::testing {

// Every preset of the codec table: a new row is tested without editing the tests.
inline std::vector<std::string> preset_names() {
  std::vector<std::string> names;
  for (const CodecSpec& p : preset_table()) names.emplace_back(p.name);
  return names;
}

// rope_range: CalibrationOptions::rope_range (-1: automatic, 16 × head_dim; 0: no frames).
inline std::shared_ptr<const CalibratedCodecs> calibrated(const std::string& preset, int d, int n_kv, int sinks = 0,
                                                          int rope_range = -1) {
  static std::map<std::tuple<std::string, int, int, int, int>, std::shared_ptr<const CalibratedCodecs>> cache;
  auto& slot = cache[{preset, d, n_kv, sinks, rope_range}];
  if (!slot) {
    const KvProfile prof = test::random_profile(1000 + d + n_kv, 1, 8, n_kv, d);
    CalibrationOptions opt;
    opt.sink_tokens = sinks;
    opt.rope_range = rope_range;
    slot = std::make_shared<const CalibratedCodecs>(build_calibrated(prof, *find_preset(preset), opt));
  }
  return slot;
}

// A one-layer cache of `preset` on both sides, blocks of 16 tokens, 4096 tokens.
inline KvCacheConfig preset_config(const std::string& preset, int d, int n_kv, int sinks = 0, int rope_range = -1) {
  KvCacheConfig c = cache_config(preset, preset, d, n_kv, 16, 4096);
  c.calibrated = calibrated(preset, d, n_kv, sinks, rope_range);
  c.sink_tokens = sinks;
  return c;
}

struct WriteOptions {
  bool upload = false;    // the CPU cache's pools and sink rows uploaded instead of written
  int max_chunk = 90;     // tokens per chunk at most
  bool big_first = true;  // each sequence's first key 6× larger, as real sinks are
  float key_mean = 0.7f;  // keys N(key_mean, 1), values N(0, 1)
};

// Sequences of lengths `lens` written into a CPU KvCache and, through quantize_on_write
// with positions and sequence ids, into a device cache of the same plan. Chunks of
// 1..max_chunk tokens interleave the sequences, so blocks interleave in the pool. Returns
// the CPU cache's sequence ids.
inline std::vector<int> write_sequences(KvCache& cpu, DeviceKvCache& dev, const std::vector<int>& lens, Rng& rng,
                                        const WriteOptions& o = {}) {
  const bool upload = o.upload;
  const KvCacheConfig& cfg = cpu.config();
  const int n_kv = cfg.n_kv_heads, d = cfg.head_dim, bt = cfg.block_tokens;
  std::vector<int> ids;
  for (size_t b = 0; b < lens.size(); ++b) ids.push_back(cpu.add_sequence());
  std::vector<int> done(lens.size(), 0);
  for (bool more = true; more;) {
    more = false;
    for (size_t b = 0; b < lens.size(); ++b) {
      const int n = std::min(lens[b] - done[b], 1 + static_cast<int>(rng.uniform() * o.max_chunk));
      if (n <= 0) continue;
      more = true;
      std::vector<float> k(static_cast<size_t>(n) * n_kv * d), v(k.size());
      for (float& x : k) x = static_cast<float>(rng.gaussian() + o.key_mean);
      for (float& x : v) x = static_cast<float>(rng.gaussian());
      if (o.big_first && done[b] == 0)
        for (int i = 0; i < n_kv * d; ++i) k[i] *= 6.f;
      cpu.append(0, ids[b], n, k.data(), v.data());
      if (upload) {
        done[b] += n;
        continue;
      }
      const std::vector<int32_t>& table = cpu.block_table(ids[b]);
      std::vector<int32_t> slots(n), pos(n), seq(n, ids[b]);
      for (int i = 0; i < n; ++i) {
        pos[i] = done[b] + i;
        slots[i] = table[pos[i] / bt] * bt + pos[i] % bt;
      }
      DeviceBuffer<float> kd(k), vd(v);
      DeviceBuffer<int32_t> sd(slots), pd(pos), qd(seq);
      QuantizeParams p = quantize_params(kd.get(), vd.get(), n, sd.get(), pd.get());
      p.seq_ids = qd.get();
      quantize_on_write(dev, p);
      done[b] += n;
    }
  }
  if (upload) upload_cpu_cache(cpu, 0, ids, dev);
  return ids;
}

// Decode attention at the last position of each sequence (random queries, `group` query
// heads per KV head) on the device against attend_reference on the CPU cache holding the
// same tokens: the largest relative error over sequences (INFINITY: a non-finite output).
inline double attend_error(const KvCache& cpu, const DeviceKvCache& dev, const std::vector<int>& ids,
                           const std::vector<int>& lens, int group, Rng& rng,
                           DecodeKernel kernel = DecodeKernel::auto_, int window = 0, int num_splits = 0) {
  const KvCacheConfig& cfg = cpu.config();
  const int d = cfg.head_dim, bt = cfg.block_tokens;
  const int batch = static_cast<int>(lens.size()), n_q = cfg.n_kv_heads * group;
  int max_blocks = 0;
  for (int id : ids) max_blocks = std::max<int>(max_blocks, cpu.block_table(id).size());
  std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks, 0), lens32(lens.begin(), lens.end());
  for (int b = 0; b < batch; ++b)
    for (size_t i = 0; i < cpu.block_table(ids[b]).size(); ++i) tables[b * max_blocks + i] = cpu.block_table(ids[b])[i];
  std::vector<float> q(static_cast<size_t>(batch) * n_q * d);
  for (float& x : q) x = static_cast<float>(rng.gaussian());
  DeviceBuffer<float> qd(q), od(q.size());
  DeviceBuffer<int32_t> td(tables), ld(lens32), sd(std::vector<int32_t>(ids.begin(), ids.end()));
  DecodeParams p = decode_params(qd.get(), batch, n_q, td.get(), max_blocks, ld.get(), max_blocks * bt, od.get());
  p.seq_ids = sd.get();
  p.kernel = kernel;
  p.window = window;
  p.num_splits = num_splits;
  const std::vector<float> got = run_decode(dev, p, od);
  double worst = 0;
  AttentionParams ap;
  ap.n_heads = n_q;
  ap.scale = 1.f / std::sqrt(static_cast<float>(d));
  ap.window = window;
  for (int b = 0; b < batch; ++b) {
    std::vector<float> ref(static_cast<size_t>(n_q) * d);
    attend_reference(cpu, 0, ids[b], &q[static_cast<size_t>(b) * n_q * d], 1, lens[b] - 1, ap, ref.data());
    double d2 = 0, r2 = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      const double g = got[static_cast<size_t>(b) * n_q * d + i];
      if (!std::isfinite(g)) return INFINITY;
      d2 += (g - ref[i]) * (g - ref[i]);
      r2 += double(ref[i]) * ref[i];
    }
    worst = std::max(worst, std::sqrt(d2 / r2));
  }
  return worst;
}

}  // namespace tq::cuda::testing
