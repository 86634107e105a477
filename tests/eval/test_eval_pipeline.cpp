// The whole `tq eval` pipeline on a tiny fake model: every code path the real run
// takes (chunked prefill, decode tail, capture, attention fidelity, passkey, output).
#include <gtest/gtest.h>

#include <algorithm>
#include <functional>
#include <thread>
#include <vector>

#include "fake_model.h"
#include "turboquant/error.h"
#include "turboquant/eval.h"

namespace tq {
namespace {

std::string prose() {
  std::string s;
  for (int p = 0; p < 40; ++p) {
    s += "paragraph " + std::to_string(p) +
         ": it is a truth universally acknowledged, that a single man in possession of a good "
         "fortune, must be in want of a wife.\n\n";
  }
  return s;
}

TEST(EvalPipeline, PlanLabelsAndSizes) {
  CachePlan p{"turbo3", "turbo3", {{0, {"q8_0", "q8_0"}}, {5, {"q8_0", "q8_0"}}}};
  EXPECT_EQ(p.label(), "turbo3 +q8_0@0,5");
  EXPECT_EQ((CachePlan{"turbo4", "v3g32", {}}).label(), "turbo4/v3g32");
  EXPECT_TRUE(CachePlan{}.is_f16());
  // q8_0 at d=64: 2 blocks of (2 + 32) bytes; f16: 128 bytes; K and V, 3 layers, 2 heads.
  EXPECT_EQ(plan_bytes_per_token(CachePlan{"q8_0", "q8_0", {}}, 3, 2, 64), 3u * 2 * 2 * 68);
  EXPECT_EQ(plan_bytes_per_token(CachePlan{"q8_0", "f16", {{1, {"f16", "f16"}}}}, 3, 2, 64),
            2u * (2 * (68 + 128)) + 2 * 256);
  EXPECT_THROW(plan_bytes_per_token(CachePlan{"nosuch", "f16", {}}, 1, 1, 64), Error);
}

TEST(EvalPipeline, PlansFromTheCommandLine) {
  const auto defaults = make_plans({}, {}, {}, {}, "q8_0", 30);
  ASSERT_EQ(defaults.size(), default_eval_codecs().size());
  EXPECT_EQ(defaults[3].label(), "turbo3");
  for (const auto& name : default_eval_codecs())
    EXPECT_NE(std::find(all_eval_codecs().begin(), all_eval_codecs().end(), name), all_eval_codecs().end())
        << name << ": --all holds every default codec";
  EXPECT_EQ(defaults.back().label(), "tq4.25") << "the calibrated presets are in the default list";
  const auto cross = make_plans({}, {"turbo3", "turbo4"}, {"v3g32"}, {}, "q8_0", 30);
  ASSERT_EQ(cross.size(), 2u);
  EXPECT_EQ(cross[1].label(), "turbo4/v3g32");
  EXPECT_EQ(make_plans({}, {"turbo3"}, {}, {}, "q8_0", 30)[0].label(), "turbo3/f16");
  EXPECT_EQ(make_plans({}, {}, {"turbo3"}, {}, "q8_0", 30)[0].label(), "f16/turbo3");
  const auto keep = make_plans({"f16", "rht3"}, {}, {}, {0, -1}, "q8_0", 30);
  EXPECT_TRUE(keep[0].is_f16());  // the reference is never altered
  EXPECT_EQ(keep[1].label(), "rht3 +q8_0@0,29");
  EXPECT_THROW(make_plans({"rht3"}, {}, {}, {30}, "q8_0", 30), Error);
  EXPECT_THROW(make_plans({"rht3"}, {}, {}, {-31}, "q8_0", 30), Error);
  EXPECT_THROW(make_plans({"rht3"}, {}, {}, {0}, "q9", 30), Error);
  EXPECT_THROW(make_plans({"rht9"}, {}, {}, {}, "q8_0", 30), Error);
  EXPECT_THROW(make_plans({"rht3"}, {"rht3"}, {}, {}, "q8_0", 30), Error);
}

TEST(EvalPipeline, WindowsStartWithBosAndAreEvenlySpaced) {
  testing::FakeModel model;
  const auto w = make_windows(model, prose(), 50, 3);
  ASSERT_EQ(w.size(), 3u);
  for (const auto& win : w) {
    ASSERT_EQ(win.size(), 50u);
    EXPECT_EQ(win[0], 0);
  }
  EXPECT_NE(w[0], w[1]);
  EXPECT_THROW(make_windows(model, "too short", 50, 1), Error);
  EXPECT_THROW(make_windows(model, prose(), 1, 1), Error);
}

TEST(EvalPipeline, EndToEndOnAFakeModel) {
  testing::FakeModel model(/*context=*/320);
  EvalOptions opt;
  opt.plans = {CachePlan{}, CachePlan{"q8_0", "q8_0", {}}, CachePlan{"turbo2", "turbo2", {}},
               CachePlan{"turbo2", "turbo2", {{0, {"q8_0", "q8_0"}}}}, CachePlan{"turbo2", "f16", {}}};
  opt.ctx = 400;  // clamped to the model's context
  opt.windows = 2;
  opt.decode_tail = 4;
  opt.attention_queries = 3;
  opt.passkey_lengths = {300};
  opt.passkey_depths = {0.5};
  opt.passkey_answer_tokens = 3;
  size_t last_done = 0, last_total = 0;
  const EvalReport rep = run_eval(model, prose(), opt, [&](size_t done, size_t total, const std::string&) {
    EXPECT_GE(done, last_done);
    last_done = done;
    last_total = total;
  });
  EXPECT_EQ(last_done, last_total);
  EXPECT_EQ(rep.options.ctx, 320);
  ASSERT_EQ(rep.rows.size(), 5u);  // the f16 plan is the reference row, not a second row
  const auto& f16 = rep.rows[0];
  EXPECT_EQ(f16.label, "f16");
  EXPECT_EQ(f16.tokens, 2u * 319);
  EXPECT_EQ(f16.kl, 0.0);
  EXPECT_EQ(f16.dppl_pct, 0.0);
  EXPECT_EQ(f16.top1, 1.0);
  EXPECT_EQ(f16.compression, 1.0);
  EXPECT_DOUBLE_EQ(f16.bits_per_value, 16.0);
  EXPECT_TRUE(f16.attention.empty());
  EXPECT_GT(f16.ppl, 1.0);
  EXPECT_GT(f16.prefill_tps, 0.0);
  EXPECT_GT(f16.decode_tps, 0.0);
  // Two layers × two KV heads × (K+V) × 320 tokens of 128-byte f16 records.
  EXPECT_EQ(f16.cache_bytes, 2u * 2 * 2 * 320 * 128);

  const auto& q8 = rep.rows[1];
  const auto& t2 = rep.rows[2];
  const auto& t2keep = rep.rows[3];
  const auto& t2k = rep.rows[4];
  EXPECT_EQ(t2keep.label, "turbo2 +q8_0@0");
  EXPECT_DOUBLE_EQ(q8.bits_per_value, 8.5);
  EXPECT_NEAR(q8.compression, 16.0 / 8.5, 1e-12);
  for (const auto* r : {&q8, &t2, &t2keep, &t2k}) {
    EXPECT_EQ(r->tokens, f16.tokens);
    EXPECT_GE(r->kl, 0.0);
    ASSERT_EQ(r->attention.size(), 2u);
    ASSERT_EQ(r->attention[0].size(), 4u);
    EXPECT_EQ(r->attention[0][0].queries, 3);
    EXPECT_GE(r->attn_worst_layer, 0);
    EXPECT_LE(r->attn_cosine_min, r->attn_cosine);
    ASSERT_EQ(r->passkey.size(), 1u);
    EXPECT_EQ(r->passkey[0].key, f16.passkey[0].key);
  }
  // Precision orders the damage: q8_0 ≪ turbo2 keys only < turbo2 K and V.
  EXPECT_LT(q8.kl, t2.kl);
  EXPECT_LT(t2k.kl, t2.kl);
  EXPECT_GT(q8.attn_cosine, t2.attn_cosine);
  EXPECT_GT(t2.kl, 1e-4);
  EXPECT_GT(std::abs(t2.dppl_pct), 0.0);
  // Keeping layer 0 at q8_0 spends bits (and in this model also buys quality on layer 0).
  EXPECT_GT(t2keep.bits_per_value, t2.bits_per_value);
  EXPECT_GT(t2keep.attention[0][0].cosine, t2.attention[0][0].cosine);

  // Where the time went: every phase and every plan's share of it.
  const EvalPhases& ph = rep.phases;
  EXPECT_GT(ph.windows_s, 0.0);
  EXPECT_GT(ph.attention_s, 0.0);
  EXPECT_GT(ph.passkey_s, 0.0);
  EXPECT_LE(ph.setup_s + ph.windows_s + ph.attention_s + ph.passkey_s, rep.seconds * (1 + 1e-9));
  double attention_shares = 0;
  for (const auto& r : rep.rows) {
    EXPECT_GT(r.windows_s, 0.0) << r.label;
    EXPECT_GT(r.passkey_s, 0.0) << r.label;
    attention_shares += r.attention_s;
  }
  EXPECT_EQ(f16.attention_s, 0.0);
  EXPECT_NEAR(attention_shares, ph.attention_s, 1e-9);

  const std::string table = eval_table(rep);
  EXPECT_NE(table.find("turbo2 +q8_0@0"), std::string::npos);
  EXPECT_NE(table.find("time: "), std::string::npos);
  EXPECT_NE(table.find(" + passkey "), std::string::npos);
  const std::string json = eval_json(rep);
  EXPECT_NE(json.find("\"label\": \"turbo2/f16\""), std::string::npos);
  EXPECT_NE(json.find("\"per_layer_head_cosine\""), std::string::npos);
  EXPECT_NE(json.find("\"phases\": {\"setup_s\": "), std::string::npos);
  EXPECT_NE(json.find("\"passkey_s\": "), std::string::npos);
  // The code width the goals script grades by: turbo2 on both sides is 2-bit, q8_0 none.
  EXPECT_NE(json.find("\"k\": \"turbo2\", \"v\": \"turbo2\", \"layer_codecs\": {}, \"code_bits\": 2,"), std::string::npos);
  EXPECT_NE(json.find("\"k\": \"q8_0\", \"v\": \"q8_0\", \"layer_codecs\": {}, \"code_bits\": 0,"), std::string::npos);
  EXPECT_EQ(std::count(json.begin(), json.end(), '{'), std::count(json.begin(), json.end(), '}'));
  const std::string md = eval_markdown(rep, "Command: `tq eval`\n");
  EXPECT_NE(md.find("| q8_0 | 8.50 |"), std::string::npos);
  EXPECT_NE(md.find("Command: `tq eval`"), std::string::npos);
  EXPECT_EQ(md.find("oal"), std::string::npos);  // grading is scripts/eval_goals.py's, not the report's
}

// parallel_for's tasks on threads of their own, started last to first: the pipeline's
// parallel parts (reference distributions, comparisons, attention fidelity per layer)
// must give the serial run's numbers exactly.
class ThreadedFakeModel : public testing::FakeModel {
 public:
  using FakeModel::FakeModel;
  void parallel_for(int n, const std::function<void(int)>& fn) override {
    std::vector<std::thread> threads;
    for (int i = n - 1; i >= 0; --i) threads.emplace_back(fn, i);
    for (auto& t : threads) t.join();
    ++calls;
  }
  int calls = 0;
};

TEST(EvalPipeline, ParallelPartsGiveTheSerialNumbers) {
  EvalOptions opt;
  opt.plans = {CachePlan{"q8_0", "q8_0", {}}, CachePlan{"turbo2", "turbo3", {}}};
  opt.ctx = 260;
  opt.windows = 2;
  opt.decode_tail = 3;
  opt.attention_queries = 4;
  opt.passkey_lengths = {260};
  opt.passkey_depths = {0.5};
  testing::FakeModel serial_model(300);
  ThreadedFakeModel threaded_model(300);
  const EvalReport serial = run_eval(serial_model, prose(), opt);
  const EvalReport threaded = run_eval(threaded_model, prose(), opt);
  EXPECT_GT(threaded_model.calls, 0);
  ASSERT_EQ(serial.rows.size(), threaded.rows.size());
  for (size_t r = 0; r < serial.rows.size(); ++r) {
    const CodecResult& a = serial.rows[r];
    const CodecResult& b = threaded.rows[r];
    EXPECT_EQ(a.tokens, b.tokens);
    EXPECT_EQ(a.ppl, b.ppl) << a.label;
    EXPECT_EQ(a.kl, b.kl) << a.label;
    EXPECT_EQ(a.top1, b.top1) << a.label;
    EXPECT_EQ(a.attn_cosine, b.attn_cosine) << a.label;
    EXPECT_EQ(a.attn_worst_layer, b.attn_worst_layer) << a.label;
    EXPECT_EQ(a.passkey_found, b.passkey_found) << a.label;
  }
  EXPECT_GT(threaded.rows[2].kl, threaded.rows[1].kl);  // turbo2/turbo3 loses more than q8_0
}

TEST(EvalPipeline, UnknownCodecIsAnErrorThatNamesIt) {
  testing::FakeModel model;
  EvalOptions opt;
  opt.plans = {CachePlan{"turbo9", "f16", {}}};
  opt.ctx = 16;
  opt.windows = 1;
  try {
    run_eval(model, prose(), opt);
    FAIL() << "expected tq::Error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("turbo9"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace tq
