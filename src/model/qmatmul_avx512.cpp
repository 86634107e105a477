// AVX-512 VNNI row kernels: qmatmul_simd.h with vpdpbusd on 256-bit registers (AVX512VL),
// one instruction per 32 byte products where AVX2 needs two plus a 16-bit intermediate.
// Kept at 256-bit registers (no 512-bit variant written or measured).
#include "qmatmul_kernels.h"

#if defined(__AVX512VNNI__) && defined(__AVX512VL__) && defined(__AVX512BW__) && defined(__FMA__) && defined(__F16C__)
#include "qmatmul_simd.h"
#include "qmatmul_simd_to_f32.h"

namespace tq::model::qk {
const DotTable* avx512_dots() { return &simd_dots<true>(); }
const ToF32Table* avx512_to_f32() { return &simd_to_f32(); }
}  // namespace tq::model::qk
#else
namespace tq::model::qk {
const DotTable* avx512_dots() { return nullptr; }
const ToF32Table* avx512_to_f32() { return nullptr; }
}  // namespace tq::model::qk
#endif
