#pragma once
// Attention read directly from the compressed paged cache (DESIGN.md, "Attention over
// the compressed cache"): each query is rotated once per KV head, keys are scored from
// their packed records, values are accumulated in rotated space with an online softmax,
// and the result is rotated back once per query and head. No f16 K/V is materialized.
#include "turboquant/kv_cache.h"

namespace tq {

struct AttentionParams {
  int n_heads = 0;      // query heads; n_heads % n_kv_heads == 0 (grouped-query attention)
  float scale = 0.f;    // score scale, usually 1/sqrt(head_dim)
  int window = 0;       // sliding window (0 = none): query at position p sees keys in (p - window, p]
  float softcap = 0.f;  // 0 = off; else scores -> softcap * tanh(scores / softcap)
};

class ThreadPool;

// AttendPath (which CPU kernels attend() uses) is in cache_plan.h.

struct AttendOptions {
  AttendPath path = AttendPath::best;
  int split_tokens = 0;  // context tokens per work item (split-K); 0 = automatic
};

// q: [n_q][n_heads][head_dim]; query i is at absolute position q_pos0 + i; causal (keys at
// positions <= query position); out: [n_q][n_heads][head_dim]. Queries must lie inside
// the cache: 0 <= q_pos0 and q_pos0 + n_q <= cache.length(layer, seq).
void attend(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
            const AttentionParams& p, float* out, ThreadPool* pool = nullptr);  // fast path
void attend(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
            const AttentionParams& p, float* out, ThreadPool* pool, const AttendOptions& opt);
// Scalar oracle: Codec::prepare_query / dot / accumulate / finish, one token at a time.
void attend_reference(const KvCache& cache, int layer, int seq, const float* q, int n_q, int q_pos0,
                      const AttentionParams& p, float* out);

// True when attend(AttendPath::best) runs SIMD kernels in this build.
bool attend_has_simd();
// Whether this build has the kernels of `path` (portable and best: always).
bool attend_path_compiled(AttendPath path);

}  // namespace tq
