// Decode attention as one launch (DecodeLaunch::single: the tensor-core split kernel
// rotates its queries and the splits of a cluster merge through distributed shared
// memory) against the CPU reference, next to split_reduce (two launches where the split
// kernel reads its own queries, else three) and prepared (always three) on the same
// shapes; a decode step captured in a CUDA graph and replayed at new lengths; and the
// refusals of an explicit single launch that cannot run.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstring>
#include <iterator>
#include <numeric>
#include <random>

#include "cuda_attention_ref.h"
#include "cuda_preset_util.h"

namespace tq::cuda {
namespace {

using testing::attention_error;
using testing::DeviceBuffer;
using testing::Shape;

const Shape kShapes[] = {
    {2, 4, 16, {1, 17, 200, 333}, 0},  // the library's split count
    {2, 4, 16, {5, 300, 31}, 3},       // a forced odd count
    {1, 8, 32, {129, 2, 700}, 16},     // 8:1, a cluster of 16
    {2, 1, 16, {0, 100, 1000}, 1},     // one split, an empty sequence
};
constexpr DecodeLaunch kLaunches[] = {DecodeLaunch::single, DecodeLaunch::split_reduce, DecodeLaunch::prepared};

double error_at(const KvCacheConfig& cfg, Shape s, DecodeLaunch launch, uint64_t seed) {
  s.launch = launch;
  return attention_error(cfg, s, seed);
}

TEST(CudaSingleLaunch, MatchesTheCpuReferenceForEveryTensorCoreCodec) {
  TQ_REQUIRE_GPU();
  int pairs = 0;
  uint64_t seed = 3000;
  for (const std::string& codec : testing::supported_codecs())
    for (int d : {64, 128}) {
      const KvCacheConfig cfg = testing::cache_config(codec, codec, d, 1, 16, 64);
      if (!decode_kernel_unsupported(DeviceKvCache(cfg), 0, DecodeKernel::mma).empty()) continue;
      ++pairs;
      // Every pair: the library's count and a cluster of 16; a few also the odd counts.
      const bool all_shapes = codec == "turbo3" || codec == "rht3" || codec == "f16" || codec == "q4_0h";
      for (const Shape& s : kShapes)
        for (DecodeLaunch l : kLaunches) {
          if (!all_shapes && s.num_splits != 0 && s.num_splits != 16) continue;
          const double err = error_at(cfg, s, l, ++seed);
          EXPECT_LT(err, 1e-3) << codec << " d=" << d << " group " << s.group << " splits " << s.num_splits << " "
                               << launch_name(l);
        }
    }
  std::printf("  %d codec / head_dim pairs on the tensor-core kernels\n", pairs);
  EXPECT_GE(pairs, 16);  // turbo2-4, f16, q8_0, q4_0(h), ... at both head sizes
}

TEST(CudaSingleLaunch, CalibratedPresetsAndHalfOutputs) {
  TQ_REQUIRE_GPU();
  uint64_t seed = 4000;
  for (const char* preset : {"tq3", "tq4"})
    for (int d : {64, 128})
      for (const Shape& s : kShapes)
        for (DecodeLaunch l : kLaunches)
          // Frames off: the single launch prepares one query per head (test_cuda_frames.cpp
          // checks that it refuses keys in frames).
          EXPECT_LT(error_at(testing::preset_config(preset, d, s.n_kv_heads, 0, 0), s, l, ++seed), 1e-3)
              << preset << " d=" << d << " splits " << s.num_splits << " " << launch_name(l);
  // The single launch writes f16 / bf16 itself: the float output rounded once.
  for (DType dtype : {DType::f16, DType::bf16}) {
    Shape s = kShapes[0];
    s.out_dtype = dtype;
    EXPECT_LT(error_at(testing::cache_config("turbo3", "turbo3", 128, 2, 16, 0), s, DecodeLaunch::single, ++seed),
              1e-3);
  }
}

TEST(CudaSingleLaunch, AnExplicitSingleLaunchThatCannotRunThrows) {
  TQ_REQUIRE_GPU();
  const Shape s{2, 4, 16, {100, 7}, 0, DecodeKernel::auto_, DType::f32, DecodeLaunch::single};
  auto message = [&](const KvCacheConfig& cfg, Shape shape) -> std::string {
    try {
      attention_error(cfg, shape, 1);
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  const std::string d256 = message(testing::cache_config("turbo3", "turbo3", 256, 2, 16, 0), s);
  EXPECT_NE(d256.find("head_dim 256"), std::string::npos) << d256;
  const std::string simt = message(testing::cache_config("v3g32", "v3g32", 128, 2, 16, 0), s);
  EXPECT_NE(simt.find("simt"), std::string::npos) << simt;
  Shape many = s;
  many.num_splits = 17;
  const std::string wide = message(testing::cache_config("turbo3", "turbo3", 128, 2, 16, 0), many);
  EXPECT_NE(wide.find("17 splits"), std::string::npos) << wide;
}

// Keys and values of `tokens` random tokens per row written on the device; row b owns
// blocks [b·max_blocks, (b + 1)·max_blocks).
struct GraphFixture {
  static constexpr int kD = 128, kKv = 2, kGroup = 4, kBlock = 16, kBatch = 2, kMaxLen = 512;
  static constexpr int kMaxBlocks = kMaxLen / kBlock, kQ = kKv * kGroup;
  DeviceKvCache cache;
  DeviceBuffer<float> q{kBatch * kQ * kD}, out{kBatch * kQ * kD};
  DeviceBuffer<int32_t> tables{kBatch * kMaxBlocks}, lens{kBatch};

  explicit GraphFixture(const std::string& codec)
      : cache(testing::cache_config(codec, codec, kD, kKv, kBlock, kBatch * kMaxLen)) {
    std::mt19937_64 rng(77);
    std::normal_distribution<float> normal;
    auto randn = [&](size_t n) {
      std::vector<float> v(n);
      for (float& e : v) e = normal(rng);
      return v;
    };
    const int n = kBatch * kMaxLen;
    testing::write_in_order(cache, randn(size_t(n) * kKv * kD), randn(size_t(n) * kKv * kD), n);
    std::vector<int32_t> table(kBatch * kMaxBlocks);
    std::iota(table.begin(), table.end(), 0);
    tables.upload(table);
    q.upload(randn(size_t(kBatch) * kQ * kD));
  }

  DecodeParams params(DecodeLaunch launch) const {
    DecodeParams p = testing::decode_params(q.get(), kBatch, kQ, tables.get(), kMaxBlocks, lens.get(), kMaxLen,
                                            out.get());
    p.launch = launch;
    return p;
  }
};

bool same_bits(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

// A decode step captured once replays with the lengths changed on the device between
// replays (the split count depends on max_seq_len only), giving a direct call's outputs
// at those lengths bit for bit; as a single launch the graph holds one kernel node, as
// split_reduce two where the split kernel reads its own queries (q8_0: keys without a
// rotation) and three where a prepare kernel rotates them (turbo3).
void check_graph_replays(const std::string& codec) {
  GraphFixture f(codec);
  const std::vector<int32_t> lengths[] = {{100, 512}, {512, 37}, {1, 300}};
  for (DecodeLaunch launch : kLaunches) {
    DecodeParams p = f.params(launch);
    p.workspace_bytes = decode_workspace_bytes(f.cache, p);
    DeviceBuffer<uint8_t> ws(p.workspace_bytes);
    p.workspace = ws.get();
    std::vector<std::vector<float>> want;
    for (const auto& l : lengths) {
      f.lens.upload(l);
      f.out.poison();
      decode_attention(f.cache, p);
      testing::check(cudaDeviceSynchronize(), "direct decode");
      want.push_back(f.out.download());
    }
    cudaStream_t stream;
    testing::check(cudaStreamCreate(&stream), "cudaStreamCreate");
    p.stream = stream;
    cudaGraph_t graph;
    testing::check(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "begin capture");
    decode_attention(f.cache, p);
    testing::check(cudaStreamEndCapture(stream, &graph), "end capture");
    size_t nodes = 0;
    testing::check(cudaGraphGetNodes(graph, nullptr, &nodes), "cudaGraphGetNodes");
    const size_t want_nodes = launch == DecodeLaunch::single                               ? 1u
                              : launch == DecodeLaunch::split_reduce && codec == "q8_0" ? 2u
                                                                                         : 3u;
    EXPECT_EQ(nodes, want_nodes) << codec << " " << launch_name(launch);
    cudaGraphExec_t exec;
    testing::check(cudaGraphInstantiate(&exec, graph, 0), "cudaGraphInstantiate");
    for (size_t i = 0; i < std::size(lengths); ++i) {
      f.lens.upload(lengths[i]);
      f.out.poison();
      testing::check(cudaGraphLaunch(exec, stream), "cudaGraphLaunch");
      testing::check(cudaStreamSynchronize(stream), "replay");
      EXPECT_TRUE(same_bits(f.out.download(), want[i])) << codec << " " << launch_name(launch) << " lengths " << i;
    }
    cudaGraphExecDestroy(exec);
    cudaGraphDestroy(graph);
    cudaStreamDestroy(stream);
  }
}

TEST(CudaSingleLaunch, AGraphOfOneStepReplaysWithNewLengths) {
  TQ_REQUIRE_GPU();
  for (const char* codec : {"turbo3", "q8_0"}) check_graph_replays(codec);
}

}  // namespace
}  // namespace tq::cuda
