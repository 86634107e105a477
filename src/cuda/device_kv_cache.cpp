// DeviceKvCache: validation, codec construction with the seeds of kv_cache.h, upload of
// rotation parameters, pool allocation and host <-> device copies.
#include <algorithm>
#include <string>
#include <utility>

#include "codec_desc.h"
#include "decode_args.h"
#include "cuda_check.h"
#include "device_cache_impl.h"
#include "turboquant/head_dim.h"
#include "turboquant/quant_traits.h"

namespace tq::cuda {

using detail::check_cuda;

namespace {

template <class T>
T* upload(DeviceKvCache::Impl& impl, const std::vector<T>& host, const char* what = "rotation parameters") {
  if (host.empty()) return nullptr;
  void* p = nullptr;
  check_cuda(cudaMalloc(&p, host.size() * sizeof(T)), (std::string("cudaMalloc (") + what + ")").c_str());
  impl.allocations.push_back(p);
  check_cuda(cudaMemcpy(p, host.data(), host.size() * sizeof(T), cudaMemcpyHostToDevice),
             (std::string("cudaMemcpy (") + what + ")").c_str());
  return static_cast<T*>(p);
}

detail::RotationDesc upload_rotation(DeviceKvCache::Impl& impl, const detail::RotationHost& rh, const float* mu) {
  detail::RotationDesc d;
  d.kind = rh.kind;
  d.rounds = rh.rounds;
  d.scale = rh.scale;
  d.matrix = upload(impl, rh.matrix);
  d.matrix_t = upload(impl, rh.matrix_t);
  d.signs = upload(impl, rh.signs);
  d.perm = upload(impl, rh.perm);
  d.rows = upload(impl, rh.rows);
  d.mma_b = upload(impl, rh.mma_b, "tensor-core rotation fragments");
  d.mma_unscale = rh.mma_unscale;
  d.mu = mu;
  return d;
}

// The keys' RoPE frames of `layer` on the device: the partners and, for each frame the
// cache's capacity reaches, the cos and sin of RopeFrames::turn_back at its start (the
// host's own floats, so both sides turn alike), as [frame][coordinate][cos, sin].
detail::FrameDesc upload_frames(DeviceKvCache::Impl& impl, const KvCachePlan& plan, int layer) {
  const RopeFrames& frames = *plan.key_frames(layer);
  const int d = frames.head_dim();
  detail::FrameDesc f;
  f.range = frames.range();
  f.n_frames = static_cast<int32_t>(std::max<int64_t>(1, (plan.capacity() + f.range - 1) / f.range));
  const std::vector<int32_t> partner(frames.partner().begin(), frames.partner().end());
  std::vector<float> turns(static_cast<size_t>(f.n_frames) * d * 2);
  for (int fr = 0; fr < f.n_frames; ++fr) {
    const RopeFrames::Turn& turn = plan.key_turn(layer, fr);
    float* row = turns.data() + static_cast<size_t>(fr) * d * 2;
    for (int i = 0; i < d; ++i) {
      row[2 * i] = turn.cos()[i];
      row[2 * i + 1] = turn.sin()[i];
    }
  }
  f.partner = upload(impl, partner, "RoPE frame partners");
  f.turns = upload(impl, turns, "RoPE frame turns");
  return f;
}

// What the CUDA kernels add to the plan's rules: shapes first (before any codec is built,
// so a head size the kernels lack is named as such), then each side's codec.
void check_cuda_shape(const KvCacheConfig& c) {
  auto fail = [](const std::string& m) { throw Error("DeviceKvCache: " + m); };
  if (c.n_kv_heads > detail::kMaxStatusHeads)
    fail("n_kv_heads must be in [1, " + std::to_string(detail::kMaxStatusHeads) + "], got " +
         std::to_string(c.n_kv_heads));
  if (c.head_dim > 0 && !head_dim_compiled(c.head_dim)) throw_unsupported_head_dim("DeviceKvCache", c.head_dim);
  if (c.block_tokens <= 0 || c.block_tokens % 8 != 0)
    fail("block_tokens must be a positive multiple of 8, got " + std::to_string(c.block_tokens));
}

void check_cuda_codecs(const KvCachePlan& plan) {
  const KvCacheConfig& c = plan.config();
  for (int l = 0; l < c.n_layers; ++l)
    for (bool value : {false, true}) {
      const CacheSidePlan& side = plan.side(l, value);
      const std::string where = "DeviceKvCache: layer " + std::to_string(l) + (value ? " V" : " K") + ": codec '" +
                                side.codec + "'";
      if (!codec_supported(side.codec)) throw Error(where + " is not implemented by the CUDA kernels yet");
      // A decode tile (32/G tokens on the CUDA cores, 16 on the tensor cores) is scored with
      // one query: it must not straddle a frame.
      if (const RopeFrames* f = value ? nullptr : plan.key_frames(l); f && f->range() % 32 != 0)
        throw Error(where + " with keys in RoPE frames: CalibrationOptions::rope_range " + std::to_string(f->range()) +
                    " is not a multiple of 32, the CUDA kernels' largest decode tile");
      // Sinks are written by the tiled quantize kernel, which has no fp8 encoder.
      if (c.sink_tokens > 0 && side.codecs.front().spec().quant == QuantKind::fp8)
        throw Error(where + " with sink_tokens > 0 is not implemented by the CUDA kernels yet");
    }
}

KvCachePlan cuda_plan(const KvCacheConfig& c) {
  check_cuda_shape(c);
  return KvCachePlan(c, "DeviceKvCache");
}

}  // namespace

bool device_available() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    (void)cudaGetLastError();  // clear the sticky "no device" status
    return false;
  }
  return n > 0;
}

