#pragma once
// The start of a decode split CTA, shared by the CUDA-core and tensor-core kernels: which
// tiles of the sequence this CTA and this warp take, and where the sequence's sink rows
// lie in the sink store.
#include <cstdint>

#include "decode_args.h"

namespace tq::cuda::detail {

// Tiles [tb, te) of tile_tokens tokens belong to split `split` of sequence b; warp w of
// n_warps takes tiles tb + w, tb + w + n_warps, ... (my_count of them). With a window the
// splits share the tiles from the one holding the window's first position `lo`: no
// split reads a record of an earlier tile, and only that first tile holds positions
// below lo, which the kernels mask. Without one lo = 0 and the split is as it always was.
struct SplitWork {
  int seq_len, lo, tb, te, my_count;
};

__device__ inline SplitWork split_work(const DecodeArgs& a, int b, int split, int warp, int n_warps,
                                       int tile_tokens) {
  SplitWork w;
  w.seq_len = a.seq_lens[b];
  w.lo = a.window > 0 ? max(0, w.seq_len - a.window) : 0;
  const int first = w.lo / tile_tokens;
  const int n_tiles = (w.seq_len + tile_tokens - 1) / tile_tokens;
  const int per_split = (n_tiles - first + a.num_splits - 1) / a.num_splits;
  w.tb = first + split * per_split;
  w.te = min(w.tb + per_split, n_tiles);
  w.my_count = w.te - w.tb > warp ? (w.te - w.tb - warp + n_warps - 1) / n_warps : 0;
  return w;
}

// The query set of position tok's RoPE frame (DecodeArgs::q_rot), for a layer whose keys are
// in frames (a.frames.range > 0). The sets cover positions below DecodeParams::max_seq_len;
// the clamp keeps a sequence that breaks that contract inside the workspace.
__device__ inline int frame_of(const DecodeArgs& a, int tok) { return min(tok / a.frames.range, a.q_frames - 1); }

// Sink rows of sequence b and KV head h: position p's float `first` (the lane's first
// coordinate) at store + row + p·n_kv·D, for positions < count (0: no sinks, or a
// sequence id outside the store).
struct SinkRows {
  int count = 0;
  int64_t row = 0;
};

__device__ inline SinkRows sink_rows_of(const DecodeArgs& a, int b, int h, int D, int first) {
  SinkRows s;
  if (a.sink_tokens > 0) {
    const int seq = a.seq_ids[b];
    if (seq >= 0 && seq < a.sink_seqs) {
      s.count = a.sink_tokens;
      s.row = (static_cast<int64_t>(seq) * a.sink_tokens * a.n_kv + h) * D + first;
    }
  }
  return s;
}

}  // namespace tq::cuda::detail
