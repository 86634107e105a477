// RoPE frames (rope_frame.h): the turn of a frame's start, applied to keys before they
// are encoded and to queries before they are prepared.
#include "turboquant/rope_frame.h"

#include <cmath>
#include <string>

#include "turboquant/error.h"

namespace tq {

RopeFrames::RopeFrames(int range, std::vector<int> partner, std::vector<std::vector<double>> theta)
    : range_(range > 0 ? range : 0), partner_(std::move(partner)), theta_(std::move(theta)) {
  const int d = head_dim();
  for (int i = 0; i < d; ++i)
    if (partner_[i] < 0 || partner_[i] >= d || partner_[partner_[i]] != i)
      throw Error("RopeFrames: the RoPE partners are not a pairing (coordinate " + std::to_string(i) + ")");
  for (const auto& t : theta_)
    if (static_cast<int>(t.size()) != d) throw Error("RopeFrames: RoPE angles of the wrong length");
}

RopeFrames::Turn RopeFrames::turn_back(int layer, int start) const {
  Turn t;
  t.partner_ = &partner_;
  const int d = head_dim();
  t.cos_.assign(d, 1.f);
  t.sin_.assign(d, 0.f);
  if (!on() || start == 0) return t;
  const std::vector<double>& theta = theta_.at(static_cast<size_t>(layer));
  for (int i = 0; i < d; ++i) {
    if (partner_[i] <= i) continue;
    // RoPE turns the pair as the complex number x_i + i·x_j by e^{iθp}; back by start:
    // the angle reduced in double, as start·θ reaches 10⁵ radians.
    const double a = std::remainder(-theta[i] * start, 2 * M_PI);
    t.cos_[i] = static_cast<float>(std::cos(a));
    t.sin_[i] = static_cast<float>(std::sin(a));
    t.identity_ = false;
  }
  return t;
}

void RopeFrames::Turn::apply(float* x) const {
  if (identity_) return;
  const std::vector<int>& partner = *partner_;
  const int d = static_cast<int>(partner.size());
  for (int i = 0; i < d; ++i) {
    const int j = partner[i];
    if (j <= i) continue;
    const float a = x[i], b = x[j];
    x[i] = cos_[i] * a - sin_[i] * b;
    x[j] = sin_[i] * a + cos_[i] * b;
  }
}

}  // namespace tq
