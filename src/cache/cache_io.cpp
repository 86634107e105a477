// Cache file: a 32-byte header {magic "TQKV", u32 version, u64 payload bytes, u64 FNV-1a
// checksum of the payload, u64 zero}, then the payload: configuration, per-layer codec
// names and record sizes, then each sequence's per-layer lengths and records. Every
// read is bounds-checked; nothing is allocated or built before the checksum matches and
// the sizes add up.
#include <cmath>
#include <map>
#include <string>

#include "../core/file_frame.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"

namespace tq {

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr char kMagic[4] = {'T', 'Q', 'K', 'V'};
constexpr const char* kWhat = "cache file";

// Per-layer codec names as the cache resolves them.
std::pair<std::string, std::string> layer_codecs(const KvCache& c, int layer) {
  return {std::string(c.k_codec(layer, 0).name()), std::string(c.v_codec(layer, 0).name())};
}

struct FileConfig {
  KvCacheConfig cfg;
  std::vector<std::pair<std::string, std::string>> codecs;  // per layer
  std::vector<std::pair<uint32_t, uint32_t>> rec;           // per layer record bytes
};

std::span<const uint8_t> open_payload(std::span<const uint8_t> bytes) {
  return detail::unframe(bytes, kMagic, kCacheFileVersion, kWhat, "turboquant cache file");
}

FileConfig read_config(ByteReader& r, const CacheLoadLimits& limits) {
  FileConfig f;
  KvCacheConfig& c = f.cfg;
  c.n_layers = r.i32("n_layers");
  c.n_kv_heads = r.i32("n_kv_heads");
  c.head_dim = r.i32("head_dim");
  c.block_tokens = r.i32("block_tokens");
  c.max_tokens = r.i32("max_tokens");
  c.seed = r.get<uint64_t>("seed");
  if (c.n_layers <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 || c.block_tokens <= 0 || c.max_tokens <= 0)
    throw Error("cache file: non-positive shape (layers " + std::to_string(c.n_layers) + ", KV heads " +
                std::to_string(c.n_kv_heads) + ", head_dim " + std::to_string(c.head_dim) + ", block " +
                std::to_string(c.block_tokens) + ", max_tokens " + std::to_string(c.max_tokens) + ")");
  if (c.head_dim > limits.max_head_dim)
    throw Error("cache file: head_dim " + std::to_string(c.head_dim) + " exceeds the load limit of " +
                std::to_string(limits.max_head_dim));
  if (static_cast<int64_t>(c.n_layers) * c.n_kv_heads > limits.max_layer_heads)
    throw Error("cache file: " + std::to_string(c.n_layers) + " layers x " + std::to_string(c.n_kv_heads) +
                " KV heads exceeds the load limit of " + std::to_string(limits.max_layer_heads));
  for (int l = 0; l < c.n_layers; ++l) {
    std::string k = r.str("K codec name"), v = r.str("V codec name");
    const uint32_t kr = r.get<uint32_t>("K record bytes"), vr = r.get<uint32_t>("V record bytes");
    if (!find_codec(k) || !find_codec(v))
      throw Error("cache file: layer " + std::to_string(l) + " uses unknown codec '" + (find_codec(k) ? v : k) + "'");
    f.codecs.emplace_back(k, v);
    f.rec.emplace_back(kr, vr);
  }
  // Codec names go into the config as layer 0's defaults plus overrides where they differ.
  c.k_codec = f.codecs[0].first;
  c.v_codec = f.codecs[0].second;
  for (int l = 1; l < c.n_layers; ++l)
    if (f.codecs[l] != f.codecs[0]) c.layer_codecs[l] = f.codecs[l];
  return f;
}

void check_records(const KvCache& cache, const FileConfig& f) {
  for (int l = 0; l < f.cfg.n_layers; ++l)
    if (cache.k_record_bytes(l) != f.rec[l].first || cache.v_record_bytes(l) != f.rec[l].second)
      throw Error("cache file: layer " + std::to_string(l) + " record sizes " + std::to_string(f.rec[l].first) + "/" +
                  std::to_string(f.rec[l].second) + " do not match its codecs (" + std::to_string(cache.k_record_bytes(l)) +
                  "/" + std::to_string(cache.v_record_bytes(l)) + ")");
}

// Reads the sequences into `cache`; `keep_ids` adds them under their saved ids. All-or-nothing:
// a bad sequence removes the ones this call added.
std::vector<int> read_sequences(ByteReader& r, KvCache& cache, bool keep_ids) {
  const KvCacheConfig& c = cache.config();
  const uint32_t n = r.get<uint32_t>("sequence count");
  std::vector<int> added;
  try {
    for (uint32_t i = 0; i < n; ++i) {
      const int32_t id = r.i32("sequence id");
      std::vector<int32_t> len(c.n_layers);
      for (auto& x : len) {
        x = r.i32("sequence length");
        if (x < 0 || x > c.max_tokens)
          throw Error("cache file: sequence " + std::to_string(id) + " has length " + std::to_string(x) +
                      " outside [0, max_tokens = " + std::to_string(c.max_tokens) + "]");
      }
      int seq;
      if (keep_ids) {
        if (id < 0 || cache.has_sequence(id)) throw Error("cache file: sequence id " + std::to_string(id) + " is invalid or repeated");
        cache.add_sequence_with_id(id);
        seq = id;
      } else {
        seq = cache.add_sequence();
      }
      added.push_back(seq);
      for (int l = 0; l < c.n_layers; ++l) {
        const size_t recs = static_cast<size_t>(len[l]) * c.n_kv_heads;
        const uint8_t* k = r.take(recs * cache.k_record_bytes(l), "K records");
        const uint8_t* v = r.take(recs * cache.v_record_bytes(l), "V records");
        cache.append_records(l, seq, len[l], k, v);
      }
    }
    if (r.left() != 0) throw Error("cache file: " + std::to_string(r.left()) + " unexplained bytes after the last sequence");
  } catch (...) {
    for (int s : added)
      if (cache.has_sequence(s)) cache.remove_sequence(s);
    throw;
  }
  return added;
}

std::vector<uint8_t> read_file(const std::string& path) { return detail::read_whole_file(path, kWhat); }

void write_file(const std::string& path, const std::vector<uint8_t>& bytes, bool overwrite) {
  detail::write_file_atomic(path, bytes, overwrite, kWhat);
}

}  // namespace

