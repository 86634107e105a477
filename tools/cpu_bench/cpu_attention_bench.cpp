// Decode attention benchmark. For each head_dim and codec one cache (1 layer, n_kv_heads,
// one sequence) is filled to the largest context; a query at position ctx-1 attends to
// exactly ctx tokens, so every context is measured on the same cache. Filling 64K tokens
// by quantizing each one would take minutes for dense rotations, so the first
// kFillDistinct tokens are quantized on write and their records are then repeated
// (attention cost does not depend on which codes a record holds). Calibrated presets run
// on representative layouts (representative_layouts.h).
#include "cpu_attention_bench.h"
#include "representative_layouts.h"

#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "turboquant/attention.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/rng.h"
#include "turboquant/thread_pool.h"

namespace tq::bench {

namespace {

constexpr int kFillDistinct = 1024;

// Collects the fastest repetition's real time per benchmark name (the machine may be
// shared: the minimum is the least disturbed estimate), reporting to the console as it goes.
class Collector : public benchmark::ConsoleReporter {
 public:
  explicit Collector(bool verbose) : verbose_(verbose) {}
  bool ReportContext(const Context& c) override { return verbose_ ? ConsoleReporter::ReportContext(c) : true; }
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      if (r.error_occurred) throw Error("benchmark " + r.benchmark_name() + " failed: " + r.error_message);
      if (r.run_type != Run::RT_Iteration) continue;
      const double s = r.GetAdjustedRealTime() * 1e-9;  // time unit is ns
      auto [it, fresh] = seconds.emplace(r.run_name.function_name, s);
      if (!fresh) it->second = std::min(it->second, s);
    }
    if (verbose_) ConsoleReporter::ReportRuns(runs);
  }
  std::map<std::string, double> seconds;

 private:
  bool verbose_;
};

std::vector<float> gaussian(Rng& rng, size_t n) {
  std::vector<float> v(n);
  for (float& x : v) x = static_cast<float>(rng.gaussian());
  return v;
}

KvCacheConfig cache_config(const std::string& codec, int dim, int heads, int tokens) {
  KvCacheConfig c;
  c.n_layers = 1;
  c.n_kv_heads = heads;
  c.head_dim = dim;
  c.k_codec = codec;
  c.v_codec = codec;
  c.max_tokens = tokens;
  c.seed = 1;
  c.calibrated = representative_calibrated(codec, dim, c.n_layers, heads);
  return c;
}

// A cache of `tokens` tokens: kFillDistinct quantized on write, then their records repeated.
std::unique_ptr<KvCache> filled_cache(const std::string& codec, int dim, int heads, int tokens, ThreadPool& pool) {
  auto cache = std::make_unique<KvCache>(cache_config(codec, dim, heads, tokens));
  const int seq = cache->add_sequence();
  Rng rng(42);
  const int distinct = std::min(tokens, kFillDistinct);
  const auto k = gaussian(rng, static_cast<size_t>(distinct) * heads * dim);
  const auto v = gaussian(rng, k.size());
  cache->append(0, seq, distinct, k.data(), v.data(), &pool);
  const size_t kr = cache->k_record_bytes(0), vr = cache->v_record_bytes(0);
  std::vector<uint8_t> krec(kr * distinct * heads), vrec(vr * distinct * heads);
  for (int t = 0; t < distinct; ++t)
    for (int h = 0; h < heads; ++h) {
      std::copy_n(cache->k_record(0, seq, h, t), kr, krec.data() + kr * (static_cast<size_t>(t) * heads + h));
      std::copy_n(cache->v_record(0, seq, h, t), vr, vrec.data() + vr * (static_cast<size_t>(t) * heads + h));
    }
  for (int have = distinct; have < tokens;) {
    const int n = std::min(distinct, tokens - have);
    cache->append_records(0, seq, n, krec.data(), vrec.data());
    have += n;
  }
  return cache;
}

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

}  // namespace

