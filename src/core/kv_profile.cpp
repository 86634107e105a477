// Calibration profile: statistics accumulated from a forward pass, and the profile file
// (file_frame.h header with magic "TQPF", then the payload; docs/FORMATS.md). Matrices are
// symmetric and stored as f32 upper triangles.
#include "turboquant/kv_profile.h"

#include <cmath>
#include <cstring>
#include <fstream>

#include "file_frame.h"
#include "turboquant/error.h"

namespace tq {

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr char kMagic[4] = {'T', 'Q', 'P', 'F'};
constexpr uint32_t kVersion = 1;
constexpr const char* kKind = "calibration profile";
// The shapes a profile may have (check() and the loader, before it allocates anything).
constexpr int kMaxLayers = 4096, kMaxKvHeads = 4096, kMinHeadDim = 8, kMaxHeadDim = 1024;

void add_outer(std::vector<double>& m, const float* x, int d) {
  for (int i = 0; i < d; ++i) {
    const double xi = x[i];
    double* row = m.data() + static_cast<size_t>(i) * d;
    for (int j = i; j < d; ++j) row[j] += xi * x[j];
  }
}

void symmetrize(std::vector<double>& m, int d, double scale) {
  for (int i = 0; i < d; ++i)
    for (int j = i; j < d; ++j) {
      const double v = m[static_cast<size_t>(i) * d + j] * scale;
      m[static_cast<size_t>(i) * d + j] = v;
      m[static_cast<size_t>(j) * d + i] = v;
    }
}

void put_sym(ByteWriter& w, const std::vector<double>& m, int d) {
  for (int i = 0; i < d; ++i)
    for (int j = i; j < d; ++j) w.f32(static_cast<float>(m[static_cast<size_t>(i) * d + j]));
}

std::vector<double> get_sym(ByteReader& r, int d, const char* what) {
  std::vector<double> m(static_cast<size_t>(d) * d);
  for (int i = 0; i < d; ++i)
    for (int j = i; j < d; ++j) m[static_cast<size_t>(i) * d + j] = m[static_cast<size_t>(j) * d + i] = r.f32(what);
  return m;
}

void put_vec(ByteWriter& w, const std::vector<double>& v) {
  w.put<uint32_t>(static_cast<uint32_t>(v.size()));
  for (double x : v) w.f64(x);
}

std::vector<double> get_vec(ByteReader& r, size_t max, const char* what) {
  const uint32_t n = r.get<uint32_t>(what);
  if (n > max) throw Error(std::string(kKind) + ": " + what + " has " + std::to_string(n) + " entries, at most " +
                           std::to_string(max) + " expected");
  std::vector<double> v(n);
  for (double& x : v) x = r.f64(what);
  return v;
}

void all_finite(const std::vector<double>& v, const char* what) {
  for (double x : v)
    if (!std::isfinite(x)) throw Error(std::string(kKind) + ": " + what + " holds a non-finite value");
}

// What every second moment of real data satisfies: E[x_i²] >= 0 and E[x_i]² <= E[x_i²]
// (the margin covers the f32 rounding of the stored matrices). Without it, a damaged
// file's finite but impossible numbers (a mean of 1e88) overflow the calibration's
// eigensolvers.
void plausible_moments(const KvProfile::Head& h, int d, const std::string& where) {
  for (int i = 0; i < d; ++i) {
    const size_t ii = static_cast<size_t>(i) * d + i;
    if (!(h.qq[ii] >= 0 && h.kk[ii] >= 0 && h.vv[ii] >= 0 && h.v_weight[ii] >= 0))
      throw Error(std::string(kKind) + ": " + where + ": a second moment has a negative diagonal entry " +
                  std::to_string(i));
    if (h.k_mean[i] * h.k_mean[i] > h.kk[ii] * (1 + 1e-3) + 1e-30)
      throw Error(std::string(kKind) + ": " + where + ": key mean " + std::to_string(i) +
                  " exceeds its root mean square");
    if (h.v_mean[i] * h.v_mean[i] > h.vv[ii] * (1 + 1e-3) + 1e-30)
      throw Error(std::string(kKind) + ": " + where + ": value mean " + std::to_string(i) +
                  " exceeds its root mean square");
  }
}

}  // namespace

