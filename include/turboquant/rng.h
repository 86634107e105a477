#pragma once
// Seeded, platform-independent random numbers (xoshiro256** seeded by splitmix64).
// std::normal_distribution differs between standard libraries, so rotations and
// test data are generated here instead.
#include <cstdint>

namespace tq {

uint64_t splitmix64(uint64_t& state);

// Derive an independent seed for a named sub-stream (e.g. layer, head, "qjl").
uint64_t derive_seed(uint64_t seed, uint64_t stream);

class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next_u64();
  double uniform();           // [0, 1), 53 random bits
  double gaussian();          // N(0, 1), Box–Muller in double
  uint32_t below(uint32_t n); // uniform integer in [0, n)

 private:
  uint64_t s_[4];
  bool has_spare_ = false;
  double spare_ = 0.0;
};

}  // namespace tq
