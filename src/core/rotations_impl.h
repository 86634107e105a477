#pragma once
// Concrete rotation classes (internal to the core library; built via Rotation::make).
#include <vector>

#include "turboquant/rotation.h"

namespace tq {

// RotationKind::none: the code space is the input space.
class NoRotation final : public Rotation {
 public:
  NoRotation(int dim, uint64_t seed) : Rotation(RotationKind::none, dim, dim, seed) {}
  void forward(const float* x, float* y) const override;
  void inverse(const float* y, float* x) const override;
  size_t param_count() const override { return 0; }
  std::vector<float> params() const override { return {}; }

 protected:
  void load_params(std::span<const float> p) override;
};

// y = Q x with Q Haar-distributed: QR of a Gaussian matrix, columns sign-fixed so that
// diag(R) > 0 (without the fix Q is not Haar).
class DenseRotation final : public Rotation {
 public:
  DenseRotation(int dim, uint64_t seed, bool generate = true);
  void forward(const float* x, float* y) const override;
  void inverse(const float* y, float* x) const override;
  size_t param_count() const override { return q_.size(); }
  std::vector<float> params() const override { return q_; }
  const std::vector<float>& matrix() const { return q_; }  // row-major dim x dim

 protected:
  void load_params(std::span<const float> p) override;

 private:
  std::vector<float> q_;
};

// y = H D_r ... H D_1 P x / normalization, x zero-padded to the next power of two.
class RhtRotation final : public Rotation {
 public:
  RhtRotation(int dim, uint64_t seed, const RhtOptions& opt, bool generate = true);
  void forward(const float* x, float* y) const override;
  void inverse(const float* y, float* x) const override;
  size_t param_count() const override { return params().size(); }
  std::vector<float> params() const override;
  const RhtOptions& options() const { return opt_; }
  RhtOptions rht_options() const override { return opt_; }
  const std::vector<float>& signs(int round) const { return signs_[round]; }
  const std::vector<int>& permutation() const { return perm_; }

 protected:
  uint32_t option_bits() const override;
  void load_params(std::span<const float> p) override;

 private:
  RhtOptions opt_;
  std::vector<std::vector<float>> signs_;  // rounds x code_dim, each ±1
  std::vector<int> perm_;                  // code_dim, identity when !permute
};

// Block-diagonal rotations hold one small orthogonal matrix per chunk: the rotor,
// quaternion or angle parameters are what define them (and are what param_count
// counts); the matrices are derived once so forward/inverse are plain products.
class BlockRotation : public Rotation {
 public:
  void forward(const float* x, float* y) const override;
  void inverse(const float* y, float* x) const override;
  struct Block {
    int offset;
    int size;  // 1, 2, 3 or 4
    float m[16];  // row-major size x size
  };
  const std::vector<Block>& blocks() const { return blocks_; }

 protected:
  using Rotation::Rotation;
  std::vector<Block> blocks_;
};

class Rotor3Rotation final : public BlockRotation {
 public:
  Rotor3Rotation(int dim, uint64_t seed, bool generate = true);
  size_t param_count() const override { return params_.size(); }
  std::vector<float> params() const override { return params_; }
  // The rotor of chunk i as a multivector (scalar + e12 + e13 + e23).
  Multivector3 rotor(int chunk) const;

 protected:
  void load_params(std::span<const float> p) override;

 private:
  void build_blocks();
  std::vector<float> params_;  // per 3-chunk: 4 rotor components; leftover pair: 1 angle
};

class Quat4Rotation final : public BlockRotation {
 public:
  Quat4Rotation(int dim, uint64_t seed, bool one_sided, bool generate = true);
  size_t param_count() const override { return params_.size(); }
  std::vector<float> params() const override { return params_; }

 protected:
  void load_params(std::span<const float> p) override;

 private:
  void build_blocks();
  bool one_sided_;
  std::vector<float> params_;  // per chunk: q_L (4) [+ q_R (4)]
};

class Givens2Rotation final : public BlockRotation {
 public:
  Givens2Rotation(int dim, uint64_t seed, bool generate = true);
  size_t param_count() const override { return params_.size(); }
  std::vector<float> params() const override { return params_; }

 protected:
  void load_params(std::span<const float> p) override;

 private:
  void build_blocks();
  std::vector<float> params_;  // one angle per pair
};

}  // namespace tq
