// tq run: generate text from a GGUF model with a chosen KV cache codec, streaming the
// tokens, then report prefill and decode speed and what the cache holds. A session file
// (session.h) saves the prompt's cache or starts from one.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <optional>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "commands.h"
#include "cuda_runner.h"
#include "range_report.h"
#include "run_options.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/model.h"
#include "turboquant/sampler.h"
#include "turboquant/session.h"

namespace tq::cli {
namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

void write_ids(std::ofstream& f, const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) f << (i ? " " : "") << ids[i];
  f << "\n";
}

// Prints the part of the decoded text not printed yet. Decoding the whole list each time
// keeps multi-token characters and SentencePiece spaces right.
class Streamer {
 public:
  explicit Streamer(const Tokenizer& tok) : tok_(tok) {}
  void push(int32_t id) {
    ids_.push_back(id);
    const std::string text = tok_.decode(ids_);
    if (text.size() > printed_ && text.compare(0, printed_, text, 0, printed_) == 0) {
      std::fwrite(text.data() + printed_, 1, text.size() - printed_, stdout);
      std::fflush(stdout);
      printed_ = text.size();
    }
  }
  const std::vector<int32_t>& ids() const { return ids_; }

 private:
  const Tokenizer& tok_;
  std::vector<int32_t> ids_;
  size_t printed_ = 0;
};

// The prompt's ids: the text as encoded, or the session's own tokens when there is no
// prompt. A session must be a prefix of them: its cache holds exactly those positions.
std::vector<int32_t> prompt_ids(const RunOptions& o, const Tokenizer& tok, const Session* session) {
  if (!o.has_prompt) return session->tokens;
  const std::string text = o.chat ? tok.format_chat({{"user", o.prompt_text}}, true) : o.prompt_text;
  // A chat template that already spells the BOS token out must not get a second one.
  const std::string bos_text = tok.bos() >= 0 ? std::string(tok.piece(tok.bos())) : "";
  const bool text_has_bos = !bos_text.empty() && text.rfind(bos_text, 0) == 0;
  std::vector<int32_t> ids = tok.encode(text, tok.add_bos_default() && !text_has_bos);
  if (ids.empty()) throw Error("the prompt encodes to no tokens");
  if (session) {
    const size_t n = session->tokens.size();
    const auto diff = std::mismatch(session->tokens.begin(), session->tokens.end(), ids.begin(), ids.end());
    if (diff.first != session->tokens.end())
      throw Error("the prompt (" + std::to_string(ids.size()) + " tokens) does not start with the session's " +
                  std::to_string(n) + " tokens: they differ at token " +
                  std::to_string(diff.first - session->tokens.begin()));
  }
  return ids;
}

}  // namespace

