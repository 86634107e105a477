// tq bench model: prefill and decode speed of a real model per cache codec at chosen
// context depths, with the process's resident memory and the cache's bytes. Each depth
// is reached by a prefill of random token ids (not timed); then `--prefill` tokens are
// timed as one forward call and `--decode` tokens one at a time.
#include <malloc.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "args.h"
#include "commands.h"
#include "cuda_runner.h"
#include "random_fill.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/model.h"
#include "turboquant/rng.h"

namespace tq::cli {
namespace {

constexpr const char* kUsage =
    "tq bench model [--model smollm2|gemma3|FILE.gguf] [--codecs f16,turbo3,...] [--depths 0,4096]\n"
    "               [--prefill 128] [--decode 32] [--threads N] [--weights quantized|f32]\n"
    "               [--json FILE] [--markdown FILE] [--profile FILE] [--device cpu|cuda] [--batch N]\n"
    "               [--cuda-graphs] [--fill model|random] [--rope-frames N]\n"
    "  Prefill and decode tokens/s of a real model per KV-cache codec (K and V alike, no Q/K\n"
    "  balance) at each context depth, resident memory (VmRSS after the row, freed heap\n"
    "  returned to the system before each row; VmHWM, the process's peak so far) and cache\n"
    "  bytes. Calibrated presets (tq3, ...) use the model's calibration profile (--profile\n"
    "  FILE, else ~/.cache/turboquant/profiles, measured once when missing), their codecs\n"
    "  built for the row's context; --rope-frames N stores their keys in RoPE frames of N\n"
    "  positions (0: none; default 16 x head_dim; docs/EVAL.md), to weigh quality and speed.\n"
    "  A depth is filled with random token ids first (untimed); then --prefill tokens run as\n"
    "  one forward call and --decode tokens one at a time.\n"
    "  --fill random (CPU only): fill the depth with random Gaussian K/V vectors appended to\n"
    "  every layer instead of running the model over it (seconds instead of minutes at 16K);\n"
    "  decode still runs the model's real attention over those records, but the rows' prefill\n"
    "  numbers and the attention weights' spread differ from a real fill.\n"
    "  --device cuda: the model on the GPU (f16 weights, cuBLAS, the cache in device memory);\n"
    "  --batch N (cuda only) runs N sequences sharing the pool: each filled and prefilled in\n"
    "  turn, then decoded together one token each per step; tok/s count every sequence's tokens.\n"
    "  --cuda-graphs replays each decode step as a CUDA graph (attention split for the whole cache).\n";

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// Resident and peak resident set of this process in bytes (/proc/self/status; 0 elsewhere).
size_t proc_status_kb(const char* key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line)) {
    if (line.rfind(k, 0) == 0) return std::stoul(line.substr(k.size())) * 1024;
  }
  return 0;
}

// Hands the heap's free pages back to the system (glibc keeps freed chunks resident).
// Called between rows: without it a row's RSS also counted what earlier rows had freed,
// e.g. at depth 16384 the turbo3 row after q4_0h measured q4_0h's larger cache (issue 12).
void release_freed_heap() {
#ifdef __GLIBC__
  malloc_trim(0);
#endif
}

struct Row {
  std::string codec;
  int depth = 0;
  double prefill_tps = 0, decode_tps = 0;
  size_t cache_bytes = 0, cache_bytes_per_token = 0, rss = 0, peak_rss = 0;
};

