// Sliding-window decode attention (DecodeParams::window) on each split kernel named
// explicitly, against the CPU reference over the same records: attend_reference with
// AttentionParams::window, where a query at position p sees positions (p - window, p] and
// sink positions outside that range are not attended. The CPU cache writes the records
// (and the exact sink rows); they are uploaded into a device cache of the same plan, so
// both sides read identical bytes. Bound: ‖gpu − cpu‖ / ‖cpu‖ < 1e-3 per row, the CUDA
// attention tests' bound (tensor-core kernels: f16 operands, ~1e-4 expected).
//
// Each case also checks that
//   - the window mattered: for every row at least twice as long as the window (half of its
//     tokens or more are cut), the windowed reference differs from the whole-context one by
//     more than 1e-2, so a kernel that ignored the window would fail the bound there;
//   - no kernel reads a block that lies wholly before the window: those block-table
//     entries hold a trap id whose address is far outside the pool, so a read of one is
//     an illegal-address error (and a compute-sanitizer report);
//   - batch rows of different lengths in one call each get their own window, and so do
//     the prefill rows of one sequence (lengths 1..n, the device model's prefill call).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include "cuda_attention_ref.h"
#include "cuda_preset_util.h"
#include "turboquant/attention.h"
#include "turboquant/rng.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;

constexpr double kBound = 1e-3;
constexpr double kWindowEffect = 1e-2;
// A block id far past any pool: its address (id × block bytes) is terabytes away.
constexpr int32_t kTrapBlock = 1 << 28;
// The largest tile any split kernel reads (the CUDA-core kernel with one query head per KV
// head: 32 tokens). A kernel reads from the window start's tile on, so blocks that end at
// or before the window start rounded down to this are never read.
constexpr int kMaxTileTokens = 32;

struct WindowCase {
  std::string k_codec, v_codec;  // a calibrated preset gets codecs from a synthetic profile
  int dim = 128;
  int group = 4;       // query heads per KV head
  int sinks = 0;       // KvCacheConfig::sink_tokens
  int block_tokens = 32;
  std::vector<int> lens;  // one sequence each, written in interleaved chunks
  int window = 0;
  DecodeKernel kernel = DecodeKernel::auto_;
  int num_splits = 0;    // 0: the library's choice
  bool prefill = false;  // rows: sequence 0 at every length 1..lens[0] (else each sequence at its end)
};

std::string describe(const WindowCase& c) {
  std::string lens;
  for (int n : c.lens) lens += (lens.empty() ? "" : ",") + std::to_string(n);
  return c.k_codec + "/" + c.v_codec + " d=" + std::to_string(c.dim) + " group " + std::to_string(c.group) +
         " sinks " + std::to_string(c.sinks) + " blocks of " + std::to_string(c.block_tokens) + " lens {" + lens +
         "}" + (c.prefill ? " as prefill rows" : "") + " window " + std::to_string(c.window) + " kernel " +
         kernel_name(c.kernel) + " splits " + std::to_string(c.num_splits);
}

struct WindowResult {
  double err = INFINITY;       // largest relative error over rows (INFINITY: non-finite output)
  double separation = INFINITY;  // smallest |windowed − whole| / |whole| over rows >= 2 × window
};

