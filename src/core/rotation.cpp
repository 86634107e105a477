// Rotation factory, names, serialization and the shared block-diagonal machinery.
#include <bit>
#include <cstring>
#include <string>

#include "rotations_impl.h"
#include "turboquant/error.h"

namespace tq {

static_assert(std::endian::native == std::endian::little, "serialization assumes little-endian");

namespace {

struct NamedKind {
  RotationKind kind;
  std::string_view name;
};
constexpr NamedKind kKinds[] = {
    {RotationKind::none, "none"},       {RotationKind::dense, "dense"},
    {RotationKind::rht, "rht"},         {RotationKind::rotor3, "rotor3"},
    {RotationKind::quat4, "quat4"},     {RotationKind::quat4_left, "quat4_left"},
    {RotationKind::givens2, "givens2"},
};

constexpr char kMagic[4] = {'T', 'Q', 'R', 'T'};
constexpr uint32_t kFormatVersion = 1;

struct Header {  // serialized byte layout, 32 bytes
  char magic[4];
  uint32_t version;
  uint8_t kind;
  uint8_t reserved[3];
  uint32_t dim;
  uint32_t code_dim;
  uint32_t option_bits;
  uint64_t seed;
};
static_assert(sizeof(Header) == 32);

constexpr int kMaxDim = 16384;

}  // namespace

std::string_view rotation_name(RotationKind kind) {
  for (const auto& k : kKinds)
    if (k.kind == kind) return k.name;
  return "?";
}

RotationKind rotation_from_name(std::string_view name) {
  for (const auto& k : kKinds)
    if (k.name == name) return k.kind;
  throw Error("unknown rotation '" + std::string(name) +
              "' (expected none, dense, rht, rotor3, quat4, quat4_left or givens2)");
}

std::unique_ptr<Rotation> Rotation::make(RotationKind kind, int dim, uint64_t seed,
                                         const RhtOptions& rht) {
  const std::string what = "rotation " + std::string(rotation_name(kind)) + ": ";
  if (dim < 2 || dim > kMaxDim)
    throw Error(what + "dimension " + std::to_string(dim) + " out of range [2, " +
                std::to_string(kMaxDim) + "]");
  switch (kind) {
    case RotationKind::none:
      return std::make_unique<NoRotation>(dim, seed);
    case RotationKind::dense:
      return std::make_unique<DenseRotation>(dim, seed);
    case RotationKind::rht:
      if (rht.rounds < 1 || rht.rounds > 2)
        throw Error(what + "rounds must be 1 or 2, got " + std::to_string(rht.rounds));
      return std::make_unique<RhtRotation>(dim, seed, rht);
    case RotationKind::rotor3:
      if (dim < 3) throw Error(what + "needs dimension >= 3, got " + std::to_string(dim));
      return std::make_unique<Rotor3Rotation>(dim, seed);
    case RotationKind::quat4:
    case RotationKind::quat4_left:
      if (dim % 4 != 0)
        throw Error(what + "needs a dimension divisible by 4, got " + std::to_string(dim));
      return std::make_unique<Quat4Rotation>(dim, seed, kind == RotationKind::quat4_left);
    case RotationKind::givens2:
      if (dim % 2 != 0)
        throw Error(what + "needs an even dimension, got " + std::to_string(dim));
      return std::make_unique<Givens2Rotation>(dim, seed);
  }
  throw Error("unknown rotation kind " + std::to_string(static_cast<int>(kind)));
}

std::vector<uint8_t> Rotation::serialize() const {
  Header h{};
  std::memcpy(h.magic, kMagic, 4);
  h.version = kFormatVersion;
  h.kind = static_cast<uint8_t>(kind_);
  h.dim = static_cast<uint32_t>(dim_);
  h.code_dim = static_cast<uint32_t>(code_dim_);
  h.option_bits = option_bits();
  h.seed = seed_;
  const std::vector<float> p = params();
  const uint32_t n = static_cast<uint32_t>(p.size());
  std::vector<uint8_t> out(sizeof(Header) + 4 + 4 * p.size());
  std::memcpy(out.data(), &h, sizeof h);
  std::memcpy(out.data() + sizeof h, &n, 4);
  if (n) std::memcpy(out.data() + sizeof h + 4, p.data(), 4 * p.size());
  return out;
}

std::unique_ptr<Rotation> Rotation::deserialize(std::span<const uint8_t> bytes) {
  if (bytes.size() < sizeof(Header) + 4)
    throw Error("rotation data truncated: " + std::to_string(bytes.size()) + " bytes");
  Header h;
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, kMagic, 4) != 0) throw Error("rotation data: bad magic");
  if (h.version != kFormatVersion)
    throw Error("rotation data: unsupported version " + std::to_string(h.version));
  if (h.kind > static_cast<uint8_t>(RotationKind::givens2))
    throw Error("rotation data: unknown kind " + std::to_string(h.kind));
  if (h.dim < 2 || h.dim > static_cast<uint32_t>(kMaxDim))
    throw Error("rotation data: dimension " + std::to_string(h.dim) + " out of range");
  uint32_t n;
  std::memcpy(&n, bytes.data() + sizeof h, 4);
  if (bytes.size() != sizeof(Header) + 4 + 4ull * n)
    throw Error("rotation data: size " + std::to_string(bytes.size()) + " does not match " +
                std::to_string(n) + " parameters");
  const auto kind = static_cast<RotationKind>(h.kind);
  const int dim = static_cast<int>(h.dim);
  std::unique_ptr<Rotation> r;
  switch (kind) {
    case RotationKind::none: r = std::make_unique<NoRotation>(dim, h.seed); break;
    case RotationKind::dense: r = std::make_unique<DenseRotation>(dim, h.seed, false); break;
    case RotationKind::rht: {
      RhtOptions opt;
      opt.permute = (h.option_bits & 1u) != 0;
      opt.rounds = static_cast<int>((h.option_bits >> 1) & 3u);
      if (opt.rounds < 1 || opt.rounds > 2) throw Error("rotation data: bad rht rounds");
      r = std::make_unique<RhtRotation>(dim, h.seed, opt, false);
      break;
    }
    case RotationKind::rotor3:
      if (dim < 3) throw Error("rotation data: rotor3 needs dimension >= 3");
      r = std::make_unique<Rotor3Rotation>(dim, h.seed, false);
      break;
    case RotationKind::quat4:
    case RotationKind::quat4_left:
      if (dim % 4) throw Error("rotation data: quat4 needs a dimension divisible by 4");
      r = std::make_unique<Quat4Rotation>(dim, h.seed, kind == RotationKind::quat4_left, false);
      break;
    case RotationKind::givens2:
      if (dim % 2) throw Error("rotation data: givens2 needs an even dimension");
      r = std::make_unique<Givens2Rotation>(dim, h.seed, false);
      break;
  }
  if (static_cast<uint32_t>(r->code_dim()) != h.code_dim)
    throw Error("rotation data: code dimension mismatch");
  std::vector<float> p(n);
  if (n) std::memcpy(p.data(), bytes.data() + sizeof h + 4, 4ull * n);
  r->load_params(p);
  return r;
}

