// Decode attention time of a calibrated preset against turbo3 on the same device, in one
// process: 8 KV heads, 32 query heads, one query token per sequence, every sequence at
// the full context. The preset's codecs come from a synthetic calibration profile
// (tests/core/calib_test_util.h), not a model's: the layout (group sizes, widths, norm
// kinds) is what build_calibrated makes of random moments. Each case first checks its
// output against the CPU reference (Codec::prepare_query/dot/accumulate/finish, float64
// softmax) over sequence 0, then times: CUDA events, L2 flushed before each call,
// 3 warm-ups, median of 20. "levels" says how the tile kernel reads the preset's K and V
// levels: two per load from pair tables, or one at a time (record_grouped_tile.cuh).
// With --quantize it times quantize-on-write instead: 262144 vectors (keys and values of
// 8 KV heads, f16 rows) into the preset's cache against turbo3 and rht3, each as a share
// of the device-to-device copy bandwidth for the bytes it moves (as scripts/bench_cuda.py),
// and a decode step's write of 1 and of 16 tokens.
//   bench_cuda_presets [--preset tq3] [--ctx 16384] [--quantize] > table.md
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "codec_desc.h"
#include "core/calib_test_util.h"
#include "cuda_attention_ref.h"
#include "turboquant/cache_plan.h"
#include "turboquant/half.h"
#include "turboquant/kv_profile.h"

namespace {

using namespace tq;
using cuda::testing::check;
using cuda::testing::DeviceBuffer;

constexpr int kKv = 8, kGroup = 4;

struct Result {
  double us, err;
  std::string levels;  // calibrated codecs: "pairs" or "single" for K / V of layer 0
};

std::string levels_of(const KvCacheConfig& cfg) {
  const KvCachePlan plan(cfg);
  std::string out;
  for (bool value : {false, true}) {
    const int d = cfg.head_dim;
    out += value ? " / " : "";
    out += cuda::detail::make_grouped_host(plan.side(0, value).codecs.front(), d / 32).paired ? "pairs" : "single";
  }
  return out;
}

// The cache of `codec` for `tokens` tokens; a preset's codecs from the synthetic profile.
KvCacheConfig case_config(const std::string& codec, int d, int tokens, int rope_range) {
  KvCacheConfig cfg = cuda::testing::cache_config(codec, codec, d, kKv, 16, tokens);
  if (find_preset(codec)) {
    const KvProfile prof = test::random_profile(7 + d, 1, kKv * kGroup, kKv, d);
    CalibrationOptions opt;
    opt.rope_range = rope_range;
    cfg.calibrated = std::make_shared<const CalibratedCodecs>(build_calibrated(prof, *find_preset(codec), opt));
  }
  return cfg;
}

// Median of 20 event-timed calls of fn, each after an L2 flush (3 warm-ups first).
template <class Fn>
double median_us(Fn&& fn) {
  DeviceBuffer<uint8_t> flush(size_t(256) << 20);
  cudaEvent_t e0, e1;
  check(cudaEventCreate(&e0), "cudaEventCreate");
  check(cudaEventCreate(&e1), "cudaEventCreate");
  std::vector<float> times;
  for (int r = 0; r < 23; ++r) {
    check(cudaMemset(flush.get(), r, size_t(256) << 20), "flush L2");
    check(cudaEventRecord(e0), "cudaEventRecord");
    fn();
    check(cudaEventRecord(e1), "cudaEventRecord");
    check(cudaEventSynchronize(e1), "cudaEventSynchronize");
    float ms = 0;
    check(cudaEventElapsedTime(&ms, e0, e1), "cudaEventElapsedTime");
    if (r >= 3) times.push_back(ms * 1000.f);
  }
  cudaEventDestroy(e0);
  cudaEventDestroy(e1);
  std::nth_element(times.begin(), times.begin() + times.size() / 2, times.end());
  return times[times.size() / 2];
}

Result run_case(const std::string& codec, int d, int batch, int ctx, int rope_range) {
  const KvCacheConfig cfg = case_config(codec, d, batch * ctx, rope_range);
  cuda::DeviceKvCache cache(cfg);
  // Sequence b owns blocks [b·ctx/16, (b+1)·ctx/16): written in chunks of 4096 tokens.
  const int chunk = 4096, row = kKv * d;
  tq::Rng rng(11);
  std::vector<float> kv(static_cast<size_t>(chunk) * row);
  DeviceBuffer<float> kd(kv.size()), vd(kv.size());
  DeviceBuffer<int32_t> sd(chunk), pd(chunk);  // slots, positions (keys in RoPE frames need them)
  for (int t0 = 0; t0 < batch * ctx; t0 += chunk) {
    for (float& x : kv) x = static_cast<float>(rng.gaussian() + 0.3);
    kd.upload(kv);
    for (float& x : kv) x = static_cast<float>(rng.gaussian());
    vd.upload(kv);
    std::vector<int32_t> slots(chunk), positions(chunk);
    for (int i = 0; i < chunk; ++i) {
      slots[i] = t0 + i;
      positions[i] = (t0 + i) % ctx;
    }
    sd.upload(slots);
    pd.upload(positions);
    cuda::QuantizeParams p;
    p.keys = kd.get();
    p.values = vd.get();
    p.n_tokens = chunk;
    p.slots = sd.get();
    p.positions = pd.get();
    cuda::quantize_on_write(cache, p);
  }
  const int n_q = kKv * kGroup, max_blocks = ctx / 16;
  std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks);
  for (size_t i = 0; i < tables.size(); ++i) tables[i] = static_cast<int32_t>(i);
  std::vector<float> q(static_cast<size_t>(batch) * n_q * d);
  for (float& x : q) x = static_cast<float>(rng.gaussian());
  DeviceBuffer<float> qd(q), od(q.size());
  DeviceBuffer<int32_t> td(tables), ld(std::vector<int32_t>(batch, ctx));
  cuda::DecodeParams p = cuda::testing::decode_params(qd.get(), batch, n_q, td.get(), max_blocks, ld.get(), ctx, od.get());
  DeviceBuffer<uint8_t> ws(cuda::decode_workspace_bytes(cache, p));
  p.workspace = ws.get();
  p.workspace_bytes = cuda::decode_workspace_bytes(cache, p);