void KvProfile::check() const {
  auto bad = [](const std::string& s) { throw Error(std::string(kKind) + ": " + s); };
  if (n_layers <= 0 || n_layers > kMaxLayers || n_kv_heads <= 0 || n_kv_heads > kMaxKvHeads || n_heads < n_kv_heads ||
      n_heads % n_kv_heads != 0 || head_dim < kMinHeadDim || head_dim > kMaxHeadDim)
    bad("bad shape " + std::to_string(n_layers) + " layers, " + std::to_string(n_heads) + "/" +
        std::to_string(n_kv_heads) + " heads, head_dim " + std::to_string(head_dim));
  const size_t d = head_dim, dd = d * d;
  if (rope_partner.size() != d) bad("RoPE partners: " + std::to_string(rope_partner.size()) + " entries");
  for (size_t i = 0; i < d; ++i) {
    const int p = rope_partner[i];
    if (p < 0 || p >= head_dim || rope_partner[p] != static_cast<int>(i)) bad("RoPE partners are not a pairing");
  }
  if (rope_theta.size() != static_cast<size_t>(n_layers)) bad("RoPE angles for " + std::to_string(rope_theta.size()) + " layers");
  for (const auto& t : rope_theta) {
    if (t.size() != d) bad("RoPE angles of the wrong size");
    all_finite(t, "RoPE angles");
  }
  if (heads.size() != static_cast<size_t>(n_layers) * n_kv_heads) bad("statistics for " + std::to_string(heads.size()) + " heads");
  for (size_t i = 0; i < heads.size(); ++i) {
    const Head& h = heads[i];
    if (h.qq.size() != dd || h.kk.size() != dd || h.vv.size() != dd || h.v_weight.size() != dd || h.k_mean.size() != d ||
        h.v_mean.size() != d)
      bad("a head's statistics have the wrong size");
    for (const auto* v : {&h.qq, &h.kk, &h.vv, &h.v_weight, &h.k_mean, &h.v_mean}) all_finite(*v, "head statistics");
    plausible_moments(h, head_dim, "layer " + std::to_string(i / n_kv_heads) + ", KV head " + std::to_string(i % n_kv_heads));
  }
  for (const auto* s : {&k_sensitivity, &v_sensitivity}) {
    if (!s->empty() && s->size() != static_cast<size_t>(n_layers)) bad("sensitivities for the wrong number of layers");
    for (double x : *s)
      if (!(x >= 0) || !std::isfinite(x)) bad("a sensitivity is negative or not finite");
  }
}

KvProfileBuilder::KvProfileBuilder(int n_layers, int n_heads, int n_kv_heads, int head_dim)
    : n_layers_(n_layers), n_heads_(n_heads), n_kv_heads_(n_kv_heads), head_dim_(head_dim),
      sums_(static_cast<size_t>(n_layers) * n_kv_heads), tokens_(n_layers, 0) {
  if (n_layers <= 0 || n_kv_heads <= 0 || n_heads % n_kv_heads != 0 || head_dim <= 0)
    throw Error("KvProfileBuilder: bad shape");
  const size_t d = head_dim, dd = d * d;
  for (auto& h : sums_) {
    h.qq.assign(dd, 0);
    h.kk.assign(dd, 0);
    h.vv.assign(dd, 0);
    h.v_weight.assign(dd, 0);
    h.k_mean.assign(d, 0);
    h.v_mean.assign(d, 0);
  }
}

void KvProfileBuilder::add(int layer, int n, const float* q, const float* k, const float* v) {
  if (layer < 0 || layer >= n_layers_) throw Error("KvProfileBuilder: layer out of range");
  const int d = head_dim_, group = n_heads_ / n_kv_heads_;
  for (int t = 0; t < n; ++t)
    for (int g = 0; g < n_kv_heads_; ++g) {
      KvProfile::Head& h = sums_[static_cast<size_t>(layer) * n_kv_heads_ + g];
      const float* kr = k + (static_cast<size_t>(t) * n_kv_heads_ + g) * d;
      const float* vr = v + (static_cast<size_t>(t) * n_kv_heads_ + g) * d;
      add_outer(h.kk, kr, d);
      add_outer(h.vv, vr, d);
      for (int i = 0; i < d; ++i) {
        h.k_mean[i] += kr[i];
        h.v_mean[i] += vr[i];
      }
      for (int j = 0; j < group; ++j) add_outer(h.qq, q + (static_cast<size_t>(t) * n_heads_ + g * group + j) * d, d);
    }
  tokens_[layer] += n;
}

KvProfile KvProfileBuilder::finish() {
  for (int l = 0; l < n_layers_; ++l)
    if (tokens_[l] == 0) throw Error("KvProfileBuilder: layer " + std::to_string(l) + " saw no tokens");
  KvProfile p;
  p.n_layers = n_layers_;
  p.n_heads = n_heads_;
  p.n_kv_heads = n_kv_heads_;
  p.head_dim = head_dim_;
  p.heads = std::move(sums_);  // not copied: Gemma 3's moments are 36 MiB
  sums_.clear();
  for (int l = 0; l < n_layers_; ++l) {
    const double inv = 1.0 / static_cast<double>(tokens_[l]);
    const double inv_q = inv / (n_heads_ / n_kv_heads_);
    for (int g = 0; g < n_kv_heads_; ++g) {
      KvProfile::Head& h = p.heads[static_cast<size_t>(l) * n_kv_heads_ + g];
      symmetrize(h.qq, head_dim_, inv_q);
      symmetrize(h.kk, head_dim_, inv);
      symmetrize(h.vv, head_dim_, inv);
      for (double& x : h.k_mean) x *= inv;
      for (double& x : h.v_mean) x *= inv;
    }
  }
  p.tokens = tokens_[0];
  return p;
}

uint64_t model_file_hash(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw Error("cannot open model file '" + path + "' to hash it");
  std::vector<char> buf(1 << 20);
  uint64_t h = 0xcbf29ce484222325ull;
  while (f) {
    f.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h = detail::fnv1a64(reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(f.gcount()), h);
  }
  return h;
}