std::string run_capture(const char* cmd) {
  std::string out;
  if (FILE* p = popen(cmd, "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  return out.empty() ? "unknown" : out;
}

std::string markdown(const std::vector<Row>& rows, const std::string& header) {
  std::ostringstream s;
  s << header << "\n| codec | depth | prefill tok/s | decode tok/s | cache MiB | cache B/token | RSS MiB | peak RSS MiB |\n"
    << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  char buf[256];
  for (const Row& r : rows) {
    std::snprintf(buf, sizeof buf, "| %s | %d | %.1f | %.1f | %.1f | %zu | %.1f | %.1f |\n", r.codec.c_str(), r.depth,
                  r.prefill_tps, r.decode_tps, r.cache_bytes / 1048576.0, r.cache_bytes_per_token,
                  r.rss / 1048576.0, r.peak_rss / 1048576.0);
    s << buf;
  }
  return s.str();
}

std::string quoted(const std::string& v) {
  std::string q = "\"";
  for (char ch : v) {
    if (ch == '"' || ch == '\\') q += '\\';
    q += ch;
  }
  return q + "\"";
}

std::string json(const std::vector<Row>& rows, const std::string& model, const std::string& weights, int threads,
                 int prefill, int decode) {
  std::ostringstream s;
  s << "{\n  \"model\": " << quoted(model) << ",\n  \"weights\": " << quoted(weights) << ",\n  \"threads\": " << threads
    << ",\n  \"prefill_tokens\": " << prefill << ",\n  \"decode_tokens\": " << decode << ",\n  \"rows\": [\n";
  for (size_t i = 0; i < rows.size(); ++i) {
    const Row& r = rows[i];
    s << "    {\"codec\": " << quoted(r.codec) << ", \"depth\": " << r.depth << ", \"prefill_tok_s\": " << r.prefill_tps
      << ", \"decode_tok_s\": " << r.decode_tps << ", \"cache_bytes\": " << r.cache_bytes
      << ", \"cache_bytes_per_token\": " << r.cache_bytes_per_token << ", \"rss_bytes\": " << r.rss
      << ", \"peak_rss_bytes\": " << r.peak_rss << "}" << (i + 1 < rows.size() ? "," : "") << "\n";
  }
  s << "  ]\n}\n";
  return s.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream f(path);
  if (!f || !(f << text)) throw Error("cannot write " + path);
}

// One row on the GPU: `batch` sequences, each filled to `depth` (untimed) and prefilled in
// turn, then decoded together; tok/s count every sequence's tokens.
Row bench_cuda_row(CudaRunner& gpu, KvCacheConfig cfg, const std::string& codec, int depth, int n_prefill,
                   int n_decode, int batch, int vocab, Rng& rng) {
  // Each sequence holds whole blocks: its tokens rounded up to a block, times the batch.
  const int per_seq = depth + n_prefill + n_decode;
  cfg.max_tokens = (per_seq + cfg.block_tokens - 1) / cfg.block_tokens * cfg.block_tokens * batch;
  gpu.reset_cache(cfg, batch);
  std::vector<float> logits(static_cast<size_t>(batch) * vocab);
  auto random_ids = [&](int n) {
    std::vector<int32_t> ids(n);
    for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint32_t>(vocab)));
    return ids;
  };
  for (int b = 0; b < batch && depth > 0; ++b) gpu.forward(b, random_ids(depth).data(), depth, logits.data());
  Row r;
  r.codec = codec;
  r.depth = depth;
  std::vector<std::vector<int32_t>> prompts(batch);
  for (auto& p : prompts) p = random_ids(n_prefill);
  auto t0 = Clock::now();
  for (int b = 0; b < batch; ++b) gpu.forward(b, prompts[b].data(), n_prefill, logits.data());
  r.prefill_tps = double(batch) * n_prefill / seconds_since(t0);
  std::vector<std::vector<int32_t>> steps(n_decode);
  for (auto& s : steps) s = random_ids(batch);
  t0 = Clock::now();
  for (const auto& s : steps) gpu.decode_all(s.data(), logits.data());
  r.decode_tps = double(batch) * n_decode / seconds_since(t0);
  // The byte count of the same configuration's CPU cache (one block, nothing more).
  KvCacheConfig one_block = cfg;
  one_block.max_tokens = cfg.block_tokens;
  r.cache_bytes_per_token = KvCache(one_block).bytes_per_token();
  size_t blocks = 0;
  for (int b = 0; b < batch; ++b) blocks += static_cast<size_t>((gpu.length(b) + cfg.block_tokens - 1) / cfg.block_tokens);
  r.cache_bytes = blocks * cfg.block_tokens * r.cache_bytes_per_token;
  r.rss = proc_status_kb("VmRSS");
  r.peak_rss = proc_status_kb("VmHWM");
  std::fprintf(stderr, "  %-8s depth %6d: prefill %.1f tok/s, decode %.1f tok/s (GPU, batch %d)\n", codec.c_str(), depth,
               r.prefill_tps, r.decode_tps, batch);
  return r;
}

}  // namespace

