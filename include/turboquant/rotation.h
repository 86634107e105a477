#pragma once
// Rotations: seeded random orthogonal maps applied before scalar quantization.
// forward maps R^dim -> R^code_dim (code_dim > dim only for RHT padding) and is an
// isometry; inverse is its transpose. Every rotation is deterministic for a given
// (kind, dim, seed, options) and can be serialized with its parameters.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

namespace tq {

enum class RotationKind : uint8_t {
  none = 0,        // identity
  dense = 1,       // Haar-random orthogonal matrix (TurboQuant)
  rht = 2,         // random signs + normalized Walsh–Hadamard (TurboQuant+)
  rotor3 = 3,      // Cl(3,0) rotor sandwich on 3-dim chunks (RotorQuant)
  quat4 = 4,       // full SO(4) quaternion pair q_L v conj(q_R) on 4-dim chunks (IsoQuant)
  quat4_left = 5,  // one-sided quaternion q v on 4-dim chunks (IsoQuant "fast")
  givens2 = 6,     // 2-D rotation per coordinate pair (PlanarQuant)
};

std::string_view rotation_name(RotationKind kind);
RotationKind rotation_from_name(std::string_view name);  // throws tq::Error

struct RhtOptions {
  bool permute = false;  // random permutation before the first sign round
  int rounds = 1;        // sign + Hadamard rounds (1 or 2)
};

class Rotation {
 public:
  virtual ~Rotation() = default;
  RotationKind kind() const { return kind_; }
  int dim() const { return dim_; }
  int code_dim() const { return code_dim_; }
  uint64_t seed() const { return seed_; }

  virtual void forward(const float* x, float* y) const = 0;  // x[dim] -> y[code_dim]
  virtual void inverse(const float* y, float* x) const = 0;  // y[code_dim] -> x[dim]
  // Number of real parameters that define the map (what a kernel must hold).
  virtual size_t param_count() const = 0;

  // Self-contained bytes: kind, dims, seed, options and the parameters themselves.
  std::vector<uint8_t> serialize() const;
  static std::unique_ptr<Rotation> deserialize(std::span<const uint8_t> bytes);  // throws tq::Error

  static std::unique_ptr<Rotation> make(RotationKind kind, int dim, uint64_t seed,
                                        const RhtOptions& rht = {});  // throws tq::Error

  // The parameters in a fixed order, as serialized (also what a GPU kernel uploads):
  // dense: the code_dim x dim matrix, row-major; rht: rht_options().rounds sign vectors of
  // code_dim (±1), then the permutation as floats when rht_options().permute; chunk
  // rotations: their rotor, quaternion or angle parameters.
  virtual std::vector<float> params() const = 0;
  // rht's options (how to read its params()); the defaults for every other kind.
  virtual RhtOptions rht_options() const { return {}; }

 protected:
  Rotation(RotationKind kind, int dim, int code_dim, uint64_t seed)
      : kind_(kind), dim_(dim), code_dim_(code_dim), seed_(seed) {}
  virtual uint32_t option_bits() const { return 0; }
  virtual void load_params(std::span<const float> p) = 0;  // throws tq::Error on size mismatch

 private:
  RotationKind kind_;
  int dim_;
  int code_dim_;
  uint64_t seed_;
};

// Cl(3,0) geometric algebra, just enough for rotor sandwiches (exposed for tests).
struct Multivector3 {
  // Components by blade bitmask: 0=1, 1=e1, 2=e2, 3=e12, 4=e3, 5=e13, 6=e23, 7=e123.
  float blade[8] = {};
};
Multivector3 geometric_product(const Multivector3& a, const Multivector3& b);
Multivector3 reverse(const Multivector3& a);

}  // namespace tq