std::vector<uint8_t> serialize_profile(const KvProfile& p) {
  p.check();
  ByteWriter w;
  w.put<uint64_t>(p.model_hash);
  w.str(p.model_name);
  for (int v : {p.n_layers, p.n_heads, p.n_kv_heads, p.head_dim}) w.put<uint32_t>(static_cast<uint32_t>(v));
  w.put<uint64_t>(static_cast<uint64_t>(p.tokens));
  for (int x : p.rope_partner) w.put<uint32_t>(static_cast<uint32_t>(x));
  for (const auto& t : p.rope_theta)
    for (double x : t) w.f64(x);
  for (const auto& h : p.heads) {
    for (const auto* m : {&h.qq, &h.kk, &h.vv, &h.v_weight}) put_sym(w, *m, p.head_dim);
    for (double x : h.k_mean) w.f64(x);
    for (double x : h.v_mean) w.f64(x);
  }
  put_vec(w, p.k_sensitivity);
  put_vec(w, p.v_sensitivity);
  return detail::frame(kMagic, kVersion, w.buf);
}

uint64_t profile_hash(const KvProfile& p) {
  const std::vector<uint8_t> bytes = serialize_profile(p);
  return detail::fnv1a64(bytes.data(), bytes.size());
}

KvProfile deserialize_profile(const std::vector<uint8_t>& bytes) {
  ByteReader r(detail::unframe(bytes, kMagic, kVersion, kKind, "turboquant calibration profile"), kKind);
  KvProfile p;
  p.model_hash = r.get<uint64_t>("model hash");
  p.model_name = r.str("model name");
  p.n_layers = r.i32("layers");
  p.n_heads = r.i32("heads");
  p.n_kv_heads = r.i32("KV heads");
  p.head_dim = r.i32("head_dim");
  p.tokens = static_cast<int64_t>(r.get<uint64_t>("tokens"));
  if (p.n_layers <= 0 || p.n_layers > kMaxLayers || p.n_kv_heads <= 0 || p.n_kv_heads > kMaxKvHeads ||
      p.head_dim < kMinHeadDim || p.head_dim > kMaxHeadDim)
    throw Error(std::string(kKind) + ": bad shape in the header: " + std::to_string(p.n_layers) + " layers, " +
                std::to_string(p.n_kv_heads) + " KV heads, head_dim " + std::to_string(p.head_dim) + " (at most " +
                std::to_string(kMaxLayers) + ", " + std::to_string(kMaxKvHeads) + ", " + std::to_string(kMinHeadDim) +
                ".." + std::to_string(kMaxHeadDim) + ")");
  const int d = p.head_dim;
  // Everything the shape implies must be in the payload before anything is allocated, so
  // the memory a file can ask for is a small multiple of its size (the f32 triangles
  // become full f64 matrices: at most 4x).
  const size_t per_head = 4 * (static_cast<size_t>(d) * (d + 1) / 2) * 4 + 2 * static_cast<size_t>(d) * 8;
  const size_t rope = static_cast<size_t>(d) * 4 + static_cast<size_t>(p.n_layers) * d * 8;
  const size_t sensitivity_counts = 2 * 4;
  if (rope + static_cast<size_t>(p.n_layers) * p.n_kv_heads * per_head + sensitivity_counts > r.left())
    throw Error(std::string(kKind) + " truncated: " + std::to_string(p.n_layers) + " layers x " +
                std::to_string(p.n_kv_heads) + " KV heads at head_dim " + std::to_string(d) + " do not fit in the " +
                std::to_string(r.left()) + " bytes left");
  p.rope_partner.resize(d);
  for (int& x : p.rope_partner) x = r.i32("RoPE partners");
  p.rope_theta.assign(p.n_layers, std::vector<double>(d));
  for (auto& t : p.rope_theta)
    for (double& x : t) x = r.f64("RoPE angles");
  p.heads.resize(static_cast<size_t>(p.n_layers) * p.n_kv_heads);
  for (auto& hd : p.heads) {
    hd.qq = get_sym(r, d, "query moments");
    hd.kk = get_sym(r, d, "key moments");
    hd.vv = get_sym(r, d, "value moments");
    hd.v_weight = get_sym(r, d, "value weights");
    hd.k_mean.resize(d);
    hd.v_mean.resize(d);
    for (double& x : hd.k_mean) x = r.f64("key mean");
    for (double& x : hd.v_mean) x = r.f64("value mean");
  }
  p.k_sensitivity = get_vec(r, p.n_layers, "key sensitivities");
  p.v_sensitivity = get_vec(r, p.n_layers, "value sensitivities");
  if (r.left() != 0) throw Error(std::string(kKind) + ": " + std::to_string(r.left()) + " unexpected bytes at the end");
  p.check();
  return p;
}

void save_profile(const KvProfile& p, const std::string& path) {
  detail::write_file_atomic(path, serialize_profile(p), true, kKind);
}

KvProfile load_profile(const std::string& path) { return deserialize_profile(detail::read_whole_file(path, kKind)); }

}  // namespace tq
