// Writes the seed corpora of the loader fuzz targets: a few small valid cache, session
// and calibration-profile files, made through the library, in the two forms the targets
// read (fuzz_frame.h): byte 0 even + the whole file ("raw"), byte 0 odd + the payload
// ("payload"). Profiles also get truncated payloads, so the fuzzer starts from the
// "does not fit" branches too. Deterministic: the same tree writes the same bytes.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "turboquant/cache_io.h"
#include "turboquant/kv_profile.h"
#include "turboquant/qk_balance.h"
#include "turboquant/rng.h"
#include "turboquant/session.h"

namespace {

constexpr size_t kHeader = 32;  // src/core/file_frame.h

void write(const std::string& path, uint8_t mode, const uint8_t* p, size_t n) {
  std::ofstream f(path, std::ios::binary);
  f.put(static_cast<char>(mode));
  f.write(reinterpret_cast<const char*>(p), static_cast<std::streamsize>(n));
}

void write_raw_and_payload(const std::string& dir, const std::string& name, const std::vector<uint8_t>& file) {
  write(dir + "/raw" + name, 0, file.data(), file.size());
  write(dir + "/payload" + name, 1, file.data() + kHeader, file.size() - kHeader);
}

// Three tokens in every layer of a 2-layer, 1-head, head_dim 32 cache.
tq::KvCache small_cache(const char* k_codec, int* seq, int sink_tokens = 0) {
  tq::KvCacheConfig c;
  c.n_layers = 2;
  c.n_kv_heads = 1;
  c.head_dim = 32;
  c.k_codec = k_codec;
  c.v_codec = "q8_0";
  c.block_tokens = 4;
  c.max_tokens = 16;
  c.sink_tokens = sink_tokens;
  tq::KvCache cache(c);
  *seq = cache.add_sequence();
  std::vector<float> kv(3 * 32, 0.5f);
  for (int l = 0; l < 2; ++l) cache.append(l, *seq, 3, kv.data(), kv.data());
  return cache;
}

void cache_seeds(const std::string& dir) {
  int n = 0;
  for (const char* codec : {"f16", "turbo3", "q4_0", "rht3"}) {
    int s;
    const tq::KvCache cache = small_cache(codec, &s, codec[0] == 'r' ? 2 : 0);  // one with a sink store
    write_raw_and_payload(dir, std::to_string(n++), tq::serialize_cache(cache, {s}));
  }
}

void session_seeds(const std::string& dir) {
  int n = 0;
  for (bool balance : {false, true}) {
    int s;
    const tq::KvCache cache = small_cache("turbo3", &s);
    tq::Session session;
    session.model = {4096, 0x0123456789abcdefull};
    session.k_codec = "turbo3";
    session.v_codec = "q8_0";
    if (balance) session.balance = tq::QkBalance(2, 1, 32, std::vector<float>(2 * 32, 1.25f));
    session.tokens = {1, 17, 42};
    session.logits = {0.5f, -1.f, 2.f, 0.f, 3.5f, -0.25f, 1.f, 0.125f};
    session.cache = tq::serialize_cache(cache, {s});
    write_raw_and_payload(dir, std::to_string(n++), tq::serialize_session(session));
  }
}

// A profile of random moments: q, k, v rows from a fixed mixing, W_o a random matrix.
tq::KvProfile small_profile(uint64_t seed, int layers, int heads, int kv_heads, int d, int rope_dim, bool neox,
                            bool sensitivities) {
  tq::Rng rng(seed);
  tq::KvProfileBuilder b(layers, heads, kv_heads, d);
  const int tokens = 24;
  std::vector<float> q(static_cast<size_t>(tokens) * heads * d), k(static_cast<size_t>(tokens) * kv_heads * d),
      v(k.size());
  for (int l = 0; l < layers; ++l) {
    for (float& x : q) x = static_cast<float>(rng.gaussian());
    for (float& x : k) x = static_cast<float>(0.5 + rng.gaussian());
    for (float& x : v) x = static_cast<float>(rng.gaussian() - 0.25);
    b.add(l, tokens, q.data(), k.data(), v.data());
  }
  tq::KvProfile p = b.finish();
  p.model_hash = seed * 0x9e3779b97f4a7c15ull;
  p.model_name = "seed-" + std::to_string(seed);
  p.rope_partner = tq::rope_partners(d, rope_dim, neox);
  p.rope_theta.assign(layers, std::vector<double>(d, 0.0));
  for (auto& t : p.rope_theta)
    for (int i = 0; i < d; ++i) t[i] = std::pow(10000.0, -2.0 * (i % (d / 2)) / d);
  for (auto& h : p.heads) {
    std::vector<double> w(static_cast<size_t>(d) * d);
    for (double& x : w) x = rng.gaussian();
    h.v_weight.assign(w.size(), 0.0);  // Wᵀ W
    for (int i = 0; i < d; ++i)
      for (int j = 0; j < d; ++j)
        for (int r = 0; r < d; ++r) h.v_weight[i * d + j] += w[r * d + i] * w[r * d + j] / d;
  }
  if (sensitivities) {
    for (int l = 0; l < layers; ++l) {
      p.k_sensitivity.push_back(0.5 + l);
      p.v_sensitivity.push_back(1.0 / (1 + l));
    }
  }
  return p;
}

void profile_seeds(const std::string& dir) {
  const std::vector<tq::KvProfile> profiles = {
      small_profile(1, 1, 1, 1, 8, 8, false, false),  // one head, interleaved RoPE
      small_profile(2, 2, 4, 2, 8, 4, true, true),    // grouped query heads, half the coordinates unrotated
      small_profile(3, 2, 2, 1, 16, 16, true, true),  // two layers with measured sensitivities
  };
  int n = 0;
  for (const tq::KvProfile& p : profiles) {
    const std::vector<uint8_t> file = tq::serialize_profile(p);
    const std::string name = std::to_string(n++);
    write_raw_and_payload(dir, name, file);
    const size_t payload = file.size() - kHeader;
    for (size_t keep : {size_t(40), payload / 2, payload - 9})  // cut in the header fields, the statistics, the sensitivities
      write(dir + "/cut" + name + "_" + std::to_string(keep), 1, file.data() + kHeader, keep);
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: seed_corpus CORPUS_DIR   (writes CORPUS_DIR/{cache,session,profile}_load_fuzz/)\n");
    return 2;
  }
  const std::string root = argv[1];
  cache_seeds(root + "/cache_load_fuzz");
  session_seeds(root + "/session_load_fuzz");
  profile_seeds(root + "/profile_load_fuzz");
  return 0;
}
