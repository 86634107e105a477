// turboquant.KvProfile and KvProfileBuilder: the calibration profile the calibrated presets
// (tq2.5, tq3, tq3.5, tq4) are built from, loaded from a file `tq calibrate` wrote or
// accumulated from a model's own pre-RoPE query/key and value rows (turboquant.hf.calibrate).
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include <nanobind/stl/filesystem.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/shared_ptr.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include "bindings.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/qk_balance.h"

namespace tq::py {
namespace {

using DoubleIn = nb::ndarray<const double, nb::c_contig, nb::device::cpu>;

template <class Array>
void check_shape(const char* what, const Array& a, const std::vector<size_t>& want) {
  bool ok = a.ndim() == want.size();
  for (size_t i = 0; ok && i < want.size(); ++i) ok = a.shape(i) == want[i];
  if (ok) return;
  std::string s = "(";
  for (size_t i = 0; i < want.size(); ++i) s += (i ? ", " : "") + std::to_string(want[i]);
  throw nb::value_error((std::string(what) + " must have shape " + s + "), got " + shape_str(a)).c_str());
}

// The statistics of one forward pass plus what the model itself gives: RoPE angles per
// layer and coordinate, the RoPE pairing, and the value metric W_oᵀW_o per KV head.
KvProfile finish(const KvProfileBuilder& b, int n_layers, int n_kv_heads, int head_dim, DoubleIn rope_theta,
                 DoubleIn v_weight, int rope_dim, const std::string& model_name) {
  const size_t L = n_layers, H = n_kv_heads, d = head_dim;
  check_shape("rope_theta", rope_theta, {L, d});
  check_shape("v_weight", v_weight, {L, H, d, d});
  if (rope_dim < 0 || rope_dim > head_dim || rope_dim % 2)
    throw nb::value_error(("rope_dim must be even and in [0, head_dim=" + std::to_string(head_dim) + "], got " +
                           std::to_string(rope_dim)).c_str());
  KvProfile p = KvProfileBuilder(b).finish();  // finish() moves the sums out: keep the Python object's
  p.rope_partner = rope_partners(head_dim, rope_dim, /*neox=*/true);  // transformers' rotate_half pairing
  for (size_t l = 0; l < L; ++l) p.rope_theta.emplace_back(rope_theta.data() + l * d, rope_theta.data() + (l + 1) * d);
  for (size_t i = 0; i < L * H; ++i) p.heads[i].v_weight.assign(v_weight.data() + i * d * d, v_weight.data() + (i + 1) * d * d);
  p.model_name = model_name;
  p.check();
  // The profile as its file holds it (the format rounds the statistics), so the codecs built
  // from it now equal those built from the saved file later, as `tq calibrate` does.
  return deserialize_profile(serialize_profile(p));
}

}  // namespace

KvCacheConfig cache_config(int n_layers, int n_kv_heads, int head_dim, const std::string& k_codec,
                           const std::string& v_codec, int block_tokens, int max_tokens, uint64_t seed,
                           const KvProfile* profile, int context) {
  KvCacheConfig c;
  c.n_layers = n_layers;
  c.n_kv_heads = n_kv_heads;
  c.head_dim = head_dim;
  c.k_codec = k_codec;
  c.v_codec = v_codec;
  c.block_tokens = block_tokens;
  c.max_tokens = max_tokens;
  c.seed = seed;
  CalibrationOptions opt;
  opt.context = context;
  attach_preset_codecs(c, profile, opt,
                       "pass profile= (a turboquant.KvProfile: KvProfile.load of a `tq calibrate` file, or "
                       "turboquant.hf.calibrate(model))");
  return c;
}

void bind_profile(nb::module_& m) {
  m.def("calibration_text", [] { return std::string(calibration_text()); },
        "The built-in calibration text (a few paragraphs of plain English), the one `tq calibrate` uses.");
  m.def("presets", [] {
        std::vector<std::string> names;
        for (const CodecSpec& s : preset_table()) names.emplace_back(s.name);
        return names;
      },
      "Names of the calibrated presets (tq2.5, tq3, ...): codecs built per model from a KvProfile.");

  nb::class_<KvProfile>(m, "KvProfile",
                        "A model's calibration profile: per layer and KV head the second moments the calibrated "
                        "presets are built from (kv_profile.h). KvProfile.load reads a file `tq calibrate` wrote; "
                        "turboquant.hf.calibrate measures one on a transformers model.")
      .def_static("load", [](const std::filesystem::path& path) { return load_profile(path.string()); },
                  nb::arg("path"), "Read a profile file; turboquant.Error naming the problem for a bad file.")
      .def("save", [](const KvProfile& p, const std::filesystem::path& path) { save_profile(p, path.string()); },
           nb::arg("path"), "Write the profile (atomically), in the format `tq calibrate` writes.")
      .def_ro("n_layers", &KvProfile::n_layers)
      .def_ro("n_heads", &KvProfile::n_heads)
      .def_ro("n_kv_heads", &KvProfile::n_kv_heads)
      .def_ro("head_dim", &KvProfile::head_dim)
      .def_ro("tokens", &KvProfile::tokens, "Calibration tokens the statistics were measured on.")
      .def_ro("model_name", &KvProfile::model_name)
      .def("__repr__", [](const KvProfile& p) {
        return "KvProfile('" + p.model_name + "', n_layers=" + std::to_string(p.n_layers) + ", n_heads=" +
               std::to_string(p.n_heads) + ", n_kv_heads=" + std::to_string(p.n_kv_heads) + ", head_dim=" +
               std::to_string(p.head_dim) + ", tokens=" + std::to_string(p.tokens) + ")";
      });

  struct Builder {
    KvProfileBuilder b;
    int n_layers, n_heads, n_kv_heads, head_dim;
  };
  nb::class_<Builder>(m, "KvProfileBuilder",
                      "Accumulates a KvProfile from a forward pass: add() each layer's pre-RoPE query and key "
                      "rows and value rows, then finish() with the model's RoPE angles and output projection.")
      .def("__init__",
           [](Builder* self, int n_layers, int n_heads, int n_kv_heads, int head_dim) {
             new (self) Builder{KvProfileBuilder(n_layers, n_heads, n_kv_heads, head_dim), n_layers, n_heads,
                                n_kv_heads, head_dim};
           },
           nb::arg("n_layers"), nb::arg("n_heads"), nb::arg("n_kv_heads"), nb::arg("head_dim"))
      .def("add",
           [](Builder& s, int layer, FloatIn q, FloatIn k, FloatIn v) {
             if (layer < 0 || layer >= s.n_layers)
               throw nb::index_error(("layer " + std::to_string(layer) + " outside [0, " + std::to_string(s.n_layers) +
                                      ")").c_str());
             const size_t n = q.ndim() == 3 ? q.shape(0) : 0, H = s.n_kv_heads, d = s.head_dim;
             check_shape("q", q, {n, static_cast<size_t>(s.n_heads), d});
             check_shape("k", k, {n, H, d});
             check_shape("v", v, {n, H, d});
             s.b.add(layer, static_cast<int>(n), q.data(), k.data(), v.data());
           },
           nb::arg("layer"), nb::arg("q"), nb::arg("k"), nb::arg("v"),
           "One layer's rows, pre-RoPE: q (n, n_heads, head_dim), k and v (n, n_kv_heads, head_dim), float32.")
      .def("finish",
           [](const Builder& s, DoubleIn rope_theta, DoubleIn v_weight, std::optional<int> rope_dim,
              const std::string& model_name) {
             return finish(s.b, s.n_layers, s.n_kv_heads, s.head_dim, rope_theta, v_weight,
                           rope_dim ? *rope_dim : s.head_dim, model_name);
           },
           nb::arg("rope_theta"), nb::arg("v_weight"), nb::arg("rope_dim") = nb::none(), nb::arg("model_name") = "",
           "The profile: rope_theta (n_layers, head_dim) float64 radians per position of each coordinate (a "
           "pair shares its angle), rotated in transformers' rotate_half pairing over the first rope_dim "
           "coordinates (default all); v_weight (n_layers, n_kv_heads, head_dim, head_dim) float64, the sum "
           "over the KV head's query heads of W_o,hᵀ W_o,h. turboquant.Error when a layer saw no tokens.");
}

}  // namespace tq::py
