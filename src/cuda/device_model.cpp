// DeviceModel (cuda_model.h): the forward pass of src/model/model.cpp on the device.
// One layer, for a chunk of rows (each row a token of some sequence at some position):
//   h = norm(x) (f16); [q|k|v] = h·Wqkv (+b), one product; [QK-norm], RoPE, [balance]
//   in one kernel; quantize_on_write(k, v); att = decode_attention(q) over each row's
//   causal prefix, written as f16; x += [post-norm](att·Wo); h = norm(x);
//   [g|u] = h·Wgu, one product; x += [post-norm](act(g) ⊙ u) · Wd
// Query heads are padded to decode_attention's group sizes in the weights themselves
// (HeadPadding), so no launch pads or unpads them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "cuda_check.h"
#include "model_gemm.h"
#include "model_ops.h"
#include "model_weights.h"
#include "model_weights_device.h"
#include "turboquant/cuda_model.h"
#include "turboquant/error.h"

namespace tq::cuda {

using detail::check_cuda;

namespace {

// Rows per pass through the layers, as the CPU runner's chunks: bounds the activation
// buffers (and Gemma's [rows][262144] logits) for long prompts.
constexpr int kChunkRows = 256;

// A device allocation that grows to the largest size asked for. A growth moves it, so it
// bumps *generation: captured decode graphs hold the old addresses and are rebuilt.
class DeviceArray {
 public:
  explicit DeviceArray(uint64_t* generation) : generation_(generation) {}
  ~DeviceArray() { cudaFree(p_); }
  DeviceArray(const DeviceArray&) = delete;
  DeviceArray& operator=(const DeviceArray&) = delete;
  template <class T>
  T* get(size_t count) {
    const size_t bytes = std::max<size_t>(count * sizeof(T), 1);
    if (bytes > bytes_) {
      cudaFree(p_);
      p_ = nullptr;
      bytes_ = 0;
      check_cuda(cudaMalloc(&p_, bytes), "cudaMalloc (model workspace)");
      bytes_ = bytes;
      ++*generation_;
    }
    return static_cast<T*>(p_);
  }

 private:
  uint64_t* generation_;
  void* p_ = nullptr;
  size_t bytes_ = 0;
};

// A decode step captured as a CUDA graph, valid for one cache and row count while the
// workspace stays where it was.
struct StepGraph {
  // The cache as the kernels saw it: a cache made later at the same address differs in
  // its pools, descriptors or codecs (DeviceModel::drop_graphs covers the rest).
  const DeviceKvCache* cache = nullptr;
  const void* impl = nullptr;
  const void* first_pool = nullptr;
  const void* last_pool = nullptr;
  std::string codecs;
  int rows = 0;
  uint64_t generation = 0;
  cudaGraphExec_t exec = nullptr;
};

// decode_attention's grouped-query kernels exist for 1, 2, 4 and 8 query heads per KV
// head; other groups (SmolLM2: 3) run padded with zero heads to the next one
// (HeadPadding: the weights hold the padding).
int padded_group(int group) {
  for (int g : {1, 2, 4, 8})
    if (group <= g) return g;
  throw Error("the CUDA runner supports up to 8 query heads per KV head, the model has " + std::to_string(group));
}

// θ_i = freq_scale · base^(−2i/rope_dim) / factor_i, in double as the CPU's table.
std::vector<double> rope_inv_freq(int rope_dim, float base, float freq_scale, const std::vector<float>& factors) {
  std::vector<double> f(rope_dim / 2);
  for (int i = 0; i < rope_dim / 2; ++i) {
    f[i] = freq_scale * std::pow(static_cast<double>(base), -2.0 * i / rope_dim);
    if (!factors.empty()) f[i] /= factors[i];
  }
  return f;
}

struct Row {
  int seq, pos;
};

}  // namespace

struct DeviceModel::Impl {
  ModelConfig c;
  cudaStream_t stream = nullptr;
  std::unique_ptr<DeviceWeights> w;
  std::unique_ptr<Gemm> gemm;
  int padded = 1;  // query heads per KV head, padded to a decode group size
  double* inv_freq_global = nullptr;  // device [rope_dim / 2]
  double* inv_freq_local = nullptr;
  float* balance = nullptr;           // device [n_layers][n_kv_heads][head_dim], null without
  bool balance_on = true;             // use_qk_balance
  // Workspace, grown to the largest chunk seen.
  uint64_t generation = 0;
  DeviceArray x{&generation}, qkv{&generation}, o{&generation}, gate_up{&generation}, h16{&generation},
      logits{&generation}, meta{&generation}, attn_ws{&generation};
  std::vector<int32_t> host_meta;
  bool graphs = false;
  std::vector<StepGraph> step_graphs;

