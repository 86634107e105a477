/* turboquant C API (C99): the codec table, vector encode/decode with a named codec, and the
 * CPU paged KV cache with attention read from the compressed records, save and load.
 * docs/C_API.md has a walk-through; this header is the reference.
 *
 * Conventions
 * - Every call that can fail returns a tq_status: TQ_OK (0) or an error code. On an error,
 *   tq_last_error() gives a message that names the call and what was wrong; it is kept per
 *   thread and stays valid until the next failing call on that thread. Outputs are written
 *   only on success, so a failed call leaves the caller's buffers and the handle as they were.
 * - No call aborts the process or lets a C++ exception out: every failure is a status.
 * - Handles (tq_codec, tq_cache) are opaque; *_destroy(NULL) is a no-op. A tq_codec may be
 *   used from several threads at once; a tq_cache must be used by one thread at a time.
 * - Arrays are dense, row-major float32 in host memory. "records" are the codec's bytes,
 *   record_bytes per vector, laid out as docs/FORMATS.md describes.
 * - Versioning: TQ_API_VERSION is the version of this header; tq_api_version() is the
 *   version the library was built with. A program should check they are equal. The version
 *   changes whenever a function or struct in this header changes.
 */
#ifndef TURBOQUANT_C_API_H
#define TURBOQUANT_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TQ_API_VERSION 4

typedef enum tq_status {
  TQ_OK = 0,
  TQ_ERROR_ARGUMENT = 1, /* a NULL pointer, a negative count or an index out of range */
  TQ_ERROR_LIBRARY = 2,  /* the library refused the request: unknown codec, bad dimension,
                            pool full, NaN/Inf input, unreadable or corrupt file, ... */
  TQ_ERROR_MEMORY = 3,   /* an allocation failed */
  TQ_ERROR_INTERNAL = 4  /* anything else (a bug: please report the message) */
} tq_status;

/* ---- Version and errors ---- */

int tq_api_version(void);                    /* TQ_API_VERSION of the library */
const char* tq_version(void);                /* library version, e.g. "0.1.0" */
const char* tq_last_error(void);             /* this thread's last error message, "" if none */
const char* tq_status_name(tq_status status); /* "TQ_OK", "TQ_ERROR_ARGUMENT", ... */

/* ---- The codec table ---- */

/* Number of codecs; their indices are 0 .. count-1, in the order `tq codecs` lists them. */
int tq_codec_count(void);
/* Name ("f16", "q8_0", "turbo3", ...) and one-line summary of codec `index`. The strings are
 * static: never freed, valid for the life of the process. */
tq_status tq_codec_name(int index, const char** name);
tq_status tq_codec_summary(int index, const char** summary);
/* Exact sizes of codec `name` at head dimension `dim`: bytes per encoded vector (everything
 * included: norms, scales, codes) and bits per coordinate (8 * record_bytes / dim). Either
 * output may be NULL. TQ_ERROR_LIBRARY when the codec does not exist or cannot handle `dim`
 * (e.g. q8_0 needs a multiple of 32). */
tq_status tq_codec_sizes(const char* name, int dim, size_t* record_bytes, double* bits_per_coord);

/* ---- Encoding and decoding vectors ---- */

typedef struct tq_codec tq_codec;

/* Codec `name` for vectors of `dim` floats; `seed` chooses the random rotation (the same
 * seed gives the same codec, in every process). */
tq_status tq_codec_create(const char* name, int dim, uint64_t seed, tq_codec** codec);
void tq_codec_destroy(tq_codec* codec);
int tq_codec_dim(const tq_codec* codec);
size_t tq_codec_record_bytes(const tq_codec* codec);
/* x: n vectors of dim floats -> records: n * record_bytes bytes. TQ_ERROR_LIBRARY on a NaN or
 * Inf coordinate (nothing is written then). A zero vector decodes to zero. */
tq_status tq_codec_encode(const tq_codec* codec, const float* x, size_t n, uint8_t* records);
/* records: n * record_bytes bytes -> x: n vectors of dim floats. */
tq_status tq_codec_decode(const tq_codec* codec, const uint8_t* records, size_t n, float* x);

/* ---- Calibration profiles ---- */

/* A model's calibration profile: the statistics the calibrated presets (tq2.5, tq3, tq3.5,
 * tq4) build their per-layer, per-head codecs from. `tq calibrate --model M` writes one (also
 * made and kept by `tq eval` / `tq run`; docs/FORMATS.md, "Calibration profile"). A profile
 * may be shared by several caches and threads; it may be destroyed once the caches that
 * need it are created or loaded (they keep the codecs built from it, not the handle). */
typedef struct tq_profile tq_profile;

/* Reads a profile file. A missing, truncated or corrupt file gives TQ_ERROR_LIBRARY naming
 * the problem. */
tq_status tq_profile_load(const char* path, tq_profile** profile);
void tq_profile_destroy(tq_profile* profile);
/* The shapes it was measured on (a cache built from it must have them). Outputs may be NULL. */
tq_status tq_profile_shape(const tq_profile* profile, int* n_layers, int* n_kv_heads, int* head_dim);

