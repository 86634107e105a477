#include "guard.h"

#include <exception>
#include <new>
#include <stdexcept>

#include "turboquant/error.h"

namespace tq::capi {

namespace {
// Per thread, so concurrent callers never read each other's messages.
thread_local std::string t_last_error;
}  // namespace

void set_error(const char* call, const std::string& message) {
  try {
    t_last_error = std::string(call) + ": " + message;
  } catch (...) {
    // Out of memory while formatting the message: keep the previous text rather than throw.
  }
}

const char* last_error() { return t_last_error.c_str(); }

tq_status status_of_current_exception(const char* call) {
  try {
    throw;
  } catch (const ArgumentError& e) {
    set_error(call, e.what);
    return TQ_ERROR_ARGUMENT;
  } catch (const tq::Error& e) {
    set_error(call, e.what());
    return TQ_ERROR_LIBRARY;
  } catch (const std::bad_alloc&) {
    set_error(call, "out of memory");
    return TQ_ERROR_MEMORY;
  } catch (const std::length_error& e) {
    set_error(call, std::string("allocation too large: ") + e.what());
    return TQ_ERROR_MEMORY;
  } catch (const std::exception& e) {
    set_error(call, std::string("internal error: ") + e.what());
    return TQ_ERROR_INTERNAL;
  } catch (...) {
    set_error(call, "internal error: unknown exception");
    return TQ_ERROR_INTERNAL;
  }
}

}  // namespace tq::capi

extern "C" {

const char* tq_last_error(void) { return tq::capi::last_error(); }

const char* tq_status_name(tq_status status) {
  switch (status) {
    case TQ_OK: return "TQ_OK";
    case TQ_ERROR_ARGUMENT: return "TQ_ERROR_ARGUMENT";
    case TQ_ERROR_LIBRARY: return "TQ_ERROR_LIBRARY";
    case TQ_ERROR_MEMORY: return "TQ_ERROR_MEMORY";
    case TQ_ERROR_INTERNAL: return "TQ_ERROR_INTERNAL";
  }
  return "unknown tq_status";
}

int tq_api_version(void) { return TQ_API_VERSION; }

// TQ_VERSION_STRING comes from project(VERSION) in the top-level CMakeLists.txt.
const char* tq_version(void) { return TQ_VERSION_STRING; }

}  // extern "C"
