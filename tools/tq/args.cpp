#include "args.h"

namespace tq::cli {

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t end = s.find(sep, start);
    const std::string part = s.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!part.empty()) out.push_back(part);
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return out;
}

Args::Args(int argc, char** argv, std::set<std::string> flags, std::set<std::string> options) {
  for (int i = 0; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      positional_.push_back(a);
      continue;
    }
    std::string key = a.substr(2), value;
    bool inline_value = false;
    if (const size_t eq = key.find('='); eq != std::string::npos) {
      value = key.substr(eq + 1);
      key = key.substr(0, eq);
      inline_value = true;
    }
    if (flags.count(key)) {
      if (inline_value) throw Error("option --" + key + " takes no value");
      values_[key] = "1";
    } else if (options.count(key)) {
      if (!inline_value) {
        if (i + 1 >= argc) throw Error("option --" + key + " needs a value");
        value = argv[++i];
      }
      values_[key] = value;
    } else {
      throw Error("unknown option --" + key);
    }
  }
}

std::string Args::get(const std::string& name, const std::string& fallback) const {
  auto it = values_.find(name);
  return it == values_.end() ? fallback : it->second;
}

// Parses the whole value with `parse` (std::stoi / std::stod); anything left over is an error.
template <typename T, typename Parse>
static T parse_number(const std::string& name, const std::string& v, const char* kind, Parse parse) {
  try {
    size_t used = 0;
    const T x = parse(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  throw Error("option --" + name + ": '" + v + "' is not " + kind);
}

int Args::get_int(const std::string& name, int fallback) const {
  if (!has(name)) return fallback;
  return parse_number<int>(name, get(name), "an integer",
                           [](const std::string& s, size_t* used) { return std::stoi(s, used); });
}

double Args::get_double(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  return parse_number<double>(name, get(name), "a number",
                              [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

bool Args::get_on_off(const std::string& name, bool fallback) const {
  if (!has(name)) return fallback;
  const std::string v = get(name);
  if (v == "on") return true;
  if (v == "off") return false;
  throw Error("--" + name + " takes on or off, got '" + v + "'");
}

std::vector<std::string> Args::get_list(const std::string& name) const {
  return split(get(name), ',');
}

std::vector<int> Args::get_int_list(const std::string& name) const {
  std::vector<int> out;
  for (const auto& item : get_list(name))
    out.push_back(parse_number<int>(name, item, "a list of integers",
                                    [](const std::string& s, size_t* used) { return std::stoi(s, used); }));
  return out;
}

}  // namespace tq::cli
