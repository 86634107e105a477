// Printing an EvalReport: terminal table, JSON, and the BENCHMARKS.md section.
#include <cmath>
#include <cstdio>
#include <sstream>

#include "turboquant/codec.h"
#include "turboquant/eval.h"
#include "turboquant/quant_traits.h"

namespace tq {

namespace {

std::string fmt(const char* f, double x) {
  char b[64];
  std::snprintf(b, sizeof b, f, x);
  return b;
}

std::string passkey_cell(const CodecResult& r) {
  return r.passkey.empty() ? "-" : std::to_string(r.passkey_found) + "/" + std::to_string(r.passkey.size());
}

bool has_attention(const CodecResult& r) { return !r.attention.empty(); }

// The code width a plan's codecs share, a fact scripts/eval_goals.py grades by: the codec
// row's bits where they are a code width per coordinate (quant_traits: Lloyd–Max, QJL,
// group codes) and K and V agree (layer overrides aside); 0 for baselines and mixed widths.
int code_bits(const CachePlan& p) {
  auto bits = [](const std::string& name) {
    const CodecSpec* s = find_codec(name);
    if (!s || !quant_traits(s->quant).code_width) return 0;
    return s->bits_lo && s->bits_lo != s->bits ? 0 : s->bits;
  };
  const int k = bits(p.k_codec), v = bits(p.v_codec);
  return k == v ? k : 0;
}

std::string json_str(const std::string& s) {
  std::string o = "\"";
  for (unsigned char c : s) {
    if (c == '"' || c == '\\') o += '\\', o += static_cast<char>(c);
    else if (c == '\n') o += "\\n";
    else if (c < 0x20) o += fmt("\\u%04x", c);
    else o += static_cast<char>(c);
  }
  return o + "\"";
}

std::string json_num(double x) { return std::isfinite(x) ? fmt("%.8g", x) : "null"; }

}  // namespace

std::string eval_table(const EvalReport& rep) {
  std::ostringstream o;
  const auto& m = rep.model;
  o << "model " << m.name << " (" << m.arch << ", " << m.n_layers << " layers, " << m.n_kv_heads
    << " KV heads of " << m.head_dim << ")   text: " << rep.text_source << "\n"
    << rep.options.windows << " windows x " << rep.options.ctx << " tokens ("
    << rep.rows[0].tokens << " predictions per codec), K/V quantized on write during prefill; key transform: "
    << m.key_transform << "; forward passes on " << m.device << "; " << rep.seconds << " s\n\n";
  char line[512];
  std::snprintf(line, sizeof line, "%-22s %5s %7s %5s %9s %8s %8s %6s %7s %12s %6s %6s %7s %8s %7s\n",
                "codec (K/V)", "bits", "B/tok", "x", "PPL", "dPPL%", "KL", "top1", "attn", "worst", "atop1",
                "atop5", "passkey", "prefill", "decode");
  o << line;
  for (const auto& r : rep.rows) {
    const bool a = has_attention(r);
    char worst[48] = "-";
    if (a)
      std::snprintf(worst, sizeof worst, "L%dh%d %.3f", r.attn_worst_layer, r.attn_worst_head,
                    r.attn_cosine_min);
    std::snprintf(line, sizeof line,
                  "%-22s %5.2f %7.0f %5.2f %9.4f %+8.3f %8.5f %6.3f %7s %12s %6s %6s %7s %8.1f %7.1f\n",
                  r.label.c_str(), r.bits_per_value, r.bytes_per_token, r.compression, r.ppl, r.dppl_pct,
                  r.kl, r.top1, a ? fmt("%.4f", r.attn_cosine).c_str() : "-",
                  worst, a ? fmt("%.3f", r.attn_top1).c_str() : "-",
                  a ? fmt("%.3f", r.attn_top5).c_str() : "-", passkey_cell(r).c_str(), r.prefill_tps,
                  r.decode_tps);
    o << line;
  }
  o << "\n" << eval_timing(rep);
  o << "\nbits: K+V bits per value incl. norms/scales; x: compression vs f16; KL: mean KL(f16 || codec)"
       " of next-token distributions; top1: argmax agreement with f16; attn: cosine of attention outputs"
       " vs f16 on the model's own Q/K/V (mean; worst layer/head); atop1/atop5: f16's most-attended token"
       " is the codec's first / in its top 5; prefill/decode: tokens/s.\n";
  return o.str();
}

std::string eval_timing(const EvalReport& rep) {
  const EvalPhases& p = rep.phases;
  std::ostringstream o;
  o << "time: " << fmt("%.1f", rep.seconds) << " s = setup " << fmt("%.1f", p.setup_s) << " + windows "
    << fmt("%.1f", p.windows_s) << " + attention fidelity " << fmt("%.1f", p.attention_s) << " + passkey "
    << fmt("%.1f", p.passkey_s) << "; per codec (windows/attention/passkey s):";
  for (const auto& r : rep.rows)
    o << " " << r.label << " " << fmt("%.1f", r.windows_s) << "/" << fmt("%.1f", r.attention_s) << "/"
      << fmt("%.1f", r.passkey_s);
  o << "\n";
  return o.str();
}

std::string eval_json(const EvalReport& rep) {
  std::ostringstream o;
  const auto& m = rep.model;
  const auto& op = rep.options;
  o << "{\n  \"model\": {\"name\": " << json_str(m.name) << ", \"arch\": " << json_str(m.arch)
    << ", \"n_layers\": " << m.n_layers << ", \"n_heads\": " << m.n_heads << ", \"n_kv_heads\": "
    << m.n_kv_heads << ", \"head_dim\": " << m.head_dim << ", \"vocab\": " << m.vocab
    << ", \"context\": " << m.context << ", \"key_transform\": " << json_str(m.key_transform)
    << ", \"device\": " << json_str(m.device) << "},\n";
  o << "  \"text\": " << json_str(rep.text_source) << ",\n  \"ctx\": " << op.ctx << ", \"windows\": "
    << op.windows << ", \"decode_tail\": " << op.decode_tail << ", \"attention_queries\": "
    << op.attention_queries << ", \"seed\": " << op.seed << ", \"seconds\": " << json_num(rep.seconds)
    << ",\n  \"phases\": {\"setup_s\": " << json_num(rep.phases.setup_s) << ", \"windows_s\": "
    << json_num(rep.phases.windows_s) << ", \"attention_s\": " << json_num(rep.phases.attention_s)
    << ", \"passkey_s\": " << json_num(rep.phases.passkey_s) << "},\n  \"rows\": [\n";
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    const auto& r = rep.rows[i];
    o << "    {\"label\": " << json_str(r.label) << ", \"k\": " << json_str(r.plan.k_codec) << ", \"v\": "
      << json_str(r.plan.v_codec) << ", \"layer_codecs\": {";
    bool first = true;
    for (const auto& [layer, kv] : r.plan.layer_codecs) {
      o << (first ? "" : ", ") << "\"" << layer << "\": [" << json_str(kv.first) << ", "
        << json_str(kv.second) << "]";
      first = false;
    }
    o << "}, \"code_bits\": " << code_bits(r.plan) << ", \"bits_per_value\": " << json_num(r.bits_per_value)
      << ", \"bytes_per_token\": " << json_num(r.bytes_per_token) << ", \"compression\": " << json_num(r.compression)
      << ", \"cache_bytes\": " << r.cache_bytes << ", \"tokens\": " << r.tokens << ", \"ppl\": "
      << json_num(r.ppl) << ", \"dppl_pct\": " << json_num(r.dppl_pct) << ", \"kl\": " << json_num(r.kl)
      << ", \"top1\": " << json_num(r.top1) << ", \"prefill_tps\": " << json_num(r.prefill_tps)
      << ", \"decode_tps\": " << json_num(r.decode_tps) << ", \"windows_s\": " << json_num(r.windows_s)
      << ", \"attention_s\": " << json_num(r.attention_s) << ", \"passkey_s\": " << json_num(r.passkey_s);
    if (has_attention(r)) {
      o << ", \"attention\": {\"cosine\": " << json_num(r.attn_cosine) << ", \"cosine_min\": "
        << json_num(r.attn_cosine_min) << ", \"worst_layer\": " << r.attn_worst_layer
        << ", \"worst_head\": " << r.attn_worst_head << ", \"top1\": " << json_num(r.attn_top1)
        << ", \"top5\": " << json_num(r.attn_top5) << ", \"per_layer_head_cosine\": [";
      for (size_t l = 0; l < r.attention.size(); ++l) {
        o << (l ? ", " : "") << "[";
        for (size_t h = 0; h < r.attention[l].size(); ++h)
          o << (h ? ", " : "") << json_num(r.attention[l][h].cosine);
        o << "]";
      }
      o << "]}";
    }
    o << ", \"passkey\": {\"found\": " << r.passkey_found << ", \"trials\": [";
    for (size_t t = 0; t < r.passkey.size(); ++t) {
      const auto& p = r.passkey[t];
      o << (t ? ", " : "") << "{\"length\": " << p.length << ", \"depth\": " << json_num(p.depth)
        << ", \"key\": " << json_str(p.key) << ", \"answer\": " << json_str(p.answer)
        << ", \"found\": " << (p.found ? "true" : "false") << ", \"margin\": " << json_num(p.margin) << "}";
    }
    o << "]}}" << (i + 1 < rep.rows.size() ? "," : "") << "\n";
  }
  o << "  ]\n}\n";
  return o.str();
}

