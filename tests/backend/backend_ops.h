#pragma once
// The backend harness (tests/backend, llama.cpp's test-backend-ops): every codec × head_dim
// × op × backend against the core reference (Codec::encode / dot / accumulate and
// attend_reference), each backend's kernel forced explicitly.
//
// Tolerance, one rule for every op and backend: the normalized mean squared error
//   NMSE = Σ (out − ref)² / Σ ref²   over one case's whole output
// must be at most kMaxNmse = 1e-5. The fast paths differ from the reference only in
// summation order, the folded score scale, SIMD exp and (tensor-core decode) f16 operands:
// measured NMSE is below 1e-7 (the report prints the worst per backend and op). A wrong
// code, level, mask, rotation or record offset gives NMSE of 1e-3 or more. Encoders write
// the reference's bytes; their output is the decoded records, sized (2^17 coordinates
// per side) so that one documented near-tie (one code one level off, tests/cpu/
// encode_test_util.h) costs at most 4e-6.
#include <memory>
#include <string>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/kv_cache.h"

namespace tq::harness {

inline constexpr double kMaxNmse = 1e-5;

// attend_window: the same decode query with a sliding window of kWindow tokens.
enum class Op { encode, score, accumulate, attend, attend_window };
inline constexpr Op kOps[] = {Op::encode, Op::score, Op::accumulate, Op::attend, Op::attend_window};
const char* op_name(Op op);

// One codec at one head_dim: the inputs of every op and the reference's outputs.
struct Problem {
  std::string codec;  // a codec-table row or a calibrated preset
  int dim = 0;
  KvCacheConfig cfg;  // 1 layer, kNkv KV heads, the codec on both sides
  static constexpr int kNkv = 2, kHeads = 8, kRows = 8, kTokens = 256, kSeqLen = 300, kWindow = 100;

  // encode: tokens [n_enc][kNkv][dim] of keys and of values; enc_ref holds the reference
  // records decoded, [side][token][head][code_dim] (the code space: what the kernels store).
  int n_enc = 0;
  std::vector<float> enc_in[2];
  std::vector<float> enc_ref;
  // score / accumulate on KV head 0: kTokens records; kRows prepared query states (the
  // score scale folded in, as attend() does) and weights [kRows][kTokens].
  std::vector<uint8_t> k_records, v_records;
  std::vector<float> q_states, weights;
  std::vector<float> score_ref, acc_ref;  // [kRows][kTokens], [kRows][v code_dim]
  // attend: one sequence of kSeqLen tokens, one decode query (kHeads heads) at the end;
  // attend_window: the same query over the last kWindow tokens (AttentionParams::window).
  std::unique_ptr<KvCache> cache;
  int seq = 0;
  std::vector<float> query;
  float scale = 0.f;
  std::vector<float> attend_ref, attend_window_ref;

  const Codec& codec_of(int side, int head) const;  // the cache's codec of a KV head
  size_t enc_offset(int side, int token, int head) const;  // into enc_ref
  const std::vector<float>& reference(Op op) const;
};

// Builds the inputs from `seed` and runs the reference. Calibrated presets get their
// codecs from a synthetic profile (tests/core/calib_test_util.h).
std::unique_ptr<Problem> make_problem(const std::string& codec, int dim, uint64_t seed);

// Encoded records decoded to the code space in enc_ref's layout: the record of side s,
// token t, KV head h is record(s, t, h).
template <class RecordAt>
std::vector<float> decode_records(const Problem& p, const RecordAt& record) {
  std::vector<float> out(p.enc_ref.size());
  for (int s = 0; s < 2; ++s)
    for (int t = 0; t < p.n_enc; ++t)
      for (int h = 0; h < Problem::kNkv; ++h)
        p.codec_of(s, h).quantizer().decode(record(s, t, h), out.data() + p.enc_offset(s, t, h));
  return out;
}

double nmse(const std::vector<float>& out, const std::vector<float>& ref);

// One backend: a set of kernels forced explicitly (no dispatcher in between).
class Backend {
 public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;
  // "" when the backend runs on this machine and build, else why not (printed, skipped).
  virtual std::string unavailable() const = 0;
  // "" when the backend has a kernel for op on p's codec, else why not.
  virtual std::string unsupported(Op op, const Problem& p) const = 0;
  // The op's output in the reference's layout. reps > 0: also time `reps` calls of the
  // kernel alone and store microseconds per call in *us.
  virtual std::vector<float> run(Op op, const Problem& p, int reps, double* us) const = 0;
};

std::vector<std::unique_ptr<Backend>> cpu_backends();
std::vector<std::unique_ptr<Backend>> cuda_backends();  // harness_cuda.cpp; empty without CUDA

}  // namespace tq::harness
