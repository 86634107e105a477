// The tile decode kernel's level tables (codec_desc.cpp place_level_tables, read by
// record_grouped_tile.cuh): host only, so these run without a GPU too. The kernel ORs an
// entry's byte offset into its table's, which is only right when every table starts on a
// multiple of its own size; and the device attention tests cover both decoders only if the
// presets they build come in both modes.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "codec_desc.h"
#include "cuda_preset_util.h"
#include "turboquant/cache_plan.h"

namespace tq::cuda {
namespace {

using detail::GroupedHost;
using detail::GroupRun;

struct Modes {
  int paired = 0, single = 0;
};

// Checks one side's tables; counts its mode.
void check_side(const Codec& codec, int d, const std::string& what, Modes& modes) {
  const GroupedHost h = detail::make_grouped_host(codec, d / 32);
  bool wide = false, zero = false;
  int pair_bytes = 0;
  std::set<int> codebooks;
  for (const GroupRun& r : h.runs) {
    wide = wide || r.bits > detail::kPairMaxBits;
    zero = zero || r.bits == 0;
    if (r.bits > 0 && codebooks.insert(r.level_off).second) pair_bytes += 4 << (2 * r.bits);
  }
  const bool paired = !wide && pair_bytes + 4 <= detail::kPairBudgetBytes;
  EXPECT_EQ(h.paired, paired) << what;
  ++(paired ? modes.paired : modes.single);
  // Coded tables: aligned to their size, inside the area, one per codebook.
  std::set<std::pair<int, int>> spans;  // (offset, bytes) of distinct tables
  for (const GroupRun& r : h.runs) {
    if (r.bits == 0) continue;
    const int bytes = paired ? 4 << (2 * r.bits) : 2 << r.bits;
    EXPECT_EQ(r.lut_off % bytes, 0) << what << ": a " << r.bits << "-bit table at byte " << r.lut_off;
    EXPECT_LE(r.lut_off + bytes, h.lut_bytes) << what;
    for (const GroupRun& q : h.runs)
      if (q.bits > 0) EXPECT_EQ(q.level_off == r.level_off, q.lut_off == r.lut_off) << what;
    spans.insert({r.lut_off, bytes});
  }
  int end = 0;
  for (const auto& [off, bytes] : spans) {
    EXPECT_GE(off, end) << what << ": tables overlap";
    end = off + bytes;
  }
  // Width-0 runs read a word past every coded table (the kernel writes it zero).
  for (const GroupRun& r : h.runs) {
    if (r.bits != 0) continue;
    EXPECT_GE(r.lut_off, end) << what;
    EXPECT_LE(r.lut_off + 4, h.lut_bytes) << what;
  }
  EXPECT_EQ(h.lut_bytes % 16, 0) << what;
  EXPECT_LE(h.lut_bytes, paired ? detail::kPairBudgetBytes : end + 16) << what;
}

TEST(CudaLevelTables, EveryPresetLayoutIsPlacedForTheOrAndBothModesAreTested) {
  Modes modes;
  for (const std::string& preset : testing::preset_names())
    for (int d : testing::kHeadDims) {
      const KvCachePlan plan(testing::preset_config(preset, d, 2));
      for (int l = 0; l < plan.config().n_layers; ++l)
        for (bool value : {false, true}) {
          const std::string what = preset + " d=" + std::to_string(d) + " layer " + std::to_string(l) +
                                   (value ? " V" : " K");
          check_side(plan.side(l, value).codecs.front(), d, what, modes);
        }
    }
  std::printf("  sides with pair tables: %d, with single-level tables: %d\n", modes.paired, modes.single);
  // CudaPresetAttention attends these same configurations on the device.
  EXPECT_GT(modes.paired, 0);
  EXPECT_GT(modes.single, 0);
}

}  // namespace
}  // namespace tq::cuda
