#pragma once
// A saved prompt (`tq run --save-session` / `--load-session`; layout in docs/FORMATS.md,
// "Session file"): the prompt's tokens, the next-token logits after them, the compressed
// cache of that one sequence (a whole cache file inside, with its sink store and, for a
// calibrated preset, what its codecs were built from), and what the cache depends on:
// the model file's identity, the K/V codecs and the Q/K balance. Restoring it and then
// generating gives exactly the tokens a run over the full prompt gives, because the
// records and the logits are stored bit for bit.
//
// The file is framed like the cache file (magic "TQSN", version, size, FNV-1a checksum),
// written atomically; damage, truncation and a foreign file give a tq::Error.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "turboquant/kv_cache.h"
#include "turboquant/qk_balance.h"

namespace tq {

// Which model file a cache was computed with: its size and an FNV-1a 64 hash of its header,
// metadata and tensor table (everything before the tensor data) plus samples of the
// tensor data (model.h, model_identity), so another model, quantization, tokenizer or
// fine-tune differs without reading all the weights.
struct ModelIdentity {
  uint64_t file_size = 0;
  uint64_t header_hash = 0;
  bool operator==(const ModelIdentity&) const = default;
};
ModelIdentity identify_model(uint64_t file_size, std::span<const uint8_t> hashed_bytes);

struct Session {
  ModelIdentity model;
  std::string k_codec, v_codec;
  QkBalance balance;            // empty: keys were cached without the balance
  std::vector<int32_t> tokens;  // the prompt; the cache holds exactly these positions
  std::vector<float> logits;    // next-token logits after the last prompt token
  std::vector<uint8_t> cache;   // the sequence, as serialize_cache writes it
};

constexpr uint32_t kSessionFileVersion = 1;

std::vector<uint8_t> serialize_session(const Session& s);
Session deserialize_session(std::span<const uint8_t> bytes);
// Atomic (cache_io's rules): never replaces an existing file unless `overwrite`.
void save_session(const Session& s, const std::string& path, bool overwrite);
Session load_session(const std::string& path);

// tq::Error, naming both sides, when the session was made with another model file, other
// codecs or with the Q/K balance on where it is now off (or off where on); checked
// before the model is loaded.
void check_session_matches(const Session& s, const ModelIdentity& model, const std::string& k_codec,
                           const std::string& v_codec, bool qk_balance);
// The Q/K balance the model now uses (after calibration) must equal the saved one exactly.
void check_session_balance(const Session& s, const QkBalance& balance);
// Appends the saved sequence to `cache` (same shapes, seed, sink tokens and codecs, room
// for it; a preset's codecs built again from the same profile and options, see
// cache_calibration()) and checks it holds exactly s.tokens.size() positions in every
// layer; returns its id.
int restore_session_cache(const Session& s, KvCache& cache);

}  // namespace tq