int cmd_run(int argc, char** argv) {
  const RunOptions o = parse_run_options(argc, argv);
  if (o.help) {
    std::printf("%s", kRunUsage);
    return 0;
  }
  // Everything about a session that can be refused is refused before the model loads.
  std::optional<Session> session;
  const bool sessions = !o.load_session.empty() || !o.save_session.empty();
  const ModelIdentity identity = sessions ? model_identity(o.model_path) : ModelIdentity{};
  if (!o.load_session.empty()) {
    session = load_session(o.load_session);
    check_session_matches(*session, identity, o.k_codec, o.v_codec, o.qk_balance);
  }

  Rng rng(o.seed);
  const auto t_load = Clock::now();
  auto model = Model::load(o.model_path, o.threads, o.weights);
  const ModelConfig& c = model->config();
  const Tokenizer& tok = model->tokenizer();
  const int balance_tokens = o.qk_balance ? model->enable_qk_balance() : 0;
  std::fprintf(stderr, "tq run: %s (%s, %d layers, %d KV heads x %d) loaded in %.1fs, %d threads, K %s, V %s%s\n",
               c.name.c_str(), c.arch.c_str(), c.n_layers, c.n_kv_heads, c.head_dim, seconds_since(t_load),
               model->threads(), o.k_codec.c_str(), o.v_codec.c_str(),
               balance_tokens > 0 ? (", Q/K balance from " + std::to_string(balance_tokens) + " tokens").c_str() : "");
  if (session) {
    check_session_balance(*session, model->qk_balance());
    if (session->logits.size() != static_cast<size_t>(c.vocab))
      throw Error("the session holds " + std::to_string(session->logits.size()) + " logits, the model's vocabulary is " +
                  std::to_string(c.vocab));
  }

  const std::vector<int32_t> prompt = prompt_ids(o, tok, session ? &*session : nullptr);
  const int capacity = static_cast<int>(prompt.size()) + o.n_gen + 1;
  if (capacity > c.context) {
    std::fprintf(stderr, "tq run: warning: %d tokens exceed the model's training context %d\n", capacity, c.context);
  }
  KvCacheConfig cache_cfg = model->cache_config(o.k_codec, o.v_codec, capacity);
  if (o.preset) {
    const KvProfile profile = load_or_calibrate_profile(
        *model, o.model_path, o.profile, [](const std::string& s) { std::fprintf(stderr, "tq run: %s\n", s.c_str()); });
    CalibrationOptions opt;
    opt.context = capacity;
    // A session's codecs are built again as they were saved (for its context, not this run's
    // length); restore_session_cache refuses its records if they come out different.
    if (session)
      if (const std::optional<CalibrationSource> saved = cache_calibration(session->cache)) {
        opt = saved->options;
        std::fprintf(stderr, "tq run: %s codecs for a context of %d tokens, as the session was saved\n",
                     std::string(o.preset->name).c_str(), opt.context);
      }
    attach_preset_codecs(cache_cfg, &profile, opt, "");
  }
  KvCache cache(cache_cfg);
  const int seq = session ? restore_session_cache(*session, cache) : cache.add_sequence();
  // --device cuda: the same cache configuration in device memory; `cache` stays empty.
  std::unique_ptr<CudaRunner> gpu;
  if (o.cuda) {
    gpu = std::make_unique<CudaRunner>(*model, o.cuda_graphs);
    gpu->reset_cache(cache_cfg, 1);
    std::fprintf(stderr, "tq run: on %s, %.1f MiB of f16 weights\n", gpu->device_name().c_str(),
                 gpu->weight_bytes() / 1048576.0);
  }
  auto forward = [&](const int32_t* ids, int n, float* out) {
    if (gpu) {
      gpu->forward(0, ids, n, out);
    } else {
      model->forward(ids, n, cache, seq, out, false);
    }
  };
  std::vector<float> logits(c.vocab);
  const size_t reused = session ? session->tokens.size() : 0;
  if (session) logits = session->logits;

  if (o.echo_prompt) std::printf("%s", o.prompt_text.c_str());
  std::fflush(stdout);
  const auto t_prefill = Clock::now();
  // Only the tokens after the session's run; with none, its stored logits are the ones
  // the full prompt would give.
  if (prompt.size() > reused)
    forward(prompt.data() + reused, static_cast<int>(prompt.size() - reused), logits.data());
  const double prefill_s = seconds_since(t_prefill);
  if (!o.save_session.empty()) {
    save_session(Session{identity, o.k_codec, o.v_codec, model->qk_balance(), prompt, logits,
                         serialize_cache(cache, {seq})},
                 o.save_session, o.replace_session);
    std::fprintf(stderr, "tq run: session of %zu tokens saved to %s\n", prompt.size(), o.save_session.c_str());
  }
  if (!o.dump_logits.empty()) {
    std::ofstream f(o.dump_logits, std::ios::binary);
    f.write(reinterpret_cast<const char*>(logits.data()), static_cast<std::streamsize>(logits.size() * sizeof(float)));
    if (!f) throw Error("cannot write " + o.dump_logits);
  }

  Streamer out(tok);
  const auto t_decode = Clock::now();
  int decoded = 0;  // forward calls of one token
  for (int i = 0; i < o.n_gen; ++i) {
    const int32_t next = sample_token(logits.data(), c.vocab, o.sampler, rng);
    if (tok.is_eog(next)) break;
    out.push(next);
    if (i + 1 == o.n_gen) break;  // no logits needed after the last token
    forward(&next, 1, logits.data());
    ++decoded;
  }
  const double decode_s = seconds_since(t_decode);
  std::printf("\n");
  std::fflush(stdout);
  if (!o.dump_ids.empty()) {
    std::ofstream f(o.dump_ids);
    write_ids(f, prompt);
    write_ids(f, out.ids());
    if (!f) throw Error("cannot write " + o.dump_ids);
  }

  const double f16_per_token = 2.0 * 2.0 * c.n_layers * c.n_kv_heads * c.head_dim;  // K + V, 2 bytes each
  const size_t per_token = cache.bytes_per_token();
  const int held = gpu ? gpu->length(0) : cache.length(0, seq);
  const int block_tokens = cache_cfg.block_tokens;
  const size_t allocated =
      gpu ? static_cast<size_t>((held + block_tokens - 1) / block_tokens) * block_tokens * per_token : cache.bytes_used();
  std::fprintf(stderr, "prefill: %zu tokens in %.2fs = %.1f tok/s (%zu from the session)\n", prompt.size() - reused,
               prefill_s, (prompt.size() - reused) / prefill_s, reused);
  std::fprintf(stderr, "decode:  %d tokens in %.2fs = %.1f tok/s\n", decoded, decode_s,
               decoded > 0 ? decoded / decode_s : 0.0);
  std::fprintf(stderr,
               "cache:   %d tokens x %zu B/token (K %s + V %s, all layers) = %.1f KiB; f16: %.1f KiB; "
               "compression %.2fx (%.1f KiB of blocks allocated)\n",
               held, per_token, o.k_codec.c_str(), o.v_codec.c_str(), held * per_token / 1024.0,
               held * f16_per_token / 1024.0, f16_per_token / per_token, allocated / 1024.0);
  report_range_events("tq run");
  return 0;
}

}  // namespace tq::cli
