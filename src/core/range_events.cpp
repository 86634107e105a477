// Process-wide range counters (range.h). Relaxed atomics: the counts are totals read at the
// end of a run, nothing is ordered by them.
#include <atomic>
#include <cmath>

#include "turboquant/range.h"

namespace tq {

namespace {
std::atomic<uint64_t> g_saturated{0}, g_nonfinite{0};
}  // namespace

RangeEvents range_events() {
  return {g_saturated.load(std::memory_order_relaxed), g_nonfinite.load(std::memory_order_relaxed)};
}

void reset_range_events() {
  g_saturated.store(0, std::memory_order_relaxed);
  g_nonfinite.store(0, std::memory_order_relaxed);
}

namespace detail {
void count_saturated(uint64_t vectors) {
  if (vectors) g_saturated.fetch_add(vectors, std::memory_order_relaxed);
}
void count_nonfinite(uint64_t vectors) {
  if (vectors) g_nonfinite.fetch_add(vectors, std::memory_order_relaxed);
}
}  // namespace detail

std::string range_warning(const RangeEvents& events) {
  if (events.saturated == 0) return "";
  return "WARNING: " + std::to_string(events.saturated) +
         " key/value vectors had a norm or scale beyond the fp16 range and were stored saturated to "
         "+-65504: their attention is approximate (docs/FORMATS.md, \"Range\")";
}

std::string nonfinite_kv_message(std::string_view where, int layer, int kv_head, std::string_view position,
                                 bool value, int coordinate, float x) {
  const char* what = std::isnan(x) ? "NaN" : x > 0 ? "+Inf" : "-Inf";
  return std::string(where) + ": layer " + std::to_string(layer) + ", KV head " + std::to_string(kv_head) + ", " +
         std::string(position) + ": " + (value ? "V" : "K") + " coordinate " + std::to_string(coordinate) + " is " +
         what + " (non-finite keys and values are refused)";
}

}  // namespace tq
