#pragma once
// Arguments shared by the decode-attention kernels (prepare, the two split kernels,
// reduce), passed by value as one __grid_constant__ parameter.
#include <cstdint>

#include "device_desc.h"
#include "turboquant/cache_plan.h"

namespace tq::cuda::detail {

struct DecodeArgs {
  CodecDesc kc, vc;
  const RotationDesc* krot;
  const RotationDesc* vrot;
  const uint8_t* kpool;
  const uint8_t* vpool;
  int64_t kblock_bytes, vblock_bytes;
  const void* queries;
  int64_t query_stride;  // elements between rows' queries (DecodeParams::query_stride, resolved)
  int queries_dtype;
  float q_scale;  // softmax scale * log2(e): the kernels work in base 2
  // [q_frames][batch][n_q][D]: the prepared queries, one set per RoPE frame of the keys
  // (q_frames = 1 without frames); a tile of keys at positions in frame f (tiles never
  // straddle one) is scored with set f, q_frame_floats = batch·n_q·D floats on.
  float* q_rot;
  FrameDesc frames;  // the keys' (range 0: none); the prepare kernel turns queries with it
  int q_frames;
  int64_t q_frame_floats;
  // Keys in frames: [q_frames][batch][n_q] scale·log2(e)·(q_f·μ), the affine map's
  // constant of each frame's query q_f (Codec::prepare_query), added to that frame's
  // scores: constant over a row's keys without frames (and left out), not across frames.
  float* q_bias;
  const int32_t* block_tables;
  int max_blocks;
  const int32_t* seq_lens;
  int n_kv, group, block_tokens, num_splits;
  int v_slices;  // CTAs per query head of the reduce kernel: D/64 for a dense V rotation, else 1
  // Sliding window (DecodeParams::window): 0 none, else row b sees positions
  // [seq_lens[b] - window, seq_lens[b]) (clamped at 0).
  int window;
  int block_shift;  // log2(block_tokens) when a power of two, else -1
  // Sinks: positions < sink_tokens of sequence seq_ids[b] read these f32 code-space rows.
  const float* sink_k;
  const float* sink_v;
  const int32_t* seq_ids;
  int sink_tokens, sink_seqs;
  float* part_o;
  float* part_lse;
  void* out;
  int out_dtype;  // DType as int, like queries_dtype
};

// The tensor-core split kernel (decode_mma.cu): keys and values both uniform-width mse
// codes of `bits` in {2, 3, 4} with one shared codebook. Returns 0 when it does not apply.
int mma_decode_bits(const CodecDesc& k, const CodecDesc& v);
constexpr int kMmaWarps = 4;
constexpr int kMmaTileTokens = 16;  // tokens per warp step
// CTAs of that kernel one SM holds at once (cached per configuration).
int mma_resident_ctas(int d, int bits, int group, int rbk, int rbv);
// mma_cluster_cap of that kernel as a single launch.
int mma_single_cap(int d, int bits, int group, int rb);
// How a tensor-core split kernel gets its queries and leaves its result:
// - prepared: reads the prepare kernel's q_rot (launched behind it with PDL) and writes
//   part_o / part_lse for the reduce kernel (three launches);
// - direct_queries: keys without a rotation; reads the queries straight from
//   DecodeArgs::queries once its first copies are in flight (no prepare launch, q_rot
//   unused; launched with PDL, it waits for the stream's previous kernel before reading
//   anything) and writes part_o / part_lse (two launches);
// - single (DecodeLaunch::single): rotates its queries and merges the splits in its
//   cluster, launched as clusters of num_splits CTAs (one launch; q_rot, part_o and
//   part_lse unused).
enum class SplitLaunch : int { prepared = 0, direct_queries = 1, single = 2 };
void launch_decode_mma(const DecodeArgs& a, int d, int bits, int batch, SplitLaunch mode, void* stream);
// Raises a tensor-core kernel's dynamic shared-memory limit to `bytes` where it is lower
// (per device) and sets the carveout: with static tables the total can pass 48 KB when
// the dynamic part does not.
void ensure_mma_smem(const void* kernel, int bytes);
// CTAs of a tensor-core kernel of `threads` threads (the decode kernels' 4 warps unless
// given) one SM holds with `smem` dynamic bytes, after ensure_mma_smem (cached per device,
// kernel, size and block: the query costs host time on every step).
int mma_occupancy(const void* kernel, int smem, int threads = kMmaWarps * 32);
// The dynamic shared memory one block may opt in to on the current device.
int max_block_smem();
// Launches a tensor-core split kernel over (num_splits, n_kv, batch) with `smem` dynamic
// bytes: as clusters of num_splits CTAs when single, else behind the stream's previous
// kernel (PDL: the prepare kernel, or for direct queries whatever ran before, which the
// kernel waits for before its first read).
void launch_mma_split(void (*kernel)(DecodeArgs), int smem, const DecodeArgs& a, int batch, SplitLaunch mode,
                      void* stream, const char* name);
// The largest cluster of that kernel with `smem` dynamic bytes the device runs (16 where
// the non-portable size fits, else the portable 8); 0 before compute capability 9.0.
int mma_cluster_cap(void (*kernel)(DecodeArgs), int smem);

// The tile tensor-core split kernel (decode_mma_grouped.cu) for calibrated (grouped) keys
// and values, or f16 / q8_0 / q4_0 records of one kind on both sides; sinks included.
bool mma_grouped_applies(const CodecDesc& k, const CodecDesc& v);
bool mma_plain_applies(const CodecDesc& k, const CodecDesc& v);
int mma_tile_resident_ctas(const CodecDesc& k, const CodecDesc& v, int d, int group);
int mma_tile_single_cap(const CodecDesc& k, const CodecDesc& v, int d, int group);
void launch_decode_mma_tile(const DecodeArgs& a, int d, int batch, SplitLaunch mode, void* stream);

// The decode kernel a layer's codecs take under DecodeKernel::auto_ (decode_attention.cu):
// calibrated pairs and f16 / q8_0 / q4_0 pairs of one kind (sinks included) the tile
// tensor-core kernel, uniform-width mse pairs without sinks the uniform one, else the SIMT
// kernel. DeviceKvCache resolves it once per
// layer into its plan (CacheLayerPlan::cuda_decode).
CudaDecodeRoute resolve_decode_route(const CodecDesc& k, const CodecDesc& v, int sink_tokens);

}  // namespace tq::cuda::detail
