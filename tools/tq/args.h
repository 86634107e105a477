#pragma once
// Minimal command-line parsing for tq subcommands: --key value, --key=value, --flag.
// Unknown options are errors that name the option.
#include <map>
#include <set>
#include <string>
#include <vector>

#include "turboquant/error.h"

namespace tq::cli {

class Args {
 public:
  // `flags` take no value; `options` take one.
  Args(int argc, char** argv, std::set<std::string> flags, std::set<std::string> options);
  bool has(const std::string& name) const { return values_.count(name) > 0; }
  std::string get(const std::string& name, const std::string& fallback = "") const;
  int get_int(const std::string& name, int fallback) const;
  double get_double(const std::string& name, double fallback) const;
  // "on" / "off" (tq::Error naming the option otherwise).
  bool get_on_off(const std::string& name, bool fallback) const;
  // Comma-separated list.
  std::vector<std::string> get_list(const std::string& name) const;
  std::vector<int> get_int_list(const std::string& name) const;
  const std::vector<std::string>& positional() const { return positional_; }

 private:
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};

std::vector<std::string> split(const std::string& s, char sep);

}  // namespace tq::cli
