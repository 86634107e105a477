// turboquant._turboquant: the module, its exception type, and the pieces in
// codec_bindings.cpp and cache_bindings.cpp. The package's __init__.py re-exports it.
#include "bindings.h"
#include "turboquant/error.h"

namespace nb = nanobind;

NB_MODULE(_turboquant, m) {
  m.doc() =
      "KV-cache compression: the codec table, vector encode/decode, and the CPU paged cache "
      "with attention read from the compressed records.";
  // Every library error (unknown codec, bad dimension, pool full, NaN input, bad file) is a
  // turboquant.Error whose message names what was wrong; shape mistakes are ValueError.
  nb::exception<tq::Error>(m, "Error", PyExc_RuntimeError);
  tq::py::bind_codec(m);
  tq::py::bind_profile(m);
  tq::py::bind_cache(m);
#ifdef TQ_PYTHON_CUDA
  tq::py::bind_device(m);
#else
  m.attr("has_cuda") = false;
  m.def("cuda_available", [] { return false; }, "False: this package is built without CUDA (TQ_CUDA=OFF).");
#endif
}