std::string device_name() {
  if (!device_available()) return "";
  int dev = 0;
  cudaDeviceProp prop{};
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaGetDeviceProperties(&prop, dev), "cudaGetDeviceProperties");
  return prop.name;
}

bool head_dim_supported(int d) { return head_dim_compiled(d); }

bool codec_supported(std::string_view name) {
  if (find_preset(name)) return true;  // calibrated presets: grouped records behind an affine map
  const CodecSpec* s = find_codec(name);
  if (!s) return false;
  const QuantTraits& row = quant_traits(s->quant);
  const bool bits_ok = row.cuda_max_bits == 0 || (s->bits <= row.cuda_max_bits && s->bits_lo <= row.cuda_max_bits);
  return row.cuda_kernels && bits_ok && (row.cuda_rotated || s->rotation == RotationKind::none);
}

DeviceKvCache::DeviceKvCache(const KvCacheConfig& config) : DeviceKvCache(cuda_plan(config)) {}

DeviceKvCache::DeviceKvCache(KvCachePlan plan) : plan_(std::move(plan)), impl_(new Impl) {
  const KvCacheConfig& cfg = plan_.config();
  check_cuda_shape(cfg);
  check_cuda_codecs(plan_);
  if (!device_available()) throw Error("DeviceKvCache: no CUDA device is available");
  num_blocks_ = plan_.num_blocks();
  int dev = 0;
  check_cuda(cudaGetDevice(&dev), "cudaGetDevice");
  check_cuda(cudaDeviceGetAttribute(&impl_->sm_count, cudaDevAttrMultiProcessorCount, dev),
             "cudaDeviceGetAttribute");
  try {
    impl_->layers.resize(config().n_layers);
    for (int l = 0; l < config().n_layers; ++l)
      for (int kv = 0; kv < 2; ++kv) {
        Impl::Side& s = impl_->layers[l][kv];
        std::vector<detail::RotationDesc> rots, enc_rots;
        const CacheSidePlan& side = plan_.side(l, kv == 1);
        for (int h = 0; h < config().n_kv_heads; ++h) {
          const Codec& codec = side.codecs[h];
          if (const AffineMap* map = codec.affine()) {
            const float* mu = upload(*impl_, map->mu, "affine map");
            rots.push_back(upload_rotation(*impl_, detail::make_affine_host(*map, true), mu));
            enc_rots.push_back(upload_rotation(*impl_, detail::make_affine_host(*map, false), mu));
          } else {
            rots.push_back(upload_rotation(*impl_, detail::make_rotation_host(codec.rotation()), nullptr));
            enc_rots.push_back(rots.back());
          }
          s.rot_kind = rots.back().kind;  // the same kind and rounds for every head of a side
          s.rot_rounds = rots.back().rounds;
        }
        if (kv == 0 && plan_.key_frames(l)) s.frames = upload_frames(*impl_, plan_, l);
        s.desc = detail::make_codec_desc(side.codecs.front());
        if (s.desc.kind == QuantKind::grouped) {
          // One run table per side: every head of a layer's side shares its groups.
          const detail::GroupedHost g = detail::make_grouped_host(side.codecs.front(), config().head_dim / 32);
          s.desc.n_runs = static_cast<int32_t>(g.runs.size());
          s.desc.table_floats = static_cast<int32_t>(g.table.size());
          s.desc.lut_bytes = g.lut_bytes;
          s.desc.paired = g.paired;
          s.desc.runs = upload(*impl_, g.runs, "grouped runs");
          s.desc.table = upload(*impl_, g.table, "grouped levels");
        }
        s.rotations = upload(*impl_, rots);
        s.enc_rotations = upload(*impl_, enc_rots);
        s.record_bytes = side.record_bytes;
        s.block_bytes = side.block_bytes;
        void* p = nullptr;
        check_cuda(cudaMalloc(&p, s.block_bytes * num_blocks_), "cudaMalloc (KV pool)");
        impl_->allocations.push_back(p);
        check_cuda(cudaMemset(p, 0, s.block_bytes * num_blocks_), "cudaMemset (KV pool)");
        s.pool = static_cast<uint8_t*>(p);
        if (config().sink_tokens > 0) {
          const size_t bytes = sizeof(float) * sink_floats(l, kv);
          check_cuda(cudaMalloc(&p, bytes), "cudaMalloc (sink store)");
          impl_->allocations.push_back(p);
          check_cuda(cudaMemset(p, 0, bytes), "cudaMemset (sink store)");
          s.sinks = static_cast<float*>(p);
        }
      }
    // The decode kernel of each layer, decided once here from the device record layout.
    for (int l = 0; l < config().n_layers; ++l)
      plan_.set_cuda_decode(l, detail::resolve_decode_route(impl_->layers[l][0].desc, impl_->layers[l][1].desc,
                                                            config().sink_tokens));
    impl_->status = upload(*impl_, std::vector<detail::WriteStatus>(config().n_layers), "write status");
  } catch (...) {
    for (void* p : impl_->allocations) cudaFree(p);
    throw;
  }
}

