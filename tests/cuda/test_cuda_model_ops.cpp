// The device forward pass's small kernels (src/cuda/model_ops.h) and its cuBLAS product
// (model_gemm.h) against the CPU runner's own ops (src/model/ops.h) on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "model_gemm.h"
#include "model_ops.h"
#include "ops.h"
#include "turboquant/half.h"
#include "turboquant/qk_balance.h"
#include "turboquant/rng.h"

namespace tq::cuda {
namespace {

using testing::DeviceBuffer;
namespace ops = model_ops;

std::vector<float> random_vec(size_t n, uint64_t seed, float mean = 0.f, float sd = 1.f) {
  Rng rng(seed);
  std::vector<float> v(n);
  for (float& x : v) x = mean + sd * static_cast<float>(rng.gaussian());
  return v;
}

std::vector<float> from_half(const std::vector<uint16_t>& h) {
  std::vector<float> f(h.size());
  for (size_t i = 0; i < h.size(); ++i) f[i] = half_to_float(h[i]);
  return f;
}

std::vector<uint16_t> to_half(const std::vector<float>& f) {
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) h[i] = float_to_half(f[i]);
  return h;
}

// max |a - b| / max(1, max |b|).
float rel_err(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  float d = 0, m = 1;
  for (size_t i = 0; i < b.size(); ++i) {
    d = std::max(d, std::abs(a[i] - b[i]));
    m = std::max(m, std::abs(b[i]));
  }
  return d / m;
}

void sync() { testing::check(cudaDeviceSynchronize(), "sync"); }

// f16 output: one rounding, 2^-11 relative.
constexpr float kHalfTol = 1e-3f;
constexpr float kF32Tol = 2e-6f;

TEST(CudaModelOps, RmsNormVariants) {
  TQ_REQUIRE_GPU();
  const int rows = 5, width = 1152;
  const auto x = random_vec(rows * width, 1, 0.3f, 2.f), w = random_vec(width, 2, 1.f, 0.1f), o = random_vec(rows * width, 3);
  std::vector<float> ref(x.size());
  model::rms_norm_to(x.data(), ref.data(), rows, width, w.data(), 1e-6f);
  DeviceBuffer<float> dx(x), dw(w), dout(x.size());
  DeviceBuffer<uint16_t> dh(x.size());
  ops::rms_norm_f16(dx.get(), dh.get(), rows, width, dw.get(), 1e-6f, nullptr);
  EXPECT_LT(rel_err(from_half(dh.download()), ref), kHalfTol);

  ops::rms_norm_inplace(dx.get(), rows, width, dw.get(), 1e-6f, nullptr);
  EXPECT_LT(rel_err(dx.download(), ref), kF32Tol);

  // x += norm(o) * w
  dx.upload(x);
  DeviceBuffer<float> dO(o);
  ops::rms_norm_add(dO.get(), dx.get(), rows, width, dw.get(), 1e-6f, nullptr);
  std::vector<float> on(o.size());
  model::rms_norm_to(o.data(), on.data(), rows, width, w.data(), 1e-6f);
  for (size_t i = 0; i < on.size(); ++i) on[i] += x[i];
  EXPECT_LT(rel_err(dx.download(), on), kF32Tol);
}

TEST(CudaModelOps, HeadNormWidths) {
  TQ_REQUIRE_GPU();
  for (int width : {64, 128, 256}) {
    const int rows = 7;
    const auto x = random_vec(rows * width, width, 0.f, 3.f), w = random_vec(width, width + 1, 1.f, 0.1f);
    std::vector<float> ref = x;
    model::rms_norm(ref.data(), rows, width, w.data(), 1e-6f);
    DeviceBuffer<float> dx(x), dw(w);
    ops::rms_norm_inplace(dx.get(), rows, width, dw.get(), 1e-6f, nullptr);
    EXPECT_LT(rel_err(dx.download(), ref), kF32Tol) << "width " << width;
  }
}

TEST(CudaModelOps, EmbedAndBias) {
  TQ_REQUIRE_GPU();
  const int vocab = 50, dim = 96;
  const auto table = random_vec(vocab * dim, 4);
  const std::vector<int32_t> tokens = {3, 49, 0, 3};
  DeviceBuffer<uint16_t> dt(to_half(table));
  DeviceBuffer<int32_t> dtok(tokens);
  DeviceBuffer<float> dx(tokens.size() * dim);
  ops::embed_rows(dt.get(), dim, dtok.get(), 4, 2.5f, dx.get(), nullptr);
  const auto x = dx.download();
  std::vector<float> ref(x.size());
  for (size_t t = 0; t < tokens.size(); ++t)
    for (int i = 0; i < dim; ++i) ref[t * dim + i] = round_to_half(table[tokens[t] * dim + i]) * 2.5f;
  EXPECT_EQ(rel_err(x, ref), 0.f);

  const auto bias = random_vec(dim, 5);
  DeviceBuffer<float> db(bias);
  ops::add_bias(dx.get(), db.get(), 4, dim, nullptr);
  for (size_t i = 0; i < ref.size(); ++i) ref[i] += bias[i % dim];
  EXPECT_LT(rel_err(dx.download(), ref), kF32Tol);
}

// Both pair styles, a partial rope_dim, frequency scaling and divisors, large positions.
TEST(CudaModelOps, RopeMatchesCpuTable) {
  TQ_REQUIRE_GPU();
  const int n = 6, heads = 3, head_dim = 64;
  const std::vector<int32_t> positions = {0, 1, 17, 511, 4095, 32000};
  for (bool neox : {false, true}) {
    for (int rope_dim : {64, 32}) {
      const float base = 10000.f, scale = 0.5f;
      const auto factors = random_vec(rope_dim / 2, 6, 2.f, 0.3f);
      std::vector<double> inv(rope_dim / 2);
      for (int i = 0; i < rope_dim / 2; ++i) inv[i] = scale * std::pow(double(base), -2.0 * i / rope_dim) / factors[i];
      const auto x = random_vec(n * heads * head_dim, 7);
      std::vector<float> ref(x.size());
      for (int t = 0; t < n; ++t) {  // one position per token: a table per row
        const model::RopeTable tab = model::make_rope_table(positions[t], 1, rope_dim, base, scale, factors.data());
        std::copy_n(x.begin() + t * heads * head_dim, heads * head_dim, ref.begin() + t * heads * head_dim);
        model::apply_rope(ref.data() + t * heads * head_dim, 1, heads, head_dim, tab, neox);
      }
      DeviceBuffer<float> dx(x);
      DeviceBuffer<int32_t> dpos(positions);
      DeviceBuffer<double> dinv(inv);
      ops::rope(dx.get(), n, heads, head_dim, rope_dim, dpos.get(), dinv.get(), neox, nullptr);
      // The CPU table rounds cos/sin to float: 1e-6 of the vector's scale.
      EXPECT_LT(rel_err(dx.download(), ref), 1e-5f) << "neox " << neox << " rope_dim " << rope_dim;
    }
  }
}

TEST(CudaModelOps, QkBalanceMatchesHost) {
  TQ_REQUIRE_GPU();
  const int n = 3, heads = 4, kv = 2, hd = 64;
  auto s = random_vec(kv * hd, 8, 1.f, 0.2f);
  for (float& v : s) v = std::abs(v) + 0.1f;
  const QkBalance bal(1, kv, hd, s);
  auto q = random_vec(n * heads * hd, 9), k = random_vec(n * kv * hd, 10);
  DeviceBuffer<float> dq(q), dk(k), ds(s);
  ops::qk_balance(dq.get(), dk.get(), n, heads, kv, hd, ds.get(), nullptr);
  bal.apply(0, n, heads, q.data(), k.data());
  EXPECT_LT(rel_err(dq.download(), q), kF32Tol);
  EXPECT_LT(rel_err(dk.download(), k), kF32Tol);
}

TEST(CudaModelOps, GatedActivations) {
  TQ_REQUIRE_GPU();
  const size_t count = 3000;
  const auto g = random_vec(count, 11, 0.f, 3.f), u = random_vec(count, 12);
  DeviceBuffer<float> dg(g), du(u);
  DeviceBuffer<uint16_t> dout(count);
  for (bool gelu : {false, true}) {
    std::vector<float> ref = g;
    if (gelu) {
      model::geglu(ref.data(), u.data(), count);
    } else {
      model::swiglu(ref.data(), u.data(), count);
    }
    ops::glu_f16(dg.get(), du.get(), dout.get(), count, gelu, nullptr);
    EXPECT_LT(rel_err(from_half(dout.download()), ref), kHalfTol) << (gelu ? "geglu" : "swiglu");
  }
}

TEST(CudaModelOps, Softcap) {
  TQ_REQUIRE_GPU();
  auto x = random_vec(1000, 13, 0.f, 40.f);
  DeviceBuffer<float> dx(x);
  ops::softcap(dx.get(), x.size(), 30.f, nullptr);
  model::softcap(x.data(), x.size(), 30.f);
  EXPECT_LT(rel_err(dx.download(), x), kF32Tol);
}

// Group 3 padded to 4: the padded heads are zero, the real ones in place, and the way
// back restores them (as f16).
TEST(CudaModelOps, PadAndUnpadHeads) {
  TQ_REQUIRE_GPU();
  const int n = 2, kv = 3, group = 3, padded = 4, hd = 64;
  const auto q = random_vec(n * kv * group * hd, 14);
  DeviceBuffer<float> dq(q), dp(n * kv * padded * hd);
  ops::pad_heads(dq.get(), dp.get(), n, kv, group, padded, hd, nullptr);
  const auto p = dp.download();
  for (int t = 0; t < n; ++t)
    for (int h = 0; h < kv; ++h)
      for (int j = 0; j < padded; ++j)
        for (int d = 0; d < hd; ++d) {
          const float got = p[((t * kv + h) * padded + j) * hd + d];
          const float want = j < group ? q[((t * kv + h) * group + j) * hd + d] : 0.f;
          ASSERT_EQ(got, want) << t << " " << h << " " << j << " " << d;
        }
  DeviceBuffer<uint16_t> dback(q.size());
  ops::unpad_heads_f16(dp.get(), dback.get(), n, kv, group, padded, hd, nullptr);
  std::vector<float> qh(q.size());
  for (size_t i = 0; i < q.size(); ++i) qh[i] = round_to_half(q[i]);
  EXPECT_EQ(rel_err(from_half(dback.download()), qh), 0.f);
}

// y = x·Wᵀ (+ y) against BLAS on the same f16-rounded inputs: only summation order differs.
TEST(CudaModelOps, GemmMatchesBlas) {
  TQ_REQUIRE_GPU();
  for (int n : {1, 7, 64}) {
    const int in = 320, out = 200;
    auto x = random_vec(size_t(n) * in, 15), w = random_vec(size_t(out) * in, 16), y0 = random_vec(size_t(n) * out, 17);
    for (float& v : x) v = round_to_half(v);
    for (float& v : w) v = round_to_half(v);
    std::vector<float> ref(size_t(n) * out);
    model::sgemm_nt(x.data(), n, in, w.data(), out, ref.data(), out);
    DeviceBuffer<uint16_t> dx(to_half(x)), dw(to_half(w));
    DeviceBuffer<float> dy(y0);
    Gemm gemm(nullptr);
    gemm.nt(dx.get(), n, in, dw.get(), out, dy.get(), out);
    sync();
    EXPECT_LT(rel_err(dy.download(), ref), 1e-5f) << "n " << n;
    dy.upload(y0);
    gemm.nt(dx.get(), n, in, dw.get(), out, dy.get(), out, 1.f);
    sync();
    for (size_t i = 0; i < ref.size(); ++i) ref[i] += y0[i];
    EXPECT_LT(rel_err(dy.download(), ref), 1e-5f) << "n " << n << " beta 1";
  }
}

}  // namespace
}  // namespace tq::cuda