// Sinks live outside the records and calibrated codecs need their profile: neither is in
// the file format yet, so such caches are refused rather than saved incompletely.
void check_saveable(const KvCache& cache, const char* what) {
  const KvCacheConfig& c = cache.config();
  if (c.sink_tokens > 0 || c.calibrated)
    throw Error(std::string(what) + ": caches with calibrated presets or sink tokens (sink_tokens = " +
                std::to_string(c.sink_tokens) + ") cannot be saved or loaded yet");
}

std::vector<uint8_t> serialize_cache(const KvCache& cache, const std::vector<int>& seqs) {
  check_saveable(cache, "save_cache");
  const KvCacheConfig& c = cache.config();
  ByteWriter w;
  w.put<uint32_t>(c.n_layers);
  w.put<uint32_t>(c.n_kv_heads);
  w.put<uint32_t>(c.head_dim);
  w.put<uint32_t>(c.block_tokens);
  w.put<uint32_t>(c.max_tokens);
  w.put<uint64_t>(c.seed);
  for (int l = 0; l < c.n_layers; ++l) {
    const auto [k, v] = layer_codecs(cache, l);
    w.str(k);
    w.str(v);
    w.put<uint32_t>(static_cast<uint32_t>(cache.k_record_bytes(l)));
    w.put<uint32_t>(static_cast<uint32_t>(cache.v_record_bytes(l)));
  }
  w.put<uint32_t>(static_cast<uint32_t>(seqs.size()));
  for (int s : seqs) {
    if (!cache.has_sequence(s)) throw Error("save: no live sequence " + std::to_string(s));
    w.put<uint32_t>(static_cast<uint32_t>(s));
    for (int l = 0; l < c.n_layers; ++l) w.put<uint32_t>(static_cast<uint32_t>(cache.length(l, s)));
    for (int l = 0; l < c.n_layers; ++l) {
      const int len = cache.length(l, s);
      for (int t = 0; t < len; ++t)
        for (int h = 0; h < c.n_kv_heads; ++h) w.bytes(cache.k_record(l, s, h, t), cache.k_record_bytes(l));
      for (int t = 0; t < len; ++t)
        for (int h = 0; h < c.n_kv_heads; ++h) w.bytes(cache.v_record(l, s, h, t), cache.v_record_bytes(l));
    }
  }
  return detail::frame(kMagic, kCacheFileVersion, w.buf);
}