int cmd_bench_model(int argc, char** argv) {
  Args args(argc, argv, {"help", "cuda-graphs"},
            {"model", "codecs", "depths", "prefill", "decode", "threads", "weights", "json", "markdown", "profile", "device",
             "batch", "fill", "rope-frames"});
  if (args.has("help")) {
    std::printf("%s", kUsage);
    return 0;
  }
  const std::string model_name = args.get("model", "smollm2");
  std::vector<std::string> codecs = args.get_list("codecs");
  if (codecs.empty()) codecs = {"f16", "turbo3"};
  std::vector<int> depths = args.get_int_list("depths");
  if (depths.empty()) depths = {0, 4096};
  const int n_prefill = args.get_int("prefill", 128), n_decode = args.get_int("decode", 32);
  if (n_prefill <= 0 || n_decode <= 0) throw Error("--prefill and --decode must be > 0");
  for (int d : depths) {
    if (d < 0) throw Error("--depths must be >= 0, got " + std::to_string(d));
  }
  const bool on_cuda = parse_device_is_cuda(args.get("device", "cpu"));
  const int batch = args.get_int("batch", 1);
  if (batch < 1) throw Error("--batch must be >= 1, got " + std::to_string(batch));
  if (batch > 1 && !on_cuda) throw Error("--batch needs --device cuda (the CPU runner decodes one sequence)");
  if (args.has("cuda-graphs") && !on_cuda) throw Error("--cuda-graphs needs --device cuda");
  const std::string fill = args.get("fill", "model");
  if (fill != "model" && fill != "random") throw Error("--fill must be model or random, got " + fill);
  if (fill == "random" && on_cuda) throw Error("--fill random needs --device cpu");
  const std::string weights = args.get("weights", "quantized");
  const int rope_frames = args.get_int("rope-frames", -1);
  if (rope_frames < -1) throw Error("--rope-frames must be >= 0 (0: no frames), got " + std::to_string(rope_frames));
  const std::string model_path = resolve_model_path(model_name);
  auto model = Model::load(model_path, args.get_int("threads", 0), parse_weight_format(weights));
  const ModelConfig& c = model->config();
  std::fprintf(stderr, "bench model: %s, %d threads, %s weights\n", c.name.c_str(), model->threads(), weights.c_str());
  std::unique_ptr<CudaRunner> gpu;
  if (on_cuda) {
    gpu = std::make_unique<CudaRunner>(*model, args.has("cuda-graphs"));
    std::fprintf(stderr, "bench model: on %s, %.1f MiB of f16 weights, batch %d\n", gpu->device_name().c_str(),
                 gpu->weight_bytes() / 1048576.0, batch);
  }

  std::optional<KvProfile> profile;  // loaded for the first calibrated preset
  Rng rng(1);
  std::vector<Row> rows;
  std::vector<float> logits(c.vocab);
  for (const std::string& codec : codecs) {
    for (int depth : depths) {
      const int total = depth + n_prefill + n_decode;
      if (total > c.context) {
        std::fprintf(stderr, "bench model: warning: %d tokens exceed the model's training context %d\n", total,
                     c.context);
      }
      KvCacheConfig cfg = model->cache_config(codec, codec, total);
      if (find_preset(codec)) {
        if (!profile)
          profile = load_or_calibrate_profile(*model, model_path, args.get("profile"),
                                              [](const std::string& s) { std::fprintf(stderr, "bench model: %s\n", s.c_str()); });
        CalibrationOptions opt;
        opt.context = total;
        opt.rope_range = rope_frames;
        attach_preset_codecs(cfg, &*profile, opt, "");
      }
      if (gpu) {
        rows.push_back(bench_cuda_row(*gpu, cfg, codec, depth, n_prefill, n_decode, batch, c.vocab, rng));
        continue;
      }
      release_freed_heap();  // the rows before this one hold nothing any more
      KvCache cache(cfg);
      const int seq = cache.add_sequence();
      std::vector<int32_t> ids(depth + n_prefill);
      for (int32_t& id : ids) id = static_cast<int32_t>(rng.below(static_cast<uint32_t>(c.vocab)));
      if (depth > 0 && fill == "random")
        fill_random_tokens(cache, seq, depth, rng);
      else if (depth > 0)
        model->forward(ids.data(), depth, cache, seq, logits.data(), false);
      Row r;
      r.codec = codec;
      r.depth = depth;
      auto t0 = Clock::now();
      model->forward(ids.data() + depth, n_prefill, cache, seq, logits.data(), false);
      r.prefill_tps = n_prefill / seconds_since(t0);
      t0 = Clock::now();
      for (int i = 0; i < n_decode; ++i) {
        const int32_t next = static_cast<int32_t>(rng.below(static_cast<uint32_t>(c.vocab)));
        model->forward(&next, 1, cache, seq, logits.data(), false);
      }
      r.decode_tps = n_decode / seconds_since(t0);
      r.cache_bytes = cache.bytes_used();
      r.cache_bytes_per_token = cache.bytes_per_token();
      r.rss = proc_status_kb("VmRSS");
      r.peak_rss = proc_status_kb("VmHWM");
      std::fprintf(stderr, "  %-8s depth %6d: prefill %.1f tok/s, decode %.1f tok/s, RSS %.1f MiB\n", codec.c_str(),
                   depth, r.prefill_tps, r.decode_tps, r.rss / 1048576.0);
      rows.push_back(r);
    }
  }

  std::ostringstream header;
  header << "## Model speed: " << c.name << "\n\n- command: `tq bench model";
  for (int i = 0; i < argc; ++i) header << ' ' << argv[i];
  header << "`\n- commit: " << run_capture("git rev-parse --short HEAD 2>/dev/null")
         << ", date: " << run_capture("date -u '+%Y-%m-%d %H:%M UTC'")
         << ", CPU:" << run_capture("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2")
         << (gpu ? ", GPU: " + gpu->device_name() + " (f16 weights, batch " + std::to_string(batch) +
                       (args.has("cuda-graphs") ? ", CUDA graphs" : "") + ")" : "") << ", "
         << model->threads()
         << " threads, " << weights << " weights, prefill " << n_prefill << " tokens, decode " << n_decode
         << " tokens\n";
  const std::string md = markdown(rows, header.str());
  std::printf("%s", md.c_str());
  if (args.has("markdown")) write_file(args.get("markdown"), md);
  if (args.has("json")) {
    write_file(args.get("json"), json(rows, c.name, weights, model->threads(), n_prefill, n_decode));
  }
  return 0;
}

}  // namespace tq::cli
