// Single-thread matrix-vector speed of the quantized weight kernels (src/model/qmatmul.h)
// per type and path: 2048 rows x 1536 columns of random blocks, one activation vector
// (qmatvec/: 3-6 MB, mostly in cache, the kernels' arithmetic), and Gemma 3's output
// matrix, 262144 x 640 Q8_0 (qmatvec_output/: 178 MB streamed from memory, as decode
// does; the weight prefetch in qmatmul_simd.h is what this one measures).
// GB/s counts the weight bytes read. Run: build/bench/tq_qmatmul_bench.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "qmatmul.h"
#include "turboquant/gguf.h"
#include "turboquant/half.h"
#include "turboquant/rng.h"

namespace {

using tq::gguf::GgmlType;
using tq::model::QPath;

constexpr int kRows = 2048, kCols = 1536;

void bm(benchmark::State& state, GgmlType type, QPath path, int rows = kRows, int cols = kCols) {
  if (!tq::model::qpath_available(path)) {
    state.SkipWithError("path not available");
    return;
  }
  tq::Rng rng(1);
  // At most kRows distinct rows, repeated below for taller matrices (only their bytes'
  // way from memory matters there).
  std::vector<float> w(static_cast<size_t>(std::min(rows, kRows)) * cols), x(cols), y(rows);
  for (float& v : w) v = static_cast<float>(rng.gaussian());
  for (float& v : x) v = static_cast<float>(rng.gaussian());
  // K-quants have no quantizer here: random bytes with sane fp16 scales, as the tests do.
  std::vector<uint8_t> bytes;
  const size_t be = tq::gguf::type_block_elements(type), bb = tq::gguf::type_block_bytes(type);
  if (type == GgmlType::Q4_K || type == GgmlType::Q5_K || type == GgmlType::Q6_K) {
    bytes.resize(w.size() / be * bb);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng.below(256));
    const uint16_t h = tq::float_to_half(0.01f);
    for (size_t i = 0; i < bytes.size() / bb; ++i) {
      std::memcpy(bytes.data() + i * bb + (type == GgmlType::Q6_K ? 208 : 0), &h, 2);
      if (type != GgmlType::Q6_K) std::memcpy(bytes.data() + i * bb + 2, &h, 2);
    }
  } else {
    bytes = tq::gguf::quantize(type, w.data(), w.size());
  }
  const size_t distinct = bytes.size();
  bytes.resize(static_cast<size_t>(rows) * cols / be * bb);
  for (size_t at = distinct; at < bytes.size(); at += distinct) {
    std::memcpy(bytes.data() + at, bytes.data(), std::min(distinct, bytes.size() - at));
  }
  tq::model::QMatrix m;
  m.name = "bench";
  m.type = type;
  m.data = bytes.data();
  m.rows = rows;
  m.cols = cols;
  m.row_bytes = cols / be * bb;
  for (auto _ : state) {
    tq::model::qmatmul(x.data(), 1, m, nullptr, y.data(), nullptr, path);
    benchmark::DoNotOptimize(y.data());
  }
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes.size()));
}

void register_all() {
  const struct {
    GgmlType t;
    const char* name;
  } types[] = {{GgmlType::F16, "F16"},   {GgmlType::Q4_0, "Q4_0"}, {GgmlType::Q4_1, "Q4_1"}, {GgmlType::Q5_0, "Q5_0"},
               {GgmlType::Q8_0, "Q8_0"}, {GgmlType::Q4_K, "Q4_K"}, {GgmlType::Q5_K, "Q5_K"}, {GgmlType::Q6_K, "Q6_K"}};
  for (const auto& t : types) {
    for (QPath p : {QPath::portable, QPath::avx2, QPath::avx512}) {
      benchmark::RegisterBenchmark((std::string("qmatvec/") + t.name + "/" + tq::model::qpath_name(p)).c_str(),
                                   [=](benchmark::State& s) { bm(s, t.t, p); });
    }
  }
  for (QPath p : {QPath::portable, QPath::avx2, QPath::avx512}) {
    benchmark::RegisterBenchmark((std::string("qmatvec_output/Q8_0/") + tq::model::qpath_name(p)).c_str(),
                                 [=](benchmark::State& s) { bm(s, GgmlType::Q8_0, p, 262144, 640); })
        ->Unit(benchmark::kMillisecond);
  }
}

}  // namespace

int main(int argc, char** argv) {
  register_all();
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  return 0;
}
