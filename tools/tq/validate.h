#pragma once
// Argument checks every tq command runs before it loads anything slow (a model, a text,
// a benchmark): a bad codec name, a missing file or an out-of-range number fails at once
// with a tq::Error that names the option, the bad value and what would be valid.
#include <string>
#include <vector>

#include "args.h"

namespace tq::cli {

// A codec of the table; the message lists the valid names.
// With presets, the calibrated presets (tq3, ...) are valid too (commands that load a model).
void check_codec(const std::string& option, const std::string& name, bool presets = false);
void check_codecs(const std::string& option, const std::vector<std::string>& names, bool presets = false);
// An existing regular file that can be opened for reading.
void check_readable_file(const std::string& option, const std::string& path);
// A path a file can be created at: its directory exists and is not itself a directory.
void check_writable_path(const std::string& option, const std::string& path);
// The option's value (or the fallback) within [lo, hi].
int int_in_range(const Args& args, const std::string& name, int fallback, int lo, int hi);
double double_in_range(const Args& args, const std::string& name, double fallback, double lo, double hi);
std::vector<int> int_list_in_range(const Args& args, const std::string& name, int lo, int hi);

}  // namespace tq::cli
