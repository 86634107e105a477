// turboquant.codecs() and turboquant.Codec: the codec table and batched encode/decode of
// NumPy float32 vectors.
#include <cmath>
#include <string>

#include <nanobind/stl/string.h>

#include "bindings.h"
#include "turboquant/codec.h"
#include "turboquant/error.h"

namespace tq::py {
namespace {

nb::list codec_table_dicts(int dim) {
  nb::list rows;
  for (const CodecSpec& s : codec_table()) {
    nb::dict row;
    row["name"] = std::string(s.name);
    row["summary"] = std::string(s.summary);
    row["quant"] = std::string(quant_name(s.quant));
    row["rotation"] = std::string(rotation_name(s.rotation));
    row["dim"] = dim;
    // Sizes are exact for `dim`; a codec that cannot take `dim` (q8_0 needs multiples of
    // 32) is still listed, with None sizes and the reason.
    try {
      const Codec c = Codec::make(s, dim, 0);
      row["record_bytes"] = c.record_bytes();
      row["bits_per_coord"] = c.bits_per_coord();
      row["error"] = nb::none();
    } catch (const Error& e) {
      row["record_bytes"] = nb::none();
      row["bits_per_coord"] = nb::none();
      row["error"] = std::string(e.what());
    }
    rows.append(row);
  }
  return rows;
}

// Batch size of `a` whose last axis must be `width`: the product of the other axes.
template <class Array>
size_t batch_of(const Array& a, size_t width, const char* what) {
  if (a.ndim() == 0 || a.shape(a.ndim() - 1) != width)
    throw nb::value_error((std::string(what) + " must have shape (..., " + std::to_string(width) + "), got " +
                           shape_str(a)).c_str());
  size_t n = 1;
  for (size_t i = 0; i + 1 < a.ndim(); ++i) n *= a.shape(i);
  return n;
}

// Shape of the result: the input's leading axes, then `width`.
template <class Array>
std::vector<size_t> result_shape(const Array& a, size_t width) {
  std::vector<size_t> shape(a.ndim());
  for (size_t i = 0; i + 1 < a.ndim(); ++i) shape[i] = a.shape(i);
  shape.back() = width;
  return shape;
}

nb::ndarray<nb::numpy, uint8_t> encode(const Codec& c, FloatIn x) {
  const size_t dim = c.dim(), rb = c.record_bytes();
  const size_t n = batch_of(x, dim, "x");
  const float* in = x.data();
  // Checked up front so that the error names the vector and nothing half-done is returned.
  for (size_t i = 0; i < n * dim; ++i)
    if (!std::isfinite(in[i]))
      throw Error("Codec.encode: vector " + std::to_string(i / dim) + " coordinate " + std::to_string(i % dim) +
                  " is NaN or Inf");
  auto* out = new uint8_t[n * rb];
  {
    nb::gil_scoped_release release;  // Codec is immutable: other Python threads may run
    for (size_t i = 0; i < n; ++i) c.encode(in + i * dim, out + i * rb);
  }
  return owned(out, result_shape(x, rb));
}

nb::ndarray<nb::numpy, float> decode(const Codec& c, ByteIn records) {
  const size_t dim = c.dim(), rb = c.record_bytes();
  const size_t n = batch_of(records, rb, "records");
  const uint8_t* in = records.data();
  auto* out = new float[n * dim];
  {
    nb::gil_scoped_release release;
    for (size_t i = 0; i < n; ++i) c.decode(in + i * rb, out + i * dim);
  }
  return owned(out, result_shape(records, dim));
}

}  // namespace

void bind_codec(nb::module_& m) {
  m.def("codecs", &codec_table_dicts, nb::arg("dim") = 128,
        "The codec table as a list of dicts: name, summary, quant, rotation, dim, and the exact "
        "record_bytes and bits_per_coord at head dimension `dim` (None, with the reason in "
        "'error', for a codec that cannot take `dim`).");

  nb::class_<Codec>(m, "Codec",
                    "A codec of the table instantiated for vectors of `dim` floats; `seed` picks the "
                    "random rotation (same seed, same codec, in every process).")
      .def("__init__",
           [](Codec* self, const std::string& name, int dim, uint64_t seed) {
             new (self) Codec(Codec::make(name, dim, seed));
           },
           nb::arg("name"), nb::arg("dim"), nb::arg("seed") = 0,
           "Raises turboquant.Error for an unknown name or a dimension the codec cannot take.")
      .def_prop_ro("name", [](const Codec& c) { return std::string(c.name()); })
      .def_prop_ro("dim", &Codec::dim)
      .def_prop_ro("seed", &Codec::seed)
      .def_prop_ro("record_bytes", &Codec::record_bytes, "Bytes per encoded vector, everything included.")
      .def_prop_ro("bits_per_coord", &Codec::bits_per_coord, "8 * record_bytes / dim.")
      .def("encode", &encode, nb::arg("x"),
           "Encode float32 vectors of shape (..., dim) to uint8 records of shape (..., record_bytes). "
           "Raises turboquant.Error on NaN/Inf.")
      .def("decode", &decode, nb::arg("records"),
           "Decode uint8 records of shape (..., record_bytes) to float32 vectors of shape (..., dim).")
      .def("__repr__", [](const Codec& c) {
        return "Codec('" + std::string(c.name()) + "', dim=" + std::to_string(c.dim()) +
               ", seed=" + std::to_string(c.seed()) + ")";
      });
}

}  // namespace tq::py