  ~Impl() {
    drop_graphs();
    cudaFree(inv_freq_global);
    cudaFree(inv_freq_local);
    cudaFree(balance);
    gemm.reset();
    w.reset();
    if (stream) cudaStreamDestroy(stream);
  }

  template <class T>
  T* upload(const std::vector<T>& v) {
    void* p = nullptr;
    check_cuda(cudaMalloc(&p, std::max<size_t>(v.size() * sizeof(T), 1)), "cudaMalloc (model constants)");
    check_cuda(cudaMemcpy(p, v.data(), v.size() * sizeof(T), cudaMemcpyHostToDevice), "cudaMemcpy (model constants)");
    return static_cast<T*>(p);
  }

  void check_token(int32_t t) const {
    if (t < 0 || t >= c.vocab)
      throw Error("token id " + std::to_string(t) + " outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
  }

  void check_cache(const DeviceKvCache& cache) const {
    const KvCacheConfig& k = cache.config();
    if (k.n_layers != c.n_layers || k.n_kv_heads != c.n_kv_heads || k.head_dim != c.head_dim)
      throw Error("DeviceModel: the cache has " + std::to_string(k.n_layers) + " layers x " +
                  std::to_string(k.n_kv_heads) + " KV heads x " + std::to_string(k.head_dim) + ", the model " +
                  std::to_string(c.n_layers) + " x " + std::to_string(c.n_kv_heads) + " x " + std::to_string(c.head_dim));
  }

  void run_rows(const int32_t* tokens, const std::vector<Row>& rows, DeviceKvCache& cache,
                const DeviceSequences& seqs, int first_logit_row, float* logits_host, bool step);
  float* launch_layers(int n, const int32_t* d_meta, int max_blocks, int max_len, DeviceKvCache& cache,
                       int first_logit_row);
  StepGraph* find_graph(const DeviceKvCache& cache, int rows);
  void drop_graphs();
};

DeviceModel::DeviceModel(Model& model) : impl_(new Impl) {
  Impl& m = *impl_;
  m.c = model.config();
  const ModelConfig& c = m.c;
  if (!device_available()) throw Error("DeviceModel: no CUDA device is available");
  if (c.attn_softcap > 0.f)
    throw Error("the CUDA runner has no attention logit softcapping (" + c.name + " caps at " +
                std::to_string(c.attn_softcap) + "): decode_attention lacks it");
  if (!head_dim_supported(c.head_dim))
    throw Error("the CUDA kernels are not compiled for head size " + std::to_string(c.head_dim));
  const int group = c.n_heads / c.n_kv_heads;
  m.padded = padded_group(group);
  check_cuda(cudaStreamCreateWithFlags(&m.stream, cudaStreamNonBlocking), "cudaStreamCreate");
  m.w = std::make_unique<DeviceWeights>(model.weights(), c, HeadPadding{group, m.padded, c.head_dim}, model.pool());
  m.gemm = std::make_unique<Gemm>(m.stream);
  m.inv_freq_global = m.upload(rope_inv_freq(c.rope_dim, c.rope_base, c.rope_freq_scale, model.weights().rope_freqs));
  // Sliding layers: their own base, no position scaling and no divisors (model.cpp).
  m.inv_freq_local = m.upload(rope_inv_freq(c.rope_dim, c.rope_base_local, 1.0f, {}));
  const QkBalance& b = model.qk_balance();
  if (!b.empty()) {
    if (b.n_layers() != c.n_layers || b.n_kv_heads() != c.n_kv_heads || b.head_dim() != c.head_dim)
      throw Error("DeviceModel: the model's Q/K balance does not match its shape");
    std::vector<float> s;
    for (int il = 0; il < c.n_layers; ++il)
      for (int h = 0; h < c.n_kv_heads; ++h) s.insert(s.end(), b.scale(il, h), b.scale(il, h) + c.head_dim);
    m.balance = m.upload(s);
  }
}

DeviceModel::~DeviceModel() = default;

const ModelConfig& DeviceModel::config() const { return impl_->c; }
size_t DeviceModel::weight_bytes() const { return impl_->w->bytes; }
void DeviceModel::use_graphs(bool on) {
  impl_->graphs = on;
  if (!on) impl_->drop_graphs();
}
void DeviceModel::drop_graphs() { impl_->drop_graphs(); }

void DeviceModel::use_qk_balance(bool on) {
  if (impl_->balance_on == on) return;
  impl_->drop_graphs();  // captured with the other setting
  impl_->balance_on = on;
}

void DeviceModel::synchronize() const { check_cuda(cudaStreamSynchronize(impl_->stream), "cudaStreamSynchronize"); }

namespace {

StepGraph step_key(const DeviceKvCache& cache, int rows, uint64_t generation) {
  const KvCacheConfig& k = cache.config();
  return StepGraph{&cache,     &cache.impl(), cache.pool(0, 0), cache.pool(k.n_layers - 1, 1),
                   k.k_codec + "/" + k.v_codec + "/" + std::to_string(cache.num_blocks()), rows, generation, nullptr};
}

}  // namespace

StepGraph* DeviceModel::Impl::find_graph(const DeviceKvCache& cache, int rows) {
  const StepGraph key = step_key(cache, rows, generation);
  for (StepGraph& g : step_graphs)
    if (g.cache == key.cache && g.impl == key.impl && g.first_pool == key.first_pool && g.last_pool == key.last_pool &&
        g.codecs == key.codecs && g.rows == rows && g.generation == generation)
      return &g;
  return nullptr;
}

void DeviceModel::Impl::drop_graphs() {
  for (StepGraph& g : step_graphs) cudaGraphExecDestroy(g.exec);
  step_graphs.clear();
}

// `step` (a decode step with graphs on): the shapes the kernels see are the cache's
// whole capacity, fixed, so the step can be replayed as a graph; the first step of a
// shape runs directly (sizing the workspace), then is captured for the next ones.
void DeviceModel::Impl::run_rows(const int32_t* tokens, const std::vector<Row>& rows, DeviceKvCache& cache,
                                 const DeviceSequences& seqs, int first_logit_row, float* logits_host, bool step) {
  const int n = static_cast<int>(rows.size());
  const int bt = seqs.block_tokens();

  // Per-row metadata in one upload: tokens, positions, slots, lengths, sequence ids,
  // then the block tables [n][max_blocks].
  int max_blocks = 1, max_len = 0;
  for (const Row& r : rows) {
    max_blocks = std::max(max_blocks, static_cast<int>(seqs.blocks(r.seq).size()));
    max_len = std::max(max_len, r.pos + 1);
  }
  if (step) {
    max_blocks = cache.num_blocks();
    max_len = cache.num_blocks() * bt;
  }
  std::vector<int32_t>& h = host_meta;
  h.assign(static_cast<size_t>(n) * (5 + max_blocks), 0);
  int32_t *h_tok = h.data(), *h_pos = h_tok + n, *h_slot = h_pos + n, *h_len = h_slot + n, *h_seq = h_len + n;
  int32_t* h_tables = h_seq + n;
  for (int i = 0; i < n; ++i) {
    const std::vector<int32_t>& blocks = seqs.blocks(rows[i].seq);
    h_tok[i] = tokens[i];
    h_pos[i] = rows[i].pos;
    h_slot[i] = blocks.at(rows[i].pos / bt) * bt + rows[i].pos % bt;
    h_len[i] = rows[i].pos + 1;
    h_seq[i] = rows[i].seq;
    std::copy(blocks.begin(), blocks.end(), h_tables + static_cast<size_t>(i) * max_blocks);
  }
  int32_t* d_meta = meta.get<int32_t>(h.size());
  check_cuda(cudaMemcpyAsync(d_meta, h.data(), h.size() * sizeof(int32_t), cudaMemcpyHostToDevice, stream),
             "cudaMemcpyAsync (row metadata)");

  float* out = nullptr;
  if (!step) {
    out = launch_layers(n, d_meta, max_blocks, max_len, cache, first_logit_row);
  } else if (StepGraph* g = find_graph(cache, n)) {
    check_cuda(cudaGraphLaunch(g->exec, stream), "cudaGraphLaunch (decode step)");
    out = logits.get<float>(size_t(n - first_logit_row) * c.vocab);
  } else {
    out = launch_layers(n, d_meta, max_blocks, max_len, cache, first_logit_row);
    check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (before capture)");
    const uint64_t gen = generation;
    cudaGraph_t graph = nullptr;
    check_cuda(cudaStreamBeginCapture(stream, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      launch_layers(n, d_meta, max_blocks, max_len, cache, first_logit_row);
    } catch (...) {
      cudaStreamEndCapture(stream, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    check_cuda(cudaStreamEndCapture(stream, &graph), "cudaStreamEndCapture");
    if (generation != gen) {
      cudaGraphDestroy(graph);
      throw Error("DeviceModel: the workspace moved while a decode step was captured");
    }
    // Graphs of an older workspace can never match again.
    std::erase_if(step_graphs, [&](const StepGraph& old) {
      if (old.generation == gen) return false;
      cudaGraphExecDestroy(old.exec);
      return true;
    });
    StepGraph fresh = step_key(cache, n, gen);
    const cudaError_t st = cudaGraphInstantiate(&fresh.exec, graph, 0);
    cudaGraphDestroy(graph);
    check_cuda(st, "cudaGraphInstantiate (decode step)");
    step_graphs.push_back(std::move(fresh));
  }
  cache.check_writes();  // a refused NaN/Inf K or V row is a tq::Error here
  if (!out) return;
  check_cuda(cudaMemcpyAsync(logits_host, out, size_t(n - first_logit_row) * c.vocab * sizeof(float),
                             cudaMemcpyDeviceToHost, stream),
             "cudaMemcpyAsync (logits)");
  check_cuda(cudaStreamSynchronize(stream), "cudaStreamSynchronize (forward)");
}

// Every kernel of the rows' pass on `stream`, nothing that waits or allocates once the
// workspace has the size (so it can be captured). Returns the device logits, or null
// when no row wants them.
float* DeviceModel::Impl::launch_layers(int n, const int32_t* d_meta, int max_blocks, int max_len,
                                        DeviceKvCache& cache, int first_logit_row) {
  namespace ops = model_ops;
  const int D = c.dim, F = c.ffn_dim, hd = c.head_dim, KV = c.n_kv_heads;
  const int kv_dim = KV * hd, qp_heads = KV * padded, qp_dim = qp_heads * hd, W = qp_dim + 2 * kv_dim;
  const bool sinks = cache.config().sink_tokens > 0;
  const int32_t *d_tok = d_meta, *d_pos = d_tok + n, *d_slot = d_pos + n, *d_len = d_slot + n, *d_seq = d_len + n;
  const int32_t* d_tables = d_seq + n;

  float* X = x.get<float>(size_t(n) * D);
  float* QKV = qkv.get<float>(size_t(n) * W);  // row: [padded q | k | v]
  float* O = o.get<float>(size_t(n) * D);
  float* GU = gate_up.get<float>(size_t(n) * 2 * F);
  uint16_t* H = h16.get<uint16_t>(size_t(n) * std::max({D, qp_dim, F}));

  ops::embed_rows(w->tok_embd, D, d_tok, n, c.embed_scale, X, stream);
  for (int il = 0; il < c.n_layers; ++il) {
    const DeviceLayerWeights& L = w->layers[il];
    ops::rms_norm_f16(X, H, n, D, L.attn_norm, c.norm_eps, stream);
    gemm->nt(H, n, D, L.wqkv, W, QKV, W);
    if (L.bqkv) ops::add_bias(QKV, L.bqkv, n, W, stream);
    ops::QkPrepare qk;
    qk.n_q = qp_heads;
    qk.n_kv = KV;
    qk.head_dim = hd;
    if (c.qk_norm) {
      qk.q_norm = L.q_norm;
      qk.k_norm = L.k_norm;
    }
    qk.eps = c.norm_eps;
    qk.rope_dim = c.rope_dim;
    qk.positions = d_pos;
    qk.inv_freq = c.layer_sliding[il] ? inv_freq_local : inv_freq_global;
    qk.neox = c.rope_neox;
    if (balance && balance_on) qk.balance = balance + size_t(il) * kv_dim;
    ops::qk_prepare(QKV, n, W, qk, stream);

    QuantizeParams qp;
    qp.layer = il;
    qp.keys = QKV + qp_dim;
    qp.values = QKV + qp_dim + kv_dim;
    qp.token_stride = W;
    qp.dtype = DType::f32;
    qp.n_tokens = n;
    qp.slots = d_slot;
    qp.stream = stream;
    qp.check = false;  // checked once per call (check_writes below)
    qp.positions = d_pos;  // sinks and keys in RoPE frames read them
    if (sinks) qp.seq_ids = d_seq;
    quantize_on_write(cache, qp);

    DecodeParams dp;
    dp.layer = il;
    dp.queries = QKV;
    dp.queries_dtype = DType::f32;
    dp.query_stride = W;
    dp.batch = n;
    dp.n_q_heads = qp_heads;
    dp.block_tables = d_tables;
    dp.max_blocks_per_seq = max_blocks;
    dp.seq_lens = d_len;
    dp.max_seq_len = max_len;
    dp.scale = c.attn_scale;
    dp.window = c.layer_sliding[il] ? c.sliding_window : 0;  // per row: its own last tokens
    dp.out = H;  // the f16 rows the W_o product reads (padding heads: zero queries, weights)
    dp.out_dtype = DType::f16;
    dp.stream = stream;
    if (sinks) dp.seq_ids = d_seq;
    dp.workspace_bytes = decode_workspace_bytes(cache, dp);
    dp.workspace = attn_ws.get<uint8_t>(dp.workspace_bytes);
    decode_attention(cache, dp);

    // Without post-norms the products add straight into the residual (beta = 1).
    if (c.post_norms) {
      gemm->nt(H, n, qp_dim, L.wo, D, O, D);
      if (L.bo) ops::add_bias(O, L.bo, n, D, stream);
      ops::rms_norm_add(O, X, n, D, L.attn_post_norm, c.norm_eps, stream);
    } else {
      gemm->nt(H, n, qp_dim, L.wo, D, X, D, 1.f);
      if (L.bo) ops::add_bias(X, L.bo, n, D, stream);
    }

    ops::rms_norm_f16(X, H, n, D, L.ffn_norm, c.norm_eps, stream);
    gemm->nt(H, n, D, L.w_gate_up, 2 * F, GU, 2 * F);
    ops::glu_f16(GU, H, n, F, c.gelu, stream);
    if (c.post_norms) {
      gemm->nt(H, n, F, L.w_down, D, O, D);
      ops::rms_norm_add(O, X, n, D, L.ffn_post_norm, c.norm_eps, stream);
    } else {
      gemm->nt(H, n, F, L.w_down, D, X, D, 1.f);
    }
  }
  if (first_logit_row >= n) return nullptr;
  const int out_rows = n - first_logit_row;
  float* LG = logits.get<float>(size_t(out_rows) * c.vocab);
  ops::rms_norm_f16(X + size_t(first_logit_row) * D, H, out_rows, D, w->output_norm, c.norm_eps, stream);
  gemm->nt(H, out_rows, D, w->output, c.vocab, LG, c.vocab);
  if (c.final_softcap > 0.f) ops::softcap(LG, size_t(out_rows) * c.vocab, c.final_softcap, stream);
  return LG;
}

void DeviceModel::forward(const int32_t* tokens, int n, DeviceKvCache& cache, DeviceSequences& seqs, int seq,
                          float* logits, bool all_logits) {
  Impl& m = *impl_;
  const ModelConfig& c = m.c;
  if (n <= 0) throw Error("forward needs at least one token, got " + std::to_string(n));
  for (int i = 0; i < n; ++i) m.check_token(tokens[i]);
  m.check_cache(cache);
  for (int start = 0; start < n; start += kChunkRows) {
    const int rows_n = std::min(kChunkRows, n - start);
    const int p0 = seqs.length(seq);
    seqs.reserve(seq, rows_n);
    std::vector<Row> rows(rows_n);
    for (int i = 0; i < rows_n; ++i) rows[i] = {seq, p0 + i};
    const bool last = start + rows_n == n;
    // Logits for every row, or for the call's last token only.
    const int first = all_logits ? 0 : last ? rows_n - 1 : rows_n;
    float* out = all_logits ? logits + size_t(start) * c.vocab : logits;
    m.run_rows(tokens + start, rows, cache, seqs, first, out, m.graphs && n == 1);
    seqs.advance(seq, rows_n);
  }
}

void DeviceModel::decode_batch(const int32_t* tokens, const int* seq_ids, int batch, DeviceKvCache& cache,
                               DeviceSequences& seqs, float* logits) {
  Impl& m = *impl_;
  if (batch <= 0) throw Error("decode_batch needs at least one sequence, got " + std::to_string(batch));
  m.check_cache(cache);
  std::vector<Row> rows(batch);
  for (int i = 0; i < batch; ++i) {
    m.check_token(tokens[i]);
    for (int j = 0; j < i; ++j)
      if (seq_ids[j] == seq_ids[i]) throw Error("decode_batch: sequence " + std::to_string(seq_ids[i]) + " appears twice");
    rows[i] = {seq_ids[i], seqs.length(seq_ids[i])};
  }
  for (const Row& r : rows) seqs.reserve(r.seq, 1);
  m.run_rows(tokens, rows, cache, seqs, 0, logits, m.graphs);
  for (const Row& r : rows) seqs.advance(r.seq, 1);
}

}  // namespace tq::cuda
