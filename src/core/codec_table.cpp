// The codec table: every cache codec a user can name. Adding a codec is one row here
// (plus a quantizer if its record layout is new).
#include <string>

#include "turboquant/codec.h"
#include "turboquant/quant_traits.h"

namespace tq {

namespace {

using Q = QuantKind;
using R = RotationKind;

CodecSpec mse(std::string_view name, R rot, int bits, std::string_view summary,
              bool corrected = false, int bits_lo = 0) {
  return {name, Q::mse, rot, bits, bits_lo ? bits_lo : bits, 0, corrected, summary};
}

// Built on first use, not at static initialization: tests instantiate their suites from
// codec_table() during static initialization of other translation units.
const std::vector<CodecSpec>& table_rows() {
  static const std::vector<CodecSpec> rows = {
      {"f16", Q::f16, R::none, 16, 0, 0, false, "fp16 per coordinate (the reference cache)"},
      {"q8_0", Q::q8_0, R::none, 8, 0, 0, false, "llama.cpp q8_0: 32-blocks, fp16 scale + int8"},
      {"q4_0", Q::q4_0, R::none, 4, 0, 0, false, "llama.cpp q4_0: 32-blocks, fp16 scale + 4-bit"},
      {"q8_0h", Q::q8_0, R::rht, 8, 0, 0, false, "q8_0 behind a randomized Hadamard rotation"},
      {"q4_0h", Q::q4_0, R::rht, 4, 0, 0, false, "q4_0 behind a randomized Hadamard rotation (upstream llama.cpp default)"},
      {"fp8", Q::fp8, R::none, 8, 0, 0, false,
       "OCP FP8 E4M3, the serving engines' fp8 cache; fp16 scale max|x|/448 per vector (not calibrated per head)"},
      mse("turbo1", R::dense, 1, "TurboQuant_mse, dense Haar rotation, 1-bit Lloyd–Max"),
      mse("turbo2", R::dense, 2, "TurboQuant_mse, dense Haar rotation, 2-bit Lloyd–Max"),
      mse("turbo3", R::dense, 3, "TurboQuant_mse, dense Haar rotation, 3-bit Lloyd–Max"),
      mse("turbo4", R::dense, 4, "TurboQuant_mse, dense Haar rotation, 4-bit Lloyd–Max"),
      mse("turbo2c", R::dense, 2, "turbo2 storing the corrected norm ‖x‖/‖c[idx]‖", true),
      mse("turbo3c", R::dense, 3, "turbo3 storing the corrected norm ‖x‖/‖c[idx]‖", true),
      mse("turbo4c", R::dense, 4, "turbo4 storing the corrected norm ‖x‖/‖c[idx]‖", true),
      mse("turbo2.5", R::dense, 3, "dense rotation, half the coordinates at 3 bits, half at 2", false, 2),
      mse("turbo3.5", R::dense, 4, "dense rotation, half the coordinates at 4 bits, half at 3", false, 3),
      {"turbo2p", Q::prod, R::dense, 2, 0, 0, false, "TurboQuant_prod: 1-bit Lloyd–Max + 1-bit QJL residual"},
      {"turbo3p", Q::prod, R::dense, 3, 0, 0, false, "TurboQuant_prod: 2-bit Lloyd–Max + 1-bit QJL residual"},
      {"turbo4p", Q::prod, R::dense, 4, 0, 0, false, "TurboQuant_prod: 3-bit Lloyd–Max + 1-bit QJL residual"},
      mse("rht2", R::rht, 2, "TurboQuant+: randomized Hadamard rotation, 2-bit Lloyd–Max"),
      mse("rht3", R::rht, 3, "TurboQuant+: randomized Hadamard rotation, 3-bit Lloyd–Max"),
      mse("rht4", R::rht, 4, "TurboQuant+: randomized Hadamard rotation, 4-bit Lloyd–Max"),
      mse("rht3c", R::rht, 3, "rht3 storing the corrected norm", true),
      mse("rht4c", R::rht, 4, "rht4 storing the corrected norm", true),
      mse("rotor2", R::rotor3, 2, "RotorQuant: Cl(3,0) rotors on 3-dim chunks, 2-bit"),
      mse("rotor3", R::rotor3, 3, "RotorQuant: Cl(3,0) rotors on 3-dim chunks, 3-bit"),
      mse("rotor4", R::rotor3, 4, "RotorQuant: Cl(3,0) rotors on 3-dim chunks, 4-bit"),
      mse("iso2", R::quat4, 2, "IsoQuant: full SO(4) quaternion pairs on 4-dim chunks, 2-bit"),
      mse("iso3", R::quat4, 3, "IsoQuant: full SO(4) quaternion pairs on 4-dim chunks, 3-bit"),
      mse("iso4", R::quat4, 4, "IsoQuant: full SO(4) quaternion pairs on 4-dim chunks, 4-bit"),
      mse("iso3f", R::quat4_left, 3, "IsoQuant fast: one-sided quaternion on 4-dim chunks, 3-bit"),
      mse("planar2", R::givens2, 2, "PlanarQuant: Givens rotation per pair, 2-bit"),
      mse("planar3", R::givens2, 3, "PlanarQuant: Givens rotation per pair, 3-bit"),
      mse("planar4", R::givens2, 4, "PlanarQuant: Givens rotation per pair, 4-bit"),
      mse("sq3", R::none, 3, "no rotation, 3-bit Lloyd–Max (shows what the rotation buys)"),
      mse("sq4", R::none, 4, "no rotation, 4-bit Lloyd–Max"),
      {"v2g32", Q::group, R::none, 2, 0, 32, false, "group-asymmetric values: 2-bit, groups of 32"},
      {"v3g16", Q::group, R::none, 3, 0, 16, false, "group-asymmetric values: 3-bit, groups of 16"},
      {"v3g32", Q::group, R::none, 3, 0, 32, false, "group-asymmetric values: 3-bit, groups of 32 (TurboQuant+)"},
      {"v3g64", Q::group, R::none, 3, 0, 64, false, "group-asymmetric values: 3-bit, groups of 64"},
      {"v4g32", Q::group, R::none, 4, 0, 32, false, "group-asymmetric values: 4-bit, groups of 32"},
      {"v3g32h", Q::group, R::rht, 3, 0, 32, false, "v3g32 behind a randomized Hadamard rotation"},
  };
  return rows;
}

// Calibrated presets: bits and K/V split per layer come from the model's profile.
CodecSpec preset(std::string_view name, double budget, std::string_view summary) {
  CodecSpec s{name, Q::grouped, R::none, 0, 0, 0, true, summary};
  s.budget_bits = budget;
  return s;
}

const std::vector<CodecSpec>& preset_rows() {
  static const std::vector<CodecSpec> rows = {
      preset("tq2.5", 2.5, "calibrated: whitened, importance-ordered groups with water-filled widths, 2.5 bits/value"),
      preset("tq3", 3.0, "calibrated: whitened, importance-ordered groups with water-filled widths, 3 bits/value"),
      preset("tq3.5", 3.5, "calibrated: whitened, importance-ordered groups with water-filled widths, 3.5 bits/value"),
      preset("tq4", 4.0, "calibrated: whitened, importance-ordered groups with water-filled widths, 4 bits/value"),
      preset("tq4.25", 4.25, "calibrated: whitened, importance-ordered groups with water-filled widths, 4.25 bits/value"),
  };
  return rows;
}

template <class Table>
const CodecSpec* find_in(const Table& t, std::string_view name) {
  for (const auto& c : t)
    if (c.name == name) return &c;
  return nullptr;
}

template <class Table>
std::string names_of(const Table& t) {
  std::string s;
  for (const auto& c : t) {
    if (!s.empty()) s += ' ';
    s += c.name;
  }
  return s;
}

}  // namespace

const std::vector<CodecSpec>& preset_table() { return preset_rows(); }
const CodecSpec* find_preset(std::string_view name) { return find_in(preset_rows(), name); }
std::string preset_names() { return names_of(preset_rows()); }

const std::vector<CodecSpec>& codec_table() { return table_rows(); }

const CodecSpec* find_codec(std::string_view name) { return find_in(table_rows(), name); }
std::string codec_names() { return names_of(table_rows()); }

std::string_view quant_name(QuantKind kind) { return quant_traits(kind).name; }

}  // namespace tq
