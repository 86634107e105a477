// AVX2 + FMA + F16C row kernels (qmatmul_simd.h without VNNI). Compiled with those flags
// whatever the build's -march, and only called when the CPU reports them.
#include "qmatmul_kernels.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include "qmatmul_simd.h"
#include "qmatmul_simd_to_f32.h"

namespace tq::model::qk {
const DotTable* avx2_dots() { return &simd_dots<false>(); }
const ToF32Table* avx2_to_f32() { return &simd_to_f32(); }
}  // namespace tq::model::qk
#else
namespace tq::model::qk {
const DotTable* avx2_dots() { return nullptr; }
const ToF32Table* avx2_to_f32() { return nullptr; }
}  // namespace tq::model::qk
#endif
