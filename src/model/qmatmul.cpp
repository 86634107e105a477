// qmatmul: picks the row kernel for the weight type and path, quantizes the activations
// once per call, and splits the output rows over the thread pool.
#include "qmatmul.h"

#if defined(__x86_64__) || defined(__i386__)
#define TQ_QMATMUL_X86 1
#endif

#include <algorithm>
#include <cstring>
#include <string>
#include <vector>

#include "ops.h"
#include "qmatmul_kernels.h"
#include "turboquant/error.h"
#include "turboquant/thread_pool.h"

namespace tq::model {
namespace {

using gguf::GgmlType;
using qk::DotTable;
using qk::RowDot;
using qk::RowToF32;
using qk::ToF32Table;

enum class Act { f32, q8, q8k };  // what the activations are converted to

struct TypeKernel {
  Act act;
  int block;  // elements per weight block (cols must be a multiple)
  RowDot DotTable::*fn;
  RowToF32 ToF32Table::*to_f32;  // null: the tiles use gguf::dequantize on every path
};

const TypeKernel* find_kernel(GgmlType t) {
  static const struct {
    GgmlType type;
    TypeKernel k;
  } kTable[] = {
      {GgmlType::F16, {Act::f32, 1, &DotTable::f16, nullptr}},
      {GgmlType::BF16, {Act::f32, 1, &DotTable::bf16, nullptr}},
      {GgmlType::Q4_0, {Act::q8, 32, &DotTable::q4_0, &ToF32Table::q4_0}},
      {GgmlType::Q4_1, {Act::q8, 32, &DotTable::q4_1, &ToF32Table::q4_1}},
      {GgmlType::Q5_0, {Act::q8, 32, &DotTable::q5_0, &ToF32Table::q5_0}},
      {GgmlType::Q5_1, {Act::q8, 32, &DotTable::q5_1, &ToF32Table::q5_1}},
      {GgmlType::Q8_0, {Act::q8, 32, &DotTable::q8_0, &ToF32Table::q8_0}},
      {GgmlType::Q4_K, {Act::q8k, 256, &DotTable::q4_k, &ToF32Table::q4_k}},
      {GgmlType::Q5_K, {Act::q8k, 256, &DotTable::q5_k, &ToF32Table::q5_k}},
      {GgmlType::Q6_K, {Act::q8k, 256, &DotTable::q6_k, &ToF32Table::q6_k}},
  };
  for (const auto& e : kTable) {
    if (e.type == t) return &e.k;
  }
  return nullptr;
}

#ifdef TQ_QMATMUL_X86
bool cpu_has_avx2() {
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool cpu_has_avx512_vnni() {
  return cpu_has_avx2() && __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("avx512vl") &&
         __builtin_cpu_supports("avx512bw");
}
#else
bool cpu_has_avx2() { return false; }  // the SIMD kernels are x86 only; portable elsewhere
bool cpu_has_avx512_vnni() { return false; }
#endif

QPath resolve(QPath p) {
  if (p != QPath::best) return p;
  if (qpath_available(QPath::avx512)) return QPath::avx512;
  if (qpath_available(QPath::avx2)) return QPath::avx2;
  return QPath::portable;
}

// `p` resolved, or a tq::Error when this build or CPU cannot run it.
QPath checked(QPath p) {
  p = resolve(p);
  if (!qpath_available(p)) {
    throw Error(std::string("qmatmul path ") + qpath_name(p) + " is not available (not compiled or not supported by this CPU)");
  }
  return p;
}

const DotTable& dots(QPath p) {
  switch (checked(p)) {
    case QPath::avx512: return *qk::avx512_dots();
    case QPath::avx2: return *qk::avx2_dots();
    default: return qk::portable_dots();
  }
}

// The path's vectorized row-to-f32 for w's type, or null (gguf::dequantize).
RowToF32 to_f32_kernel(GgmlType t, QPath p) {
  p = checked(p);
  const ToF32Table* table = p == QPath::avx512 ? qk::avx512_to_f32() : p == QPath::avx2 ? qk::avx2_to_f32() : nullptr;
  const TypeKernel* k = find_kernel(t);
  return table && k && k->to_f32 ? table->*k->to_f32 : nullptr;
}

// Rows [r0, r1) of w as f32 into out (rows × cols).
void rows_to_f32(const QMatrix& w, int r0, int r1, RowToF32 fn, float* out) {
  const uint8_t* src = w.bytes() + static_cast<size_t>(r0) * w.row_bytes;
  if (!fn) {
    gguf::dequantize(w.type, src, static_cast<size_t>(r1 - r0) * w.cols, out);
    return;
  }
  for (int r = r0; r < r1; ++r, src += w.row_bytes, out += w.cols) fn(src, w.cols, out);
}

// Bytes of one row of activations in the kernel's format.
size_t act_row_bytes(Act a, int cols) {
  switch (a) {
    case Act::q8: return static_cast<size_t>(cols / qk::kQ8) * sizeof(qk::Q8Block);
    case Act::q8k: return static_cast<size_t>(cols / qk::kQ8K) * sizeof(qk::Q8KBlock);
    default: return static_cast<size_t>(cols) * sizeof(float);
  }
}

void convert_row(Act a, const float* x, int cols, uint8_t* out) {
  switch (a) {
    case Act::q8: qk::quantize_q8(x, cols, reinterpret_cast<qk::Q8Block*>(out)); break;
    case Act::q8k: qk::quantize_q8k(x, cols, reinterpret_cast<qk::Q8KBlock*>(out)); break;
    default: std::memcpy(out, x, static_cast<size_t>(cols) * sizeof(float)); break;
  }
}

// From this many tokens on, rows are dequantized tile by tile and multiplied by BLAS
// sgemm: on both models (2 threads, 400-token prompt, one run each) prefill ran 1.7x
// (SmolLM2) and 1.8x (Gemma 3) faster than the integer row kernels applied per token,
// whose unpacking is not amortized over tokens. Below it, the integer kernels (no tile
// cost). 8 itself is a guess between the measured 1 and 400 tokens, not a measured cut.
constexpr int kDequantTokens = 8;

// Rows [r0, r1) of y = x·Wᵀ: rows of W dequantized into a tile, then one sgemm per tile.
// 4 MiB tiles (a whole layer matrix's slice for both models) measured at parity with the
// old all-f32 prefill on SmolLM2 (400 tokens, 2 threads); 256 KiB tiles were ~10% slower,
// BLAS packing more, smaller products. The buffer stays per thread (4 MiB each).
void rows_by_dequant(const float* x, int n, const QMatrix& w, int r0, int r1, RowToF32 fn, float* y) {
  constexpr size_t kTileFloats = 1024 * 1024;
  const int tile = std::max(1, static_cast<int>(kTileFloats / static_cast<size_t>(w.cols)));
  thread_local std::vector<float> buf;
  buf.resize(static_cast<size_t>(std::min(tile, r1 - r0)) * w.cols);
  for (int t0 = r0; t0 < r1; t0 += tile) {
    const int rows = std::min(tile, r1 - t0);
    rows_to_f32(w, t0, t0 + rows, fn, buf.data());
    sgemm_nt(x, n, w.cols, buf.data(), rows, y + t0, w.rows);
  }
}

void add_bias(const QProduct& p, int n) {
  if (!p.bias) return;
  for (int t = 0; t < n; ++t) {
    float* row = p.y + static_cast<size_t>(t) * p.w->rows;
    for (int j = 0; j < p.w->rows; ++j) row[j] += p.bias[j];
  }
}

}  // namespace

const char* qpath_name(QPath p) {
  switch (p) {
    case QPath::best: return "best";
    case QPath::avx512: return "avx512";
    case QPath::avx2: return "avx2";
    default: return "portable";
  }
}

bool qpath_available(QPath p) {
  switch (p) {
    case QPath::avx512: return qk::avx512_dots() != nullptr && cpu_has_avx512_vnni();
    case QPath::avx2: return qk::avx2_dots() != nullptr && cpu_has_avx2();
    default: return true;
  }
}

bool qmatmul_supports(GgmlType t) { return t == GgmlType::F32 || find_kernel(t) != nullptr; }

void check_qmatmul_supported(const QMatrix& w) {
  if (!qmatmul_supports(w.type)) {
    std::string msg = "tensor " + w.name + " has type " + std::string(gguf::type_name(w.type)) +
                      ", which the quantized matrix kernels do not support (supported: F32, F16, BF16, Q4_0, "
                      "Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, Q6_K)";
    if (gguf::type_supported(w.type)) msg += "; f32 weights (tq run --weights f32) dequantize it at load instead";
    throw Error(msg);
  }
  const TypeKernel* k = find_kernel(w.type);
  if (k && w.cols % k->block != 0) {
    throw Error("tensor " + w.name + ": rows of " + std::to_string(w.cols) + " elements are not whole " +
                std::string(gguf::type_name(w.type)) + " blocks of " + std::to_string(k->block));
  }
}

void qmatmul(const float* x, int n, const QMatrix& w, const float* bias, float* y, ThreadPool* pool, QPath path) {
  const QProduct one{&w, bias, y};
  qmatmul_many(x, n, &one, 1, pool, path);
}

void qmatmul_many(const float* x, int n, const QProduct* products, int count, ThreadPool* pool, QPath path) {
  const int threads = pool ? pool->size() : 1;
  // BLAS (F32 weights) and the dequantized-tile prefill run one product at a time.
  bool integer = n < kDequantTokens;
  for (int i = 0; i < count; ++i) {
    check_qmatmul_supported(*products[i].w);
    if (products[i].w->type == GgmlType::F32) integer = false;
  }
  if (!integer) {
    for (int i = 0; i < count; ++i) {
      const QMatrix& w = *products[i].w;
      if (w.type == GgmlType::F32) {
        matmul(x, n, w.cols, w.f32(), w.rows, products[i].bias, products[i].y, pool);
        continue;
      }
      const RowToF32 fn = to_f32_kernel(w.type, path);
      const int tasks = std::max(1, std::min(w.rows / 16, threads));
      const int per = (w.rows + tasks - 1) / tasks;
      auto run = [&](int task) {
        const int r0 = task * per, r1 = std::min(w.rows, r0 + per);
        if (r0 < r1) rows_by_dequant(x, n, w, r0, r1, fn, products[i].y);
      };
      if (tasks > 1) {
        pool->parallel_for(tasks, run);
      } else {
        run(0);
      }
      add_bias(products[i], n);
    }
    return;
  }

  // Activations converted once per kind (q8, q8K, f32) for all products and row slices.
  thread_local std::vector<uint8_t> xq[3];
  bool converted[3] = {false, false, false};
  struct Slice {
    const QProduct* p;
    RowDot dot;
    const uint8_t* xq;
    size_t xb;
    int r0, r1;
  };
  std::vector<Slice> slices;
  for (int i = 0; i < count; ++i) {
    const QMatrix& w = *products[i].w;
    const TypeKernel& k = *find_kernel(w.type);
    const int a = static_cast<int>(k.act);
    const size_t xb = act_row_bytes(k.act, w.cols);
    if (!converted[a]) {
      xq[a].resize(xb * n);
      for (int t = 0; t < n; ++t) convert_row(k.act, x + static_cast<size_t>(t) * w.cols, w.cols, xq[a].data() + xb * t);
      converted[a] = true;
    }
    // Slices of >= 16 rows, a few per thread so a core slowed by other work gets fewer.
    const int tasks = std::max(1, std::min(w.rows / 16, threads > 1 ? 4 * threads : 1));
    const int per = (w.rows + tasks - 1) / tasks;
    for (int r0 = 0; r0 < w.rows; r0 += per) {
      slices.push_back({&products[i], dots(path).*k.fn, xq[a].data(), xb, r0, std::min(w.rows, r0 + per)});
    }
  }
  auto run = [&](int task) {
    const Slice& sl = slices[task];
    const QMatrix& w = *sl.p->w;
    for (int r = sl.r0; r < sl.r1; ++r) {
      const uint8_t* wr = w.bytes() + static_cast<size_t>(r) * w.row_bytes;
      for (int t = 0; t < n; ++t) sl.p->y[static_cast<size_t>(t) * w.rows + r] = sl.dot(wr, sl.xq + sl.xb * t, w.cols);
    }
  };
  if (pool && slices.size() > 1) {
    pool->parallel_for(static_cast<int>(slices.size()), run);
  } else {
    for (size_t i = 0; i < slices.size(); ++i) run(static_cast<int>(i));
  }
  for (int i = 0; i < count; ++i) add_bias(products[i], n);
}

void qmatrix_row(const QMatrix& w, int r, float* out) {
  gguf::dequantize(w.type, w.bytes() + static_cast<size_t>(r) * w.row_bytes, static_cast<size_t>(w.cols), out);
}

void qmatrix_rows_f32(const QMatrix& w, int r0, int r1, float* out, QPath path) {
  check_qmatmul_supported(w);
  if (w.type == GgmlType::F32) {
    std::memcpy(out, w.f32() + static_cast<size_t>(r0) * w.cols, static_cast<size_t>(r1 - r0) * w.cols * sizeof(float));
    return;
  }
  rows_to_f32(w, r0, r1, to_f32_kernel(w.type, path), out);
}

float qdot_row(const QMatrix& w, int r, const float* x, QPath path) {
  check_qmatmul_supported(w);
  const uint8_t* wr = w.bytes() + static_cast<size_t>(r) * w.row_bytes;
  if (w.type == GgmlType::F32) {
    float s = 0.0f;
    for (int j = 0; j < w.cols; ++j) s += w.f32()[static_cast<size_t>(r) * w.cols + j] * x[j];
    return s;
  }
  const TypeKernel& k = *find_kernel(w.type);
  std::vector<uint8_t> xq(act_row_bytes(k.act, w.cols));
  convert_row(k.act, x, w.cols, xq.data());
  return (dots(path).*k.fn)(wr, xq.data(), w.cols);
}

}  // namespace tq::model
