#pragma once
// RoPE frames of a calibrated preset's keys (docs/EVAL.md, "Calibrated presets").
//
// A key's statistics after RoPE depend on its position, and a codec built for a cache of P
// positions averages them over all P: pairs that turn slowly keep their shape over a few
// hundred positions but are smeared flat over thousands. A frame is a range of `range`
// positions [s, s + range), s = ⌊p / range⌋ · range: a key at position p is stored turned
// back by RoPE's rotation at s, so the codec only ever sees keys turned by fewer than
// `range` positions and is built for that. A query turned back by the same rotation has
// the same product with the stored key (rotations preserve dot products), so attention
// prepares one query state per frame it reads.
#include <vector>

namespace tq {

class RopeFrames {
 public:
  RopeFrames() = default;
  // partner[i]: the coordinate rotated with i (i when unrotated); theta[layer][i]: radians
  // per position of the pair (i, partner[i]). range <= 0: frames off.
  RopeFrames(int range, std::vector<int> partner, std::vector<std::vector<double>> theta);

  bool on() const { return range_ > 0; }
  int range() const { return range_; }
  int frame(int pos) const { return on() ? pos / range_ : 0; }
  int frame_start(int frame) const { return frame * range_; }
  int head_dim() const { return static_cast<int>(partner_.size()); }
  const std::vector<int>& partner() const { return partner_; }

  // The rotation that turns a vector of `layer` back by `start` positions.
  class Turn {
   public:
    void apply(float* x) const;  // x[head_dim], in place
    bool identity() const { return identity_; }
    // cos and sin of the turn of the pair (i, partner[i]), at its first coordinate i <
    // partner[i] (1 and 0 elsewhere): what a backend applies to turn as apply() does.
    const std::vector<float>& cos() const { return cos_; }
    const std::vector<float>& sin() const { return sin_; }

   private:
    friend class RopeFrames;
    const std::vector<int>* partner_ = nullptr;
    std::vector<float> cos_, sin_;  // per first coordinate of a pair
    bool identity_ = true;
  };
  Turn turn_back(int layer, int start) const;

 private:
  int range_ = 0;
  std::vector<int> partner_;
  std::vector<std::vector<double>> theta_;
};

}  // namespace tq