WindowResult window_attention(const WindowCase& c, uint64_t seed) {
  const int n_kv = 2, d = c.dim, bt = c.block_tokens;
  int total_blocks = 0;
  for (int n : c.lens) total_blocks += (n + bt - 1) / bt;
  KvCacheConfig cfg = testing::cache_config(c.k_codec, c.v_codec, d, n_kv, bt, (total_blocks + 2) * bt, 1, seed);
  if (find_preset(c.k_codec)) cfg.calibrated = testing::calibrated(c.k_codec, d, n_kv, c.sinks);
  cfg.sink_tokens = c.sinks;
  KvCache cpu(cfg);
  DeviceKvCache dev(cpu.plan());

  // Chunks interleave the sequences, so their blocks interleave in the pool.
  Rng rng(seed);
  std::vector<int> ids, done(c.lens.size(), 0);
  for (size_t s = 0; s < c.lens.size(); ++s) ids.push_back(cpu.add_sequence());
  for (bool more = true; more;) {
    more = false;
    for (size_t s = 0; s < c.lens.size(); ++s) {
      const int n = std::min(c.lens[s] - done[s], 1 + static_cast<int>(rng.uniform() * 40));
      if (n <= 0) continue;
      more = true;
      std::vector<float> k(static_cast<size_t>(n) * n_kv * d), v(k.size());
      for (float& x : k) x = static_cast<float>(rng.gaussian() + 0.3);
      for (float& x : v) x = static_cast<float>(rng.gaussian());
      cpu.append(0, ids[s], n, k.data(), v.data());
      done[s] += n;
    }
  }
  testing::upload_cpu_cache(cpu, 0, ids, dev);

  // Rows: (sequence, length).
  std::vector<std::pair<int, int>> rows;
  if (c.prefill)
    for (int n = 1; n <= c.lens[0]; ++n) rows.emplace_back(0, n);
  else
    for (size_t s = 0; s < c.lens.size(); ++s) rows.emplace_back(static_cast<int>(s), c.lens[s]);
  const int batch = static_cast<int>(rows.size()), n_q = n_kv * c.group;
  int max_blocks = 1, max_len = 0;
  for (int id : ids) max_blocks = std::max<int>(max_blocks, cpu.block_table(id).size());
  std::vector<int32_t> tables(static_cast<size_t>(batch) * max_blocks, -1), lens32, seq_ids;
  for (int r = 0; r < batch; ++r) {
    const auto [s, len] = rows[r];
    const std::vector<int32_t>& table = cpu.block_table(ids[s]);
    const int lo = c.window > 0 ? std::max(0, len - c.window) : 0;
    const int safe = lo / kMaxTileTokens * kMaxTileTokens;  // every kernel starts at or after this
    for (size_t i = 0; i < table.size(); ++i)
      tables[r * max_blocks + i] = static_cast<int>(i + 1) * bt <= safe ? kTrapBlock : table[i];
    lens32.push_back(len);
    seq_ids.push_back(ids[s]);
    max_len = std::max(max_len, len);
  }
  std::vector<float> q(static_cast<size_t>(batch) * n_q * d);
  for (float& x : q) x = static_cast<float>(rng.gaussian());

  DeviceBuffer<float> qd(q), od(q.size());
  DeviceBuffer<int32_t> td(tables), ld(lens32), sd(seq_ids);
  DecodeParams p = testing::decode_params(qd.get(), batch, n_q, td.get(), max_blocks, ld.get(), max_len, od.get());
  p.seq_ids = sd.get();
  p.kernel = c.kernel;
  p.num_splits = c.num_splits;
  p.window = c.window;
  const std::vector<float> got = testing::run_decode(dev, p, od);

  WindowResult res;
  res.err = 0;
  AttentionParams windowed, whole;
  windowed.n_heads = whole.n_heads = n_q;
  windowed.scale = whole.scale = 1.f / std::sqrt(static_cast<float>(d));
  windowed.window = c.window;
  auto rel = [](const float* a, const std::vector<float>& ref) {
    double d2 = 0, r2 = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      if (!std::isfinite(a[i])) return double(INFINITY);  // unwritten (poisoned) or broken output
      d2 += (double(a[i]) - ref[i]) * (double(a[i]) - ref[i]);
      r2 += double(ref[i]) * ref[i];
    }
    return std::sqrt(d2 / r2);
  };
  for (int r = 0; r < batch; ++r) {
    const auto [s, len] = rows[r];
    const float* qr = &q[static_cast<size_t>(r) * n_q * d];
    std::vector<float> ref(static_cast<size_t>(n_q) * d), full(ref.size());
    attend_reference(cpu, 0, ids[s], qr, 1, len - 1, windowed, ref.data());
    res.err = std::max(res.err, rel(&got[static_cast<size_t>(r) * n_q * d], ref));
    if (c.window > 0 && len >= 2 * c.window) {
      attend_reference(cpu, 0, ids[s], qr, 1, len - 1, whole, full.data());
      res.separation = std::min(res.separation, rel(ref.data(), full));
    }
  }
  return res;
}

