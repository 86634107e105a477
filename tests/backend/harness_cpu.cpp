// The CPU backends: portable, avx2 and avx512 kernels, each built by its own factory
// (kernels.h, encode.h), never through the dispatcher's fallback to a narrower level.
#include <chrono>

#include "backend_ops.h"
#include "encode.h"
#include "kernels.h"
#include "turboquant/attention.h"

namespace tq::harness {
namespace {

enum class Isa { portable, avx2, avx512 };

template <class F>
double time_us(int reps, const F& f) {
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) f();
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() / reps;
}

class CpuBackend : public Backend {
 public:
  explicit CpuBackend(Isa isa) : isa_(isa) {}

  std::string name() const override {
    return isa_ == Isa::avx512 ? "avx512" : isa_ == Isa::avx2 ? "avx2" : "portable";
  }

  std::string unavailable() const override {
    if (isa_ == Isa::portable) return "";
    const bool compiled = isa_ == Isa::avx512 ? detail::avx512_compiled() : detail::avx2_compiled();
    if (!compiled) return "not compiled in this build (its -m flags are off; TQ_NATIVE on a CPU with it turns them on)";
#if defined(__x86_64__) || defined(__i386__)
    const bool cpu = isa_ == Isa::avx512 ? __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")
                                         : __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (!cpu) return "this CPU lacks " + name();
#endif
    return "";
  }

  std::string unsupported(Op op, const Problem& p) const override {
    const Codec &kc = p.codec_of(0, 0), &vc = p.codec_of(1, 0);
    switch (op) {
      case Op::encode:
        return encoder(kc) && encoder(vc) ? "" : "no " + name() + " lane encoder for " + p.codec;
      case Op::score: return scorer(kc) ? "" : "no " + name() + " key scorer for " + p.codec;
      case Op::accumulate: return accumulator(vc) ? "" : "no " + name() + " value accumulator for " + p.codec;
      case Op::attend:  // attend() at this level runs these kernels only when both exist
      case Op::attend_window:
        return scorer(kc) && accumulator(vc) ? "" : "no " + name() + " scorer and accumulator for " + p.codec;
    }
    return "unknown op";
  }

  std::vector<float> run(Op op, const Problem& p, int reps, double* us) const override {
    switch (op) {
      case Op::encode: return run_encode(p, reps, us);
      case Op::score: return run_score(p, reps, us);
      case Op::accumulate: return run_accumulate(p, reps, us);
      case Op::attend: return run_attend(p, 0, reps, us);
      case Op::attend_window: return run_attend(p, Problem::kWindow, reps, us);
    }
    return {};
  }

 private:
  Isa isa_;

  std::unique_ptr<detail::RecordEncoder> encoder(const Codec& c) const {
    return isa_ == Isa::avx512 ? detail::make_avx512_record_encoder(c)
           : isa_ == Isa::avx2 ? detail::make_avx2_record_encoder(c)
                               : detail::make_portable_record_encoder(c);
  }
  std::unique_ptr<detail::KeyScorer> scorer(const Codec& c) const {
    return isa_ == Isa::avx512 ? detail::make_avx512_key_scorer(c)
           : isa_ == Isa::avx2 ? detail::make_avx2_key_scorer(c)
                               : detail::make_portable_key_scorer(c);
  }
  std::unique_ptr<detail::ValueAccumulator> accumulator(const Codec& c) const {
    return isa_ == Isa::avx512 ? detail::make_avx512_value_accumulator(c)
           : isa_ == Isa::avx2 ? detail::make_avx2_value_accumulator(c)
                               : detail::make_portable_value_accumulator(c);
  }

  // Each (side, KV head) has its own codec (seed), so its own encoder over its tokens.
  std::vector<float> run_encode(const Problem& p, int reps, double* us) const {
    std::vector<uint8_t> records[2][Problem::kNkv];
    std::unique_ptr<detail::RecordEncoder> enc[2][Problem::kNkv];
    for (int s = 0; s < 2; ++s)
      for (int h = 0; h < Problem::kNkv; ++h) {
        enc[s][h] = encoder(p.codec_of(s, h));
        records[s][h].resize(static_cast<size_t>(p.n_enc) * p.codec_of(s, h).record_bytes());
      }
    auto pass = [&] {
      for (int s = 0; s < 2; ++s)
        for (int h = 0; h < Problem::kNkv; ++h) {
          const Codec& c = p.codec_of(s, h);
          enc[s][h]->encode(p.enc_in[s].data() + static_cast<size_t>(h) * p.dim, Problem::kNkv * p.dim, p.n_enc,
                             records[s][h].data(), c.record_bytes());
        }
    };
    pass();
    if (reps > 0) *us = time_us(reps, pass);
    return decode_records(p, [&](int s, int t, int h) {
      return records[s][h].data() + static_cast<size_t>(t) * p.codec_of(s, h).record_bytes();
    });
  }

  std::vector<float> run_score(const Problem& p, int reps, double* us) const {
    const auto k = scorer(p.codec_of(0, 0));
    const size_t qsf = p.codec_of(0, 0).query_state_floats();
    std::vector<float> states(Problem::kRows * k->state_floats()), out(Problem::kRows * Problem::kTokens);
    for (int r = 0; r < Problem::kRows; ++r) k->prepare(p.q_states.data() + r * qsf, states.data() + r * k->state_floats());
    auto call = [&] { k->score(states.data(), Problem::kRows, p.k_records.data(), Problem::kTokens, out.data()); };
    call();
    if (reps > 0) *us = time_us(reps, call);
    return out;
  }

  std::vector<float> run_accumulate(const Problem& p, int reps, double* us) const {
    const auto a = accumulator(p.codec_of(1, 0));
    std::vector<float> acc(p.acc_ref.size(), 0.f);
    a->add(p.v_records.data(), Problem::kTokens, p.weights.data(), Problem::kRows, acc.data());
    if (reps > 0) {
      std::vector<float> scratch(acc.size());
      *us = time_us(reps, [&] { a->add(p.v_records.data(), Problem::kTokens, p.weights.data(), Problem::kRows, scratch.data()); });
    }
    return acc;
  }

  std::vector<float> run_attend(const Problem& p, int window, int reps, double* us) const {
    AttentionParams ap;
    ap.n_heads = Problem::kHeads;
    ap.scale = p.scale;
    ap.window = window;
    AttendOptions opt;
    opt.path = isa_ == Isa::avx512 ? AttendPath::avx512 : isa_ == Isa::avx2 ? AttendPath::avx2 : AttendPath::portable;
    std::vector<float> out(p.attend_ref.size());
    auto call = [&] { attend(*p.cache, 0, p.seq, p.query.data(), 1, Problem::kSeqLen - 1, ap, out.data(), nullptr, opt); };
    call();
    if (reps > 0) *us = time_us(reps, call);
    return out;
  }
};

}  // namespace

std::vector<std::unique_ptr<Backend>> cpu_backends() {
  std::vector<std::unique_ptr<Backend>> b;
  for (Isa isa : {Isa::portable, Isa::avx2, Isa::avx512}) b.push_back(std::make_unique<CpuBackend>(isa));
  return b;
}

}  // namespace tq::harness
