#pragma once
// Attention fidelity on a model's own keys, values and queries (the protocol of
// RotorQuant's real-model table): for chosen query positions of one layer, attention
// computed over an f16 cache and over a compressed cache built from the same K/V,
// compared per query head by the cosine of the outputs and by whether the most-attended
// token is the same (top-1) or among the compressed cache's five most attended (top-5).
// Scores come from the codec's own dot() (what attention over the compressed cache
// uses), so the weights compared are the ones the model would see.
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace tq {

struct AttentionSpec {
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  float scale = 1.0f;
  int window = 0;        // > 0: a query at p sees positions p−window+1 .. p
  float softcap = 0.0f;  // > 0: score = softcap · tanh(score / softcap)
};

// One layer's attention inputs captured during the reference run.
struct LayerCapture {
  int n_tokens = 0;
  std::vector<float> keys, values;  // [n_tokens][n_kv_heads][head_dim], positions 0..n_tokens−1
  std::vector<int> query_pos;       // positions whose queries were kept
  std::vector<float> queries;       // [query_pos.size()][n_heads][head_dim]
};

struct HeadFidelity {
  double cosine = 0;  // mean over queries of cos(out_codec, out_f16)
  double top1 = 0;    // fraction of queries whose most-attended token is the same
  double top5 = 0;    // fraction whose f16 most-attended token is in the codec's top 5
  int queries = 0;
};

// Per query head of `layer`. Codec seeds follow the cache's rule
// derive_seed(seed, layer·65536 + kv_head·2 + {0: K, 1: V}), so the codec instances
// are the ones a KvCache with that seed holds.
std::vector<HeadFidelity> attention_fidelity(const AttentionSpec& spec, const LayerCapture& cap,
                                             int layer, const std::string& k_codec,
                                             const std::string& v_codec, uint64_t seed);

// Several codec pairs {K codec, V codec} against one f16 reference, computed once:
// result[i] is attention_fidelity(spec, cap, layer, codecs[i].first, codecs[i].second, seed).
using CodecPair = std::pair<std::string, std::string>;
std::vector<std::vector<HeadFidelity>> attention_fidelity(const AttentionSpec& spec, const LayerCapture& cap,
                                                          int layer, const std::vector<CodecPair>& codecs,
                                                          uint64_t seed);

// The attention outputs themselves, [query][head][head_dim] in the order of
// cap.query_pos, as a compressed cache with these codecs gives them (to check this
// protocol against the engine's attend()).
std::vector<float> attention_outputs(const AttentionSpec& spec, const LayerCapture& cap, int layer,
                                     const std::string& k_codec, const std::string& v_codec,
                                     uint64_t seed);

}  // namespace tq
