#include "ops.h"

#include <cblas.h>

#include <algorithm>
#include <cmath>

#include "turboquant/thread_pool.h"

namespace tq::model {

namespace {

// Output columns [o0, o1) of y = x·Wᵀ.
void matmul_columns(const float* x, int n, int in, const float* w, int out, int o0, int o1, float* y) {
  sgemm_nt(x, n, in, w + static_cast<size_t>(o0) * in, o1 - o0, y + o0, out);
}

}  // namespace

void sgemm_nt(const float* x, int n, int in, const float* w, int rows, float* y, int ldy) {
  if (n == 1) {
    // A single token is a matrix–vector product: gemv streams W once.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, rows, in, 1.0f, w, in, x, 1, 0.0f, y, 1);
  } else {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, n, rows, in, 1.0f, x, in, w, in, 0.0f, y, ldy);
  }
}

void use_single_threaded_blas() { openblas_set_num_threads(1); }

void matmul(const float* x, int n, int in, const float* w, int out, const float* bias, float* y, ThreadPool* pool) {
  const int tasks = pool ? std::min(pool->size(), std::max(1, out / 64)) : 1;
  if (tasks <= 1) {
    matmul_columns(x, n, in, w, out, 0, out, y);
  } else {
    // Slices of whole 16-column groups keep BLAS kernels on their fast path.
    const int per = (out / 16 + tasks - 1) / tasks * 16;
    pool->parallel_for(tasks, [&](int t) {
      const int o0 = std::min(out, t * per), o1 = t + 1 == tasks ? out : std::min(out, (t + 1) * per);
      if (o1 > o0) matmul_columns(x, n, in, w, out, o0, o1, y);
    });
  }
  if (bias) {
    for (int r = 0; r < n; ++r) {
      float* row = y + static_cast<size_t>(r) * out;
      for (int j = 0; j < out; ++j) row[j] += bias[j];
    }
  }
}

void rms_norm_to(const float* x, float* out, int rows, int width, const float* w, float eps) {
  for (int r = 0; r < rows; ++r) {
    const float* xr = x + static_cast<size_t>(r) * width;
    float* o = out + static_cast<size_t>(r) * width;
    double ss = 0.0;
    for (int i = 0; i < width; ++i) ss += static_cast<double>(xr[i]) * xr[i];
    const float inv = 1.0f / std::sqrt(static_cast<float>(ss / width) + eps);
    if (w) {
      for (int i = 0; i < width; ++i) o[i] = xr[i] * inv * w[i];
    } else {
      for (int i = 0; i < width; ++i) o[i] = xr[i] * inv;
    }
  }
}

void rms_norm(float* x, int rows, int width, const float* w, float eps) { rms_norm_to(x, x, rows, width, w, eps); }

RopeTable make_rope_table(int pos0, int n, int rope_dim, float base, float freq_scale, const float* freq_factors) {
  RopeTable t;
  t.rope_dim = rope_dim;
  const int half = rope_dim / 2;
  t.cos.resize(static_cast<size_t>(n) * half);
  t.sin.resize(static_cast<size_t>(n) * half);
  for (int p = 0; p < n; ++p) {
    for (int i = 0; i < half; ++i) {
      double theta = static_cast<double>(pos0 + p) * freq_scale * std::pow(static_cast<double>(base), -2.0 * i / rope_dim);
      if (freq_factors) theta /= freq_factors[i];
      t.cos[static_cast<size_t>(p) * half + i] = static_cast<float>(std::cos(theta));
      t.sin[static_cast<size_t>(p) * half + i] = static_cast<float>(std::sin(theta));
    }
  }
  return t;
}

void apply_rope(float* x, int n, int n_heads, int head_dim, const RopeTable& t, bool neox) {
  const int half = t.rope_dim / 2;
  for (int p = 0; p < n; ++p) {
    const float* c = t.cos.data() + static_cast<size_t>(p) * half;
    const float* s = t.sin.data() + static_cast<size_t>(p) * half;
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (static_cast<size_t>(p) * n_heads + h) * head_dim;
      for (int i = 0; i < half; ++i) {
        const int a = neox ? i : 2 * i;
        const int b = neox ? i + half : 2 * i + 1;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * c[i] - x1 * s[i];
        v[b] = x0 * s[i] + x1 * c[i];
      }
    }
  }
}

void swiglu(float* gate, const float* up, size_t count) {
  for (size_t i = 0; i < count; ++i) {
    const float g = gate[i];
    gate[i] = g / (1.0f + exp_approx(-g)) * up[i];
  }
}

// 0.5·(1 + tanh(u)) = 1 / (1 + e^(−2u)): the tanh GELU as a logistic, one exponential.
void geglu(float* gate, const float* up, size_t count) {
  constexpr float kTwoSqrt2OverPi = 2.0f * 0.7978845608028654f;
  for (size_t i = 0; i < count; ++i) {
    const float g = gate[i];
    const float two_u = kTwoSqrt2OverPi * (g + 0.044715f * g * g * g);
    gate[i] = g / (1.0f + exp_approx(-two_u)) * up[i];
  }
}

void softcap(float* x, size_t count, float cap) {
  for (size_t i = 0; i < count; ++i) x[i] = cap * std::tanh(x[i] / cap);
}

}  // namespace tq::model
