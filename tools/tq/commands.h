#pragma once
// Every tq subcommand: one function in its own cmd_*.cpp, one row in kCommands (main.cpp).
#include <string>

#include "turboquant/model.h"

namespace tq::cli {

// --weights quantized|f32 (tq run, tq bench model); tq::Error otherwise.
WeightFormat parse_weight_format(const std::string& s);

int cmd_synth(int argc, char** argv);
int cmd_codecs(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_bench_model(int argc, char** argv);  // tq bench model (cmd_bench_model.cpp)
int cmd_inspect(int argc, char** argv);
int cmd_run(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_calibrate(int argc, char** argv);

}  // namespace tq::cli
