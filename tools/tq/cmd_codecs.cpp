#include <cstdio>
#include <string>

#include "args.h"
#include "commands.h"
#include "turboquant/codec.h"
#include "validate.h"

namespace tq::cli {

int cmd_codecs(int argc, char** argv) {
  Args args(argc, argv, {"help"}, {"dim"});
  if (args.has("help")) {
    std::printf("tq codecs [--dim D]\n  The codec table, with exact sizes for head dimension D (default 128).\n");
    return 0;
  }
  const int d = int_in_range(args, "dim", 128, 1, 4096);
  std::printf("%-9s %-10s %-6s %6s %6s %8s  %s\n", "codec", "rotation", "quant", "bits", "B/vec",
              "params", "summary");
  for (const auto& s : codec_table()) {
    try {
      const Codec c = Codec::make(s, d, 0);
      std::printf("%-9s %-10s %-6s %6.3f %6zu %8zu  %s\n", std::string(s.name).c_str(),
                  std::string(rotation_name(s.rotation)).c_str(), std::string(quant_name(s.quant)).c_str(),
                  c.bits_per_coord(), c.record_bytes(), c.param_count(), std::string(s.summary).c_str());
    } catch (const Error& e) {
      std::printf("%-9s (not available at d=%d: %s)\n", std::string(s.name).c_str(), d, e.what());
    }
  }
  std::printf("\ncalibrated presets (built per model from its calibration profile: tq calibrate; the bits\n"
              "include norms, group headers and the sink store, per-layer K/V budgets from measured\n"
              "sensitivity; docs/EVAL.md):\n");
  for (const auto& s : preset_table())
    std::printf("%-9s %-10s %-6s %6.3f %6s %8s  %s\n", std::string(s.name).c_str(), "calibrated",
                std::string(quant_name(s.quant)).c_str(), s.budget_bits, "-", "-", std::string(s.summary).c_str());
  return 0;
}

}  // namespace tq::cli
