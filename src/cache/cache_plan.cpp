// KvCachePlan: the one place a cache configuration becomes codecs, seeds and record layouts
// (the CPU and the CUDA cache both build from it, so their pools are interchangeable).
#include "turboquant/cache_plan.h"

#include <string>
#include <string_view>

#include "../cpu/kernels.h"
#include "turboquant/error.h"
#include "turboquant/kv_profile.h"
#include "turboquant/quant_traits.h"
#include "turboquant/rng.h"

namespace tq {

uint64_t cache_codec_seed(uint64_t seed, int layer, int kv_head, bool value) {
  return derive_seed(seed, static_cast<uint64_t>(layer) * 65536u + static_cast<uint64_t>(kv_head) * 2u + (value ? 1u : 0u));
}

namespace {

const std::string& side_codec_name(const KvCacheConfig& cfg, int layer, bool value) {
  if (auto it = cfg.layer_codecs.find(layer); it != cfg.layer_codecs.end())
    return value ? it->second.second : it->second.first;
  return value ? cfg.v_codec : cfg.k_codec;
}

// The calibrated preset's codecs of one side, checked against the cache's shape.
const CalibratedSide& calibrated_side(const KvCacheConfig& cfg, const CodecSpec& preset, int layer, bool value) {
  const CalibratedCodecs* cc = cfg.calibrated.get();
  // By name: a module built with its own copy of the preset table (the CUDA runner) gets
  // configurations whose preset points into the caller's copy.
  if (!cc || std::string_view(cc->preset->name) != preset.name)
    throw Error("codec '" + std::string(preset.name) + "' is a calibrated preset: the cache needs its calibrated codecs (" +
                (cc ? "it holds " + std::string(cc->preset->name) + "'s" : "none given") + ")");
  const auto& sides = value ? cc->values : cc->keys;
  if (sides.size() != static_cast<size_t>(cfg.n_layers))
    throw Error("calibrated codecs do not match the cache's shape: " + std::to_string(sides.size()) +
                " layers, the cache has " + std::to_string(cfg.n_layers));
  const CalibratedSide& s = sides[layer];
  if (s.maps.size() != static_cast<size_t>(cfg.n_kv_heads))
    throw Error("calibrated codecs do not match the cache's shape: " + std::to_string(s.maps.size()) +
                " KV heads, the cache has " + std::to_string(cfg.n_kv_heads));
  for (const auto& map : s.maps)
    if (map->dim != cfg.head_dim)
      throw Error("calibrated codecs do not match the cache's shape: head size " + std::to_string(map->dim) +
                  ", the cache has " + std::to_string(cfg.head_dim));
  return s;
}

CacheSidePlan plan_side(const KvCacheConfig& cfg, int layer, bool value) {
  CacheSidePlan p;
  p.codec = side_codec_name(cfg, layer, value);
  const CodecSpec* preset = find_preset(p.codec);
  p.calibrated = preset != nullptr;
  if (!preset && !find_codec(p.codec))
    throw Error("unknown codec '" + p.codec + "'; known codecs: " + codec_names() +
                "; calibrated presets: " + preset_names());
  const CalibratedSide* cal = preset ? &calibrated_side(cfg, *preset, layer, value) : nullptr;
  for (int h = 0; h < cfg.n_kv_heads; ++h) {
    if (cal) {
      p.seeds.push_back(0);
      p.codecs.push_back(Codec::make_calibrated(*preset, cal->maps[h], cal->groups));
    } else {
      p.seeds.push_back(cache_codec_seed(cfg.seed, layer, h, value));
      p.codecs.push_back(Codec::make(p.codec, cfg.head_dim, p.seeds.back()));
    }
  }
  p.record_bytes = p.codecs.front().record_bytes();
  p.block_bytes = p.record_bytes * static_cast<size_t>(cfg.block_tokens) * static_cast<size_t>(cfg.n_kv_heads);
  p.cpu_simd = quant_traits(p.codecs.front().spec().quant).cpu_simd_scorer &&
               (detail::avx2_compiled() || detail::avx512_compiled());
  return p;
}

}  // namespace

KvCachePlan::KvCachePlan(const KvCacheConfig& cfg, std::string_view who) : cfg_(cfg), who_(who) {
  auto bad = [&](const std::string& what) { throw Error(who_ + ": " + what); };
  if (cfg.n_layers <= 0) bad("n_layers must be > 0, got " + std::to_string(cfg.n_layers));
  if (cfg.n_kv_heads <= 0) bad("n_kv_heads must be > 0, got " + std::to_string(cfg.n_kv_heads));
  if (cfg.head_dim <= 0) bad("head_dim must be > 0, got " + std::to_string(cfg.head_dim));
  if (cfg.block_tokens <= 0 || cfg.block_tokens > 4096)
    bad("block_tokens must be in [1, 4096], got " + std::to_string(cfg.block_tokens));
  if (cfg.sink_tokens < 0 || cfg.sink_tokens > 4096)
    bad("sink_tokens must be in [0, 4096], got " + std::to_string(cfg.sink_tokens));
  if (cfg.max_tokens <= 0) bad("max_tokens must be > 0, got " + std::to_string(cfg.max_tokens));
  if (cfg.n_kv_heads > 32768 || cfg.n_layers > 65535) bad("too many layers or KV heads for the seed rule");
  for (const auto& [layer, names] : cfg.layer_codecs)
    if (layer < 0 || layer >= cfg.n_layers)
      bad("layer_codecs names layer " + std::to_string(layer) + " but the cache has " + std::to_string(cfg.n_layers) +
          " layers");
  num_blocks_ = static_cast<int>((static_cast<int64_t>(cfg.max_tokens) + cfg.block_tokens - 1) / cfg.block_tokens);

  layers_.resize(cfg.n_layers);
  for (int l = 0; l < cfg.n_layers; ++l)
    for (bool value : {false, true}) try {
        (value ? layers_[l].values : layers_[l].keys) = plan_side(cfg, l, value);
      } catch (const Error& e) {
        bad("layer " + std::to_string(l) + " " + (value ? "V" : "K") + ": " + e.what());
      }
  key_turns_.resize(cfg.n_layers);
  for (int l = 0; l < cfg.n_layers; ++l)
    if (const RopeFrames* f = key_frames(l))
      for (int fr = 0; fr <= f->frame(capacity() - 1); ++fr)
        key_turns_[l].push_back(f->turn_back(l, f->frame_start(fr)));
}

const CacheLayerPlan& KvCachePlan::layer(int layer) const {
  if (layer < 0 || layer >= cfg_.n_layers)
    throw Error(who_ + ": layer " + std::to_string(layer) + " out of range [0, " + std::to_string(cfg_.n_layers) + ")");
  return layers_[layer];
}

const Codec& KvCachePlan::codec(int layer, int kv_head, bool value) const {
  const CacheSidePlan& s = side(layer, value);
  if (kv_head < 0 || kv_head >= cfg_.n_kv_heads)
    throw Error(who_ + ": KV head " + std::to_string(kv_head) + " out of range [0, " + std::to_string(cfg_.n_kv_heads) +
                ")");
  return s.codecs[kv_head];
}

const RopeFrames* KvCachePlan::key_frames(int layer) const {
  if (!side(layer, false).calibrated) return nullptr;
  const RopeFrames& f = cfg_.calibrated->key_frames;
  return f.on() ? &f : nullptr;
}

const RopeFrames::Turn& KvCachePlan::key_turn(int layer, int frame) const {
  this->layer(layer);  // range check
  const std::vector<RopeFrames::Turn>& turns = key_turns_[layer];
  if (turns.empty()) throw Error(who_ + ": layer " + std::to_string(layer) + "'s keys are not in RoPE frames");
  if (frame < 0 || frame >= static_cast<int>(turns.size()))
    throw Error(who_ + ": RoPE frame " + std::to_string(frame) + " of layer " + std::to_string(layer) +
                " is past the pool's capacity of " + std::to_string(capacity()) + " tokens");
  return turns[frame];
}

size_t KvCachePlan::bytes_per_token() const {
  size_t b = 0;
  for (const CacheLayerPlan& L : layers_) b += (L.keys.record_bytes + L.values.record_bytes) * cfg_.n_kv_heads;
  return b;
}

size_t KvCachePlan::bytes_per_block() const {
  size_t b = 0;
  for (const CacheLayerPlan& L : layers_) b += L.keys.block_bytes + L.values.block_bytes;
  return b;
}

size_t KvCachePlan::sink_bytes() const {
  size_t floats = 0;
  for (const CacheLayerPlan& L : layers_)
    floats += static_cast<size_t>(L.keys.codecs[0].code_dim() + L.values.codecs[0].code_dim()) * cfg_.n_kv_heads;
  return sizeof(float) * floats * static_cast<size_t>(cfg_.sink_tokens);
}

void KvCachePlan::set_cuda_decode(int layer, CudaDecodeRoute route) {
  this->layer(layer);  // range check
  layers_[layer].cuda_decode = route;
}

}  // namespace tq
