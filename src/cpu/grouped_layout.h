#pragma once
// Calibrated grouped records (GroupedMseQuantizer, docs/FORMATS.md) prepared for the
// attention kernels. Per run: where its norm and codes are, and its Lloyd–Max levels
// already multiplied by √size when the norm is a log byte, so every norm becomes one load
// (fp16, or a 256-entry table instead of exp2) and a coordinate is norm · levels[code].
// Fast decoders may read up to 16 bytes past a run's codes: the paged pool has slack.
#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "turboquant/half.h"
#include "turboquant/quantizers.h"

namespace tq::detail {

struct GroupedRun {
  int begin, size, bits;  // bits 0: a dropped group, decodes to zeros
  bool log_norm;
  size_t norm_offset, code_offset;
  std::vector<float> levels;  // 2^bits, scaled by √size for log-byte norms
};

// Byte-shuffle controls that unpack `lanes` b-bit codes (b <= 8) of a chunk into 32-bit
// lanes: lane l's code starts at bit b*l, so it spans bytes s = b*l/8 and s + 1 of the
// chunk, and shuf[4l..4l+3] = {s, s+1, none, none} (0x80: zero; a byte past the
// chunk's 16 is never needed), then a right shift by shift[l] = b*l % 8 and a mask.
void code_shuffle(int bits, int lanes, uint8_t* shuf, int32_t* shift);

class GroupedLayout {
 public:
  explicit GroupedLayout(const GroupedMseQuantizer& q);
  int dim() const { return dim_; }
  const std::vector<GroupedRun>& runs() const { return runs_; }
  float norm(const GroupedRun& r, const uint8_t* rec) const {
    return r.log_norm ? log_factor_[rec[r.norm_offset]] : load_half(rec + r.norm_offset);
  }
  const float* log_factor() const { return log_factor_.data(); }  // code -> 2^((code − 128)/16), 0 -> 0
  // y[dim] = the record decoded: the quantizer's decode, up to float rounding.
  void decode(const uint8_t* rec, float* y) const;

 private:
  int dim_;
  std::vector<GroupedRun> runs_;
  std::array<float, 256> log_factor_;
};

}  // namespace tq::detail
