#pragma once
// Per-codec attention kernels over runs of contiguous records (one KV head's tokens
// inside one cache block). The driver (attention.cpp) owns masking, the online softmax
// and the split-K merge; a kernel only knows one record layout:
//   KeyScorer::score        scores[r][t] = <query row r, key record t> (already scaled)
//   ValueAccumulator::add   acc[r][:] += sum_t w[r][t] * value record t (rotated space)
// Rows are the query heads of one GQA group (times a few queries when prefilling), so a
// record is read and unpacked once for all of them.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "turboquant/attention.h"
#include "turboquant/codec.h"

namespace tq::detail {

// Rows a decoding kernel serves per read: each record is decoded to floats once per tile,
// so wide tiles keep the decode off the critical path in prefill.
constexpr int kDecodeRows = 64;

class KeyScorer {
 public:
  virtual ~KeyScorer() = default;
  // Floats of per-row state prepare() writes.
  virtual size_t state_floats() const = 0;
  // query_state: Codec::prepare_query output times the score scale.
  virtual void prepare(const float* query_state, float* state) const = 0;
  // states: R rows of state_floats(); records: T records of record_bytes, contiguous.
  // scores: [R][T] (row stride T).
  virtual void score(const float* states, int R, const uint8_t* records, int T, float* scores) const = 0;
  // Rows worth sharing one read of the records: register-bound kernels take few; kernels
  // that decode every record to floats first amortize that decode over many.
  virtual int rows_per_read() const { return 8; }
};

class ValueAccumulator {
 public:
  virtual ~ValueAccumulator() = default;
  // w: [R][T] (row stride T); acc: [R][code_dim] (row stride code_dim).
  virtual void add(const uint8_t* records, int T, const float* w, int R, float* acc) const = 0;
  virtual int rows_per_read() const { return 8; }  // as KeyScorer::rows_per_read
};

// Kernels for one KV head's codec on `path`: the widest kernels at or below the path that
// this build and this codec's layout have (avx512 -> avx2 -> portable).
std::unique_ptr<KeyScorer> make_key_scorer(const Codec& codec, AttendPath path);
std::unique_ptr<ValueAccumulator> make_value_accumulator(const Codec& codec, AttendPath path);

// One layer's kernels on one path, built once per cache (KvCache::attend_kernels): per KV
// head a key scorer and a value accumulator (codecs differ by seed), and the rows a tile
// may hold so that every head's kernels share one read of the records.
struct LayerKernels {
  std::vector<std::unique_ptr<KeyScorer>> k;
  std::vector<std::unique_ptr<ValueAccumulator>> v;
  int rows_per_tile = 0;
};
LayerKernels make_layer_kernels(const std::vector<Codec>& k, const std::vector<Codec>& v, AttendPath path);

// Portable kernels (kernels_portable.cpp); the SIMD factories fall back to these.
std::unique_ptr<KeyScorer> make_portable_key_scorer(const Codec& codec);
std::unique_ptr<ValueAccumulator> make_portable_value_accumulator(const Codec& codec);
// SIMD kernels (kernels_avx2.cpp, kernels_avx512.cpp): nullptr when this build or this
// codec's layout has none.
std::unique_ptr<KeyScorer> make_avx2_key_scorer(const Codec& codec);
std::unique_ptr<ValueAccumulator> make_avx2_value_accumulator(const Codec& codec);
std::unique_ptr<KeyScorer> make_avx512_key_scorer(const Codec& codec);
std::unique_ptr<ValueAccumulator> make_avx512_value_accumulator(const Codec& codec);
bool avx2_compiled();
bool avx512_compiled();

// Softmax helpers for the driver (SIMD when compiled): the largest of s[0..T), and
// w[t] = exp(s[t] - m) with the sum returned. -inf scores (masked keys) give exactly 0.
float max_of(const float* s, int T);
float exp_and_sum(const float* s, int T, float m, float* w);

}  // namespace tq::detail
