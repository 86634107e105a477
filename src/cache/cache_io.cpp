// Cache file: a 32-byte header {magic "TQKV", u32 version, u64 payload bytes, u64 FNV-1a
// checksum of the payload, u64 zero}, then the payload: configuration (with sink_tokens),
// the calibration record of a preset cache, per-layer codec names, record sizes and codec
// checksums, then each sequence's per-layer lengths, records and sink store. Every read is
// bounds-checked; nothing is allocated or built before the checksum matches and the sizes
// add up. Version 1 files (no sinks, no presets) still load.
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "../core/file_frame.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/quantizers.h"

namespace tq {

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr char kMagic[4] = {'T', 'Q', 'K', 'V'};
constexpr const char* kWhat = "cache file";
constexpr uint32_t kOldestVersion = 1;  // no sink_tokens, calibration record, checksums or sink store

// Per-layer codec names as the cache resolves them.
std::pair<std::string, std::string> layer_codecs(const KvCache& c, int layer) {
  return {std::string(c.k_codec(layer, 0).name()), std::string(c.v_codec(layer, 0).name())};
}

// What a calibrated codec is beyond its name: FNV-1a 64 over the layer's group layout (size,
// bits, norm bits, u32 each) and every KV head's map (P, P⁻¹, μ as f32 bytes). 0 for codecs
// of the table, which their name, the seed and head_dim determine.
uint64_t codec_checksum(const KvCache& c, int layer, bool value) {
  const Codec& first = value ? c.v_codec(layer, 0) : c.k_codec(layer, 0);
  if (!first.affine()) return 0;
  ByteWriter layout;
  if (const auto* q = dynamic_cast<const GroupedMseQuantizer*>(&first.quantizer()))
    for (const QuantGroup& g : q->groups())
      for (int x : {g.size, g.bits, g.norm_bits}) layout.put<uint32_t>(static_cast<uint32_t>(x));
  uint64_t h = detail::fnv1a64(layout.buf.data(), layout.buf.size());
  auto add = [&](const std::vector<float>& f) {  // little-endian hosts, as the rest of the format
    h = detail::fnv1a64(reinterpret_cast<const uint8_t*>(f.data()), f.size() * sizeof(float), h);
  };
  for (int kv = 0; kv < c.config().n_kv_heads; ++kv) {
    const AffineMap& m = *(value ? c.v_codec(layer, kv) : c.k_codec(layer, kv)).affine();
    add(m.matrix);
    add(m.inverse);
    add(m.mu);
  }
  return h;
}

// The calibration source of a cache whose codecs include a preset, else none.
std::optional<CalibrationSource> cache_source(const KvCache& c) {
  for (int l = 0; l < c.config().n_layers; ++l) {
    const auto [k, v] = layer_codecs(c, l);
    if (find_preset(k) || find_preset(v)) return c.config().calibrated->source;
  }
  return std::nullopt;
}

struct FileConfig {
  uint32_t version = 0;
  KvCacheConfig cfg;
  std::optional<CalibrationSource> calibration;              // version 2, preset caches
  std::vector<std::pair<std::string, std::string>> codecs;  // per layer
  std::vector<std::pair<uint32_t, uint32_t>> rec;           // per layer record bytes
  std::vector<std::pair<uint64_t, uint64_t>> sums;          // per layer codec checksums (version 2)
};

void put_source(ByteWriter& w, const std::optional<CalibrationSource>& s) {
  w.str(s ? s->preset : "");
  if (!s) return;
  w.put<uint64_t>(s->profile_hash);
  w.put<uint64_t>(s->model_hash);
  const CalibrationOptions& o = s->options;
  w.put<uint32_t>(static_cast<uint32_t>(o.context));
  w.f64(o.ridge);
  w.put<uint32_t>(static_cast<uint32_t>(o.min_bits));
  w.put<uint32_t>(static_cast<uint32_t>(o.sink_tokens));
  w.put<uint32_t>(static_cast<uint32_t>(o.granule));
  w.put<uint64_t>(o.seed);
  w.put<uint32_t>(static_cast<uint32_t>(o.rope_range));
}

std::optional<CalibrationSource> get_source(ByteReader& r, uint32_t version) {
  CalibrationSource s;
  s.preset = r.str("calibrated preset name");
  if (s.preset.empty()) return std::nullopt;
  if (!find_preset(s.preset)) throw Error("cache file: unknown calibrated preset '" + s.preset + "'");
  s.profile_hash = r.get<uint64_t>("profile hash");
  s.model_hash = r.get<uint64_t>("profile model hash");
  CalibrationOptions& o = s.options;
  o.context = r.i32("calibration context");
  o.ridge = r.f64("calibration ridge");
  o.min_bits = r.i32("calibration min_bits");
  o.sink_tokens = r.i32("calibration sink tokens");
  o.granule = r.i32("calibration granule");
  o.seed = r.get<uint64_t>("calibration seed");
  o.rope_range = version >= 3 ? r.i32("calibration RoPE frame range") : 0;  // version 2: keys had no frames
  return s;
}

detail::Unframed open_payload(std::span<const uint8_t> bytes) {
  return detail::unframe(bytes, kMagic, kOldestVersion, kCacheFileVersion, kWhat, "turboquant cache file");
}

FileConfig read_config(ByteReader& r, uint32_t version, const CacheLoadLimits& limits) {
  FileConfig f;
  f.version = version;
  KvCacheConfig& c = f.cfg;
  c.n_layers = r.i32("n_layers");
  c.n_kv_heads = r.i32("n_kv_heads");
  c.head_dim = r.i32("head_dim");
  c.block_tokens = r.i32("block_tokens");
  c.max_tokens = r.i32("max_tokens");
  c.seed = r.get<uint64_t>("seed");
  if (version >= 2) c.sink_tokens = r.i32("sink_tokens");
  if (c.n_layers <= 0 || c.n_kv_heads <= 0 || c.head_dim <= 0 || c.block_tokens <= 0 || c.max_tokens <= 0)
    throw Error("cache file: non-positive shape (layers " + std::to_string(c.n_layers) + ", KV heads " +
                std::to_string(c.n_kv_heads) + ", head_dim " + std::to_string(c.head_dim) + ", block " +
                std::to_string(c.block_tokens) + ", max_tokens " + std::to_string(c.max_tokens) + ")");
  if (c.sink_tokens < 0 || c.sink_tokens > 4096)
    throw Error("cache file: sink_tokens " + std::to_string(c.sink_tokens) + " outside [0, 4096]");
  if (c.head_dim > limits.max_head_dim)
    throw Error("cache file: head_dim " + std::to_string(c.head_dim) + " exceeds the load limit of " +
                std::to_string(limits.max_head_dim));
  if (static_cast<int64_t>(c.n_layers) * c.n_kv_heads > limits.max_layer_heads)
    throw Error("cache file: " + std::to_string(c.n_layers) + " layers x " + std::to_string(c.n_kv_heads) +
                " KV heads exceeds the load limit of " + std::to_string(limits.max_layer_heads));
  if (version >= 2) f.calibration = get_source(r, version);
  for (int l = 0; l < c.n_layers; ++l) {
    std::string k = r.str("K codec name"), v = r.str("V codec name");
    const uint32_t kr = r.get<uint32_t>("K record bytes"), vr = r.get<uint32_t>("V record bytes");
    if (version >= 2) {
      const uint64_t ks = r.get<uint64_t>("K codec checksum"), vs = r.get<uint64_t>("V codec checksum");
      f.sums.emplace_back(ks, vs);
    }
    for (const std::string& name : {k, v}) {
      if (find_codec(name)) continue;
      if (!find_preset(name)) throw Error("cache file: layer " + std::to_string(l) + " uses unknown codec '" + name + "'");
      if (!f.calibration || f.calibration->preset != name)
        throw Error("cache file: layer " + std::to_string(l) + " uses the calibrated preset " + name +
                    (f.calibration ? " but its calibration record is for " + f.calibration->preset
                                   : " but the file records no calibration"));
    }
    f.codecs.emplace_back(k, v);
    f.rec.emplace_back(kr, vr);
  }
  if (f.calibration) {
    bool used = false;
    for (const auto& [k, v] : f.codecs) used |= k == f.calibration->preset || v == f.calibration->preset;
    if (!used) throw Error("cache file: a calibration record for " + f.calibration->preset + " but no layer uses it");
  }
  // Codec names go into the config as layer 0's defaults plus overrides where they differ.
  c.k_codec = f.codecs[0].first;
  c.v_codec = f.codecs[0].second;
  for (int l = 1; l < c.n_layers; ++l)
    if (f.codecs[l] != f.codecs[0]) c.layer_codecs[l] = f.codecs[l];
  return f;
}

// The file's preset codecs against `now` (the codecs a cache has, or is about to be built with).
void check_calibration(const FileConfig& f, const CalibrationSource& now, const std::string& prefix) {
  const std::string diff = calibration_difference(*f.calibration, now);
  if (!diff.empty())
    throw Error(prefix + "its records were encoded with " + f.calibration->preset + " codecs that differ in " + diff +
                "; records are only loaded under the codecs they were encoded with");
}

// Record sizes, and for calibrated codecs their checksums, against the cache's codecs.
void check_records(const KvCache& cache, const FileConfig& f, const std::string& prefix) {
  for (int l = 0; l < f.cfg.n_layers; ++l) {
    if (cache.k_record_bytes(l) != f.rec[l].first || cache.v_record_bytes(l) != f.rec[l].second)
      throw Error(prefix + "layer " + std::to_string(l) + " record sizes " + std::to_string(f.rec[l].first) + "/" +
                  std::to_string(f.rec[l].second) + " do not match its codecs (" + std::to_string(cache.k_record_bytes(l)) +
                  "/" + std::to_string(cache.v_record_bytes(l)) + ")");
    if (f.version < 2) continue;
    for (int side = 0; side < 2; ++side) {
      const uint64_t saved = side ? f.sums[l].second : f.sums[l].first, now = codec_checksum(cache, l, side == 1);
      if (saved != now)
        throw Error(prefix + "layer " + std::to_string(l) + " " + (side ? "V" : "K") +
                    " codecs differ from the ones its records were encoded with (checksum " + detail::hex64(saved) +
                    " saved, " + detail::hex64(now) + " now); the records are not loaded under other codecs");
    }
  }
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
        // Version 1 files hold no sinks: their caches have sink_tokens 0.
        const size_t sinks = static_cast<size_t>(std::min(c.sink_tokens, len[l])) * c.n_kv_heads;
        const std::vector<float> ks = r.f32s(sinks * cache.k_codec(l, 0).code_dim(), "K sink vectors");
        const std::vector<float> vs = r.f32s(sinks * cache.v_codec(l, 0).code_dim(), "V sink vectors");
        cache.append_records(l, seq, len[l], k, v, ks.data(), vs.data());
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

std::vector<uint8_t> serialize_cache(const KvCache& cache, const std::vector<int>& seqs) {
  const KvCacheConfig& c = cache.config();
  ByteWriter w;
  w.put<uint32_t>(c.n_layers);
  w.put<uint32_t>(c.n_kv_heads);
  w.put<uint32_t>(c.head_dim);
  w.put<uint32_t>(c.block_tokens);
  w.put<uint32_t>(c.max_tokens);
  w.put<uint64_t>(c.seed);
  w.put<uint32_t>(c.sink_tokens);
  put_source(w, cache_source(cache));
  for (int l = 0; l < c.n_layers; ++l) {
    const auto [k, v] = layer_codecs(cache, l);
    w.str(k);
    w.str(v);
    w.put<uint32_t>(static_cast<uint32_t>(cache.k_record_bytes(l)));
    w.put<uint32_t>(static_cast<uint32_t>(cache.v_record_bytes(l)));
    w.put<uint64_t>(codec_checksum(cache, l, false));
    w.put<uint64_t>(codec_checksum(cache, l, true));
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
      const int sinks = std::min(c.sink_tokens, len);
      for (int t = 0; t < sinks; ++t)
        for (int h = 0; h < c.n_kv_heads; ++h) w.f32s(cache.k_sink(l, s, h, t), cache.k_codec(l, h).code_dim());
      for (int t = 0; t < sinks; ++t)
        for (int h = 0; h < c.n_kv_heads; ++h) w.f32s(cache.v_sink(l, s, h, t), cache.v_codec(l, h).code_dim());
    }
  }
  return detail::frame(kMagic, kCacheFileVersion, w.buf);
}

KvCache deserialize_cache(std::span<const uint8_t> bytes, const CacheLoadLimits& limits,
                          std::shared_ptr<const CalibratedCodecs> calibrated) {
  const detail::Unframed u = open_payload(bytes);
  ByteReader r(u.payload, kWhat);
  FileConfig f = read_config(r, u.version, limits);
  if (f.calibration) {
    if (!calibrated)
      throw Error("cache file: its records were encoded with calibrated " + f.calibration->preset +
                  " codecs (profile " + detail::hex64(f.calibration->profile_hash) + ", context " +
                  std::to_string(f.calibration->options.context) +
                  " tokens): load it with the codecs built again from that profile, or into a cache that has them");
    check_calibration(f, calibrated->source, "cache file: ");
    if (calibrated->keys.size() != static_cast<size_t>(f.cfg.n_layers) || calibrated->values.size() != calibrated->keys.size())
      throw Error("cache file: " + std::to_string(f.cfg.n_layers) + " layers, the calibrated codecs have " +
                  std::to_string(calibrated->keys.size()));
    f.cfg.calibrated = calibrated;
  }
  // Record sizes from the codecs themselves (one codec per distinct name; a preset's from
  // its layout), so the pool size below is what the cache would really allocate.
  std::map<std::string, size_t> rec_bytes;
  auto bytes_of = [&](const std::string& name, int layer, bool value) -> size_t {
    if (find_preset(name))
      return GroupedMseQuantizer::layout_bytes((value ? calibrated->values : calibrated->keys)[layer].groups);
    auto it = rec_bytes.find(name);
    if (it == rec_bytes.end()) it = rec_bytes.emplace(name, Codec::make(name, f.cfg.head_dim).record_bytes()).first;
    return it->second;
  };
  const long double blocks = std::ceil(static_cast<long double>(f.cfg.max_tokens) / f.cfg.block_tokens);
  long double pool = 0;
  for (int l = 0; l < f.cfg.n_layers; ++l)
    pool += blocks * f.cfg.n_kv_heads * f.cfg.block_tokens *
            static_cast<long double>(bytes_of(f.codecs[l].first, l, false) + bytes_of(f.codecs[l].second, l, true));
  if (pool > static_cast<long double>(limits.max_pool_bytes))
    throw Error("cache file: its pools (" + std::to_string(static_cast<double>(pool)) + " bytes) exceed the load limit of " +
                std::to_string(limits.max_pool_bytes) + " bytes");
  KvCache cache(f.cfg);
  check_records(cache, f, "cache file: ");
  read_sequences(r, cache, true);
  return cache;
}

std::vector<int> deserialize_sequences(KvCache& cache, std::span<const uint8_t> bytes) {
  const detail::Unframed u = open_payload(bytes);
  ByteReader r(u.payload, kWhat);
  const FileConfig f = read_config(r, u.version, CacheLoadLimits{});
  const KvCacheConfig& c = cache.config();
  const std::string prefix = "cache file does not match this cache: ";
  if (f.cfg.n_layers != c.n_layers || f.cfg.n_kv_heads != c.n_kv_heads || f.cfg.head_dim != c.head_dim ||
      f.cfg.seed != c.seed)
    throw Error(prefix + "file has " + std::to_string(f.cfg.n_layers) + " layers, " +
                std::to_string(f.cfg.n_kv_heads) + " KV heads, head_dim " + std::to_string(f.cfg.head_dim) +
                ", seed " + std::to_string(f.cfg.seed) + "; cache has " + std::to_string(c.n_layers) + ", " +
                std::to_string(c.n_kv_heads) + ", " + std::to_string(c.head_dim) + ", seed " + std::to_string(c.seed));
  if (f.cfg.sink_tokens != c.sink_tokens)
    throw Error(prefix + "file keeps " + std::to_string(f.cfg.sink_tokens) + " sink tokens, cache " +
                std::to_string(c.sink_tokens));
  for (int l = 0; l < c.n_layers; ++l)
    if (f.codecs[l] != layer_codecs(cache, l))
      throw Error(prefix + "layer " + std::to_string(l) + " codecs " + f.codecs[l].first + "/" + f.codecs[l].second +
                  " vs " + layer_codecs(cache, l).first + "/" + layer_codecs(cache, l).second);
  // Equal codec names: the file has a calibration record exactly when the cache uses a preset.
  if (f.calibration) check_calibration(f, *cache_source(cache), prefix);
  check_records(cache, f, prefix);
  return read_sequences(r, cache, false);
}

std::optional<CalibrationSource> cache_calibration(std::span<const uint8_t> bytes) {
  const detail::Unframed u = open_payload(bytes);
  ByteReader r(u.payload, kWhat);
  return read_config(r, u.version, CacheLoadLimits{}).calibration;
}

void save_cache(const KvCache& cache, const std::string& path, bool overwrite) {
  write_file(path, serialize_cache(cache, cache.sequences()), overwrite);
}

void save_sequence(const KvCache& cache, int seq, const std::string& path, bool overwrite) {
  write_file(path, serialize_cache(cache, {seq}), overwrite);
}

KvCache load_cache(const std::string& path, const CacheLoadLimits& limits,
                   std::shared_ptr<const CalibratedCodecs> calibrated) {
  try {
    return deserialize_cache(read_file(path), limits, std::move(calibrated));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

KvCache load_cache_with_profile(const std::string& path, const KvProfile* profile, std::string_view profile_hint,
                                const CacheLoadLimits& limits) {
  try {
    const std::vector<uint8_t> bytes = read_file(path);
    std::shared_ptr<const CalibratedCodecs> calibrated;
    if (const auto source = cache_calibration(bytes)) {  // the preset's codecs, built again as they were saved
      if (!profile)
        throw Error("it holds a " + source->preset + " cache, whose codecs are built from a calibration profile: " +
                    std::string(profile_hint));
      calibrated = std::make_shared<const CalibratedCodecs>(
          build_calibrated(*profile, *find_preset(source->preset), source->options));
    }
    return deserialize_cache(bytes, limits, std::move(calibrated));
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