void expect_matches(const WindowCase& c, uint64_t seed) {
  const WindowResult r = window_attention(c, seed);
  std::printf("  %s: relative error %.2e, window effect %.2e\n", describe(c).c_str(), r.err, r.separation);
  EXPECT_LT(r.err, kBound) << describe(c);
  EXPECT_GT(r.separation, kWindowEffect) << describe(c) << ": the window barely changed the reference";
}

// 1: the query alone; 7: inside one tile; 16: one tensor-core step; 100: across tiles and
// blocks; 1000: longer than every row (the whole context).
const int kWindows[] = {1, 7, 16, 100, 1000};
// Rows of one token, of a partial tile and of many blocks, in one call.
const std::vector<int> kLens = {1, 17, 300};

TEST(CudaWindow, CudaCoreKernelMatchesTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 100;
  for (int window : kWindows)
    for (int group : {1, 4, 8}) {
      expect_matches({"turbo3", "turbo3", 128, group, 0, 32, kLens, window, DecodeKernel::simt}, ++seed);
      expect_matches({"q8_0", "v3g32", 64, group, 0, 32, kLens, window, DecodeKernel::simt}, ++seed);
    }
  // Other head sizes, and sinks on an ordinary codec (the CUDA-core kernel's sink path).
  for (int d : {64, 256}) expect_matches({"rht4", "turbo2", d, 2, 0, 32, kLens, 100, DecodeKernel::simt}, ++seed);
  for (int window : {1, 7, 100})
    expect_matches({"turbo3", "turbo3", 128, 4, 2, 32, kLens, window, DecodeKernel::simt}, ++seed);
}

TEST(CudaWindow, UniformTensorCoreKernelMatchesTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 200;
  for (int window : kWindows)
    for (int group : {1, 4, 8})
      for (const char* codec : {"turbo2", "turbo3", "turbo4"})
        expect_matches({codec, codec, 128, group, 0, 32, kLens, window, DecodeKernel::mma}, ++seed);
  for (int d : {64, 256}) expect_matches({"rht3", "rht3", d, 2, 0, 16, kLens, 100, DecodeKernel::mma}, ++seed);
}

TEST(CudaWindow, GroupedTensorCoreKernelMatchesTheCpuReferenceWithSinks) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 300;
  // Sinks 0 and 4: with a window of 1 or 7 the sink positions of the long rows lie outside
  // it (not attended), with 100 the row of 17 keeps them.
  for (int window : kWindows)
    for (int sinks : {0, 4})
      for (int group : {1, 4, 8})
        for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt})
          expect_matches({"tq3", "tq3", 128, group, sinks, 32, kLens, window, kernel}, ++seed);
  for (int d : {64, 256})
    for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt})
      expect_matches({"tq4", "tq4", d, 2, 4, 32, kLens, 7, kernel}, ++seed);
}

// The tile tensor-core kernel over f16, q8_0, q4_0 and fp8 records (and q8_0h / q4_0h, the
// same records behind a Hadamard rotation of the query and output), each kernel forced:
// without and with a window, with sinks (fp8 keeps none), GQA 1/4/8, blocks of 24 tokens
// (runs of 8 that straddle blocks), every compiled head_dim.
TEST(CudaWindow, PlainRecordTensorCoreKernelMatchesTheCpuReference) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 600;
  for (const char* codec : {"f16", "q8_0", "q4_0", "q8_0h", "q4_0h", "fp8"})
    for (DecodeKernel kernel : {DecodeKernel::mma, DecodeKernel::simt}) {
      const int sinks = std::string(codec) == "fp8" ? 0 : 4;
      for (int window : {0, 7, 100})
        for (int group : {1, 4, 8})
          // The CUDA-core kernel's ring cannot hold 32 f16 records of 128 coordinates per
          // stage (GQA 1): refused by name (CudaKernelChoice).
          if (!(kernel == DecodeKernel::simt && group == 1 && std::string(codec) == "f16"))
            expect_matches({codec, codec, 128, group, 0, 32, kLens, window, kernel}, ++seed);
      // Blocks of 24 tokens: GQA 4 (the CUDA-core kernel's tiles of 8 tokens divide them).
      for (int d : {64, 256}) expect_matches({codec, codec, d, 4, sinks, 24, kLens, 100, kernel}, ++seed);
      expect_matches({codec, codec, 128, 4, sinks, 24, kLens, 0, kernel}, ++seed);
      expect_matches({codec, codec, 128, 2, 0, 16, {300}, 16, kernel, 0, true}, ++seed);
    }
}

