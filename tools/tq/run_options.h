#pragma once
// tq run's options, parsed and checked in full before anything is loaded: codec names,
// files that must exist, directories outputs go to, numeric ranges and the session rules.
#include <cstdint>
#include <string>

#include "turboquant/model.h"
#include "turboquant/sampler.h"

namespace tq::cli {

struct RunOptions {
  bool help = false;
  std::string model_path;   // resolved (named model or existing file)
  std::string prompt_text;  // empty with --load-session and no prompt: continue the session
  bool has_prompt = false;
  bool chat = false;
  bool echo_prompt = false;  // print the prompt text before the generated text
  std::string k_codec, v_codec;
  bool qk_balance = false;
  int n_gen = 64;
  SamplerParams sampler;
  uint64_t seed = 1;
  int threads = 0;
  WeightFormat weights = WeightFormat::quantized;
  bool cuda = false;  // --device cuda: the model and its cache on the GPU (cuda_runner.h)
  bool cuda_graphs = false;  // --cuda-graphs: decode steps as CUDA graphs
  const CodecSpec* preset = nullptr;  // the calibrated preset named by --k-codec/--v-codec
  std::string profile;                // --profile (empty: the default path)
  std::string dump_logits, dump_ids;
  std::string load_session, save_session;
  // --save-session may replace an existing file only with --force or when it is the
  // --load-session file (the session being updated).
  bool replace_session = false;
};

extern const char* const kRunUsage;

RunOptions parse_run_options(int argc, char** argv);

}  // namespace tq::cli
