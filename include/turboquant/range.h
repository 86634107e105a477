#pragma once
// Range events: what the encoders did with values that an fp16 record field cannot hold
// (docs/FORMATS.md, "Range"). A norm or scale beyond ±65504 is stored saturated and the
// vector counted; a NaN or Inf input is refused with a tq::Error and counted. The counts
// are process-wide and thread-safe, so a tool can report them once at the end of a run.
#include <cstdint>
#include <string>
#include <string_view>

namespace tq {

struct RangeEvents {
  uint64_t saturated = 0;  // vectors whose record had an fp16 field clamped to ±65504
  uint64_t nonfinite = 0;  // vectors refused because they held NaN or Inf
};

RangeEvents range_events();  // since the process started or the last reset
void reset_range_events();

// A warning for the end of a run ("" when nothing was saturated): how many vectors.
std::string range_warning(const RangeEvents& events);

// The error of a refused key or value: "<where>: layer L, KV head H, <position>: K
// coordinate i is NaN (...)". The CPU and CUDA caches throw it in the same words.
std::string nonfinite_kv_message(std::string_view where, int layer, int kv_head, std::string_view position,
                                 bool value, int coordinate, float x);

namespace detail {
// Called by the encoders (reference, SIMD, the CUDA cache's host side).
void count_saturated(uint64_t vectors);
void count_nonfinite(uint64_t vectors);
}  // namespace detail

}  // namespace tq
