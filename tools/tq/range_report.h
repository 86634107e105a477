#pragma once
// The end-of-run line of `tq run` and `tq eval` when keys or values went past fp16's range
// and were stored saturated (docs/FORMATS.md, "Range"): results are then approximate, so
// it must not pass unnoticed.
#include <cstdio>
#include <string>

#include "turboquant/range.h"

namespace tq::cli {

inline void report_range_events(const char* command) {
  const std::string warning = range_warning(range_events());
  if (!warning.empty()) std::fprintf(stderr, "%s: %s\n", command, warning.c_str());
}

}  // namespace tq::cli