/* ---- The CPU paged KV cache ---- */

typedef struct tq_cache tq_cache;

typedef struct tq_cache_config {
  int n_layers;
  int n_kv_heads;
  int head_dim;
  const char* k_codec; /* codec of the keys, every layer (copied at create) */
  const char* v_codec; /* codec of the values */
  int block_tokens;    /* tokens per page */
  int max_tokens;      /* capacity over all sequences, rounded up to whole pages */
  uint64_t seed;       /* per layer/head rotations derive from it */
  int n_threads;       /* threads for append and attend: 1 = the caller only, 0 = all cores */
  /* Since API version 2. A calibrated preset ("tq3", ...) as k_codec or v_codec (one preset
   * per cache) needs the model's profile: its codecs are built from it at create, for
   * sequences of about `context` tokens (RoPE averaged over them; 0 = max_tokens), and the
   * cache keeps the preset's leading sink tokens exact. Unused (may be NULL) otherwise. */
  const tq_profile* profile;
  int context;
} tq_cache_config;

/* The defaults: f16 keys and values, 32-token pages, 4096 tokens, seed 0, one thread, no
 * profile, context 0; the shapes are 0 and must be set. Fields may be added in a later API version, so start from
 * this rather than from an initializer list. */
tq_cache_config tq_cache_config_default(void);

tq_status tq_cache_create(const tq_cache_config* config, tq_cache** cache);
void tq_cache_destroy(tq_cache* cache);
/* The configuration; the codec name strings belong to the cache (valid until destroy).
 * `profile` comes back NULL (the cache does not keep the handle); `context` is the one its
 * preset codecs were built for (0 without a preset). */
tq_status tq_cache_get_config(const tq_cache* cache, tq_cache_config* config);

/* A new, empty sequence; its id is the smallest unused one. */
tq_status tq_cache_add_sequence(tq_cache* cache, int* seq);
tq_status tq_cache_remove_sequence(tq_cache* cache, int seq);
/* Ids of the live sequences, ascending: writes min(count, capacity) ids to `ids` (which may
 * be NULL when capacity is 0) and the total to *count. */
tq_status tq_cache_sequences(const tq_cache* cache, int* ids, int capacity, int* count);
/* Tokens stored for `seq` in `layer`. */
tq_status tq_cache_length(const tq_cache* cache, int layer, int seq, int* length);
/* Bytes per token over all layers, K + V, and bytes of the pages in use. Either may be NULL. */
tq_status tq_cache_bytes(const tq_cache* cache, size_t* bytes_per_token, size_t* bytes_used);

/* Quantize on write: k, v are [n_tokens][n_kv_heads][head_dim] floats, appended to `seq` in
 * `layer` after its current length. TQ_ERROR_LIBRARY when the pool is full or on NaN/Inf;
 * both are checked before anything is written. */
tq_status tq_cache_append(tq_cache* cache, int layer, int seq, int n_tokens, const float* k,
                          const float* v);

typedef struct tq_attention_params {
  int n_heads;   /* query heads; a multiple of n_kv_heads (grouped-query attention) */
  float scale;   /* score scale, usually 1/sqrt(head_dim) */
  int window;    /* sliding window, 0 = none: a query at p sees keys in (p - window, p] */
  float softcap; /* 0 = off; else scores -> softcap * tanh(scores / softcap) */
} tq_attention_params;

/* Causal attention over the compressed records of `seq` in `layer`, without decoding them to
 * f16 first. q, out: [n_q][n_heads][head_dim]; query i is at position q_pos0 + i, and the
 * queries must lie inside the sequence (q_pos0 + n_q <= length). For one decode step after
 * appending the current token: n_q = 1, q_pos0 = length - 1. */
tq_status tq_cache_attend(const tq_cache* cache, int layer, int seq, const float* q, int n_q,
                          int q_pos0, const tq_attention_params* params, float* out);

/* Save the whole cache (configuration + every sequence, bit-exact) to `path`. An existing
 * file is replaced (atomically) only when `overwrite` is non-zero. */
tq_status tq_cache_save(const tq_cache* cache, const char* path, int overwrite);
/* A new cache with the file's configuration and sequences (under their saved ids). The file
 * carries no thread count: the new cache runs on `n_threads` (1 = the caller only, 0 = all
 * cores). A truncated, corrupt or foreign file gives TQ_ERROR_LIBRARY naming the problem. */
tq_status tq_cache_load(const char* path, int n_threads, tq_cache** cache);
/* The same for a file of a calibrated preset cache: its codecs are built again from
 * `profile` with the options the file records, and the file must name this profile
 * (TQ_ERROR_LIBRARY otherwise, with both hashes). `profile` may be NULL for other files;
 * tq_cache_load of a preset file is TQ_ERROR_LIBRARY saying to use this call. */
tq_status tq_cache_load_profile(const char* path, const tq_profile* profile, int n_threads, tq_cache** cache);

#ifdef __cplusplus
} /* extern "C" */
#endif

#endif /* TURBOQUANT_C_API_H */
