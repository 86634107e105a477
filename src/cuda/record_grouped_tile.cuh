#pragma once
// Calibrated (grouped) records in the tile tensor-core decode kernel (decode_mma_grouped.cu).
// Lane `lane` turns its C = D/32 coordinates [lane·C, lane·C + C) of a record into C/2
// half2 words, level · run norm, both rounded to f16 and multiplied as half2. Run
// boundaries fall on multiples of min(C, 4) (codec_desc.cpp), so a lane reads one run, or
// at d = 256 two halves of 4 coordinates that may lie in two runs.
//
// Two things keep the instruction count down (the kernel is bound by instruction issue):
// - the warp computes each step's norms once per (record, run) into a per-warp table,
//   where each lane had computed its own run's norm of all 16 records (the lanes of a
//   run all computing the same ones);
// - levels come from f16 tables, two at a time from pair tables when every run is at most
//   kPairMaxBits wide (entry i | j << bits of a run's table is the half2 (level i, level
//   j)), else one at a time. An entry's byte offset is one shift and one LOP3 away from the
//   code window (pairs: the window starts 2 bits early, so the masked field is the offset
//   already; single levels: shifted one bit less far), and the tables are placed so that
//   it ORs into the table's (codec_desc.cpp place_level_tables).
// Shared-memory area of a side: [runs' norm fields][lane parts][level tables][per warp:
// norm table, 16 half2 words per run].
#include <cuda_fp16.h>

#include "decode_args.h"
#include "device_desc.h"
#include "mma_ops.cuh"
#include "record_decode.cuh"
#include "record_grouped.cuh"

namespace tq::cuda::detail {

// What the step's norm pass reads of a run, in one 16-byte load.
struct alignas(16) NormRun {
  int offset;  // byte of the norm in a record
  int kind;    // 0: width 0 (zero), 1: fp16, 2: log byte
  float log2_step, log2_off;
};

// Where a lane's coordinates sit in a record and which tables they read (one half of the
// lane's coordinates at d = 256, all of them below).
struct alignas(16) GroupedTilePart {
  int code_off, bit;  // the code window: byte within a record, bit
  uint32_t mask;      // an entry's byte offset: pairs (2^(2·bits) − 1) << 2, else (2^bits − 1) << 1
  uint32_t lut_off;   // byte offset of the run's table among the area's tables
  int bits;           // code width (at least 1: the shifts stay defined; width 0 has mask 0)
  int norm;           // index of the run's row in the norm table
  int pad[2];
};
constexpr int kGroupedPartFloats = 2 * 32 * static_cast<int>(sizeof(GroupedTilePart) / sizeof(float));

// Float offsets of a side's area.
struct GroupedTileArea {
  int parts, lut, norms, total;
  __host__ __device__ explicit GroupedTileArea(const CodecDesc& c) {
    parts = c.n_runs * static_cast<int>(sizeof(NormRun) / sizeof(float));
    lut = parts + kGroupedPartFloats;
    norms = lut + c.lut_bytes / 4;
    total = (norms + kMmaWarps * c.n_runs * kMmaTileTokens + 31) & ~31;
  }
};

struct GroupedTileRecords {
  static constexpr bool kDirect = false, kAnyAlign = true, kPrepare = true, kFrag = false;
  static constexpr int kStages = 4;
  static constexpr int min_blocks(int D) { return D <= 128 ? 4 : 2; }
  __host__ __device__ static int lut_floats(const CodecDesc& c) { return GroupedTileArea(c).total; }

  // Every thread of the CTA calls it; the caller synchronizes before use.
  template <int D>
  __device__ static void fill_lut(const CodecDesc& c, float* area, int tid, int n_threads) {
    constexpr int C = D / 32, kParts = C > 4 ? 2 : 1, N = C / kParts;
    const GroupedTileArea a(c);
    NormRun* runs = reinterpret_cast<NormRun*>(area);
    for (int r = tid; r < c.n_runs; r += n_threads) {
      const GroupRun run = c.runs[r];
      runs[r] = {run.offset, run.bits == 0 ? 0 : run.norm_bytes == 2 ? 1 : 2, run.log2_step, run.log2_off};
    }
    if (tid < 32 * kParts) {
      const int lane = tid % 32, coord = lane * C + (tid / 32) * N;
      int r = 0;  // the run holding coord: a count, so that the loads are independent
      for (int q = 1; q < c.n_runs; ++q) r += c.runs[q].begin <= coord;
      const GroupRun run = c.runs[r];
      // Pairs: coded runs start after a norm byte, so the window may start 2 bits early.
      // Width-0 runs read nothing (their mask is 0) and keep the record's first byte.
      const int early = c.paired ? 2 : 0;
      const int first = run.bits == 0 ? 0 : 8 * (run.offset + run.norm_bytes) + (coord - run.begin) * run.bits - early;
      GroupedTilePart p;
      p.code_off = first >> 3;
      p.bit = first & 7;
      p.mask = ((1u << (c.paired ? 2 * run.bits : run.bits)) - 1u) << (c.paired ? 2 : 1);
      p.lut_off = static_cast<uint32_t>(run.lut_off);
      p.bits = run.bits > 0 ? run.bits : 1;
      p.norm = r * kMmaTileTokens;
      p.pad[0] = p.pad[1] = 0;
      reinterpret_cast<GroupedTilePart*>(area + a.parts)[tid] = p;
    }
    unsigned char* luts = reinterpret_cast<unsigned char*>(area + a.lut);
    for (int r = 0; r < c.n_runs; ++r) {
      const GroupRun run = c.runs[r];
      bool first = true;  // runs of one codebook share its table: filled once
      for (int q = 0; q < r; ++q) first = first && c.runs[q].lut_off != run.lut_off;
      if (!first) continue;
      const int bits = run.bits, m = (1 << bits) - 1;
      const float* lv = c.table + run.level_off;
      if (c.paired) {
        uint32_t* t = reinterpret_cast<uint32_t*>(luts + run.lut_off);
        for (int e = tid; e < (1 << (2 * bits)); e += n_threads) t[e] = bits == 0 ? 0u : pack_half2(lv[e & m], lv[e >> bits]);
      } else {
        __half* t = reinterpret_cast<__half*>(luts + run.lut_off);
        for (int e = tid; e < (bits == 0 ? 2 : 1 << bits); e += n_threads) t[e] = __float2half_rn(bits == 0 ? 0.f : lv[e]);
      }
    }
  }

