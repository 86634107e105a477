#include "representative_layouts.h"

#include <sstream>
#include <vector>

#include "turboquant/codec.h"
#include "turboquant/error.h"
#include "turboquant/quantizers.h"

namespace tq::bench {

namespace {

struct Pair {
  const char* preset;
  const char* k;
  const char* v;
};

// SmolLM2-135M, layer 13, head_dim 64: groups as size@bits, every norm a log byte.
constexpr Pair kLayer13[] = {
    {"tq2.5", "8@5 24@3 32@1", "32@3 32@2"},
    {"tq3", "4@6 20@4 40@2", "16@4 48@3"},
    {"tq3.5", "4@6 16@5 24@3 20@2", "32@4 32@3"},
    {"tq4", "8@6 16@5 40@3", "16@5 48@4"},
};

const Pair* find_pair(const std::string& codec) {
  for (const Pair& p : kLayer13)
    if (codec == p.preset) return &p;
  return nullptr;
}

std::vector<QuantGroup> parse(const char* text, int scale) {
  std::vector<QuantGroup> groups;
  std::istringstream in(text);
  int size, bits;
  char at;
  while (in >> size >> at >> bits) groups.push_back({size * scale, bits, 8});
  return groups;
}

CalibratedSide side(const char* text, int head_dim, int heads) {
  if (head_dim % 64 != 0) throw Error("bench cpu: calibrated presets need a head_dim that is a multiple of 64");
  CalibratedSide s;
  s.groups = parse(text, head_dim / 64);
  s.maps.assign(heads, identity_affine_map(head_dim));
  return s;
}

}  // namespace

std::shared_ptr<const CalibratedCodecs> representative_calibrated(const std::string& codec, int head_dim,
                                                                  int n_layers, int n_kv_heads) {
  const Pair* p = find_pair(codec);
  if (!p) return nullptr;
  auto cc = std::make_shared<CalibratedCodecs>();
  cc->preset = find_preset(codec);
  const CalibratedSide k = side(p->k, head_dim, n_kv_heads), v = side(p->v, head_dim, n_kv_heads);
  cc->keys.assign(n_layers, k);
  cc->values.assign(n_layers, v);
  cc->bytes_per_token = static_cast<size_t>(n_layers) * n_kv_heads *
                        (GroupedMseQuantizer::layout_bytes(k.groups) + GroupedMseQuantizer::layout_bytes(v.groups));
  return cc;
}

std::string representative_layout_text(const std::string& codec) {
  const Pair* p = find_pair(codec);
  return p ? std::string("K ") + p->k + ", V " + p->v : "";
}

}  // namespace tq::bench
