#pragma once
// The one place where C++ meets the C API's error convention: guarded() runs a call's body,
// turns every exception into a tq_status and keeps the message for tq_last_error(), so no
// exception ever crosses the extern "C" boundary (that would be undefined behaviour).
#include <string>

#include "turboquant/c_api.h"

namespace tq::capi {

// Thrown by the C layer's own argument checks (NULL pointers, negative counts); mapped to
// TQ_ERROR_ARGUMENT, while tq::Error from the library maps to TQ_ERROR_LIBRARY.
struct ArgumentError {
  std::string what;
};

void set_error(const char* call, const std::string& message);
const char* last_error();

// Throws ArgumentError "<what> is NULL" when p is null.
inline void require(const void* p, const char* what) {
  if (!p) throw ArgumentError{std::string(what) + " is NULL"};
}

tq_status status_of_current_exception(const char* call);  // call inside a catch (...) only

template <class F>
tq_status guarded(const char* call, F&& body) {
  try {
    body();
    return TQ_OK;
  } catch (...) {
    return status_of_current_exception(call);
  }
}

}  // namespace tq::capi
