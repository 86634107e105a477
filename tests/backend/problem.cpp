// Inputs and reference outputs of every op for one codec at one head_dim.
#include <cmath>
#include <stdexcept>

#include "backend_ops.h"
#include "core/calib_test_util.h"
#include "turboquant/attention.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/rng.h"

namespace tq::harness {

const char* op_name(Op op) {
  switch (op) {
    case Op::encode: return "encode";
    case Op::score: return "score";
    case Op::accumulate: return "accumulate";
    case Op::attend: return "attend";
    case Op::attend_window: return "attend_win";
  }
  return "?";
}

double nmse(const std::vector<float>& out, const std::vector<float>& ref) {
  if (out.size() != ref.size()) return INFINITY;
  double d2 = 0, r2 = 0;
  for (size_t i = 0; i < ref.size(); ++i) {
    const double d = double(out[i]) - ref[i];
    d2 += d * d;
    r2 += double(ref[i]) * ref[i];
  }
  return std::isfinite(d2) ? d2 / std::max(r2, 1e-30) : INFINITY;
}

const Codec& Problem::codec_of(int side, int head) const {
  return side == 0 ? cache->k_codec(0, head) : cache->v_codec(0, head);
}

size_t Problem::enc_offset(int side, int token, int head) const {
  const size_t k_cd = codec_of(0, 0).code_dim(), cd = codec_of(side, 0).code_dim();
  const size_t base = side == 0 ? 0 : static_cast<size_t>(n_enc) * kNkv * k_cd;
  return base + (static_cast<size_t>(token) * kNkv + head) * cd;
}

const std::vector<float>& Problem::reference(Op op) const {
  switch (op) {
    case Op::encode: return enc_ref;
    case Op::score: return score_ref;
    case Op::accumulate: return acc_ref;
    case Op::attend: return attend_ref;
    case Op::attend_window: return attend_window_ref;
  }
  throw std::logic_error("unknown op");
}

namespace {

std::vector<float> gaussian(Rng& rng, size_t n, float sd = 1.f) {
  std::vector<float> v(n);
  for (float& x : v) x = sd * static_cast<float>(rng.gaussian());
  return v;
}

KvCacheConfig config(const std::string& codec, int dim, uint64_t seed) {
  KvCacheConfig c;
  c.n_layers = 1;
  c.n_kv_heads = Problem::kNkv;
  c.head_dim = dim;
  c.k_codec = codec;
  c.v_codec = codec;
  c.block_tokens = 16;
  c.max_tokens = 512;
  c.seed = seed;
  if (const CodecSpec* preset = find_preset(codec)) {
    const KvProfile prof = test::random_profile(seed, 1, Problem::kHeads, Problem::kNkv, dim);
    // Keys in RoPE frames of 16·d >= 1024 positions (the default): every token of a problem
    // (at most 512) lies in frame 0, whose turn is the identity, so Codec::encode is the reference.
    c.calibrated = std::make_shared<const CalibratedCodecs>(build_calibrated(prof, *preset, CalibrationOptions{}));
  }
  return c;
}

void make_encode(Problem& p, Rng& rng) {
  p.n_enc = (1 << 17) / (Problem::kNkv * p.dim);
  std::vector<uint8_t> rec;
  for (int s = 0; s < 2; ++s) p.enc_in[s] = gaussian(rng, static_cast<size_t>(p.n_enc) * Problem::kNkv * p.dim);
  size_t total = 0;
  for (int s = 0; s < 2; ++s) total += static_cast<size_t>(p.n_enc) * Problem::kNkv * p.codec_of(s, 0).code_dim();
  p.enc_ref.assign(total, 0.f);
  for (int s = 0; s < 2; ++s)
    for (int t = 0; t < p.n_enc; ++t)
      for (int h = 0; h < Problem::kNkv; ++h) {
        const Codec& c = p.codec_of(s, h);
        rec.resize(c.record_bytes());
        c.encode(p.enc_in[s].data() + (static_cast<size_t>(t) * Problem::kNkv + h) * p.dim, rec.data());
        c.quantizer().decode(rec.data(), p.enc_ref.data() + p.enc_offset(s, t, h));
      }
}

void make_score_accumulate(Problem& p, Rng& rng) {
  const Codec &kc = p.codec_of(0, 0), &vc = p.codec_of(1, 0);
  const int T = Problem::kTokens, R = Problem::kRows;
  // The pool's contract (KvCache::kPoolSlackBytes): vector loads may run past the last record.
  p.k_records.resize(T * kc.record_bytes() + KvCache::kPoolSlackBytes);
  p.v_records.resize(T * vc.record_bytes() + KvCache::kPoolSlackBytes);
  for (int t = 0; t < T; ++t) {
    const auto k = gaussian(rng, p.dim), v = gaussian(rng, p.dim);
    kc.encode(k.data(), p.k_records.data() + t * kc.record_bytes());
    vc.encode(v.data(), p.v_records.data() + t * vc.record_bytes());
  }
  const size_t qsf = kc.query_state_floats();
  p.q_states.resize(R * qsf);
  for (int r = 0; r < R; ++r) {
    const auto q = gaussian(rng, p.dim, 2.f);
    kc.prepare_query(q.data(), p.q_states.data() + r * qsf);
    for (size_t i = 0; i < qsf; ++i) p.q_states[r * qsf + i] *= p.scale;
  }
  p.score_ref.resize(R * T);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      p.score_ref[r * T + t] = kc.dot(p.q_states.data() + r * qsf, p.k_records.data() + t * kc.record_bytes());
  p.weights.resize(R * T);
  for (float& w : p.weights) w = static_cast<float>(rng.uniform());
  const int cd = vc.code_dim();
  p.acc_ref.assign(static_cast<size_t>(R) * cd, 0.f);
  for (int r = 0; r < R; ++r)
    for (int t = 0; t < T; ++t)
      vc.accumulate(p.v_records.data() + t * vc.record_bytes(), p.weights[r * T + t], p.acc_ref.data() + r * cd);
}

void make_attend(Problem& p, Rng& rng) {
  p.seq = p.cache->add_sequence();
  const size_t n = static_cast<size_t>(Problem::kSeqLen) * Problem::kNkv * p.dim;
  const auto k = gaussian(rng, n), v = gaussian(rng, n);
  p.cache->append(0, p.seq, Problem::kSeqLen, k.data(), v.data());
  p.query = gaussian(rng, static_cast<size_t>(Problem::kHeads) * p.dim, 2.f);
  p.attend_ref.resize(p.query.size());
  AttentionParams ap;
  ap.n_heads = Problem::kHeads;
  ap.scale = p.scale;
  attend_reference(*p.cache, 0, p.seq, p.query.data(), 1, Problem::kSeqLen - 1, ap, p.attend_ref.data());
  p.attend_window_ref.resize(p.query.size());
  ap.window = Problem::kWindow;
  attend_reference(*p.cache, 0, p.seq, p.query.data(), 1, Problem::kSeqLen - 1, ap, p.attend_window_ref.data());
}

}  // namespace

std::unique_ptr<Problem> make_problem(const std::string& codec, int dim, uint64_t seed) {
  auto p = std::make_unique<Problem>();
  p->codec = codec;
  p->dim = dim;
  p->cfg = config(codec, dim, seed);
  p->cache = std::make_unique<KvCache>(p->cfg);
  p->scale = 1.f / std::sqrt(static_cast<float>(dim));
  Rng rng(seed * 0x9e3779b97f4a7c15ull + dim);
  make_encode(*p, rng);
  make_score_accumulate(*p, rng);
  make_attend(*p, rng);
  return p;
}

}  // namespace tq::harness
