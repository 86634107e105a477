// Session file payload: model size and header hash, K and V codec names, the Q/K balance
// (layers, KV heads, head_dim, then the scales; zeros when off), the tokens, the logits,
// then a complete cache file of the one sequence (with its own header and checksum).
#include "turboquant/session.h"

#include <cstring>

#include "../core/file_frame.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"

namespace tq {

namespace {

using detail::ByteReader;
using detail::ByteWriter;

constexpr char kMagic[4] = {'T', 'Q', 'S', 'N'};
constexpr const char* kWhat = "session file";

void put_balance(ByteWriter& w, const QkBalance& b) {
  w.put<uint32_t>(b.n_layers());
  w.put<uint32_t>(b.n_kv_heads());
  w.put<uint32_t>(b.head_dim());
  for (int l = 0; l < b.n_layers(); ++l)
    for (int h = 0; h < b.n_kv_heads(); ++h) w.f32s(b.scale(l, h), b.head_dim());
}

QkBalance get_balance(ByteReader& r) {
  const uint64_t layers = r.get<uint32_t>("balance layers"), heads = r.get<uint32_t>("balance KV heads"),
                 dim = r.get<uint32_t>("balance head_dim");
  if (layers == 0 || heads == 0 || dim == 0) return {};
  // Each count is below 2^32, so layers · heads cannot wrap; the third factor is checked by
  // division (2147418113 · 1718039348 · 5 wraps around 2^64 to 4).
  const uint64_t room = r.left() / 4;
  if (layers * heads > room || dim > room / (layers * heads))
    throw Error(std::string(kWhat) + " truncated: the Q/K balance needs " + std::to_string(layers) + " x " +
                std::to_string(heads) + " x " + std::to_string(dim) + " scales, " + std::to_string(r.left()) +
                " bytes left");
  const uint64_t n = layers * heads * dim;
  return QkBalance(static_cast<int>(layers), static_cast<int>(heads), static_cast<int>(dim),
                   r.f32s(n, "balance scales"));
}

std::string balance_text(const QkBalance& b) {
  return b.empty() ? "off" : "on (" + std::to_string(b.n_layers()) + " layers)";
}

bool same_balance(const QkBalance& a, const QkBalance& b) {
  if (a.n_layers() != b.n_layers() || a.n_kv_heads() != b.n_kv_heads() || a.head_dim() != b.head_dim()) return false;
  for (int l = 0; l < a.n_layers(); ++l)
    for (int h = 0; h < a.n_kv_heads(); ++h)
      if (std::memcmp(a.scale(l, h), b.scale(l, h), sizeof(float) * a.head_dim()) != 0) return false;
  return true;
}

}  // namespace

ModelIdentity identify_model(uint64_t file_size, std::span<const uint8_t> hashed_bytes) {
  return {file_size, detail::fnv1a64(hashed_bytes.data(), hashed_bytes.size())};
}

std::vector<uint8_t> serialize_session(const Session& s) {
  ByteWriter w;
  w.put<uint64_t>(s.model.file_size);
  w.put<uint64_t>(s.model.header_hash);
  w.str(s.k_codec);
  w.str(s.v_codec);
  put_balance(w, s.balance);
  w.put<uint32_t>(static_cast<uint32_t>(s.tokens.size()));
  for (int32_t t : s.tokens) w.put<uint32_t>(static_cast<uint32_t>(t));
  w.put<uint32_t>(static_cast<uint32_t>(s.logits.size()));
  w.f32s(s.logits.data(), s.logits.size());
  w.put<uint64_t>(s.cache.size());
  w.bytes(s.cache.data(), s.cache.size());
  return detail::frame(kMagic, kSessionFileVersion, w.buf);
}

Session deserialize_session(std::span<const uint8_t> bytes) {
  ByteReader r(detail::unframe(bytes, kMagic, kSessionFileVersion, kWhat, "turboquant session file"), kWhat);
  Session s;
  s.model.file_size = r.get<uint64_t>("model size");
  s.model.header_hash = r.get<uint64_t>("model hash");
  s.k_codec = r.str("K codec name");
  s.v_codec = r.str("V codec name");
  s.balance = get_balance(r);
  const uint32_t n_tokens = r.get<uint32_t>("token count");
  // Before the copy: an empty vector's data() is null, and memcpy to null is UB even for 0 bytes.
  if (n_tokens == 0) throw Error(std::string(kWhat) + ": no tokens");
  const uint8_t* t = r.take(size_t(n_tokens) * 4, "tokens");
  s.tokens.resize(n_tokens);
  std::memcpy(s.tokens.data(), t, size_t(n_tokens) * 4);
  const uint32_t n_logits = r.get<uint32_t>("logit count");
  s.logits = r.f32s(n_logits, "logits");
  const uint64_t cache_bytes = r.get<uint64_t>("cache size");
  if (cache_bytes != r.left())
    throw Error(std::string(kWhat) + ": cache of " + std::to_string(cache_bytes) + " bytes, " +
                std::to_string(r.left()) + " left");
  const uint8_t* c = r.take(cache_bytes, "cache");
  s.cache.assign(c, c + cache_bytes);
  return s;
}

void save_session(const Session& s, const std::string& path, bool overwrite) {
  detail::write_file_atomic(path, serialize_session(s), overwrite, kWhat);
}

Session load_session(const std::string& path) {
  try {
    return deserialize_session(detail::read_whole_file(path, kWhat));
  } catch (const Error& e) {
    throw Error(path + ": " + e.what());
  }
}

void check_session_matches(const Session& s, const ModelIdentity& model, const std::string& k_codec,
                           const std::string& v_codec, bool qk_balance) {
  if (s.model != model)
    throw Error("the session was saved with another model file (" + std::to_string(s.model.file_size) +
                " bytes, header hash " + std::to_string(s.model.header_hash) + "; this one: " +
                std::to_string(model.file_size) + " bytes, header hash " + std::to_string(model.header_hash) + ")");
  if (s.k_codec != k_codec || s.v_codec != v_codec)
    throw Error("the session was saved with K " + s.k_codec + " / V " + s.v_codec + ", this run uses K " + k_codec +
                " / V " + v_codec + " (pass --k-codec " + s.k_codec + " --v-codec " + s.v_codec + ")");
  if (s.balance.empty() == qk_balance)
    throw Error(std::string("the session was saved with the Q/K balance ") + (qk_balance ? "off" : "on") +
                ", this run has it " + (qk_balance ? "on" : "off") + " (--qk-balance)");
}

void check_session_balance(const Session& s, const QkBalance& balance) {
  if (!same_balance(s.balance, balance))
    throw Error("the session was saved with the Q/K balance " + balance_text(s.balance) + ", this run has it " +
                balance_text(balance) + (s.balance.empty() == balance.empty() ? " with other scales" : "") +
                " (--qk-balance)");
}

int restore_session_cache(const Session& s, KvCache& cache) {
  std::vector<int> seqs;
  try {
    seqs = deserialize_sequences(cache, s.cache);
  } catch (const Error& e) {
    throw Error(std::string("the session's cache cannot be restored here: ") + e.what());
  }
  const auto drop = [&] {
    for (int q : seqs) cache.remove_sequence(q);
  };
  if (seqs.size() != 1) {
    drop();
    throw Error("session cache holds " + std::to_string(seqs.size()) + " sequences, expected 1");
  }
  for (int l = 0; l < cache.config().n_layers; ++l)
    if (cache.length(l, seqs[0]) != static_cast<int>(s.tokens.size())) {
      const int len = cache.length(l, seqs[0]);
      drop();
      throw Error("session cache holds " + std::to_string(len) + " positions in layer " + std::to_string(l) +
                  " for " + std::to_string(s.tokens.size()) + " tokens");
    }
  return seqs[0];
}

}  // namespace tq
