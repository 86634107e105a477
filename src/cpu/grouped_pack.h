#pragma once
// Grouped records packed into 16-lane chunks for kernels that can fetch any lane's code
// from anywhere in a 64-byte window (AVX-512 VBMI's vpermb, grouped_vbmi.h). Unlike the
// chunk space of grouped_simd.h, where every run starts a chunk of its own, a run's
// leftover lanes (size % 16) share a chunk with other runs' leftovers when their level
// tables fit one 32-entry two-register permute: SmolLM2's K 4@4 16@3 44@2 takes 4 chunks,
// not 5, as turbo3 does. Lanes of such a mixed chunk index the joint table by
// (code & mask) | offset, each run's table at an offset aligned to its size, and take
// their own run's norm. Chunk order is any order of the coordinates: the query state and
// the value accumulators are laid out in it (coord: a lane's coordinate, -1 padding).
#include <cstdint>
#include <vector>

#include "grouped_layout.h"

namespace tq::detail {

// A segment: nc chunks with the same constants, chunk k's window `stride` bytes after
// chunk k-1's (a run's whole chunks), or one mixed chunk.
struct PackedChunk {
  // Lookup: 0 one run of <= 5 bits (a 32-entry permute, narrow tables repeated, so the
  // bits above a code select the same level); 1 mixed (joint table <= 32 entries); 2 one
  // 6-bit run (two 32-entry permutes and a blend on bit 5); 3 one run of 7-8 bits (gather);
  // 4 one run of <= 4 bits whose codes start at a byte (one vpmultishiftqb, as turbo3's).
  int kind;
  int run;             // kinds 0, 2, 3, 4: the run (index among coded runs)
  int window;          // chunk 0's window: its first byte in the record
  int nc, stride;
  uint64_t bytes;      // mask of the window's bytes the codes use (a masked load: no read past them)
  uint8_t perm[64];    // lane l's code starts at bit shift[l] of window bytes perm[4l], perm[4l+1]
  int32_t shift[16];
  int32_t mask[16], offset[16];  // kind 1: table index = (code & mask) | offset
  int32_t norm_run[16];          // kind 1: each lane's run (< 16: runs past 16 never mix)
  float table[64];               // kinds 0, 1, 4: 32 entries; kind 2: 64
  const float* levels;           // kind 3: the run's 2^bits levels
  std::vector<int> coord;  // 16 * nc
};

// Segments sorted by kind; count[k] segments of kind k, chunks their nc summed.
struct PackedPlan {
  std::vector<PackedChunk> chunks;
  int count[5] = {};
  int n_chunks = 0;
  std::vector<const GroupedRun*> runs;  // coded runs, in record order
};

PackedPlan pack_chunks(const GroupedLayout& layout);

}  // namespace tq::detail
