/* turboquant C API (C99), CUDA part: the paged compressed KV cache in device memory
 * (tq::cuda::DeviceKvCache, cuda.h), fused quantize-on-write and split-K decode attention
 * over it. Same conventions as c_api.h (tq_status, tq_last_error(), outputs written only on
 * success, no call aborts); docs/C_API.md has a walk-through.
 *
 * - Every array argument is a device pointer (cudaMalloc'd memory, a torch CUDA tensor's
 *   data_ptr()); streams are cudaStream_t passed as void* (NULL: the default stream). No call
 *   copies through the host; quantize with check = 0 and decode launch work on the stream and
 *   return without waiting, so both can be captured in a CUDA graph.
 * - A library built without the CUDA backend (TQ_CUDA=OFF, no nvcc) still has every function:
 *   tq_cuda_available() returns 0 and every other call returns TQ_ERROR_LIBRARY with
 *   "built without CUDA" in tq_last_error().
 * - A tq_cuda_cache must be used by one host thread at a time.
 */
#ifndef TURBOQUANT_C_API_CUDA_H
#define TURBOQUANT_C_API_CUDA_H

#include "turboquant/c_api.h"

#ifdef __cplusplus
extern "C" {
#endif

/* 1 when the library has the CUDA backend and the CUDA runtime sees a device, else 0. */
int tq_cuda_available(void);

typedef enum tq_dtype { TQ_DTYPE_F32 = 0, TQ_DTYPE_F16 = 1, TQ_DTYPE_BF16 = 2 } tq_dtype;

typedef struct tq_cuda_cache tq_cuda_cache;

/* The device cache of `config` (n_threads is unused): per layer a K and a V pool of
 * ceil(max_tokens / block_tokens) blocks, block = [kv_head][token_in_block][record_bytes],
 * the bytes of the CPU cache (docs/FORMATS.md). Codecs the CUDA kernels do not implement
 * (prod/QJL rows) give TQ_ERROR_LIBRARY; a calibrated preset needs config->profile (c_api.h)
 * and, since it keeps sink tokens, positions and seq_ids in every quantize and decode. */
tq_status tq_cuda_cache_create(const tq_cache_config* config, tq_cuda_cache** cache);
void tq_cuda_cache_destroy(tq_cuda_cache* cache);
/* Blocks per pool, and bytes per record of `layer` for keys (kv = 0) or values (kv = 1). */
tq_status tq_cuda_cache_num_blocks(const tq_cuda_cache* cache, int* num_blocks);
tq_status tq_cuda_cache_record_bytes(const tq_cuda_cache* cache, int layer, int kv, size_t* record_bytes);
/* The device pointer and size of a layer's K (kv = 0) or V (kv = 1) pool. */
tq_status tq_cuda_cache_pool(tq_cuda_cache* cache, int layer, int kv, void** pool, size_t* bytes);

/* Quantize-on-write of n_tokens new tokens of one layer, keys and values in one launch.
 * k, v: [n_tokens][n_kv_heads][head_dim] of `dtype`, token rows token_stride elements apart
 * (0: dense). slots[i] = physical_block * block_tokens + position_in_block; negative skips
 * the token. positions / seq_ids ([n_tokens] each): the token's position in its sequence and
 * that sequence's id in [0, num_blocks), needed by a cache with attention sinks or keys in
 * RoPE frames (a calibrated preset), else may be NULL. check != 0: wait for the write and return
 * TQ_ERROR_LIBRARY naming layer, head, token and coordinate of a NaN/Inf input (that vector
 * is not written, the others are); check == 0: stay asynchronous, tq_cuda_check_writes()
 * reports later. kernel: which kernel writes (tq::cuda::QuantizeKernel): AUTO picks; TILED and
 * WARP write records byte-identical to the CPU codec's, TENSOR differs only at near-ties
 * (docs/CUDA.md, "Near-tie contract"); an explicit kernel that cannot write the codec is an
 * error naming both. */
typedef enum tq_cuda_quantize_kernel {
  TQ_CUDA_QUANTIZE_AUTO = 0,
  TQ_CUDA_QUANTIZE_TILED = 1,
  TQ_CUDA_QUANTIZE_WARP = 2,
  TQ_CUDA_QUANTIZE_TENSOR = 3
} tq_cuda_quantize_kernel;
typedef struct tq_cuda_quantize_params {
  int layer;
  const void* k;
  const void* v;
  tq_dtype dtype;
  int n_tokens;
  int64_t token_stride;
  const int32_t* slots;
  const int32_t* positions;
  const int32_t* seq_ids;
  void* stream;
  int check;
  tq_cuda_quantize_kernel kernel;
} tq_cuda_quantize_params;
/* Zeros and NULLs, f32, check = 1, kernel AUTO. Start from this: fields may be added later. */
tq_cuda_quantize_params tq_cuda_quantize_params_default(void);
tq_status tq_cuda_quantize(tq_cuda_cache* cache, const tq_cuda_quantize_params* params);
/* Waits for the device; TQ_ERROR_LIBRARY for the first NaN/Inf input an unchecked write refused. */
tq_status tq_cuda_check_writes(tq_cuda_cache* cache);

/* Decode attention: one query token per sequence. q: [batch][n_q_heads][head_dim] of
 * q_dtype, n_q_heads / n_kv_heads in {1, 2, 4, 8}; block_tables: [batch][max_blocks_per_seq]
 * physical block ids; seq_lens: [batch] token counts (<= max_seq_len; 0 gives zeros); out:
 * [batch][n_q_heads][head_dim] of out_dtype (default float32; f16/bf16 are written by the
 * kernel itself, no cast). scale 0 = 1/sqrt(head_dim). num_splits 0 picks the
 * split count from (batch, n_kv_heads, max_seq_len) only, so a step with a fixed max_seq_len
 * replays in a CUDA graph. workspace: device memory of tq_cuda_decode_workspace_bytes bytes.
 * seq_ids: [batch] sequence ids as written (sinks), needed only by a cache with sinks.
 * window: sliding window, 0 = none: row b's query at p = seq_lens[b] - 1 sees keys in
 * (p - window, p], as tq_attention_params.window (sink positions included). */
typedef struct tq_cuda_decode_params {
  int layer;
  const void* q;
  tq_dtype q_dtype;
  int batch;
  int n_q_heads;
  const int32_t* block_tables;
  int max_blocks_per_seq;
  const int32_t* seq_lens;
  int max_seq_len;
  float scale;
  int num_splits;
  void* out;
  void* workspace;
  size_t workspace_bytes;
  const int32_t* seq_ids;
  void* stream;
  int window;
  tq_dtype out_dtype;
} tq_cuda_decode_params;
tq_cuda_decode_params tq_cuda_decode_params_default(void);
/* What a decode of these shapes needs (the pointers in params are not read). */
tq_status tq_cuda_decode_workspace_bytes(const tq_cuda_cache* cache, const tq_cuda_decode_params* params,
                                         size_t* bytes);
tq_status tq_cuda_decode_num_splits(const tq_cuda_cache* cache, const tq_cuda_decode_params* params,
                                    int* num_splits);
tq_status tq_cuda_decode(const tq_cuda_cache* cache, const tq_cuda_decode_params* params);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TURBOQUANT_C_API_CUDA_H */
