// Single-thread speed of the attention kernels (src/cpu/kernels.h) on one KV head: 4 rows
// (a GQA group) score and then accumulate 16384 records in blocks of 64, as the driver
// does, per codec, head_dim and path. Calibrated presets use the representative layout
// (representative_layouts.h): their keys are scored with the K layout and values added
// with the V layout. "tq3@smollm2" / "tq3@gemma3" use every layer's layouts calibrated
// from the model's profile in ~/.cache/turboquant/profiles (skipped when there is none):
// the 16384 records are split over the layers, block b in layer b % layers, so the bytes
// streamed match the other codecs'. Google Benchmark's CPU time is this thread's, so other
// jobs on a shared machine move it far less than the wall time `tq bench cpu` reports;
// compare codecs within one run. Run: build/bench/tq_attention_kernel_bench
// (TQ_KERNEL_PART=score or =add times the keys or the values alone).
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "kernels.h"
#include "random_fill.h"
#include "representative_layouts.h"
#include "turboquant/attention.h"
#include "turboquant/codec.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"
#include "turboquant/thread_pool.h"

namespace {

constexpr int kTokens = 16384, kBlock = 64;
// Rows per read: 4 (GQA 4:1), or TQ_KERNEL_ROWS (SmolLM2 decodes 3: 9 query heads over 3 KV heads).
const int kRows = std::getenv("TQ_KERNEL_ROWS") ? std::atoi(std::getenv("TQ_KERNEL_ROWS")) : 4;

// The profile file of a model ("smollm2-", "gemma-3-") in the profile cache, or "".
std::string cached_profile(const std::string& prefix) {
  const char* home = std::getenv("HOME");
  const std::filesystem::path dir = std::filesystem::path(home ? home : "") / ".cache/turboquant/profiles";
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec))
    if (e.path().filename().string().rfind(prefix, 0) == 0) return e.path().string();
  return "";
}

// K and V codecs of `name` at head_dim d, one pair per layer ("preset@model": the model's
// calibrated layouts; an empty list when its profile is missing or of another head_dim).
std::vector<std::pair<tq::Codec, tq::Codec>> codecs(const std::string& name, int d) {
  const size_t at = name.find('@');
  if (at != std::string::npos) {
    const std::string model = name.substr(at + 1), path = cached_profile(model == "gemma3" ? "gemma-3-" : model + "-");
    if (path.empty()) return {};
    const tq::KvProfile prof = tq::load_profile(path);
    if (prof.head_dim != d) return {};
    const tq::CalibratedCodecs cc = tq::build_calibrated(prof, *tq::find_preset(name.substr(0, at)));
    std::vector<std::pair<tq::Codec, tq::Codec>> out;
    for (size_t l = 0; l < cc.keys.size(); ++l)
      out.emplace_back(tq::Codec::make_calibrated(*cc.preset, cc.keys[l].maps[0], cc.keys[l].groups),
                       tq::Codec::make_calibrated(*cc.preset, cc.values[l].maps[0], cc.values[l].groups));
    return out;
  }
  if (auto cc = tq::bench::representative_calibrated(name, d, 1, 1))
    return {{tq::Codec::make_calibrated(*cc->preset, cc->keys[0].maps[0], cc->keys[0].groups),
             tq::Codec::make_calibrated(*cc->preset, cc->values[0].maps[0], cc->values[0].groups)}};
  return {{tq::Codec::make(name, d), tq::Codec::make(name, d)}};
}

std::vector<uint8_t> records(const tq::Codec& c, tq::Rng& rng, int tokens) {
  std::vector<uint8_t> out(c.record_bytes() * tokens + 64);  // + the pool's slack
  std::vector<float> x(c.dim());
  for (int t = 0; t < tokens; ++t) {
    for (float& v : x) v = static_cast<float>(rng.gaussian());
    c.encode(x.data(), out.data() + c.record_bytes() * t);
  }
  return out;
}

// One layer's kernels, its records and its query states.
struct Layer {
  tq::Codec kc, vc;
  std::unique_ptr<tq::detail::KeyScorer> ks;
  std::unique_ptr<tq::detail::ValueAccumulator> va;
  std::vector<uint8_t> krec, vrec;
  std::vector<float> st, acc;
};

