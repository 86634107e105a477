// Single-thread speed of the attention kernels (src/cpu/kernels.h) on one KV head: 4 rows
// (a GQA group) score and then accumulate 16384 records in blocks of 64, as the driver
// does, per codec, head_dim and path. Calibrated presets use the representative layout
// (representative_layouts.h): their keys are scored with the K layout and values added
// with the V layout. Google Benchmark's CPU time is this thread's, so other jobs on a
// shared machine move it far less than the wall time `tq bench cpu` reports; compare
// codecs within one run. Run: build/bench/tq_attention_kernel_bench.
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "kernels.h"
#include "representative_layouts.h"
#include "turboquant/codec.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace {

constexpr int kTokens = 16384, kBlock = 64, kRows = 4;

// K and V codecs of `name` at head_dim d.
std::pair<tq::Codec, tq::Codec> codecs(const std::string& name, int d) {
  if (auto cc = tq::bench::representative_calibrated(name, d, 1, 1))
    return {tq::Codec::make_calibrated(*cc->preset, cc->k[0].maps[0], cc->k[0].groups),
            tq::Codec::make_calibrated(*cc->preset, cc->v[0].maps[0], cc->v[0].groups)};
  return {tq::Codec::make(name, d), tq::Codec::make(name, d)};
}

std::vector<uint8_t> records(const tq::Codec& c, tq::Rng& rng) {
  std::vector<uint8_t> out(c.record_bytes() * kTokens + 64);  // + the pool's slack
  std::vector<float> x(c.dim());
  for (int t = 0; t < kTokens; ++t) {
    for (float& v : x) v = static_cast<float>(rng.gaussian());
    c.encode(x.data(), out.data() + c.record_bytes() * t);
  }
  return out;
}

void bm(benchmark::State& state, const std::string& name, int d, tq::AttendPath path) {
  if (!tq::attend_path_compiled(path)) {
    state.SkipWithError("path not compiled");
    return;
  }
  const auto [kc, vc] = codecs(name, d);
  const auto ks = tq::detail::make_key_scorer(kc, path);
  const auto va = tq::detail::make_value_accumulator(vc, path);
  tq::Rng rng(1);
  const auto krec = records(kc, rng), vrec = records(vc, rng);
  std::vector<float> q(kc.query_state_floats() * kRows), st(ks->state_floats() * kRows);
  for (float& v : q) v = static_cast<float>(rng.gaussian());
  for (int r = 0; r < kRows; ++r) ks->prepare(q.data() + kc.query_state_floats() * r, st.data() + ks->state_floats() * r);
  std::vector<float> s(kRows * kBlock), w(kRows * kBlock, 1.f / kTokens), acc(static_cast<size_t>(kRows) * vc.code_dim());
  const size_t kb = kc.record_bytes() * kBlock, vb = vc.record_bytes() * kBlock;
  for (auto _ : state) {
    for (int b = 0; b < kTokens / kBlock; ++b) {
      ks->score(st.data(), kRows, krec.data() + kb * b, kBlock, s.data());
      va->add(vrec.data() + vb * b, kBlock, w.data(), kRows, acc.data());
    }
    benchmark::DoNotOptimize(acc.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kTokens *
                          static_cast<int64_t>(kc.record_bytes() + vc.record_bytes()));
}

}  // namespace

int main(int argc, char** argv) {
  const struct {
    tq::AttendPath p;
    const char* name;
  } paths[] = {{tq::AttendPath::avx512, "avx512"}, {tq::AttendPath::avx2, "avx2"}};
  for (const auto& p : paths)
    for (int d : {64, 128, 256})
      for (const char* c : {"f16", "turbo3", "tq3", "tq4"})
        benchmark::RegisterBenchmark(
            (std::string("attn16k/") + p.name + "/d" + std::to_string(d) + "/" + c).c_str(),
            [=](benchmark::State& s) { bm(s, c, d, p.p); });
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
