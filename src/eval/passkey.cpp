#include <algorithm>
#include <cctype>
#include <cmath>

#include "turboquant/error.h"
#include "turboquant/eval_metrics.h"
#include "turboquant/eval_passkey.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

constexpr const char* kIntro =
    "There is an important piece of information hidden inside a lot of irrelevant text. "
    "Find it and memorize it. I will quiz you about it.";
constexpr const char* kFiller =
    " The grass is green. The sky is blue. The sun is yellow. Here we go. There and back again.";
constexpr const char* kQuestion = " What is the pass key? The pass key is";

void append(std::vector<int32_t>& dst, const std::vector<int32_t>& src) {
  dst.insert(dst.end(), src.begin(), src.end());
}

}  // namespace

PasskeyPrompt make_passkey_prompt(const EncodeFn& encode, int32_t bos, int length, double depth,
                                  uint64_t seed) {
  if (depth < 0 || depth > 1) throw Error("passkey depth must be in [0, 1], got " + std::to_string(depth));
  Rng rng(seed);
  PasskeyPrompt p;
  p.key = std::to_string(10000 + rng.below(90000));
  const auto intro = encode(kIntro);
  const auto filler = encode(kFiller);
  const auto needle = encode(" The pass key is " + p.key + ". Remember it. " + p.key + " is the pass key.");
  const auto question = encode(kQuestion);
  const auto answer = encode(" " + p.key);
  if (filler.empty()) throw Error("passkey: the filler sentence encoded to no tokens");
  if (answer.empty()) throw Error("passkey: the key " + p.key + " encoded to no tokens");
  p.answer_first = answer[0];
  const int fixed = (bos >= 0) + static_cast<int>(intro.size() + needle.size() + question.size());
  const int room = length - fixed;
  if (room < 0)
    throw Error("passkey length " + std::to_string(length) + " is shorter than its fixed text (" +
                std::to_string(fixed) + " tokens)");
  // Whole filler sentences, then a partial one at the end to hit `length` exactly.
  const int units = room / static_cast<int>(filler.size());
  const int before = static_cast<int>(std::lround(depth * units));
  if (bos >= 0) p.tokens.push_back(bos);
  append(p.tokens, intro);
  for (int i = 0; i < before; ++i) append(p.tokens, filler);
  p.needle_pos = static_cast<int>(p.tokens.size());
  append(p.tokens, needle);
  for (int i = before; i < units; ++i) append(p.tokens, filler);
  const int rest = room - units * static_cast<int>(filler.size());
  p.tokens.insert(p.tokens.end(), filler.begin(), filler.begin() + rest);
  append(p.tokens, question);
  return p;
}

bool passkey_found(const std::string& answer, const std::string& key) {
  auto it = std::find_if(answer.begin(), answer.end(), [](unsigned char c) { return std::isdigit(c); });
  auto end = std::find_if(it, answer.end(), [](unsigned char c) { return !std::isdigit(c); });
  return !key.empty() && std::string(it, end) == key;
}

double first_token_margin(const float* logits, int vocab, int32_t token) {
  if (vocab < 2 || token < 0 || token >= vocab)
    throw Error("passkey margin: token " + std::to_string(token) + " outside a vocabulary of " + std::to_string(vocab));
  const std::vector<int> best = top_k(logits, vocab, 2);
  return static_cast<double>(logits[token]) - logits[best[0] == token ? best[1] : best[0]];
}

}  // namespace tq