  // Content check: sequence 0 against the CPU reference over the downloaded pools.
  od.poison();
  cuda::decode_attention(cache, p);
  check(cudaDeviceSynchronize(), "decode_attention");
  const std::vector<float> got = od.download();
  std::vector<uint8_t> pools[2];
  for (int side = 0; side < 2; ++side) {
    pools[side].resize(cache.pool_bytes(0, side));
    cache.download_pool(0, side, pools[side].data(), pools[side].size());
  }
  double d2 = 0, r2 = 0;
  for (int hq = 0; hq < n_q; ++hq) {
    const int h = hq / kGroup;
    std::vector<float> ref(d);
    auto record = [&](int side, int t) {
      return &pools[side][(t / 16) * cache.block_bytes(0, side) + (h * 16 + t % 16) * cache.record_bytes(0, side)];
    };
    cuda::testing::reference_head(cache.codec(0, h, 0), cache.codec(0, h, 1), &q[static_cast<size_t>(hq) * d], ctx,
                                  1.0 / std::sqrt(double(d)), record, ref.data(), cache.plan().key_frames(0), 0);
    for (int i = 0; i < d; ++i) {
      const double g = got[static_cast<size_t>(hq) * d + i];
      d2 += std::isfinite(g) ? (g - ref[i]) * (g - ref[i]) : INFINITY;
      r2 += double(ref[i]) * ref[i];
    }
  }

  const double us = median_us([&] { cuda::decode_attention(cache, p); });
  return {us, std::sqrt(d2 / r2), cfg.calibrated ? levels_of(cfg) : std::string()};
}

// Device-to-device copy bandwidth, bytes read plus written per second.
double copy_bandwidth() {
  const size_t n = size_t(1) << 30;
  DeviceBuffer<uint8_t> src(n), dst(n);
  check(cudaMemset(src.get(), 1, n), "cudaMemset");
  const double us = median_us([&] { check(cudaMemcpy(dst.get(), src.get(), n, cudaMemcpyDeviceToDevice), "copy"); });
  return 2.0 * n / (us * 1e-6);
}

struct WriteTime {
  double us, copy_share;
};

// One write of `tokens` tokens (keys and values of kKv heads, f16 rows) into a fresh cache.
WriteTime time_write(const std::string& codec, int d, int rope_range, int tokens, double copy_bw) {
  const KvCacheConfig cfg = case_config(codec, d, tokens, rope_range);
  cuda::DeviceKvCache cache(cfg);
  tq::Rng rng(5);
  std::vector<uint16_t> rows(static_cast<size_t>(tokens) * kKv * d);
  std::vector<int32_t> slots(tokens);
  for (uint16_t& h : rows) h = float_to_half(static_cast<float>(rng.gaussian()));
  for (int t = 0; t < tokens; ++t) slots[t] = t;
  DeviceBuffer<uint16_t> kd(rows), vd(rows);
  DeviceBuffer<int32_t> sd(slots);  // slots double as positions (keys in RoPE frames)
  cuda::QuantizeParams p;
  p.keys = kd.get();
  p.values = vd.get();
  p.dtype = cuda::DType::f16;
  p.n_tokens = tokens;
  p.slots = sd.get();
  p.positions = sd.get();
  cuda::quantize_on_write(cache, p);  // checked: no input was refused
  p.check = false;                    // timed: the launches alone, as scripts/bench_cuda.py
  const double us = median_us([&] { cuda::quantize_on_write(cache, p); });
  const double moved = double(tokens) * kKv * (2.0 * 2 * d + cache.record_bytes(0, 0) + cache.record_bytes(0, 1)) +
                       4.0 * tokens;
  return {us, moved / (us * 1e-6) / copy_bw};
}

