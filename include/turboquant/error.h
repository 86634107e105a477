#pragma once
// Every error the library reports is a tq::Error whose message names what was wrong.
#include <stdexcept>
#include <string>

namespace tq {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace tq
