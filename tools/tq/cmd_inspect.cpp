// `tq inspect model.gguf`: the metadata and the tensor table of a GGUF file, a count of
// tensor types, and with --check a full dequantization of every tensor.
#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>

#include "args.h"
#include "commands.h"
#include "turboquant/error.h"
#include "turboquant/gguf.h"
#include "turboquant/tokenizer.h"
#include "validate.h"

namespace tq::cli {
namespace {

std::string shape_text(const std::vector<uint64_t>& shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? " x " : "") + std::to_string(shape[i]);
  return s;
}

void print_metadata(const gguf::GgufFile& f) {
  std::printf("metadata (%zu keys):\n", f.keys().size());
  for (const std::string& key : f.keys()) {
    std::string type(gguf::value_type_name(f.value_type(key)));
    if (f.value_type(key) == gguf::ValueType::ARRAY) type += "<" + std::string(gguf::value_type_name(f.array_type(key))) + ">";
    std::printf("  %-44s %-14s %s\n", key.c_str(), type.c_str(), f.value_to_string(key).c_str());
  }
}

void print_tensors(const gguf::GgufFile& f) {
  std::printf("\ntensors (%zu):\n  %-40s %-8s %-22s %12s %12s\n", f.tensors().size(), "name", "type", "shape (ggml order)",
              "bytes", "offset");
  for (const auto& t : f.tensors()) {
    std::printf("  %-40s %-8s %-22s %12zu %12llu\n", t.name.c_str(), std::string(gguf::type_name(t.type)).c_str(),
                shape_text(t.shape).c_str(), t.bytes, static_cast<unsigned long long>(t.offset));
  }
}

void print_type_summary(const gguf::GgufFile& f) {
  struct Totals {
    size_t tensors = 0;
    uint64_t bytes = 0;
  };
  std::map<uint32_t, Totals> by_type;
  uint64_t elements = 0, bytes = 0;
  for (const auto& t : f.tensors()) {
    Totals& e = by_type[static_cast<uint32_t>(t.type)];
    ++e.tensors;
    e.bytes += t.bytes;
    elements += t.elements();
    bytes += t.bytes;
  }
  std::printf("\ntensor types:\n");
  for (const auto& [id, e] : by_type) {
    const auto type = static_cast<gguf::GgmlType>(id);
    std::printf("  %-8s %5zu tensors %14llu bytes%s\n", std::string(gguf::type_name(type)).c_str(), e.tensors,
                static_cast<unsigned long long>(e.bytes), gguf::type_supported(type) ? "" : "  (not supported by dequantize)");
  }
  const double bits = elements ? 8.0 * static_cast<double>(bytes) / static_cast<double>(elements) : 0.0;
  std::printf("total: %llu parameters in %llu bytes (%.3f bits/parameter)\n", static_cast<unsigned long long>(elements),
              static_cast<unsigned long long>(bytes), bits);
}

// Dequantizes every tensor; returns the number that failed or held non-finite values.
int check_tensors(const gguf::GgufFile& f) {
  int bad = 0;
  for (const auto& t : f.tensors()) {
    try {
      const std::vector<float> v = gguf::dequantize_tensor(t);
      size_t non_finite = 0;
      double sum_sq = 0.0;
      for (float x : v) {
        if (!std::isfinite(x)) ++non_finite;
        else sum_sq += static_cast<double>(x) * x;
      }
      if (non_finite) {
        std::printf("  %-40s %zu non-finite values\n", t.name.c_str(), non_finite);
        ++bad;
      } else {
        std::printf("  %-40s ok, rms %.5g\n", t.name.c_str(), v.empty() ? 0.0 : std::sqrt(sum_sq / static_cast<double>(v.size())));
      }
    } catch (const std::exception& e) {
      std::printf("  %-40s error: %s\n", t.name.c_str(), e.what());
      ++bad;
    }
  }
  return bad;
}

// Writes one tensor, dequantized, as raw little-endian f32 (for cross-checks with other readers).
void dump_tensor(const gguf::GgufFile& f, const std::string& name, const std::string& out_path) {
  const std::vector<float> v = gguf::dequantize_tensor(f.tensor(name));
  std::FILE* out = std::fopen(out_path.c_str(), "wb");
  if (out == nullptr) throw Error("cannot create " + out_path);
  const size_t written = std::fwrite(v.data(), sizeof(float), v.size(), out);
  std::fclose(out);
  if (written != v.size()) throw Error("writing " + out_path + " failed");
  std::printf("wrote %zu floats of %s to %s\n", v.size(), name.c_str(), out_path.c_str());
}

// A token's bytes with control characters escaped, in quotes.
std::string quoted_piece(const std::string& s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c < 32 || c == 127) {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    } else out += static_cast<char>(c);
  }
  return out + "\"";
}