// Forced split counts: one split, an odd count, and more splits than the window has tiles
// (empty splits); blocks of 24 tokens (not a power of two) on the tensor-core kernels.
TEST(CudaWindow, ForcedSplitsAndOddBlocks) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 400;
  for (int splits : {1, 3, 64})
    for (int window : {16, 100}) {
      expect_matches({"turbo3", "turbo3", 128, 4, 0, 32, kLens, window, DecodeKernel::simt, splits}, ++seed);
      expect_matches({"turbo3", "turbo3", 128, 4, 0, 32, kLens, window, DecodeKernel::mma, splits}, ++seed);
      expect_matches({"tq3", "tq3", 128, 4, 2, 32, kLens, window, DecodeKernel::mma, splits}, ++seed);
    }
  for (int window : {7, 100}) {
    expect_matches({"turbo3", "turbo3", 128, 2, 0, 24, kLens, window, DecodeKernel::mma, 5}, ++seed);
    expect_matches({"tq3.5", "tq3.5", 128, 2, 3, 24, kLens, window, DecodeKernel::mma, 5}, ++seed);
  }
}

// The device model's prefill: rows 1..300 of one sequence in one call, each row's window
// taken from its own length (a causal sliding window).
TEST(CudaWindow, PrefillRowsOfOneSequence) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 500;
  for (int window : {7, 100}) {
    expect_matches({"turbo3", "turbo3", 128, 4, 0, 32, {300}, window, DecodeKernel::simt, 0, true}, ++seed);
    expect_matches({"turbo3", "turbo3", 128, 4, 0, 32, {300}, window, DecodeKernel::mma, 0, true}, ++seed);
    expect_matches({"tq3", "tq3", 128, 4, 1, 32, {300}, window, DecodeKernel::mma, 0, true}, ++seed);
    expect_matches({"f16", "f16", 128, 4, 0, 32, {300}, window, DecodeKernel::auto_, 0, true}, ++seed);
  }
}

// A window never needs more splits (or workspace) than none: a caller may size the
// workspace once without one (the Python op and the device model do).
TEST(CudaWindow, NeedsNoMoreWorkspaceThanNoWindow) {
  TQ_REQUIRE_GPU();
  DeviceKvCache cache(testing::cache_config("turbo3", "turbo3", 128, 8, 32, 64));  // splits do not read the pool
  for (DecodeKernel kernel : {DecodeKernel::simt, DecodeKernel::mma})
    for (int batch : {1, 8}) {
      DecodeParams p = testing::decode_params(nullptr, batch, 32, nullptr, 2048, nullptr, 65536, nullptr);
      p.kernel = kernel;
      const int none = decode_num_splits(cache, p);
      const size_t none_bytes = decode_workspace_bytes(cache, p);
      for (int window : {1, 512, 4096, 65536, 1 << 30}) {
        p.window = window;
        EXPECT_LE(decode_num_splits(cache, p), none) << "window " << window;
        EXPECT_LE(decode_workspace_bytes(cache, p), none_bytes) << "window " << window;
      }
      p.window = 512;
      std::printf("  %s batch %d, 64K tokens: %d splits, window 512: %d\n", kernel_name(kernel), batch, none,
                  decode_num_splits(cache, p));
    }
}

TEST(CudaWindow, NegativeWindowIsAnError) {
  TQ_REQUIRE_GPU();
  DeviceKvCache cache(testing::cache_config("turbo3", "turbo3", 128, 2, 32, 64));
  DecodeParams p = testing::decode_params(nullptr, 1, 8, nullptr, 2, nullptr, 64, nullptr);
  p.window = -1;
  try {
    decode_workspace_bytes(cache, p);
    FAIL() << "a negative window was taken";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("window must be >= 0"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tq::cuda
