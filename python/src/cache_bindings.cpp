// turboquant.KvCache: the CPU paged cache on NumPy arrays: quantize-on-write append,
// attention read from the compressed records, decoded or raw reads, save and load.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "turboquant/attention.h"
#include "turboquant/cache_io.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/thread_pool.h"

namespace tq::py {
namespace {

// The cache and the threads its calls run on (none of its own for threads == 1). Calls keep
// the GIL: KvCache allows no concurrent writer, and the GIL is what serializes Python threads.
struct PyCache {
  KvCache cache;
  int threads;
  std::unique_ptr<ThreadPool> pool;

  PyCache(KvCache c, int t) : cache(std::move(c)), threads(t) {
    if (t < 0) throw nb::value_error(("threads must be >= 0 (0 = all cores), got " + std::to_string(t)).c_str());
    if (t != 1) pool = std::make_unique<ThreadPool>(t);
  }
};

// Rows of a (tokens, heads, head_dim) array, or 1 for one (heads, head_dim) token.
size_t rows_of(const FloatIn& a, size_t heads, size_t dim, const char* what) {
  const bool one = a.ndim() == 2 && a.shape(0) == heads && a.shape(1) == dim;
  const bool many = a.ndim() == 3 && a.shape(1) == heads && a.shape(2) == dim;
  if (!one && !many)
    throw nb::value_error((std::string(what) + " must have shape (n, " + std::to_string(heads) + ", " +
                           std::to_string(dim) + ") or (" + std::to_string(heads) + ", " + std::to_string(dim) +
                           "), got " + shape_str(a)).c_str());
  return one ? 1 : a.shape(0);
}

void append(PyCache& self, int layer, int seq, FloatIn k, FloatIn v) {
  const auto& c = self.cache.config();
  const size_t n = rows_of(k, c.n_kv_heads, c.head_dim, "k");
  if (rows_of(v, c.n_kv_heads, c.head_dim, "v") != n)
    throw nb::value_error(("k and v must hold the same number of tokens, got " + shape_str(k) + " and " +
                           shape_str(v)).c_str());
  self.cache.append(layer, seq, static_cast<int>(n), k.data(), v.data(), self.pool.get());
}

// Positions [start, start + count) of one layer of a sequence; count defaults to the rest.
std::pair<int, int> span_of(const KvCache& c, int layer, int seq, int start, std::optional<int> count,
                            const char* what) {
  const int len = c.length(layer, seq);  // tq::Error for a bad layer or sequence
  const int n = count ? *count : len - start;
  if (start < 0 || n < 0 || start > len - n)
    throw Error(std::string("KvCache.") + what + ": positions [" + std::to_string(start) + ", " +
                std::to_string(static_cast<long long>(start) + n) + ") outside layer " + std::to_string(layer) +
                " of sequence " + std::to_string(seq) + " (length " + std::to_string(len) + ")");
  return {start, n};
}

// Runs fn(kv_head) for every KV head, on the cache's threads when it has them.
template <class Fn>
void for_each_head(const PyCache& self, Fn&& fn) {
  const int H = self.cache.config().n_kv_heads;
  if (self.pool)
    self.pool->parallel_for(H, fn);
  else
    for (int h = 0; h < H; ++h) fn(h);
}

// Decoded K and V of positions [start, start + n): what attention sees, as (n, H, head_dim)
// float32 arrays. A sink position (sink_tokens > 0) gives its exact vector, as attention does.
nb::tuple read(const PyCache& self, int layer, int seq, int start, std::optional<int> count) {
  const KvCache& c = self.cache;
  const auto [lo, n] = span_of(c, layer, seq, start, count, "read");
  const size_t H = c.config().n_kv_heads, D = c.config().head_dim;
  std::unique_ptr<float[]> k(new float[n * H * D]), v(new float[n * H * D]);
  const int sinks = std::min(c.sink_tokens(), c.length(layer, seq));
  for_each_head(self, [&](int h) {
    const Codec &kc = c.k_codec(layer, h), &vc = c.v_codec(layer, h);
    for (int t = 0; t < n; ++t) {
      const int pos = lo + t;
      float* ko = k.get() + (t * H + h) * D;
      float* vo = v.get() + (t * H + h) * D;
      if (pos < sinks) {
        kc.from_code(c.k_sink(layer, seq, h, pos), ko);
        vc.from_code(c.v_sink(layer, seq, h, pos), vo);
      } else {
        kc.decode(c.k_record(layer, seq, h, pos), ko);
        vc.decode(c.v_record(layer, seq, h, pos), vo);
      }
    }
  });
  const std::vector<size_t> shape{static_cast<size_t>(n), H, D};
  return nb::make_tuple(owned(k.release(), shape), owned(v.release(), shape));
}

// The stored bytes of positions [start, start + n): (n, H, record bytes) uint8 arrays for K
// and V, as append_records takes them.
nb::tuple records(const PyCache& self, int layer, int seq, int start, std::optional<int> count) {
  const KvCache& c = self.cache;
  const auto [lo, n] = span_of(c, layer, seq, start, count, "records");
  const size_t H = c.config().n_kv_heads, rk = c.k_record_bytes(layer), rv = c.v_record_bytes(layer);
  std::unique_ptr<uint8_t[]> k(new uint8_t[n * H * rk]), v(new uint8_t[n * H * rv]);
  for (int t = 0; t < n; ++t)
    for (size_t h = 0; h < H; ++h) {
      std::memcpy(k.get() + (t * H + h) * rk, c.k_record(layer, seq, static_cast<int>(h), lo + t), rk);
      std::memcpy(v.get() + (t * H + h) * rv, c.v_record(layer, seq, static_cast<int>(h), lo + t), rv);
    }
  return nb::make_tuple(owned(k.release(), {static_cast<size_t>(n), H, rk}),
                        owned(v.release(), {static_cast<size_t>(n), H, rv}));
}

// The exact code-space vectors of the sink positions [0, min(sink_tokens, length)) of a
// layer of a sequence: (n, n_kv_heads, code_dim) float32 arrays for K and V.
nb::tuple sinks(const PyCache& self, int layer, int seq) {
  const KvCache& c = self.cache;
  const int n = std::min(c.sink_tokens(), c.length(layer, seq));
  const size_t H = c.config().n_kv_heads, dk = c.k_codec(layer, 0).code_dim(), dv = c.v_codec(layer, 0).code_dim();
  std::unique_ptr<float[]> k(new float[n * H * dk]), v(new float[n * H * dv]);
  for (int t = 0; t < n; ++t)
    for (size_t h = 0; h < H; ++h) {
      std::copy_n(c.k_sink(layer, seq, static_cast<int>(h), t), dk, k.get() + (t * H + h) * dk);
      std::copy_n(c.v_sink(layer, seq, static_cast<int>(h), t), dv, v.get() + (t * H + h) * dv);
    }
  return nb::make_tuple(owned(k.release(), {static_cast<size_t>(n), H, dk}),
                        owned(v.release(), {static_cast<size_t>(n), H, dv}));
}

void append_records(PyCache& self, int layer, int seq, ByteIn k, ByteIn v, std::optional<FloatIn> k_sinks,
                    std::optional<FloatIn> v_sinks) {
  KvCache& c = self.cache;
  const size_t H = c.config().n_kv_heads, rk = c.k_record_bytes(layer), rv = c.v_record_bytes(layer);
  const bool k_ok = k.ndim() == 3 && k.shape(1) == H && k.shape(2) == rk;
  const bool v_ok = v.ndim() == 3 && v.shape(1) == H && v.shape(2) == rv && k_ok && v.shape(0) == k.shape(0);
  if (!k_ok || !v_ok)
    throw nb::value_error(("k_records and v_records must have shapes (n, " + std::to_string(H) + ", " +
                           std::to_string(rk) + ") and (n, " + std::to_string(H) + ", " + std::to_string(rv) +
                           ") for layer " + std::to_string(layer) + ", got " + shape_str(k) + " and " + shape_str(v))
                              .c_str());
  if (k_sinks.has_value() != v_sinks.has_value())
    throw nb::value_error("k_sinks and v_sinks go together: pass both or neither");
  if (k_sinks && (k_sinks->size() != v_sinks->size() || k_sinks->size() % (H * c.k_codec(layer, 0).code_dim())))
    throw nb::value_error(("k_sinks and v_sinks must be (n, " + std::to_string(H) + ", code_dim) arrays as sinks() returns "
                           "them, got " + shape_str(*k_sinks) + " and " + shape_str(*v_sinks)).c_str());
  // KvCache::append_records checks that the sink rows cover the new positions below sink_tokens.
  c.append_records(layer, seq, static_cast<int>(k.shape(0)), k.data(), v.data(), k_sinks ? k_sinks->data() : nullptr,
                   v_sinks ? v_sinks->data() : nullptr);
}

nb::ndarray<nb::numpy, float> attend(const PyCache& self, int layer, int seq, FloatIn q,
                                     std::optional<int> q_pos0, std::optional<float> scale, int window,
                                     float softcap, bool reference) {
  const auto& c = self.cache.config();
  if (q.ndim() < 2 || q.ndim() > 3 || q.shape(q.ndim() - 1) != static_cast<size_t>(c.head_dim))
    throw nb::value_error(("q must have shape (n_q, n_heads, " + std::to_string(c.head_dim) + ") or (n_heads, " +
                           std::to_string(c.head_dim) + "), got " + shape_str(q)).c_str());
  const int n_q = q.ndim() == 3 ? static_cast<int>(q.shape(0)) : 1;
  AttentionParams p;
  p.n_heads = static_cast<int>(q.shape(q.ndim() - 2));
  p.scale = scale ? *scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.window = window;
  p.softcap = softcap;
  // By default the queries are the sequence's last n_q tokens (decode: the token just appended).
  const int pos0 = q_pos0 ? *q_pos0 : self.cache.length(layer, seq) - n_q;
  auto* out = new float[q.size()];
  std::unique_ptr<float[]> guard(out);
  if (reference)
    attend_reference(self.cache, layer, seq, q.data(), n_q, pos0, p, out);
  else
    tq::attend(self.cache, layer, seq, q.data(), n_q, pos0, p, out, self.pool.get());
  std::vector<size_t> shape(q.ndim());
  for (size_t i = 0; i < q.ndim(); ++i) shape[i] = q.shape(i);
  return owned(guard.release(), shape);
}

// The torch op's attention (turboquant/ops.py): row b of q [rows][n_q][n_heads][head_dim] at the
// last n_q positions of seqs[b], into out of the same shape. Raw addresses, so a call costs no
// array conversion: the caller (ops.py) checks the tensors' shapes, dtype and layout against
// this cache; the library checks the rest (layer, sequence, heads) before reading.
void attend_rows(const PyCache& self, int layer, const std::vector<int>& seqs, uintptr_t q, int n_q, int n_heads,
                 uintptr_t out, std::optional<float> scale, int window, float softcap) {
  const auto& c = self.cache.config();
  AttentionParams p;
  p.n_heads = n_heads;
  p.scale = scale ? *scale : 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  p.window = window;
  p.softcap = softcap;
  const size_t row = static_cast<size_t>(n_q) * n_heads * c.head_dim;
  for (size_t b = 0; b < seqs.size(); ++b) {
    const int pos0 = self.cache.length(layer, seqs[b]) - n_q;
    tq::attend(self.cache, layer, seqs[b], reinterpret_cast<const float*>(q) + b * row, n_q, pos0, p,
               reinterpret_cast<float*>(out) + b * row, self.pool.get());
  }
}

PyCache* load(const std::filesystem::path& path, int threads, const KvProfile* profile) {
  return new PyCache(load_cache_with_profile(path.string(), profile, "pass profile= (the KvProfile its codecs were built from)"),
                     threads);
}

}  // namespace

void bind_cache(nb::module_& m) {
  nb::class_<PyCache>(m, "KvCache",
                      "The paged compressed KV cache (CPU). Keys and values are quantized when appended; "
                      "attention reads the compressed records directly. Layout: docs/FORMATS.md.")
      .def("__init__",
           [](PyCache* self, int n_layers, int n_kv_heads, int head_dim, const std::string& k_codec,
              const std::string& v_codec, int block_tokens, int max_tokens, uint64_t seed, int threads,
              const std::optional<std::map<int, std::pair<std::string, std::string>>>& layer_codecs,
              const KvProfile* profile, int context) {
             KvCacheConfig c = cache_config(n_layers, n_kv_heads, head_dim, k_codec, v_codec, block_tokens,
                                            max_tokens, seed, profile, context);
             if (layer_codecs) c.layer_codecs = *layer_codecs;
             new (self) PyCache(KvCache(c), threads);
           },
           nb::arg("n_layers"), nb::arg("n_kv_heads"), nb::arg("head_dim"), nb::arg("k_codec") = "f16",
           nb::arg("v_codec") = "f16", nb::arg("block_tokens") = 32, nb::arg("max_tokens") = 4096,
           nb::arg("seed") = 0, nb::arg("threads") = 1, nb::arg("layer_codecs") = nb::none(),
           nb::arg("profile") = nb::none(), nb::arg("context") = CalibrationOptions{}.context,
           "max_tokens is the capacity over all sequences; threads: 1 = the calling thread only, "
           "0 = all cores; layer_codecs: {layer: (k codec, v codec)} overrides for some layers (e.g. "
           "the first and last at q8_0). A calibrated preset (tq2.5, tq3, tq3.5, tq4) as k_codec or v_codec "
           "needs profile (a KvProfile of the model); context is the cache length its RoPE statistics are "
           "averaged over; the preset keeps each sequence's first sink_tokens positions exact. Raises "
           "turboquant.Error for an unknown codec, a preset without a profile, or bad shapes.")
      .def_prop_ro("n_layers", [](const PyCache& s) { return s.cache.config().n_layers; })
      .def_prop_ro("n_kv_heads", [](const PyCache& s) { return s.cache.config().n_kv_heads; })
      .def_prop_ro("head_dim", [](const PyCache& s) { return s.cache.config().head_dim; })
      .def_prop_ro("k_codec", [](const PyCache& s) { return s.cache.config().k_codec; })
      .def_prop_ro("v_codec", [](const PyCache& s) { return s.cache.config().v_codec; })
      .def_prop_ro("block_tokens", [](const PyCache& s) { return s.cache.config().block_tokens; })
      .def_prop_ro("max_tokens", [](const PyCache& s) { return s.cache.config().max_tokens; })
      .def_prop_ro("seed", [](const PyCache& s) { return s.cache.config().seed; })
      .def_prop_ro("layer_codecs", [](const PyCache& s) { return s.cache.config().layer_codecs; },
                   "The per-layer overrides {layer: (k codec, v codec)} (empty: every layer uses k_codec/v_codec).")
      .def_prop_ro("threads", [](const PyCache& s) { return s.threads; })
      .def_prop_ro("sink_tokens", [](const PyCache& s) { return s.cache.sink_tokens(); },
                   "Leading positions of each sequence kept exact (calibrated presets; 0 otherwise).")
      .def_prop_ro("bytes_per_token", [](const PyCache& s) { return s.cache.bytes_per_token(); },
                   "Bytes one token takes over all layers, K + V, exactly.")
      .def_prop_ro("bytes_used", [](const PyCache& s) { return s.cache.bytes_used(); },
                   "Bytes of the pages in use (all layers, K + V).")
      .def_prop_ro("num_blocks", [](const PyCache& s) { return s.cache.num_blocks(); },
                   "Blocks in the pool: ceil(max_tokens / block_tokens).")
      .def_prop_ro("free_blocks", [](const PyCache& s) { return s.cache.free_blocks(); },
                   "Blocks not held by any sequence.")
      .def("k_record_bytes", [](const PyCache& s, int layer) { return s.cache.k_record_bytes(layer); },
           nb::arg("layer"))
      .def("v_record_bytes", [](const PyCache& s, int layer) { return s.cache.v_record_bytes(layer); },
           nb::arg("layer"))
      .def("add_sequence", [](PyCache& s) { return s.cache.add_sequence(); },
           "A new empty sequence; returns its id (the smallest unused one).")
      .def("remove_sequence", [](PyCache& s, int seq) { s.cache.remove_sequence(seq); }, nb::arg("seq"))
      .def("sequences", [](const PyCache& s) { return s.cache.sequences(); }, "Live sequence ids, ascending.")
      .def("length", [](const PyCache& s, int layer, int seq) { return s.cache.length(layer, seq); },
           nb::arg("layer"), nb::arg("seq"))
      .def("append", &append, nb::arg("layer"), nb::arg("seq"), nb::arg("k"), nb::arg("v"),
           "Quantize and append tokens: k, v float32 of shape (n_tokens, n_kv_heads, head_dim), or "
           "(n_kv_heads, head_dim) for one token. Raises turboquant.Error when the pool is full or on "
           "NaN/Inf; nothing is written then.")
      .def("read", &read, nb::arg("layer"), nb::arg("seq"), nb::arg("start") = 0, nb::arg("n") = nb::none(),
           "Decoded keys and values of positions [start, start + n) (default: all): a tuple of float32 "
           "arrays (n, n_kv_heads, head_dim), what attention sees (Codec.decode of each record).")
      .def("records", &records, nb::arg("layer"), nb::arg("seq"), nb::arg("start") = 0, nb::arg("n") = nb::none(),
           "The stored records of positions [start, start + n) (default: all): a tuple of uint8 arrays "
           "(n, n_kv_heads, k_record_bytes(layer)) and (n, n_kv_heads, v_record_bytes(layer)).")
      .def("sinks", &sinks, nb::arg("layer"), nb::arg("seq"),
           "The exact code-space K and V of the sequence's sink positions (the first sink_tokens): a tuple "
           "of float32 arrays (n, n_kv_heads, code_dim), as append_records takes them.")
      .def("append_records", &append_records, nb::arg("layer"), nb::arg("seq"), nb::arg("k_records"),
           nb::arg("v_records"), nb::arg("k_sinks") = nb::none(), nb::arg("v_sinks") = nb::none(),
           "Append records already encoded by this layer's codecs (shaped as records() returns them), "
           "copied byte for byte; new positions below sink_tokens also need their sinks() rows. Raises "
           "turboquant.Error when the pool is full.")
      .def("attend", &attend, nb::arg("layer"), nb::arg("seq"), nb::arg("q"), nb::arg("q_pos0") = nb::none(),
           nb::arg("scale") = nb::none(), nb::arg("window") = 0, nb::arg("softcap") = 0.0f,
           nb::arg("reference") = false,
           "Causal attention over the compressed cache. q: float32 (n_q, n_heads, head_dim) or "
           "(n_heads, head_dim); n_heads a multiple of n_kv_heads. Query i sits at position q_pos0 + i "
           "(default: the sequence's last n_q positions). scale defaults to 1/sqrt(head_dim); window 0 = "
           "none; softcap 0 = off; reference=True runs the scalar oracle instead of the fast kernels. "
           "Returns an array shaped like q.")
      .def("_attend_rows", &attend_rows, nb::arg("layer"), nb::arg("seqs"), nb::arg("q"), nb::arg("n_q"),
           nb::arg("n_heads"), nb::arg("out"), nb::arg("scale").none(), nb::arg("window"), nb::arg("softcap"),
           "For turboquant.ops: attend() of several sequences at raw float32 addresses q and out "
           "([rows][n_q][n_heads][head_dim] each), unchecked shapes; use attend().")
      .def("save", [](const PyCache& s, const std::filesystem::path& path, bool overwrite) {
             save_cache(s.cache, path.string(), overwrite);
           },
           nb::arg("path"), nb::arg("overwrite") = false,
           "Save configuration and every sequence, bit-exact. An existing file is replaced (atomically) "
           "only with overwrite=True.")
      .def_static("load", &load, nb::arg("path"), nb::arg("threads") = 1, nb::arg("profile") = nb::none(),
                  nb::rv_policy::take_ownership,
                  "A new cache with the file's configuration and sequences (under their saved ids). A cache "
                  "of a calibrated preset needs the profile its codecs were built from.")
      .def("__repr__", [](const PyCache& s) {
        const auto& c = s.cache.config();
        return "KvCache(n_layers=" + std::to_string(c.n_layers) + ", n_kv_heads=" + std::to_string(c.n_kv_heads) +
               ", head_dim=" + std::to_string(c.head_dim) + ", k_codec='" + c.k_codec + "', v_codec='" + c.v_codec +
               "')";
      });
}

}  // namespace tq::py
