// Group-asymmetric scalar quantization (TurboQuant+ values): each group of g
// coordinates is mapped onto 2^b evenly spaced levels between its min and max.
// Codes are computed from the fp16-rounded (and saturated) min and step, so decode is
// exact to them.
#include <algorithm>
#include <cmath>

#include "half_fields.h"
#include "turboquant/packing.h"
#include "turboquant/quantizers.h"

namespace tq {

GroupQuantizer::GroupQuantizer(int dim, int bits, int group)
    : Quantizer(dim), bits_(bits), group_(group) {}

void GroupQuantizer::encode(const float* y, uint8_t* record) const {
  const int top = (1 << bits_) - 1;
  std::vector<uint8_t> codes(group_);
  detail::HalfFields fields;
  for (int g = 0; g < dim_ / group_; ++g) {
    const float* v = y + g * group_;
    uint8_t* out = record + g * group_bytes();
    const auto [lo, hi] = std::minmax_element(v, v + group_);
    const float mn = fields.round(*lo);
    const float step = fields.round((*hi - mn) / top);
    for (int i = 0; i < group_; ++i) {
      const float c = step > 0 ? std::nearbyint((v[i] - mn) / step) : 0.f;
      codes[i] = static_cast<uint8_t>(std::clamp(c, 0.f, static_cast<float>(top)));
    }
    store_half(out, mn);
    store_half(out + 2, step);
    pack_bits(codes.data(), group_, bits_, out + 4);
  }
}

void GroupQuantizer::decode(const uint8_t* record, float* y) const {
  for (int g = 0; g < dim_ / group_; ++g) {
    const uint8_t* in = record + g * group_bytes();
    const float mn = load_half(in), step = load_half(in + 2);
    for (int i = 0; i < group_; ++i) y[g * group_ + i] = mn + step * read_code(in + 4, i, bits_);
  }
}

}  // namespace tq
