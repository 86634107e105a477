#pragma once
// `tq bench cpu`: decode attention over the paged cache, every codec beside the f16 cache
// in the same run and through the same attend(), plus quantize-on-write throughput.
// Timing is Google Benchmark (real time, several repetitions of auto-sized iteration
// counts); the result is a markdown report.
#include <string>
#include <vector>

#include "turboquant/head_dim.h"

namespace tq::bench {

struct CpuBenchConfig {
  std::vector<std::string> codecs{"f16", "q8_0", "fp8", "q4_0", "turbo4", "rht4", "turbo3", "rht3", "turbo2"};
  std::vector<int> contexts{1024, 4096, 16384, 65536};
  std::vector<int> dims{std::begin(kHeadDims), std::end(kHeadDims)};
  int n_kv_heads = 8;
  int gqa = 4;             // query heads per KV head
  int threads = 0;         // 0: all hardware threads
  double min_time = 0.2;   // seconds per benchmark (Google Benchmark --benchmark_min_time)
  int write_tokens = 512;  // tokens per quantize-on-write measurement
  bool write_only = false; // only the quantize-on-write table (no cache fill, no attention)
  bool verbose = true;     // Google Benchmark's console output on stderr
};

// Runs everything and returns the markdown body (tables; no header lines).
std::string run_cpu_bench(const CpuBenchConfig& cfg);

}  // namespace tq::bench
