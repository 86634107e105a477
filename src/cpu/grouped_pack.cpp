#include "grouped_pack.h"

#include <algorithm>
#include <cstring>

namespace tq::detail {

namespace {

constexpr int kLanes = 16, kJoint = 32, kWindow = 64;

// Lanes [i0, i0 + n) of a run, headed for one chunk.
struct Piece {
  int run, i0, n;
};

// The bytes a run's codes i0 .. i0+n-1 touch: [first, last] from the record start.
void byte_span(const GroupedRun& r, int i0, int n, int& first, int& last) {
  first = static_cast<int>(r.code_offset) + r.bits * i0 / 8;
  last = static_cast<int>(r.code_offset) + (r.bits * (i0 + n) - 1) / 8;
}

int kind_of(int bits) { return bits <= 5 ? 0 : bits == 6 ? 2 : 3; }

// One segment from its pieces (run indices into `runs`, each run at most once per chunk):
// one mixed chunk, or nc chunks of one run from lane i0 on (pieces[0].n = 16 nc lanes,
// those past the run's end padding).
PackedChunk make_chunk(const std::vector<const GroupedRun*>& runs, const std::vector<Piece>& pieces, int nc = 1) {
  PackedChunk c{};
  c.nc = nc;
  c.stride = 2 * runs[pieces[0].run]->bits;
  c.run = pieces[0].run;
  c.kind = pieces.size() > 1 ? 1 : kind_of(runs[c.run]->bits);
  int first = 1 << 30, last = 0;
  for (const Piece& p : pieces) {
    int f, l;
    byte_span(*runs[p.run], p.i0, std::min(p.n, kLanes), f, l);
    first = std::min(first, f);
    last = std::max(last, l);
  }
  c.window = first;
  for (int b = 0; b <= last - first; ++b) c.bytes |= uint64_t(1) << b;
  c.coord.assign(kLanes * nc, -1);
  std::fill(c.norm_run, c.norm_run + kLanes, c.run);
  int lane = 0, entries = 0;
  for (const Piece& p : pieces) {
    const GroupedRun& r = *runs[p.run];
    const int n_levels = 1 << r.bits;
    if (c.kind == 1) {  // pieces come widest table first, so `entries` is aligned to n_levels
      std::copy(r.levels.begin(), r.levels.end(), c.table + entries);
    } else if (c.kind != 3) {
      for (int i = 0; i < (c.kind == 2 ? 64 : kJoint); ++i) c.table[i] = r.levels[i % n_levels];
    }
    c.levels = r.levels.data();
    for (int i = p.i0; i < std::min(p.i0 + p.n, r.size); ++i) c.coord[i - p.i0 + lane] = r.begin + i;
    for (int i = p.i0; i < p.i0 + std::min(p.n, kLanes); ++i, ++lane) {
      const int bit = 8 * static_cast<int>(r.code_offset) + r.bits * i, s = bit / 8 - first;
      c.perm[4 * lane] = static_cast<uint8_t>(s);
      c.perm[4 * lane + 1] = static_cast<uint8_t>(bit % 8 + r.bits > 8 ? s + 1 : s);  // the next byte only if used
      c.perm[4 * lane + 2] = c.perm[4 * lane + 3] = static_cast<uint8_t>(s);  // bits above the code: never read
      c.shift[lane] = bit % 8;
      c.mask[lane] = n_levels - 1;
      c.offset[lane] = c.kind == 1 ? entries : 0;
      c.norm_run[lane] = p.run;
    }
    entries += n_levels;
  }
  if (c.kind == 3)
    for (int l = lane; l < kLanes; ++l) c.mask[l] = runs[c.run]->levels.size() - 1;
  // <= 4 bits from a byte boundary: the chunk's 16 codes lie in its window's first 8 bytes.
  if (c.kind == 0 && runs[c.run]->bits <= 4 && c.shift[0] == 0) c.kind = 4;
  return c;
}

}  // namespace

PackedPlan pack_chunks(const GroupedLayout& layout) {
  PackedPlan plan;
  for (const GroupedRun& r : layout.runs())
    if (r.bits > 0) plan.runs.push_back(&r);
  // A run's whole chunks are one segment; its leftover lanes join it as a padded chunk
  // unless they can share a mixed chunk.
  std::vector<Piece> leftovers;
  for (int j = 0; j < static_cast<int>(plan.runs.size()); ++j) {
    const GroupedRun& r = *plan.runs[j];
    const bool mix = r.size % kLanes != 0 && r.bits <= 4 && j < 16;
    const int nc = mix ? r.size / kLanes : (r.size + kLanes - 1) / kLanes;
    if (nc > 0) plan.chunks.push_back(make_chunk(plan.runs, {{j, 0, kLanes * nc}}, nc));
    if (mix) leftovers.push_back({j, kLanes * nc, r.size - kLanes * nc});
  }
  // First fit, widest tables first: a leftover goes to the first shared chunk with free
  // lanes, room in its joint table and its codes within one window, split over several
  // chunks if need be.
  std::stable_sort(leftovers.begin(), leftovers.end(),
                   [&](const Piece& a, const Piece& b) { return plan.runs[a.run]->bits > plan.runs[b.run]->bits; });
  struct Bin {
    std::vector<Piece> pieces;
    int lanes = 0, entries = 0, first = 1 << 30, last = 0;
  };
  std::vector<Bin> bins;
  for (Piece p : leftovers) {
    const GroupedRun& r = *plan.runs[p.run];
    for (size_t b = 0; p.n > 0; ++b) {
      if (b == bins.size()) bins.emplace_back();
      Bin& bin = bins[b];
      const int take = std::min(p.n, kLanes - bin.lanes);
      if (take == 0 || bin.entries + (1 << r.bits) > kJoint) continue;
      int f, l;
      byte_span(r, p.i0, take, f, l);
      f = std::min(f, bin.first);
      l = std::max(l, bin.last);
      if (l - f >= kWindow) continue;
      bin.pieces.push_back({p.run, p.i0, take});
      bin.lanes += take;
      bin.entries += 1 << r.bits;
      bin.first = f;
      bin.last = l;
      p.i0 += take;
      p.n -= take;
    }
  }
  for (const Bin& bin : bins) plan.chunks.push_back(make_chunk(plan.runs, bin.pieces));
  std::stable_sort(plan.chunks.begin(), plan.chunks.end(),
                   [](const PackedChunk& a, const PackedChunk& b) { return a.kind < b.kind; });
  for (const PackedChunk& c : plan.chunks) {
    ++plan.count[c.kind];
    plan.n_chunks += c.nc;
  }
  return plan;
}

}  // namespace tq::detail
