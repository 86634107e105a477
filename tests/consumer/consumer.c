/* A tiny C99 program that uses an *installed* turboquant only through its public C API:
 * found with find_package(turboquant) (CMakeLists.txt here) or pkg-config (run.sh). It checks
 * an encode/decode round trip and attention over a small compressed cache, and exits
 * non-zero with a message on the first failed check. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turboquant/c_api.h>

#define CHECK(cond)                                                              \
  do {                                                                           \
    if (!(cond)) {                                                               \
      fprintf(stderr, "consumer: check failed at line %d: %s\n", __LINE__, #cond); \
      exit(1);                                                                   \
    }                                                                            \
  } while (0)
#define CHECK_OK(call)                                                                      \
  do {                                                                                      \
    tq_status s_ = (call);                                                                  \
    if (s_ != TQ_OK) {                                                                      \
      fprintf(stderr, "consumer: %s failed: %s: %s\n", #call, tq_status_name(s_), tq_last_error()); \
      exit(1);                                                                              \
    }                                                                                       \
  } while (0)

enum { D = 64, N = 8, KV_HEADS = 2, HEADS = 4, TOKENS = 16 };

static float frand(unsigned* state) { /* deterministic, no libc rand() state shared */
  *state = *state * 1664525u + 1013904223u;
  return (float)((*state >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

static void round_trip(void) {
  unsigned st = 1;
  float x[N * D], y[N * D];
  for (int i = 0; i < N * D; ++i) x[i] = frand(&st);
  tq_codec* codec = NULL;
  CHECK_OK(tq_codec_create("q8_0", D, 7, &codec));
  CHECK(tq_codec_dim(codec) == D);
  const size_t rb = tq_codec_record_bytes(codec);
  CHECK(rb == (size_t)D / 32 * 34); /* q8_0: per 32 coordinates an fp16 scale + 32 int8 */
  unsigned char* rec = malloc(N * rb);
  CHECK(rec != NULL);
  CHECK_OK(tq_codec_encode(codec, x, N, rec));
  CHECK_OK(tq_codec_decode(codec, rec, N, y));
  for (int i = 0; i < N * D; ++i) CHECK(fabsf(x[i] - y[i]) <= 1.0f / 127.0f + 1e-3f);
  free(rec);
  tq_codec_destroy(codec);

  /* Errors are codes with a message, never a crash. */
  CHECK(tq_codec_create("no_such_codec", D, 0, &codec) == TQ_ERROR_LIBRARY);
  CHECK(strstr(tq_last_error(), "no_such_codec") != NULL);
}

static void cache_attention(void) {
  tq_cache_config cfg = tq_cache_config_default();
  cfg.n_layers = 1;
  cfg.n_kv_heads = KV_HEADS;
  cfg.head_dim = D;
  cfg.k_codec = "turbo4";
  cfg.v_codec = "q8_0";
  cfg.block_tokens = 8;
  cfg.max_tokens = 64;
  tq_cache* cache = NULL;
  CHECK_OK(tq_cache_create(&cfg, &cache));
  int seq = -1;
  CHECK_OK(tq_cache_add_sequence(cache, &seq));

  /* All values of a head are the same vector v_h, so attention must return v_h (up to
   * q8_0's rounding, half a step of max|v_h|/127) whatever the compressed keys score. */
  static float k[TOKENS * KV_HEADS * D], v[TOKENS * KV_HEADS * D];
  unsigned st = 3;
  for (int t = 0; t < TOKENS; ++t)
    for (int h = 0; h < KV_HEADS; ++h)
      for (int i = 0; i < D; ++i) {
        k[(t * KV_HEADS + h) * D + i] = frand(&st);
        v[(t * KV_HEADS + h) * D + i] = (h + 1) * (i % 2 ? 0.5f : -0.25f);
      }
  CHECK_OK(tq_cache_append(cache, 0, seq, TOKENS, k, v));
  int len = 0;
  CHECK_OK(tq_cache_length(cache, 0, seq, &len));
  CHECK(len == TOKENS);

  float q[HEADS * D], out[HEADS * D];
  for (int i = 0; i < HEADS * D; ++i) q[i] = frand(&st);
  tq_attention_params p = {HEADS, 1.0f / sqrtf((float)D), 0, 0.0f};
  CHECK_OK(tq_cache_attend(cache, 0, seq, q, 1, len - 1, &p, out));
  for (int h = 0; h < HEADS; ++h) {
    const int kvh = h / (HEADS / KV_HEADS);
    for (int i = 0; i < D; ++i) {
      const float want = (kvh + 1) * (i % 2 ? 0.5f : -0.25f);
      CHECK(fabsf(out[h * D + i] - want) < 0.01f);
    }
  }
  /* A query past the end of the sequence is refused with a message. */
  CHECK(tq_cache_attend(cache, 0, seq, q, 1, len, &p, out) == TQ_ERROR_LIBRARY);
  CHECK(tq_last_error()[0] != '\0');
  tq_cache_destroy(cache);
}

int main(void) {
  CHECK(tq_api_version() == TQ_API_VERSION);
  printf("turboquant %s (C API %d), %d codecs\n", tq_version(), tq_api_version(), tq_codec_count());
  round_trip();
  cache_attention();
  printf("consumer: all checks passed\n");
  return 0;
}