KvCache deserialize_cache(std::span<const uint8_t> bytes, const CacheLoadLimits& limits) {
  ByteReader r(open_payload(bytes), kWhat);
  const FileConfig f = read_config(r, limits);
  // Record sizes from the codecs themselves (one codec per distinct name), so the pool
  // size below is what the cache would really allocate.
  std::map<std::string, size_t> rec_bytes;
  auto bytes_of = [&](const std::string& name) {
    auto it = rec_bytes.find(name);
    if (it == rec_bytes.end()) it = rec_bytes.emplace(name, Codec::make(name, f.cfg.head_dim).record_bytes()).first;
    return it->second;
  };
  const long double blocks = std::ceil(static_cast<long double>(f.cfg.max_tokens) / f.cfg.block_tokens);
  long double pool = 0;
  for (int l = 0; l < f.cfg.n_layers; ++l)
    pool += blocks * f.cfg.n_kv_heads * f.cfg.block_tokens *
            static_cast<long double>(bytes_of(f.codecs[l].first) + bytes_of(f.codecs[l].second));
  if (pool > static_cast<long double>(limits.max_pool_bytes))
    throw Error("cache file: its pools (" + std::to_string(static_cast<double>(pool)) + " bytes) exceed the load limit of " +
                std::to_string(limits.max_pool_bytes) + " bytes");
  KvCache cache(f.cfg);
  check_records(cache, f);
  read_sequences(r, cache, true);
  return cache;
}

std::vector<int> deserialize_sequences(KvCache& cache, std::span<const uint8_t> bytes) {
  check_saveable(cache, "load_sequences");
  ByteReader r(open_payload(bytes), kWhat);
  const FileConfig f = read_config(r, CacheLoadLimits{});
  const KvCacheConfig& c = cache.config();
  if (f.cfg.n_layers != c.n_layers || f.cfg.n_kv_heads != c.n_kv_heads || f.cfg.head_dim != c.head_dim ||
      f.cfg.seed != c.seed)
    throw Error("cache file does not match this cache: file has " + std::to_string(f.cfg.n_layers) + " layers, " +
                std::to_string(f.cfg.n_kv_heads) + " KV heads, head_dim " + std::to_string(f.cfg.head_dim) +
                ", seed " + std::to_string(f.cfg.seed) + "; cache has " + std::to_string(c.n_layers) + ", " +
                std::to_string(c.n_kv_heads) + ", " + std::to_string(c.head_dim) + ", seed " + std::to_string(c.seed));
  for (int l = 0; l < c.n_layers; ++l)
    if (f.codecs[l] != layer_codecs(cache, l))
      throw Error("cache file does not match this cache: layer " + std::to_string(l) + " codecs " + f.codecs[l].first +
                  "/" + f.codecs[l].second + " vs " + layer_codecs(cache, l).first + "/" + layer_codecs(cache, l).second);
  check_records(cache, f);
  return read_sequences(r, cache, false);
}

void save_cache(const KvCache& cache, const std::string& path, bool overwrite) {
  write_file(path, serialize_cache(cache, cache.sequences()), overwrite);
}

void save_sequence(const KvCache& cache, int seq, const std::string& path, bool overwrite) {
  write_file(path, serialize_cache(cache, {seq}), overwrite);
}

KvCache load_cache(const std::string& path, const CacheLoadLimits& limits) {
  try {
    return deserialize_cache(read_file(path), limits);
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

std::vector<int> load_sequences(KvCache& cache, const std::string& path) {
  try {
    return deserialize_sequences(cache, read_file(path));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

}  // namespace tq
