#include "grouped_layout.h"

#include <cmath>
#include <cstring>

namespace tq::detail {

void code_shuffle(int bits, int lanes, uint8_t* shuf, int32_t* shift) {
  for (int l = 0; l < lanes; ++l) {
    const int s = bits * l / 8;
    shuf[4 * l] = static_cast<uint8_t>(s);
    shuf[4 * l + 1] = s + 1 < 16 ? static_cast<uint8_t>(s + 1) : 0x80;
    shuf[4 * l + 2] = shuf[4 * l + 3] = 0x80;
    shift[l] = bits * l % 8;
  }
}

GroupedLayout::GroupedLayout(const GroupedMseQuantizer& q) : dim_(q.dim()) {
  for (int c = 0; c < 256; ++c) log_factor_[c] = GroupedMseQuantizer::log_norm_factor(c);
  for (const GroupedMseQuantizer::Run& r : q.runs()) {
    GroupedRun g{r.begin, r.size, r.codebook ? r.bits : 0, r.norm_bytes == 1, r.offset, r.offset + r.norm_bytes, {}};
    if (r.codebook) {
      const float scale = g.log_norm ? std::sqrt(static_cast<float>(r.size)) : 1.f;
      for (float l : r.codebook->levels) g.levels.push_back(scale * l);
    }
    runs_.push_back(std::move(g));
  }
}

void GroupedLayout::decode(const uint8_t* rec, float* y) const {
  for (const GroupedRun& r : runs_) {
    float* out = y + r.begin;
    if (r.bits == 0) {
      std::memset(out, 0, sizeof(float) * r.size);
      continue;
    }
    const float n = norm(r, rec);
    const float* lv = r.levels.data();
    const uint8_t* codes = rec + r.code_offset;
    const int b = r.bits;
    const uint64_t mask = (1u << b) - 1u;
    // 8 codes are b whole bytes: one 64-bit read unpacks them all (the tail's read may
    // run past the codes, into the next run or the pool's slack; those bits are unused).
    for (int i = 0; i < r.size; i += 8, codes += b) {
      uint64_t w;
      std::memcpy(&w, codes, 8);
      const int n_codes = r.size - i < 8 ? r.size - i : 8;
      for (int k = 0; k < n_codes; ++k) out[i + k] = n * lv[(w >> (b * k)) & mask];
    }
  }
}

}  // namespace tq::detail
