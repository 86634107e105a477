#pragma once
// What the reference and the fast attention share: argument checks and the masking
// rule, so both see exactly the same keys for every query.
#include <algorithm>
#include <cmath>

#include "turboquant/attention.h"

namespace tq::detail {

// Throws tq::Error naming the first bad argument.
void check_attend_args(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
                       const AttentionParams& p, const float* out);

// Keys visible to a query at position pos: [first_key(pos), pos].
inline int first_key(int pos, int window) { return window > 0 ? std::max(0, pos - window + 1) : 0; }

inline float cap_score(float s, float softcap) { return softcap > 0.f ? softcap * std::tanh(s / softcap) : s; }

}  // namespace tq::detail
