// Writes a few valid cache files (in the fuzz target's odd "payload" form and raw form)
// as the seed corpus, so fuzzing starts from inputs that parse.
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "turboquant/cache_io.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: cache_seed_corpus DIR\n");
    return 2;
  }
  int n = 0;
  for (const char* codec : {"f16", "turbo3", "q4_0"}) {
    tq::KvCacheConfig c;
    c.n_layers = 2;
    c.n_kv_heads = 1;
    c.head_dim = 32;
    c.k_codec = codec;
    c.v_codec = "q8_0";
    c.block_tokens = 4;
    c.max_tokens = 16;
    tq::KvCache cache(c);
    const int s = cache.add_sequence();
    std::vector<float> kv(3 * 32, 0.5f);
    for (int l = 0; l < 2; ++l) cache.append(l, s, 3, kv.data(), kv.data());
    const std::vector<uint8_t> file = tq::serialize_cache(cache, {s});
    std::ofstream raw(std::string(argv[1]) + "/raw" + std::to_string(n), std::ios::binary);
    raw.put(0);
    raw.write(reinterpret_cast<const char*>(file.data()), static_cast<std::streamsize>(file.size()));
    std::ofstream payload(std::string(argv[1]) + "/payload" + std::to_string(n++), std::ios::binary);
    payload.put(1);
    payload.write(reinterpret_cast<const char*>(file.data()) + 32, static_cast<std::streamsize>(file.size() - 32));
  }
  return 0;
}
