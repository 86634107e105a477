#include "validate.h"

#include "commands.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>

#include "turboquant/codec.h"
#include "turboquant/error.h"

namespace tq::cli {

namespace fs = std::filesystem;

void check_codec(const std::string& option, const std::string& name, bool presets) {
  if (find_codec(name) || (presets && find_preset(name))) return;
  if (find_preset(name))
    throw Error("--" + option + ": '" + name + "' is a calibrated preset, built per model: this command takes "
                "codecs of the table only: " + codec_names());
  throw Error("--" + option + ": unknown codec '" + name + "'; valid codecs: " + codec_names() +
              (presets ? "; calibrated presets: " + preset_names() : std::string()));
}

void check_codecs(const std::string& option, const std::vector<std::string>& names, bool presets) {
  for (const auto& n : names) check_codec(option, n, presets);
}

void check_readable_file(const std::string& option, const std::string& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error("--" + option + ": '" + path + "' does not exist");
  if (!fs::is_regular_file(path, ec)) throw Error("--" + option + ": '" + path + "' is not a regular file");
  if (::access(path.c_str(), R_OK) != 0) throw Error("--" + option + ": '" + path + "' is not readable");
}

void check_writable_path(const std::string& option, const std::string& path) {
  std::error_code ec;
  if (path.empty()) throw Error("--" + option + ": empty path");
  if (fs::is_directory(path, ec)) throw Error("--" + option + ": '" + path + "' is a directory");
  const fs::path dir = fs::path(path).parent_path();
  if (!dir.empty() && !fs::is_directory(dir, ec))
    throw Error("--" + option + ": directory '" + dir.string() + "' does not exist");
}

namespace {

std::string text(double v) {  // shortest form: 0.2, 1e-06, 3600
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

template <typename T>
T in_range(const std::string& name, T v, T lo, T hi) {
  if (!(v >= lo && v <= hi))  // also rejects NaN
    throw Error("--" + name + ": " + text(v) + " is outside [" + text(lo) + ", " + text(hi) + "]");
  return v;
}

}  // namespace

int int_in_range(const Args& args, const std::string& name, int fallback, int lo, int hi) {
  return in_range(name, args.get_int(name, fallback), lo, hi);
}

double double_in_range(const Args& args, const std::string& name, double fallback, double lo, double hi) {
  return in_range(name, args.get_double(name, fallback), lo, hi);
}

std::vector<int> int_list_in_range(const Args& args, const std::string& name, int lo, int hi) {
  std::vector<int> v = args.get_int_list(name);
  for (int x : v) in_range(name, x, lo, hi);
  return v;
}

WeightFormat parse_weight_format(const std::string& s) {
  if (s == "quantized") return WeightFormat::quantized;
  if (s == "f32") return WeightFormat::f32;
  throw Error("--weights must be quantized or f32, got '" + s + "'");
}

}  // namespace tq::cli