void print_ids(const std::vector<int32_t>& ids) {
  for (size_t i = 0; i < ids.size(); ++i) std::printf("%s%d", i ? " " : "", ids[i]);
  std::printf("\n");
}

// Each line of `path` is one string as hex bytes (exact for any bytes); prints its ids.
void tokenize_hex_lines(const Tokenizer& tok, const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error("cannot read " + path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.size() % 2 != 0) throw Error("--tokenize-hex: odd number of hex digits in a line of " + path);
    std::string text;
    for (size_t i = 0; i < line.size(); i += 2) text += static_cast<char>(std::stoi(line.substr(i, 2), nullptr, 16));
    print_ids(tok.encode(text, false));
  }
}

}  // namespace

int cmd_inspect(int argc, char** argv) {
  Args args(argc, argv, {"help", "check", "no-metadata", "no-tensors"}, {"dump", "out", "tokenize", "tokenize-hex"});
  if (args.has("help") || args.positional().size() != 1) {
    std::printf(
        "tq inspect MODEL.gguf [--no-metadata] [--no-tensors] [--check]\n"
        "  GGUF version, metadata, tensor table (ggml order: the first dimension is contiguous)\n"
        "  and bytes per tensor type. --check dequantizes every tensor and reports non-finite values.\n"
        "tq inspect MODEL.gguf --dump TENSOR --out FILE\n"
        "  Writes one tensor dequantized to raw little-endian f32.\n"
        "tq inspect MODEL.gguf --tokenize TEXT | --tokenize-hex FILE\n"
        "  Token ids of TEXT (no BOS), then each token's text; or the ids of each line of FILE,\n"
        "  a string written as hex bytes (for cross-checks: scripts/reference_tokens.py).\n");
    return args.has("help") ? 0 : 2;
  }
  const std::string& path = args.positional()[0];
  if (args.has("dump") != args.has("out")) throw Error("--dump TENSOR and --out FILE go together");
  if (args.has("out")) check_writable_path("out", args.get("out"));
  if (args.has("tokenize-hex")) check_readable_file("tokenize-hex", args.get("tokenize-hex"));
  const gguf::GgufFile f = gguf::GgufFile::open(path);
  if (args.has("dump")) {
    dump_tensor(f, args.get("dump"), args.get("out"));
    return 0;
  }
  if (args.has("tokenize") || args.has("tokenize-hex")) {
    const Tokenizer tok = Tokenizer::from_gguf(f);
    if (args.has("tokenize-hex")) {
      tokenize_hex_lines(tok, args.get("tokenize-hex"));
      return 0;
    }
    const std::vector<int32_t> ids = tok.encode(args.get("tokenize"), false);
    print_ids(ids);
    for (int32_t id : ids) std::printf("%8d  %s\n", id, quoted_piece(tok.token_text(id)).c_str());
    return 0;
  }
  std::printf("%s: GGUF v%u, %llu bytes, alignment %llu, tensor data at offset %llu\n", path.c_str(), f.version(),
              static_cast<unsigned long long>(f.file_size()), static_cast<unsigned long long>(f.alignment()),
              static_cast<unsigned long long>(f.data_offset()));
  if (!args.has("no-metadata")) print_metadata(f);
  if (!args.has("no-tensors")) print_tensors(f);
  print_type_summary(f);
  if (args.has("check")) {
    std::printf("\nchecking every tensor:\n");
    const int bad = check_tensors(f);
    std::printf("%d of %zu tensors failed\n", bad, f.tensors().size());
    return bad ? 1 : 0;
  }
  return 0;
}

}  // namespace tq::cli