void bm(benchmark::State& state, const std::string& name, int d, tq::AttendPath path) {
  if (!tq::attend_path_compiled(path)) {
    state.SkipWithError("path not compiled");
    return;
  }
  auto pairs = codecs(name, d);
  if (pairs.empty()) {
    state.SkipWithError("no profile of this head_dim");
    return;
  }
  const int n = static_cast<int>(pairs.size()), blocks = kTokens / kBlock;
  tq::Rng rng(1);
  std::vector<Layer> layers;
  int64_t bytes = 0;
  for (int l = 0; l < n; ++l) {
    auto& [kc, vc] = pairs[l];
    Layer L{kc, vc, tq::detail::make_key_scorer(kc, path), tq::detail::make_value_accumulator(vc, path), {}, {}, {}, {}};
    const int tokens = kBlock * ((blocks - l + n - 1) / n);  // blocks b < blocks with b % n == l
    L.krec = records(kc, rng, tokens);
    L.vrec = records(vc, rng, tokens);
    std::vector<float> q(kc.query_state_floats() * kRows);
    L.st.resize(L.ks->state_floats() * kRows);
    for (float& v : q) v = static_cast<float>(rng.gaussian());
    for (int r = 0; r < kRows; ++r)
      L.ks->prepare(q.data() + kc.query_state_floats() * r, L.st.data() + L.ks->state_floats() * r);
    L.acc.resize(static_cast<size_t>(kRows) * vc.code_dim());
    bytes += static_cast<int64_t>(tokens) * static_cast<int64_t>(kc.record_bytes() + vc.record_bytes());
    layers.push_back(std::move(L));
  }
  std::vector<float> s(kRows * kBlock), w(kRows * kBlock, 1.f / kTokens);
  const char* part = std::getenv("TQ_KERNEL_PART");  // "score" or "add": time one side only
  const bool do_s = !part || part[0] == 's', do_a = !part || part[0] == 'a';
  for (auto _ : state) {
    for (int b = 0; b < blocks; ++b) {
      Layer& L = layers[b % n];
      const size_t i = b / n;
      if (do_s) L.ks->score(L.st.data(), kRows, L.krec.data() + L.kc.record_bytes() * kBlock * i, kBlock, s.data());
      if (do_a) L.va->add(L.vrec.data() + L.vc.record_bytes() * kBlock * i, kBlock, w.data(), kRows, L.acc.data());
    }
    for (Layer& L : layers) benchmark::DoNotOptimize(L.acc.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * bytes);
}

// The model's own decode step over a deep cache: attend() for one query token on every
// layer of a cache shaped like SmolLM2-135M's (30 layers, 3 KV heads x 64, 9 query heads)
// holding 16384 random tokens (about 75 MB at 3 bits: far past L2 and L3), so
// the driver, its softmax, page walking and memory traffic count too. Single thread: CPU
// time, robust on a shared machine; /threads2 adds the pool (wall time, noisy).
void bm_decode_depth(benchmark::State& state, const std::string& codec, int threads, int kDepth) {
  constexpr int kLayers = 30, kKv = 3, kHeads = 9, kDim = 64;
  tq::KvCacheConfig cfg;
  cfg.n_layers = kLayers;
  cfg.n_kv_heads = kKv;
  cfg.head_dim = kDim;
  cfg.k_codec = cfg.v_codec = codec;
  cfg.max_tokens = kDepth + 1;
  if (tq::find_preset(codec)) {
    const std::string path = cached_profile("smollm2-");
    if (path.empty()) {
      state.SkipWithError("no smollm2 profile");
      return;
    }
    const tq::KvProfile prof = tq::load_profile(path);
    tq::CalibrationOptions opt;
    opt.context = cfg.max_tokens;
    tq::attach_preset_codecs(cfg, &prof, opt, "");
  }
  tq::KvCache cache(cfg);
  const int seq = cache.add_sequence();
  tq::Rng rng(3);
  tq::fill_random_tokens(cache, seq, kDepth, rng);
  std::vector<float> q(static_cast<size_t>(kHeads) * kDim), out(q.size());
  for (float& x : q) x = static_cast<float>(rng.gaussian());
  tq::AttentionParams p;
  p.n_heads = kHeads;
  p.scale = 0.125f;
  std::unique_ptr<tq::ThreadPool> tp = threads > 1 ? std::make_unique<tq::ThreadPool>(threads) : nullptr;
  for (auto _ : state) {
    for (int l = 0; l < kLayers; ++l) tq::attend(cache, l, seq, q.data(), 1, kDepth - 1, p, out.data(), tp.get());
    benchmark::DoNotOptimize(out.data());
  }
}

}  // namespace

int main(int argc, char** argv) {
  const struct {
    tq::AttendPath p;
    const char* name;
  } paths[] = {{tq::AttendPath::avx512, "avx512"}, {tq::AttendPath::avx2, "avx2"}};
  for (const auto& p : paths)
    for (int d : {64, 128, 256})
      for (const char* c : {"f16", "turbo3", "tq3", "tq4", "tq3@smollm2", "tq3@gemma3", "tq4@smollm2", "tq4@gemma3"})
        benchmark::RegisterBenchmark(
            (std::string("attn16k/") + p.name + "/d" + std::to_string(d) + "/" + c).c_str(),
            [=](benchmark::State& s) { bm(s, c, d, p.p); });
  // decode2k, decode256: the same work per token with the whole cache inside L3, L2.
  for (const char* c : {"f16", "q4_0h", "turbo3", "tq3"}) {
    benchmark::RegisterBenchmark((std::string("decode16k@smollm2/") + c).c_str(),
                                 [=](benchmark::State& s) { bm_decode_depth(s, c, 1, 16384); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("decode16k@smollm2/") + c + "/threads2").c_str(),
                                 [=](benchmark::State& s) { bm_decode_depth(s, c, 2, 16384); })
        ->Unit(benchmark::kMillisecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark((std::string("decode2k@smollm2/") + c).c_str(),
                                 [=](benchmark::State& s) { bm_decode_depth(s, c, 1, 2048); })
        ->Unit(benchmark::kMillisecond);
    benchmark::RegisterBenchmark((std::string("decode256@smollm2/") + c).c_str(),
                                 [=](benchmark::State& s) { bm_decode_depth(s, c, 1, 256); })
        ->Unit(benchmark::kMicrosecond);
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
