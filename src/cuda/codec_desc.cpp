#include "codec_desc.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "turboquant/error.h"
#include "turboquant/half.h"
#include "turboquant/quant_traits.h"
#include "turboquant/quantizers.h"

namespace tq::cuda::detail {

namespace {

void copy_codebook(const Codebook& cb, float* levels, float* bounds) {
  for (size_t i = 0; i < cb.levels.size(); ++i) levels[i] = cb.levels[i];
  for (size_t i = 0; i < cb.boundaries.size(); ++i) bounds[i] = cb.boundaries[i];
}

// Block-diagonal rotations are linear, so column j of their matrix is forward(e_j),
// computed exactly (one non-zero product per output). Blocks are the closed index
// ranges the columns touch.
std::vector<BlockRow> probe_blocks(const Rotation& r) {
  const int n = r.dim();
  std::vector<float> m(static_cast<size_t>(n) * n), e(n, 0.f), y(n);
  for (int j = 0; j < n; ++j) {
    e[j] = 1.f;
    r.forward(e.data(), y.data());
    e[j] = 0.f;
    for (int i = 0; i < n; ++i) m[static_cast<size_t>(i) * n + j] = y[i];
  }
  std::vector<BlockRow> rows(n);
  for (int off = 0; off < n;) {
    int end = off + 1;
    for (int j = off; j < end; ++j)
      for (int i = 0; i < n; ++i)
        if ((m[static_cast<size_t>(i) * n + j] != 0.f || m[static_cast<size_t>(j) * n + i] != 0.f) &&
            i >= end)
          end = i + 1;
    const int size = end - off;
    if (size > 4)
      throw Error("CUDA backend: rotation " + std::string(rotation_name(r.kind())) +
                  " is not block-diagonal with blocks of at most 4 coordinates");
    for (int i = off; i < end; ++i) {
      rows[i] = BlockRow{off, size, {0.f, 0.f, 0.f, 0.f}};
      for (int k = 0; k < size; ++k) rows[i].m[k] = m[static_cast<size_t>(i) * n + off + k];
    }
    off = end;
  }
  return rows;
}

}  // namespace

CodecDesc make_codec_desc(const Codec& codec) {
  const std::string what = "CUDA backend: codec " + std::string(codec.name()) + ": ";
  if (codec.code_dim() != codec.dim())
    throw Error(what + "padded rotations (head_dim not a power of two) are not supported");
  CodecDesc d;
  d.dim = codec.dim();
  d.record_bytes = static_cast<int32_t>(codec.record_bytes());
  const QuantKind kind = codec.spec().quant;
  const QuantTraits& row = quant_traits(kind);
  if (!row.cuda_kernels)
    throw Error(what + "its quantizer (" + std::string(row.name) + ") is not implemented by the CUDA kernels yet");
  // The row's kind says which quantizer its factory built; the casts only reach its layout.
  const Quantizer& q = codec.quantizer();
  d.kind = kind;
  switch (kind) {
    case QuantKind::mse: {
      const auto& m = dynamic_cast<const MseQuantizer&>(q);
      d.n_hi = m.n_hi();
      d.bits_hi = m.hi().bits;
      d.bits_lo = m.lo().bits;
      if (d.bits_hi > row.cuda_max_bits || d.bits_lo > row.cuda_max_bits)
        throw Error(what + "mse codes wider than " + std::to_string(row.cuda_max_bits) + " bits");
      d.hi_offset = static_cast<int32_t>(m.hi_offset());
      d.lo_offset = static_cast<int32_t>(m.lo_offset());
      d.corrected = m.corrected_norm() ? 1 : 0;
      copy_codebook(m.hi(), d.levels_hi, d.bounds_hi);
      copy_codebook(m.lo(), d.levels_lo, d.bounds_lo);
      break;
    }
    case QuantKind::group: {
      const auto& g = dynamic_cast<const GroupQuantizer&>(q);
      d.group = g.group();
      d.group_bits = g.bits();
      d.group_bytes = static_cast<int32_t>(g.group_bytes());
      if (d.group < 8 || d.group % 8 != 0 || d.group_bits > row.cuda_max_bits)
        throw Error(what + "groups must be a multiple of 8 coordinates with codes of at most " +
                    std::to_string(row.cuda_max_bits) + " bits");
      break;
    }
    case QuantKind::grouped:
      if (!codec.affine()) throw Error(what + "grouped codes without their affine map");
      for (int j = -5; j <= 5; ++j) d.trial_scale[j + 5] = std::exp2(-j / 16.0);  // the encoder's own expression
      break;
    default:  // f16, q8_0, q4_0, fp8: the block layout is the row's (blocks.h)
      break;
  }
  if (!row.cuda_rotated && codec.rotation().kind() != RotationKind::none)
    throw Error(what + std::string(row.name) + " behind a rotation is not implemented");
  return d;
}

std::vector<uint32_t> dense_mma_fragments(const std::vector<float>& f, int n, float& unscale) {
  float amax = 0.f;
  for (float v : f) amax = std::max(amax, std::fabs(v));
  int e = 0;
  if (amax > 0.f) {
    int ex = 0;
    std::frexp(amax, &ex);  // amax = m 2^ex, m in [0.5, 1)
    e = 15 - ex;
  }
  unscale = std::ldexp(1.f, -e);
  auto halves = [&](int row, int col, uint32_t& hi, uint32_t& lo) {  // f[row][col], f[row][col + 1]
    uint32_t h[2], l[2];
    for (int k = 0; k < 2; ++k) {
      const float x = std::ldexp(f[static_cast<size_t>(row) * n + col + k], e);
      h[k] = float_to_half(x);
      l[k] = float_to_half(x - half_to_float(static_cast<uint16_t>(h[k])));
    }
    hi = h[0] | h[1] << 16;
    lo = l[0] | l[1] << 16;
  };
  // B[k][j] = f[8·nt + j][16·ks + k]; lane holds column j = lane / 4, rows 2·(lane % 4) + {0, 1}
  // (b0) and the same + 8 (b1).
  std::vector<uint32_t> out(static_cast<size_t>(n) * n);
  const int ks_count = n / 16;
  for (int nt = 0; nt < n / 8; ++nt)
    for (int ks = 0; ks < ks_count; ++ks)
      for (int lane = 0; lane < 32; ++lane) {
        uint32_t* w = &out[((static_cast<size_t>(nt) * ks_count + ks) * 32 + lane) * 4];
        const int row = 8 * nt + lane / 4, col = 16 * ks + 2 * (lane % 4);
        halves(row, col, w[0], w[2]);
        halves(row, col + 8, w[1], w[3]);
      }
  return out;
}

RotationHost make_rotation_host(const Rotation& r) {
  RotationHost h;
  const int n = r.dim();
  h.kind = r.kind();
  switch (r.kind()) {
    case RotationKind::none:
      break;
    case RotationKind::dense: {
      h.matrix = r.params();
      h.matrix_t.resize(h.matrix.size());
      for (int i = 0; i < n; ++i)
        for (int j = 0; j < n; ++j)
          h.matrix_t[static_cast<size_t>(j) * n + i] = h.matrix[static_cast<size_t>(i) * n + j];
      if (n <= kDenseMmaMaxDim && n % 16 == 0) h.mma_b = dense_mma_fragments(h.matrix, n, h.mma_unscale);
      break;
    }
    case RotationKind::rht: {
      const RhtOptions opt = r.rht_options();
      const bool permute = opt.permute;
      h.rounds = opt.rounds;
      h.scale = 1.f / std::sqrt(static_cast<float>(n));  // exactly as rotation_rht.cpp
      const std::vector<float> p = r.params();
      h.signs.assign(p.begin(), p.begin() + static_cast<size_t>(h.rounds) * n);
      h.perm.resize(n);
      for (int i = 0; i < n; ++i)
        h.perm[i] = permute ? static_cast<int32_t>(p[static_cast<size_t>(h.rounds) * n + i]) : i;
      break;
    }
    case RotationKind::rotor3:
    case RotationKind::quat4:
    case RotationKind::quat4_left:
    case RotationKind::givens2:
      h.rows = probe_blocks(r);
      break;
  }
  return h;
}

namespace {

// The tile kernel's f16 level tables, one per distinct codebook (runs share one by
// level_off): pairs when every run is at most kPairMaxBits wide and they fit the budget,
// single levels otherwise. Largest first, so each starts on a multiple of its own size and
// the kernel ORs an entry's byte offset into the table's; then a zero entry for width-0 runs.
void place_level_tables(GroupedHost& h) {
  std::vector<std::pair<int, int>> tables;  // (bytes, level_off), distinct, largest first
  // The tables' bytes when of pairs or single levels.
  auto place = [&](bool paired) {
    tables.clear();
    for (const GroupRun& r : h.runs)
      if (r.bits > 0 && std::none_of(tables.begin(), tables.end(), [&](const auto& t) { return t.second == r.level_off; }))
        tables.emplace_back(paired ? 4 << (2 * r.bits) : 2 << r.bits, r.level_off);
    std::sort(tables.begin(), tables.end(), [](const auto& a, const auto& b) { return a.first > b.first; });
    int end = 0;
    for (const auto& t : tables) end += t.first;
    return end;
  };
  const bool narrow = std::all_of(h.runs.begin(), h.runs.end(), [](const GroupRun& r) { return r.bits <= kPairMaxBits; });
  h.paired = narrow && place(true) + 4 <= kPairBudgetBytes;
  const int zero_off = place(h.paired);
  bool zero = false;
  for (GroupRun& r : h.runs) {
    zero = zero || r.bits == 0;
    r.lut_off = zero_off;
    if (r.bits == 0) continue;
    int off = 0;
    for (const auto& t : tables) {
      if (t.second == r.level_off) break;
      off += t.first;
    }
    r.lut_off = off;
  }
  h.lut_bytes = (zero_off + (zero ? 4 : 0) + 15) & ~15;
}

}  // namespace

GroupedHost make_grouped_host(const Codec& codec, int lane_coords) {
  const auto* q = dynamic_cast<const GroupedMseQuantizer*>(&codec.quantizer());
  if (!q) throw Error("CUDA backend: codec " + std::string(codec.name()) + " has no grouped records");
  GroupedHost h;
  h.table.resize(kLogFactors);
  for (int c = 0; c < kLogFactors; ++c) h.table[c] = GroupedMseQuantizer::log_norm_factor(c);
  std::vector<std::pair<const Codebook*, int>> placed;  // distinct codebooks -> level offset
  const int align = std::min(lane_coords, 4);
  // The factors form a geometric series from code 1: its log step (over the whole range, so
  // that the rounding of single factors does not grow with the code) and first exponent.
  const double first = std::log2(double(h.table[1]));
  const double step = (std::log2(double(h.table[kLogFactors - 1])) - first) / (kLogFactors - 2);
  for (const GroupedMseQuantizer::Run& r : q->runs()) {
    if (r.begin % align != 0)
      throw Error("CUDA backend: codec " + std::string(codec.name()) + " at head_dim " + std::to_string(codec.dim()) +
                  ": a group starts at coordinate " + std::to_string(r.begin) + ", not a multiple of " +
                  std::to_string(align) + " (the decode kernel's lane width)");
    GroupRun g{r.begin, r.size, r.bits, r.norm_bytes, static_cast<int32_t>(r.offset), 0, 0, -1,
               std::sqrt(static_cast<float>(r.size)), 0.f, 0.f};
    g.log2_step = static_cast<float>(step);
    g.log2_off = static_cast<float>(std::log2(double(g.sqrt_size)) + first - step);
    for (int c = 1; c < kLogFactors; ++c) {
      const double want = double(g.sqrt_size) * h.table[c], got = std::exp2(c * double(g.log2_step) + g.log2_off);
      if (std::abs(got - want) > 1e-6 * want)
        throw Error("CUDA backend: codec " + std::string(codec.name()) + ": log-byte norm factor of code " +
                    std::to_string(c) + " is not on the geometric series the decode kernel computes");
    }
    if (r.codebook) {
      auto it = std::find_if(placed.begin(), placed.end(), [&](const auto& e) { return e.first == r.codebook; });
      if (it == placed.end()) {
        placed.emplace_back(r.codebook, static_cast<int>(h.table.size()));
        h.table.insert(h.table.end(), r.codebook->levels.begin(), r.codebook->levels.end());
        h.table.insert(h.table.end(), r.codebook->boundaries.begin(), r.codebook->boundaries.end());
        it = placed.end() - 1;
      }
      g.level_off = it->second;
      g.bound_off = it->second + static_cast<int32_t>(r.codebook->levels.size());
    }
    h.runs.push_back(g);
  }
  place_level_tables(h);
  return h;
}

RotationHost make_affine_host(const AffineMap& m, bool for_attention) {
  const int n = m.dim;
  auto transposed = [n](const std::vector<float>& a) {
    std::vector<float> t(a.size());
    for (int i = 0; i < n; ++i)
      for (int j = 0; j < n; ++j) t[static_cast<size_t>(j) * n + i] = a[static_cast<size_t>(i) * n + j];
    return t;
  };
  RotationHost h;
  h.kind = RotationKind::dense;
  if (for_attention) {
    h.matrix = transposed(m.inverse);  // P⁻ᵀ: prepare computes q' = P⁻ᵀ q
    h.matrix_t = m.inverse;            // reduce computes x = P⁻¹ y
  } else {
    h.matrix_t = transposed(m.matrix);  // the tiled forward reads Qᵀ: here y = P x
  }
  return h;
}

}  // namespace tq::cuda::detail
