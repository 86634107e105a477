#include "turboquant/eval_model.h"

#include "turboquant/attention.h"
#include "turboquant/error.h"
#include "turboquant/kv_cache.h"
#include "turboquant/kv_profile.h"
#include "turboquant/kv_profile_store.h"
#include "turboquant/model.h"
#include "turboquant/thread_pool.h"

namespace tq {

namespace {

class ModelCache : public EvalCache {
 public:
  explicit ModelCache(const KvCacheConfig& cfg) : cache(cfg), seq(cache.add_sequence()), calibrated(cfg.calibrated) {}
  int length() const override { return cache.length(0, seq); }
  size_t bytes_used() const override { return cache.bytes_used(); }  // the only sequence
  size_t bytes_per_token() const override { return cache.bytes_per_token(); }
  size_t sink_bytes() const override { return cache.sink_bytes(); }
  KvCache cache;
  int seq;
  bool calibrated;  // its calibrated codecs take the keys as the model makes them (no Q/K balance)
};

// A cache on an EvalDevice, with what the forward pass needs to know of its codecs.
class DeviceCache : public EvalCache {
 public:
  DeviceCache(std::unique_ptr<EvalCache> c, bool calibrated) : inner(std::move(c)), calibrated(calibrated) {}
  int length() const override { return inner->length(); }
  size_t bytes_used() const override { return inner->bytes_used(); }
  size_t bytes_per_token() const override { return inner->bytes_per_token(); }
  size_t sink_bytes() const override { return inner->sink_bytes(); }
  std::unique_ptr<EvalCache> inner;
  bool calibrated;
};

// ForwardObserver -> QkvObserver.
struct ObserverBridge : ForwardObserver {
  explicit ObserverBridge(QkvObserver* o) : target(o) {}
  void on_qkv(int layer, int pos0, int n, const float* q, const float* k, const float* v) override {
    target->on_qkv(layer, pos0, n, q, k, v);
  }
  QkvObserver* target;
};

class ModelEval : public EvalModel {
 public:
  explicit ModelEval(std::unique_ptr<Model> m) : model_(std::move(m)) {
    const ModelConfig& c = model_->config();
    const Tokenizer& tok = model_->tokenizer();
    info_.name = c.name;
    info_.arch = c.arch;
    info_.n_layers = c.n_layers;
    info_.n_heads = c.n_heads;
    info_.n_kv_heads = c.n_kv_heads;
    info_.head_dim = c.head_dim;
    info_.vocab = c.vocab;
    info_.context = c.context;
    info_.bos = tok.add_bos_default() ? tok.bos() : -1;
    info_.eos = tok.eos();
    for (int l = 0; l < c.n_layers; ++l) {
      const AttentionParams p = model_->attention_params(l);
      info_.attention.push_back({p.n_heads, c.n_kv_heads, c.head_dim, p.scale, p.window, p.softcap});
    }
  }
  const EvalModelInfo& info() const override { return info_; }
  void set_key_transform(std::string what) { info_.key_transform = std::move(what); }
  std::vector<int32_t> encode(const std::string& text) const override {
    return model_->tokenizer().encode(text, false);
  }
  std::string decode(const std::vector<int32_t>& ids) const override {
    return model_->tokenizer().decode(ids);
  }
  std::unique_ptr<EvalCache> new_cache(const CachePlan& plan, int max_tokens, uint64_t seed) override {
    KvCacheConfig cfg = model_->cache_config(plan.k_codec, plan.v_codec, max_tokens);
    cfg.layer_codecs = plan.layer_codecs;
    cfg.seed = seed;
    CalibrationOptions opt;
    opt.context = max_tokens;  // the RoPE average and the sink share depend on the cache length
    if (granule_ > 0) opt.granule = granule_;
    attach_preset_codecs(cfg, profile_.get(), opt, "this model has no calibration profile (tq eval --profile FILE)",
                         &presets_);
    if (device_) return std::make_unique<DeviceCache>(device_->new_cache(cfg), cfg.calibrated != nullptr);
    return std::make_unique<ModelCache>(cfg);
  }
  void forward(const int32_t* tokens, int n, EvalCache& cache, float* logits, bool all_logits,
               QkvObserver* obs) override {
    if (device_) {
      if (obs)
        throw Error("eval on " + device_->name() +
                    ": attention fidelity reads the CPU runner's q/k/v (run it with 0 attention queries)");
      auto& c = static_cast<DeviceCache&>(cache);
      device_->forward(tokens, n, *c.inner, logits, all_logits, !c.calibrated);
      return;
    }
    auto& c = static_cast<ModelCache&>(cache);
    ObserverBridge bridge(obs);
    if (!c.calibrated) {
      model_->forward(tokens, n, c.cache, c.seq, logits, all_logits, obs ? &bridge : nullptr);
      return;
    }
    const QkBalancePause pause(*model_);  // the calibrated codecs carry their own key transform
    model_->forward(tokens, n, c.cache, c.seq, logits, all_logits, obs ? &bridge : nullptr);
  }
  void parallel_for(int n, const std::function<void(int)>& fn) override { model_->pool().parallel_for(n, fn); }
  void set_profile(KvProfile p) {
    profile_ = std::make_shared<KvProfile>(std::move(p));
    presets_ = {};  // built from the previous profile
  }
  void set_granule(int granule) { granule_ = granule; }
  void set_device(std::unique_ptr<EvalDevice> d) {
    device_ = std::move(d);
    info_.device = device_->name();
  }
  Model& model() { return *model_; }

 private:
  std::unique_ptr<Model> model_;
  EvalModelInfo info_;
  std::shared_ptr<const KvProfile> profile_;
  PresetCodecsMemo presets_;  // per preset and cache length
  int granule_ = 0;           // 0: CalibrationOptions' default
  std::unique_ptr<EvalDevice> device_;  // null: the CPU runner
};

}  // namespace

std::unique_ptr<EvalModel> make_eval_model(std::unique_ptr<Model> model) {
  return std::make_unique<ModelEval>(std::move(model));
}

std::unique_ptr<EvalModel> load_eval_model(const std::string& name_or_path, int threads, bool qk_balance,
                                           const ProfileRequest& profile) {
  const std::string path = resolve_model_path(name_or_path);
  auto model = Model::load(path, threads);
  const int tokens = qk_balance ? model->enable_qk_balance() : 0;
  auto eval = make_eval_model(std::move(model));
  if (profile.wanted) {
    auto& me = static_cast<ModelEval&>(*eval);
    me.set_profile(load_or_calibrate_profile(me.model(), path, profile.path, profile.log));
    me.set_granule(profile.granule);
  }
  if (qk_balance) {
    static_cast<ModelEval&>(*eval).set_key_transform("Q/K balance (calibrated on " + std::to_string(tokens) +
                                                     " built-in tokens)");
  }
  return eval;
}

void run_eval_on(EvalModel& model, const std::function<std::unique_ptr<EvalDevice>(Model&)>& make) {
  auto* me = dynamic_cast<ModelEval*>(&model);
  if (!me) throw Error("run_eval_on: the model was not made by make_eval_model or load_eval_model");
  me->set_device(make(me->model()));
}

}  // namespace tq