// Large writes (262144 vectors: a prefill's) and decode steps' writes (1 and 16 tokens).
int quantize_table(const std::string& preset, int rope_range) {
  const double bw = copy_bandwidth();
  const int large = 262144 / (2 * kKv);
  std::printf("Device: %s. Quantize-on-write, 8 KV heads, keys and values, f16 rows: %d tokens (262144 "
              "vectors) and a decode step's 1 and 16 tokens; copy bandwidth %.2f TB/s; %s keys in RoPE "
              "frames: %s.\n\n",
              tq::cuda::device_name().c_str(), large, bw * 1e-12, preset.c_str(),
              rope_range < 0 ? "16 x head_dim" : rope_range == 0 ? "none" : std::to_string(rope_range).c_str());
  std::printf("| d | codec | 262144 vectors (us) | share of copy bandwidth | vs turbo3 | 1 token (us) | 16 tokens "
              "(us) |\n|---:|---|---:|---:|---:|---:|---:|\n");
  for (int d : {64, 128, 256}) {
    double turbo3_us = 0;
    for (const std::string& codec : {std::string("turbo3"), std::string("rht3"), preset}) {
      const WriteTime w = time_write(codec, d, rope_range, large, bw);
      if (codec == "turbo3") turbo3_us = w.us;
      const double one = time_write(codec, d, rope_range, 1, bw).us, step = time_write(codec, d, rope_range, 16, bw).us;
      std::printf("| %d | %s | %.1f | %.1f%% | %.2fx | %.1f | %.1f |\n", d, codec.c_str(), w.us, 100 * w.copy_share,
                  w.us / turbo3_us, one, step);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::string preset = "tq3";
  int ctx = 16384;
  int rope_range = -1;  // CalibrationOptions::rope_range: -1 automatic (16 x head_dim), 0 no frames
  bool quantize = false;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--quantize")) {
      quantize = true;
      continue;
    }
    if (i + 1 >= argc) break;
    if (!std::strcmp(argv[i], "--preset")) preset = argv[++i];
    else if (!std::strcmp(argv[i], "--ctx")) ctx = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--rope-range")) rope_range = std::atoi(argv[++i]);
  }
  if (!tq::cuda::device_available()) {
    std::fprintf(stderr, "no CUDA device\n");
    return 1;
  }
  if (!find_preset(preset)) {
    std::fprintf(stderr, "unknown preset %s\n", preset.c_str());
    return 1;
  }
  if (quantize) return quantize_table(preset, rope_range);
  const char* simt = std::getenv("TQ_CUDA_DECODE");
  std::printf("Device: %s. Context %d, 32 query heads, 8 KV heads, keys in RoPE frames: %s.%s\n\n",
              tq::cuda::device_name().c_str(), ctx,
              rope_range < 0 ? "16 x head_dim" : rope_range == 0 ? "none" : std::to_string(rope_range).c_str(),
              simt ? " TQ_CUDA_DECODE=simt (CUDA-core kernel for every codec)." : "");
  std::printf(
      "| d | batch | turbo3 (us) | %s (us) | ratio | turbo3 err | %s err | levels (K / V) |\n"
      "|---:|---:|---:|---:|---:|---:|---:|---|\n",
      preset.c_str(), preset.c_str());
  int bad = 0;
  for (int d : {64, 128, 256})
    for (int batch : {1, 8}) {
      const Result t = run_case("turbo3", d, batch, ctx, rope_range);
      const Result p = run_case(preset, d, batch, ctx, rope_range);
      std::printf("| %d | %d | %.1f | %.1f | %.2fx | %.1e | %.1e | %s |\n", d, batch, t.us, p.us, p.us / t.us, t.err,
                  p.err, p.levels.c_str());
      std::fflush(stdout);
      if (!(t.err < 1e-3 && p.err < 1e-3)) ++bad;
    }
  return bad ? 1 : 0;
}
