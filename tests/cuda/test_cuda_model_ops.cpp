// The device forward pass's small kernels (src/cuda/model_ops.h) and its cuBLAS product
// (model_gemm.h) against the CPU runner's own ops (src/model/ops.h) on random inputs.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "cuda_test_util.h"
#include "model_gemm.h"
#include "model_ops.h"
#include "model_weights_device.h"
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

  // x += norm(o) * w
  DeviceBuffer<float> dO(o);
  ops::rms_norm_add(dO.get(), dx.get(), rows, width, dw.get(), 1e-6f, nullptr);
  std::vector<float> on(o.size());
  model::rms_norm_to(o.data(), on.data(), rows, width, w.data(), 1e-6f);
  for (size_t i = 0; i < on.size(); ++i) on[i] += x[i];
  EXPECT_LT(rel_err(dx.download(), on), kF32Tol);
}

// QK-norm alone (no RoPE, no balance) at every head size: 7 rows of 3 query and 1 key head.
TEST(CudaModelOps, HeadNormWidths) {
  TQ_REQUIRE_GPU();
  for (int width : {64, 128, 256}) {
    const int rows = 7, heads = 4;
    const auto x = random_vec(rows * heads * width, width, 0.f, 3.f);
    const auto wq = random_vec(width, width + 1, 1.f, 0.1f), wk = random_vec(width, width + 2, 1.f, 0.1f);
    std::vector<float> ref = x;
    for (int r = 0; r < rows; ++r) {
      model::rms_norm(ref.data() + r * heads * width, heads - 1, width, wq.data(), 1e-6f);
      model::rms_norm(ref.data() + (r * heads + heads - 1) * width, 1, width, wk.data(), 1e-6f);
    }
    DeviceBuffer<float> dx(x), dwq(wq), dwk(wk);
    ops::QkPrepare p;
    p.n_q = heads - 1;
    p.n_kv = 1;
    p.head_dim = width;
    p.q_norm = dwq.get();
    p.k_norm = dwk.get();
    p.eps = 1e-6f;
    ops::qk_prepare(dx.get(), rows, heads * width, p, nullptr);
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

// qk_prepare on rows laid out as the runner's fused product [q heads | k heads | v | gap]:
// QK-norm, RoPE (both pair styles, a partial rope_dim, frequency scaling and divisors,
// large positions) and the Q/K balance, each on and off, against the CPU runner's ops in
// its order; the values and the gap after them untouched.
TEST(CudaModelOps, QkPrepareMatchesCpuOps) {
  TQ_REQUIRE_GPU();
  const int n = 6, nq = 4, nkv = 2, hd = 64;
  const int64_t stride = (nq + 2 * nkv) * hd + 16;
  const std::vector<int32_t> positions = {0, 1, 17, 511, 4095, 32000};
  const auto qn = random_vec(hd, 20, 1.f, 0.2f), kn = random_vec(hd, 21, 1.f, 0.2f);
  auto bal_scale = random_vec(nkv * hd, 22, 1.f, 0.2f);
  for (float& v : bal_scale) v = std::abs(v) + 0.1f;
  const QkBalance bal(1, nkv, hd, bal_scale);
  DeviceBuffer<int32_t> dpos(positions);
  DeviceBuffer<float> dqn(qn), dkn(kn), dbal(bal_scale);
  int cases = 0;
  for (bool neox : {false, true})
    for (int rope_dim : {64, 32})
      for (bool norm : {false, true})
        for (bool balance : {false, true}) {
          const float base = 10000.f, scale = 0.5f;
          const auto factors = random_vec(rope_dim / 2, 6, 2.f, 0.3f);
          std::vector<double> inv(rope_dim / 2);
          for (int i = 0; i < rope_dim / 2; ++i) inv[i] = scale * std::pow(double(base), -2.0 * i / rope_dim) / factors[i];
          const auto x = random_vec(n * stride, 7 + cases, 0.f, 2.f);
          std::vector<float> ref = x;
          for (int t = 0; t < n; ++t) {
            float* q = ref.data() + t * stride;
            float* k = q + nq * hd;
            if (norm) {
              model::rms_norm(q, nq, hd, qn.data(), 1e-6f);
              model::rms_norm(k, nkv, hd, kn.data(), 1e-6f);
            }
            const model::RopeTable tab = model::make_rope_table(positions[t], 1, rope_dim, base, scale, factors.data());
            model::apply_rope(q, 1, nq, hd, tab, neox);
            model::apply_rope(k, 1, nkv, hd, tab, neox);
            if (balance) bal.apply(0, 1, nq, q, k);
          }
          DeviceBuffer<float> dx(x);
          DeviceBuffer<double> dinv(inv);
          ops::QkPrepare p;
          p.n_q = nq;
          p.n_kv = nkv;
          p.head_dim = hd;
          p.q_norm = norm ? dqn.get() : nullptr;
          p.k_norm = norm ? dkn.get() : nullptr;
          p.eps = 1e-6f;
          p.rope_dim = rope_dim;
          p.positions = dpos.get();
          p.inv_freq = dinv.get();
          p.neox = neox;
          p.balance = balance ? dbal.get() : nullptr;
          ops::qk_prepare(dx.get(), n, stride, p, nullptr);
          const auto got = dx.download();
          // The CPU table rounds cos/sin to float: 1e-6 of the vector's scale.
          EXPECT_LT(rel_err(got, ref), 1e-5f)
              << "neox " << neox << " rope_dim " << rope_dim << " norm " << norm << " balance " << balance;
          for (int t = 0; t < n; ++t)
            for (int64_t i = (nq + nkv) * hd; i < stride; ++i)
              ASSERT_EQ(got[t * stride + i], x[t * stride + i]) << "row " << t << " element " << i << " (values, gap)";
          ++cases;
        }
  EXPECT_EQ(cases, 16);
}

// Rows [gate | up] of `width` each, as the runner's fused gate-up product writes them.
TEST(CudaModelOps, GatedActivations) {
  TQ_REQUIRE_GPU();
  const int rows = 3, width = 1000;
  const auto gu = random_vec(size_t(rows) * 2 * width, 11, 0.f, 3.f);
  DeviceBuffer<float> dgu(gu);
  DeviceBuffer<uint16_t> dout(size_t(rows) * width);
  for (bool gelu : {false, true}) {
    std::vector<float> ref(size_t(rows) * width);
    for (int r = 0; r < rows; ++r) {
      std::vector<float> g(gu.begin() + r * 2 * width, gu.begin() + r * 2 * width + width);
      const float* u = gu.data() + r * 2 * width + width;
      if (gelu) {
        model::geglu(g.data(), u, width);
      } else {
        model::swiglu(g.data(), u, width);
      }
      std::copy(g.begin(), g.end(), ref.begin() + r * width);
    }
    ops::glu_f16(dgu.get(), dout.get(), rows, width, gelu, nullptr);
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

// The runner's query padding (host code, no GPU): group 3 padded to 4 over 3 KV heads, each
// unpadded coordinate moved to its group's slot, in order, the padding heads left free; a
// group that needs no padding maps onto itself.
TEST(HeadPadding, MovesEachGroupIntoItsPaddedSlots) {
  const int n_kv = 3, group = 3, padded = 4, hd = 64;
  const HeadPadding pad{group, padded, hd};
  std::vector<int> hits(n_kv * padded * hd, 0);
  for (int i = 0; i < n_kv * group * hd; ++i) {
    const int h = i / hd, kv = h / group, j = h % group;
    ASSERT_EQ(pad(i), (kv * padded + j) * hd + i % hd) << "coordinate " << i;
    ++hits[pad(i)];
  }
  for (int o = 0; o < n_kv * padded * hd; ++o)
    EXPECT_EQ(hits[o], (o / hd) % padded < group ? 1 : 0) << "padded coordinate " << o;
  const HeadPadding none{4, 4, 128};
  for (int i = 0; i < 2 * 4 * 128; ++i) ASSERT_EQ(none(i), i);
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
