#pragma once
// Passkey retrieval: a random 5-digit number hidden at a chosen depth of repetitive
// filler text, followed by the question; the model must greedy-decode the number.
// The filler is fixed sentences (as in the Landmark Attention / LongLoRA protocol), so
// the only thing worth remembering in the prompt is the key.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace tq {

struct PasskeyPrompt {
  std::vector<int32_t> tokens;
  std::string key;     // the 5 digits
  int needle_pos = 0;  // token index where the key sentence starts
  int32_t answer_first = -1;  // first token of " <key>": what a retrieving model emits first
};

using EncodeFn = std::function<std::vector<int32_t>(const std::string&)>;

// A prompt of exactly `length` tokens (bos first when bos >= 0), key sentence after
// `depth` (0..1) of the filler. Throws tq::Error when length cannot hold the
// instructions, the key sentence and the question.
PasskeyPrompt make_passkey_prompt(const EncodeFn& encode, int32_t bos, int length, double depth,
                                  uint64_t seed);

// True when the first run of digits in `answer` is exactly `key`.
bool passkey_found(const std::string& answer, const std::string& key);

// logits[token] minus the largest other logit: > 0 when greedy decoding picks `token`.
// tq::Error when token is outside [0, vocab) or vocab < 2.
double first_token_margin(const float* logits, int vocab, int32_t token);

}  // namespace tq