// ---- none -----------------------------------------------------------------

void NoRotation::forward(const float* x, float* y) const {
  std::memcpy(y, x, sizeof(float) * dim());
}
void NoRotation::inverse(const float* y, float* x) const {
  std::memcpy(x, y, sizeof(float) * dim());
}
void NoRotation::load_params(std::span<const float> p) {
  if (!p.empty()) throw Error("rotation data: rotation none takes no parameters");
}

// ---- block-diagonal ---------------------------------------------------------

void BlockRotation::forward(const float* x, float* y) const {
  for (const Block& b : blocks_) {
    for (int i = 0; i < b.size; ++i) {
      float s = 0.f;
      for (int j = 0; j < b.size; ++j) s += b.m[i * b.size + j] * x[b.offset + j];
      y[b.offset + i] = s;
    }
  }
}

void BlockRotation::inverse(const float* y, float* x) const {
  for (const Block& b : blocks_) {
    for (int j = 0; j < b.size; ++j) {
      float s = 0.f;
      for (int i = 0; i < b.size; ++i) s += b.m[i * b.size + j] * y[b.offset + i];
      x[b.offset + j] = s;
    }
  }
}

// ---- Cl(3,0) ----------------------------------------------------------------

// Sign of reordering the product of two basis blades (bitmasks) into canonical order;
// every e_i squares to +1 in Cl(3,0), so no metric factor.
static float blade_sign(unsigned a, unsigned b) {
  int swaps = 0;
  for (unsigned x = a >> 1; x; x >>= 1) swaps += std::popcount(x & b);
  return (swaps & 1) ? -1.f : 1.f;
}

Multivector3 geometric_product(const Multivector3& a, const Multivector3& b) {
  Multivector3 r;
  for (unsigned i = 0; i < 8; ++i)
    for (unsigned j = 0; j < 8; ++j) r.blade[i ^ j] += blade_sign(i, j) * a.blade[i] * b.blade[j];
  return r;
}

Multivector3 reverse(const Multivector3& a) {
  Multivector3 r = a;
  // Reversion flips grades 2 and 3.
  for (unsigned i = 0; i < 8; ++i)
    if (std::popcount(i) >= 2) r.blade[i] = -r.blade[i];
  return r;
}

}  // namespace tq
