#pragma once
// What the binding files share: the array types they take and return, and their entry points.
#include <nanobind/nanobind.h>
#include <nanobind/ndarray.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace tq {
struct KvCacheConfig;
struct KvProfile;
}  // namespace tq

namespace tq::py {

namespace nb = nanobind;

// Inputs: C-contiguous host arrays of any shape; nanobind converts other dtypes and
// layouts (float64, strided views) through NumPy before the call.
using FloatIn = nb::ndarray<const float, nb::c_contig, nb::device::cpu>;
using ByteIn = nb::ndarray<const uint8_t, nb::c_contig, nb::device::cpu>;

// A new NumPy array of `shape` that owns `data` (allocated with new T[]).
template <class T>
nb::ndarray<nb::numpy, T> owned(T* data, const std::vector<size_t>& shape) {
  nb::capsule owner(data, [](void* p) noexcept { delete[] static_cast<T*>(p); });
  return nb::ndarray<nb::numpy, T>(data, shape.size(), shape.data(), owner);
}

// "(2, 3, 128)" for messages.
template <class Array>
std::string shape_str(const Array& a) {
  std::string s = "(";
  for (size_t i = 0; i < a.ndim(); ++i) s += (i ? ", " : "") + std::to_string(a.shape(i));
  return s + (a.ndim() == 1 ? ",)" : ")");
}

// A cache configuration; a calibrated preset named by k_codec or v_codec (one per cache) gets
// its codecs built from `profile` for caches of `context` tokens, and its sink tokens.
// tq::Error for a preset without a profile or two different presets.
KvCacheConfig cache_config(int n_layers, int n_kv_heads, int head_dim, const std::string& k_codec,
                           const std::string& v_codec, int block_tokens, int max_tokens, uint64_t seed,
                           const KvProfile* profile, int context);

void bind_codec(nb::module_& m);
void bind_cache(nb::module_& m);
void bind_profile(nb::module_& m);
void bind_device(nb::module_& m);  // TQ_PYTHON_CUDA builds only

}  // namespace tq::py
