#pragma once
// Next-token choice from logits: greedy (temperature 0) or temperature sampling over the
// top_k most likely tokens.
#include <cstdint>

#include "turboquant/rng.h"

namespace tq {

struct SamplerParams {
  float temperature = 0.0f;  // 0: greedy (argmax, lowest id on ties)
  int top_k = 40;            // <= 0: whole vocabulary
};

int32_t argmax(const float* logits, int vocab);
// tq::Error for vocab <= 0, a negative temperature or non-finite logits.
int32_t sample_token(const float* logits, int vocab, const SamplerParams& p, Rng& rng);

}  // namespace tq