DeviceKvCache::~DeviceKvCache() {
  for (void* p : impl_->allocations) cudaFree(p);
}

static void check_side(const DeviceKvCache& c, int layer, int kv) {
  if (layer < 0 || layer >= c.config().n_layers)
    throw Error("DeviceKvCache: layer " + std::to_string(layer) + " out of range [0, " +
                std::to_string(c.config().n_layers) + ")");
  if (kv != 0 && kv != 1) throw Error("DeviceKvCache: kv must be 0 (keys) or 1 (values)");
}

void DeviceKvCache::check_writes() {
  check_cuda(cudaDeviceSynchronize(), "DeviceKvCache::check_writes (waiting for the writes)");
  detail::check_write_status(*impl_, "DeviceKvCache::check_writes");
}

const Codec& DeviceKvCache::codec(int layer, int kv_head, int kv) const {
  check_side(*this, layer, kv);
  return plan_.codec(layer, kv_head, kv == 1);
}

size_t DeviceKvCache::record_bytes(int layer, int kv) const {
  check_side(*this, layer, kv);
  return impl_->layers[layer][kv].record_bytes;
}

size_t DeviceKvCache::block_bytes(int layer, int kv) const {
  check_side(*this, layer, kv);
  return impl_->layers[layer][kv].block_bytes;
}

void* DeviceKvCache::pool(int layer, int kv) {
  check_side(*this, layer, kv);
  return impl_->layers[layer][kv].pool;
}

const void* DeviceKvCache::pool(int layer, int kv) const {
  check_side(*this, layer, kv);
  return impl_->layers[layer][kv].pool;
}

void DeviceKvCache::upload_pool(int layer, int kv, const uint8_t* host, size_t bytes) {
  if (bytes != pool_bytes(layer, kv))
    throw Error("DeviceKvCache::upload_pool: " + std::to_string(bytes) + " bytes given, the pool holds " +
                std::to_string(pool_bytes(layer, kv)));
  check_cuda(cudaMemcpy(pool(layer, kv), host, bytes, cudaMemcpyHostToDevice), "upload_pool");
}

size_t DeviceKvCache::sink_floats(int layer, int kv) const {
  check_side(*this, layer, kv);
  return static_cast<size_t>(num_blocks_) * config().sink_tokens * config().n_kv_heads * config().head_dim;
}

float* DeviceKvCache::sink_store(int layer, int kv) {
  check_side(*this, layer, kv);
  return impl_->layers[layer][kv].sinks;
}

void DeviceKvCache::upload_sinks(int layer, int kv, const float* host, size_t floats) {
  if (floats != sink_floats(layer, kv) || floats == 0)
    throw Error("DeviceKvCache::upload_sinks: " + std::to_string(floats) + " floats given, the sink store holds " +
                std::to_string(sink_floats(layer, kv)));
  check_cuda(cudaMemcpy(sink_store(layer, kv), host, floats * sizeof(float), cudaMemcpyHostToDevice), "upload_sinks");
}

void DeviceKvCache::download_pool(int layer, int kv, uint8_t* host, size_t bytes) const {
  if (bytes != pool_bytes(layer, kv))
    throw Error("DeviceKvCache::download_pool: " + std::to_string(bytes) + " bytes asked, the pool holds " +
                std::to_string(pool_bytes(layer, kv)));
  check_cuda(cudaMemcpy(host, pool(layer, kv), bytes, cudaMemcpyDeviceToHost), "download_pool");
}

}  // namespace tq::cuda
