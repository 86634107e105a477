// The quantizer-kind table (quant_traits.h): one row per QuantKind, in enum order.
#include "turboquant/quant_traits.h"

#include <string>

#include "turboquant/blocks.h"
#include "turboquant/error.h"
#include "turboquant/quantizers.h"
#include "turboquant/rng.h"

namespace tq {

namespace {

using blocks::BlockQ4_0;
using blocks::BlockQ8_0;

// Sub-stream of the codec seed for prod's QJL matrix (the rotation takes stream 1, codec.cpp).
constexpr uint64_t kQjlStream = 2;

void need_multiple(const CodecSpec& s, int dim, int m) {
  if (dim % m != 0)
    throw Error("codec " + std::string(s.name) + ": needs a head dimension divisible by " + std::to_string(m) +
                ", got " + std::to_string(dim));
}

std::shared_ptr<const Quantizer> make_f16(const CodecSpec&, int d, uint64_t) {
  return std::make_shared<F16Quantizer>(d);
}
std::shared_ptr<const Quantizer> make_q8_0(const CodecSpec& s, int d, uint64_t) {
  need_multiple(s, d, 32);
  return std::make_shared<Q8_0Quantizer>(d);
}
std::shared_ptr<const Quantizer> make_q4_0(const CodecSpec& s, int d, uint64_t) {
  need_multiple(s, d, 32);
  return std::make_shared<Q4_0Quantizer>(d);
}
std::shared_ptr<const Quantizer> make_mse(const CodecSpec& s, int d, uint64_t) {
  const bool fractional = s.bits_lo != s.bits;
  if (fractional) need_multiple(s, d, 16);  // both halves pack to whole bytes
  return std::make_shared<MseQuantizer>(d, s.bits, s.bits_lo, fractional ? d / 2 : d, s.corrected_norm);
}
std::shared_ptr<const Quantizer> make_prod(const CodecSpec& s, int d, uint64_t seed) {
  return std::make_shared<ProdQuantizer>(d, s.bits, derive_seed(seed, kQjlStream));
}
std::shared_ptr<const Quantizer> make_group(const CodecSpec& s, int d, uint64_t) {
  need_multiple(s, d, s.group);
  return std::make_shared<GroupQuantizer>(d, s.bits, s.group);
}
std::shared_ptr<const Quantizer> make_fp8(const CodecSpec&, int d, uint64_t) {
  return std::make_shared<Fp8Quantizer>(d);
}

using Q = QuantKind;

// kind, name, block coords, block bytes, factory, calibrated, code width,
//   CPU lane encoder, its widest bits, CPU SIMD scorer,
//   CUDA kernels, their widest bits, CUDA behind a rotation, CUDA tensor-core decode
constexpr QuantTraits kRows[] = {
    {Q::f16, "f16", 1, 2, make_f16, false, false, true, 0, true, true, 0, true, true},
    {Q::q8_0, "q8_0", 32, sizeof(BlockQ8_0), make_q8_0, false, false, true, 0, true, true, 0, true, true},
    {Q::q4_0, "q4_0", 32, sizeof(BlockQ4_0), make_q4_0, false, false, true, 0, true, true, 0, true, true},
    {Q::mse, "mse", 0, 0, make_mse, false, true, true, 4, true, true, 4, true, true},
    {Q::prod, "prod", 0, 0, make_prod, false, true, true, 5, false, false, 0, false, false},
    {Q::group, "group", 0, 0, make_group, false, true, true, 4, true, true, 4, true, false},
    {Q::grouped, "grouped", 0, 0, nullptr, true, false, false, 0, true, true, 0, true, true},
    {Q::fp8, "fp8", 0, 0, make_fp8, false, false, true, 0, false, true, 0, false, true},
};

// Row i is QuantKind i: quant_traits() indexes. A kind past the last row throws there, so
// every codec row of a new kind fails its tests until the kind has a row.
constexpr bool rows_in_enum_order() {
  for (size_t i = 0; i < std::size(kRows); ++i)
    if (static_cast<size_t>(kRows[i].kind) != i) return false;
  return true;
}
static_assert(rows_in_enum_order(), "kRows must list every QuantKind in enum order");
static_assert(std::size(kRows) == static_cast<size_t>(QuantKind::fp8) + 1, "fp8 is the last kind with a row");

}  // namespace

const QuantTraits& quant_traits(QuantKind kind) {
  const auto i = static_cast<size_t>(kind);
  if (i >= std::size(kRows)) throw Error("unknown quantizer kind " + std::to_string(i));
  return kRows[i];
}

}  // namespace tq