std::string run_cpu_bench(const CpuBenchConfig& cfg) {
  if (cfg.codecs.empty() || cfg.contexts.empty() || cfg.dims.empty()) throw Error("bench cpu: nothing to run");
  for (int c : cfg.contexts)
    if (c <= 0) throw Error("bench cpu: contexts must be > 0");
  ThreadPool pool(cfg.threads);
  const int max_ctx = *std::max_element(cfg.contexts.begin(), cfg.contexts.end());
  const std::vector<int> contexts = cfg.write_only ? std::vector<int>{} : cfg.contexts;  // attention runs
  const int H = cfg.n_kv_heads, n_heads = H * cfg.gqa;

  std::string min_time_flag = "--benchmark_min_time=" + fmt("%g", cfg.min_time);
  std::string reps_flag = "--benchmark_repetitions=5";
  std::string prog = "tq-bench";
  char* argv[] = {prog.data(), min_time_flag.data(), reps_flag.data(), nullptr};
  int argc = 3;
  benchmark::Initialize(&argc, argv);

  // Results: [dim][codec][ctx] seconds; bytes read per token; write throughput.
  std::map<int, std::map<std::string, std::map<int, double>>> t_attn;
  std::map<int, std::map<std::string, size_t>> bytes_tok;
  std::map<int, std::map<std::string, double>> t_write;
  Collector rep(cfg.verbose);
  Rng rng(7);
  for (int dim : cfg.dims) {
    const auto q = gaussian(rng, static_cast<size_t>(n_heads) * dim);
    std::vector<float> out(q.size());
    AttentionParams p;
    p.n_heads = n_heads;
    p.scale = 1.f / std::sqrt(static_cast<float>(dim));
    const auto wk = gaussian(rng, static_cast<size_t>(cfg.write_tokens) * H * dim), wv = gaussian(rng, wk.size());
    for (const std::string& codec : cfg.codecs) {
      std::unique_ptr<KvCache> cache;
      if (!cfg.write_only) {
        cache = filled_cache(codec, dim, H, max_ctx, pool);
        bytes_tok[dim][codec] = cache->bytes_per_token();
      }
      for (int ctx : contexts) {
        const std::string name = "attend/" + codec + "/d" + std::to_string(dim) + "/ctx" + std::to_string(ctx);
        benchmark::RegisterBenchmark(name.c_str(), [&, ctx](benchmark::State& st) {
          for (auto _ : st) {
            attend(*cache, 0, 0, q.data(), 1, ctx - 1, p, out.data(), &pool);
            benchmark::DoNotOptimize(out.data());
          }
        })->UseRealTime();
      }
      const std::string wname = "write/" + codec + "/d" + std::to_string(dim);
      // Built once, not per repetition: drawing the dense rotations takes longer than the writes.
      KvCache wc(cache_config(codec, dim, H, cfg.write_tokens));
      const int wseq = wc.add_sequence();
      benchmark::RegisterBenchmark(wname.c_str(), [&](benchmark::State& st) {
        for (auto _ : st) {
          st.PauseTiming();
          wc.remove_sequence(wseq);
          wc.add_sequence_with_id(wseq);
          st.ResumeTiming();
          wc.append(0, wseq, cfg.write_tokens, wk.data(), wv.data(), &pool);
        }
      })->UseRealTime();
      benchmark::RunSpecifiedBenchmarks(&rep);
      benchmark::ClearRegisteredBenchmarks();
      for (int ctx : contexts)
        t_attn[dim][codec][ctx] = rep.seconds.at("attend/" + codec + "/d" + std::to_string(dim) + "/ctx" + std::to_string(ctx));
      t_write[dim][codec] = rep.seconds.at(wname);
    }
  }

  // Markdown.
  const bool has_f16 = std::find(cfg.codecs.begin(), cfg.codecs.end(), "f16") != cfg.codecs.end();
  std::string md;
  if (!cfg.write_only) {
    md += "Decode attention, one query token: " + std::to_string(n_heads) + " query heads over " + std::to_string(H) +
          " KV heads (GQA " + std::to_string(cfg.gqa) + ":1), one layer, " + std::to_string(pool.size()) +
          " threads, SIMD kernels " + (attend_has_simd() ? "on" : "off (portable build)") +
          ". Each cell: fastest of 5 repetitions, time in µs" + (has_f16 ? ", then f16 time / codec time (> 1: faster than f16)" : "") +
          ", then effective GB/s of K+V record bytes read.\n\n";
    for (const auto& c : cfg.codecs)
      if (const std::string l = representative_layout_text(c); !l.empty())
        md += c + ": representative layout " + l + " at head_dim 64 (group sizes scale with head_dim).\n\n";
    for (int dim : cfg.dims) {
      md += "head_dim " + std::to_string(dim) + ":\n\n| context |";
      for (const auto& c : cfg.codecs) md += " " + c + " (" + std::to_string(bytes_tok[dim][c] / H) + " B/token/head) |";
      md += "\n|---:|";
      for (size_t i = 0; i < cfg.codecs.size(); ++i) md += "---:|";
      md += "\n";
      for (int ctx : cfg.contexts) {
        md += "| " + std::to_string(ctx) + " |";
        for (const auto& c : cfg.codecs) {
          const double t = t_attn[dim][c][ctx];
          const double gbs = static_cast<double>(bytes_tok[dim][c]) * ctx / t * 1e-9;
          md += " " + fmt("%.1f", t * 1e6);
          if (has_f16) md += " · " + fmt("%.2f×", t_attn[dim]["f16"][ctx] / t);
          md += " · " + fmt("%.1f", gbs) + " |";
        }
        md += "\n";
      }
      md += "\n";
    }
  }
  md += "Quantize on write: " + std::to_string(cfg.write_tokens) + " tokens × " + std::to_string(H) +
        " KV heads, K and V, through KvCache::append with the same pool; million vectors per second (K and V each "
        "count).\n\n| head_dim |";
  for (const auto& c : cfg.codecs) md += " " + c + " |";
  md += "\n|---:|";
  for (size_t i = 0; i < cfg.codecs.size(); ++i) md += "---:|";
  md += "\n";
  for (int dim : cfg.dims) {
    md += "| " + std::to_string(dim) + " |";
    for (const auto& c : cfg.codecs)
      md += " " + fmt("%.2f", 2.0 * cfg.write_tokens * H / t_write[dim][c] * 1e-6) + " |";
    md += "\n";
  }
  return md;
}

}  // namespace tq::bench
