#include "turboquant/synth.h"

#include <cmath>
#include <cstdio>
#include <sstream>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

void random_unit(Rng& rng, int d, float* v) {
  double n2 = 0;
  for (int i = 0; i < d; ++i) {
    v[i] = static_cast<float>(rng.gaussian());
    n2 += double(v[i]) * v[i];
  }
  const float inv = static_cast<float>(1.0 / std::sqrt(n2));
  for (int i = 0; i < d; ++i) v[i] *= inv;
}

void normalize(int d, float* v) {
  double n2 = 0;
  for (int i = 0; i < d; ++i) n2 += double(v[i]) * v[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(n2));
  for (int i = 0; i < d; ++i) v[i] *= inv;
}

double dotd(const float* a, const float* b, int d) {
  double s = 0;
  for (int i = 0; i < d; ++i) s += double(a[i]) * b[i];
  return s;
}

struct Stats {
  double mse = 0, cos = 0;
};

// Reconstruction error of `codec` on unit vector u (adds into st).
void reconstruct(const Codec& c, const float* u, std::vector<uint8_t>& rec, std::vector<float>& out,
                 Stats& st) {
  const int d = c.dim();
  c.encode(u, rec.data());
  c.decode(rec.data(), out.data());
  double e2 = 0;
  for (int i = 0; i < d; ++i) e2 += (double(u[i]) - out[i]) * (double(u[i]) - out[i]);
  const double on = std::sqrt(dotd(out.data(), out.data(), d));
  st.mse += e2;
  st.cos += on > 0 ? dotd(u, out.data(), d) / on : 0.0;
}

SynthRow measure(const Codec& c, int vectors, uint64_t seed) {
  const int d = c.dim();
  SynthRow row;
  row.codec = std::string(c.name());
  row.dim = d;
  row.bits_per_coord = c.bits_per_coord();
  row.record_bytes = c.record_bytes();
  row.params = c.param_count();
  if (const auto* m = dynamic_cast<const MseQuantizer*>(&c.quantizer()))
    row.lloyd_max = c.code_dim() * (m->n_hi() * m->hi().distortion +
                                     (c.code_dim() - m->n_hi()) * m->lo().distortion) /
                    c.code_dim();

  Rng rng(derive_seed(seed, static_cast<uint64_t>(d)));
  std::vector<float> u(d), w(d), q(d), out(d), state(c.query_state_floats());
  std::vector<uint8_t> rec(c.record_bytes());
  // Outlier channels: the same 4 coordinates in every vector, as in real keys.
  int outlier[4];
  for (int& k : outlier) k = static_cast<int>(rng.below(d));

  Stats plain, outl;
  double ip_sum = 0, ip_sum2 = 0;
  for (int n = 0; n < vectors; ++n) {
    random_unit(rng, d, u.data());
    reconstruct(c, u.data(), rec, out, plain);
    // Query correlated with u (<q,u> ≈ 0.7) so that shrinkage bias is visible.
    random_unit(rng, d, w.data());
    for (int i = 0; i < d; ++i) q[i] = u[i] + w[i];
    normalize(d, q.data());
    c.prepare_query(q.data(), state.data());
    const double err = c.dot(state.data(), rec.data()) - dotd(q.data(), u.data(), d);
    ip_sum += err;
    ip_sum2 += err * err;

    for (int i = 0; i < d; ++i) w[i] = static_cast<float>(rng.gaussian());
    for (int k : outlier) w[k] *= 20.f;
    normalize(d, w.data());
    reconstruct(c, w.data(), rec, out, outl);
  }
  const double n = vectors;
  row.mse = plain.mse / n;
  row.cosine = plain.cos / n;
  row.mse_outlier = outl.mse / n;
  row.cosine_outlier = outl.cos / n;
  row.ip_bias = ip_sum / n;
  row.ip_rmse = std::sqrt(ip_sum2 / n);
  row.ip_bias_se = std::sqrt(std::max(0.0, ip_sum2 / n - row.ip_bias * row.ip_bias) / n);
  return row;
}

}  // namespace

std::vector<SynthRow> run_synth(const SynthOptions& opt, const Progress& progress) {
  if (opt.vectors < 2) throw Error("synth: need at least 2 vectors, got " + std::to_string(opt.vectors));
  std::vector<const CodecSpec*> specs;
  if (opt.codecs.empty()) {
    for (const auto& s : codec_table()) specs.push_back(&s);
  } else {
    for (const auto& name : opt.codecs) {
      const CodecSpec* s = find_codec(name);
      if (!s) throw Error("unknown codec '" + name + "'; known codecs: " + codec_names());
      specs.push_back(s);
    }
  }
  std::vector<SynthRow> rows;
  const size_t total = specs.size() * opt.dims.size();
  size_t done = 0;
  for (const CodecSpec* s : specs)
    for (int d : opt.dims) {
      if (progress) progress(done, total, std::string(s->name) + " d=" + std::to_string(d));
      rows.push_back(measure(Codec::make(*s, d, opt.seed), opt.vectors, opt.seed));
      ++done;
    }
  if (progress) progress(done, total, "done");
  return rows;
}

std::string synth_table(const std::vector<SynthRow>& rows) {
  std::ostringstream os;
  char line[256];
  std::snprintf(line, sizeof line, "%-9s %4s %6s %6s %9s %8s %7s %9s %8s %8s %9s %8s %7s\n", "codec",
                "d", "bits", "B/vec", "MSE", "Lloyd-Max", "MSE/LM", "IP bias", "±se", "IP RMSE",
                "MSE outl", "cos outl", "params");
  os << line;
  for (const auto& r : rows) {
    char lm[16] = "-", ratio[16] = "-";
    if (r.lloyd_max > 0) {
      std::snprintf(lm, sizeof lm, "%.4f", r.lloyd_max);
      std::snprintf(ratio, sizeof ratio, "%.3f", r.mse / r.lloyd_max);
    }
    std::snprintf(line, sizeof line,
                  "%-9s %4d %6.3f %6zu %9.5f %8s %7s %+9.5f %8.5f %8.5f %9.5f %8.5f %7zu\n",
                  r.codec.c_str(), r.dim, r.bits_per_coord, r.record_bytes, r.mse, lm, ratio,
                  r.ip_bias, r.ip_bias_se, r.ip_rmse, r.mse_outlier, r.cosine_outlier, r.params);
    os << line;
  }
  return os.str();
}

std::string synth_json(const std::vector<SynthRow>& rows) {
  std::ostringstream os;
  os.precision(8);
  os << "[\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const auto& r = rows[i];
    os << "  {\"codec\": \"" << r.codec << "\", \"dim\": " << r.dim
       << ", \"bits_per_coord\": " << r.bits_per_coord << ", \"record_bytes\": " << r.record_bytes
       << ", \"params\": " << r.params << ", \"mse\": " << r.mse
       << ", \"lloyd_max\": " << r.lloyd_max << ", \"cosine\": " << r.cosine
       << ", \"ip_bias\": " << r.ip_bias << ", \"ip_bias_se\": " << r.ip_bias_se
       << ", \"ip_rmse\": " << r.ip_rmse << ", \"mse_outlier\": " << r.mse_outlier
       << ", \"cosine_outlier\": " << r.cosine_outlier << "}" << (i + 1 < rows.size() ? "," : "")
       << "\n";
  }
  os << "]\n";
  return os.str();
}

}  // namespace tq