  template <int D>
  struct Lane {
    static constexpr int C = D / 32, kParts = C > 4 ? 2 : 1, N = C / kParts;
    using Part = GroupedTilePart;
    Part part[kParts];
    const NormRun* runs;
    int n_runs;
    bool paired;
    const unsigned char* lut;
    uint32_t* norms;  // this warp's norm table: [run][16 records] half2 (n, n)

    __device__ Lane(const CodecDesc& c, float* area, int lane, int warp) {
      const GroupedTileArea a(c);
      runs = reinterpret_cast<const NormRun*>(area);
      n_runs = c.n_runs;
      paired = c.paired != 0;
      lut = reinterpret_cast<const unsigned char*>(area + a.lut);
      norms = reinterpret_cast<uint32_t*>(area + a.norms) + warp * c.n_runs * kMmaTileTokens;
#pragma unroll
      for (int k = 0; k < kParts; ++k) part[k] = reinterpret_cast<const Part*>(area + a.parts)[32 * k + lane];
    }

    // The norms of a step's 16 records (recs, rb bytes each) into the warp's table; the
    // caller's __syncwarp orders them before visit (one for both sides of a step).
    __device__ void prepare(const uint8_t* recs, int rb, int lane) const {
      for (int e = lane; e < kMmaTileTokens * n_runs; e += 32) {
        const NormRun run = runs[e / kMmaTileTokens];
        const uint8_t* rec = recs + (e % kMmaTileTokens) * rb;
        const __half2 n2 = __float2half2_rn(grouped_norm_computed(rec + run.offset, run.kind, run.log2_step, run.log2_off));
        norms[e] = *reinterpret_cast<const uint32_t*>(&n2);
      }
    }
    // f(dec) with the decoder of the side's mode: dec(record j, j, words).
    template <class F>
    __device__ void visit(F&& f) const {
      if (paired) f(Decoder<true>{this});
      else f(Decoder<false>{this});
    }

    template <bool kPaired>
    struct Decoder {
      const Lane* l;
      // Coordinate i's single level: its code at bit i·bits of the window, as a byte offset.
      __device__ __forceinline__ uint32_t entry16(uint32_t win, int i, const Part& p) const {
        const uint32_t field = i == 0 ? win << 1 : win >> (i * p.bits - 1);
        return *reinterpret_cast<const uint16_t*>(l->lut + ((field & p.mask) | p.lut_off));
      }
      __device__ void operator()(const uint8_t* rec, int j, uint32_t (&hv)[C / 2]) const {
#pragma unroll
        for (int k = 0; k < kParts; ++k) {
          const Part& p = l->part[k];
          const uint32_t nw = l->norms[p.norm + j];
          const __half2 n2 = *reinterpret_cast<const __half2*>(&nw);
          const uint32_t win = bit_window(rec + p.code_off, p.bit);  // pairs: 2 bits early
#pragma unroll
          for (int c = 0; c < N / 2; ++c) {
            uint32_t w;
            if constexpr (kPaired)
              w = *reinterpret_cast<const uint32_t*>(l->lut + (((win >> (2 * c * p.bits)) & p.mask) | p.lut_off));
            else
              w = entry16(win, 2 * c, p) | entry16(win, 2 * c + 1, p) << 16;
            const __half2 x = __hmul2(*reinterpret_cast<const __half2*>(&w), n2);
            hv[k * N / 2 + c] = *reinterpret_cast<const uint32_t*>(&x);
          }
        }
      }
    };
  };
};

}  // namespace tq::cuda::detail