std::string eval_markdown(const EvalReport& rep, const std::string& header) {
  std::ostringstream o;
  const auto& m = rep.model;
  o << "### " << m.name << " (" << m.arch << ", " << m.n_layers << " layers, " << m.n_kv_heads
    << " KV heads × " << m.head_dim << ")\n\n" << header << "\n"
    << "Text: " << rep.text_source << "; " << rep.options.windows << " windows × " << rep.options.ctx
    << " tokens (" << rep.rows[0].tokens << " scored predictions per codec); K/V quantized on write, prefill included; key transform: "
    << m.key_transform << "; forward passes on " << m.device << ".\n\n"
    << "| codec (K/V) | bits/value | bytes/token | vs f16 | PPL | ΔPPL | KL | top-1 | attn cos (worst L/h) | attn top-1 / top-5 | passkey | prefill tok/s | decode tok/s |\n"
    << "|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|---:|\n";
  for (const auto& r : rep.rows) {
    const bool a = has_attention(r);
    const char* none = &r == &rep.rows[0] ? "ref" : "-";  // "-": not measured (calibrated presets)
    o << "| " << r.label << " | " << fmt("%.2f", r.bits_per_value) << " | " << fmt("%.0f", r.bytes_per_token)
      << " | " << fmt("%.2f×", r.compression) << " | " << fmt("%.4f", r.ppl) << " | "
      << fmt("%+.3f%%", r.dppl_pct) << " | " << fmt("%.5f", r.kl) << " | " << fmt("%.3f", r.top1) << " | "
      << (a ? fmt("%.4f", r.attn_cosine) + " (" + fmt("%.3f", r.attn_cosine_min) + " L" +
                  std::to_string(r.attn_worst_layer) + "h" + std::to_string(r.attn_worst_head) + ")"
            : none)
      << " | " << (a ? fmt("%.3f", r.attn_top1) + " / " + fmt("%.3f", r.attn_top5) : none) << " | "
      << passkey_cell(r) << " | " << fmt("%.1f", r.prefill_tps) << " | " << fmt("%.1f", r.decode_tps)
      << " |\n";
  }
  return o.str();
}

}  // namespace tq
