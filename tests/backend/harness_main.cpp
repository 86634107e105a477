// test_backend_ops: every codec of the table (and a calibrated preset from a synthetic
// profile) × head_dim 64/128/256 × op × backend against the core reference, by the one
// tolerance rule of backend_ops.h. Prints the backend × codec support table and, per
// backend and op, the worst NMSE; exit status 1 when a case fails.
//   --bench           also time every fast path (microseconds per call)
//   --backend PREFIX  only backends whose name starts with PREFIX
//   --codec NAME      only this codec;   --seed N   inputs from seed N (default 1)
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <map>
#include <string>
#include <vector>

#include "backend_ops.h"
#include "turboquant/head_dim.h"

namespace tq::harness {
namespace {

struct Args {
  bool bench = false;
  std::string backend, codec;
  uint64_t seed = 1;
};

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    const std::string s = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", s.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (s == "--bench") a.bench = true;
    else if (s == "--backend") a.backend = value();
    else if (s == "--codec") a.codec = value();
    else if (s == "--seed") a.seed = std::strtoull(value().c_str(), nullptr, 10);
    else {
      std::fprintf(stderr, "unknown argument %s (see the top of tests/backend/harness_main.cpp)\n", s.c_str());
      std::exit(2);
    }
  }
  return a;
}

constexpr char kLetter[] = "esatw";  // per Op, in enum order

// The calibrated preset checked next to the table's rows.
constexpr const char* kPreset = "tq3";

std::vector<std::string> codecs(const Args& a) {
  std::vector<std::string> out;
  for (const auto& spec : codec_table()) out.emplace_back(spec.name);
  out.emplace_back(kPreset);
  if (a.codec.empty()) return out;
  return {a.codec};
}

struct Stats {
  int cases = 0, failed = 0;
  double worst = 0;
};

}  // namespace

int run(int argc, char** argv) {
  const Args args = parse(argc, argv);
  std::vector<std::unique_ptr<Backend>> backends;
  for (auto* list : {&cpu_backends, &cuda_backends})
    for (auto& b : (*list)())
      if (b->name().rfind(args.backend, 0) == 0) {
        const std::string why = b->unavailable();
        if (why.empty()) backends.push_back(std::move(b));
        else std::printf("skipped backend %s: %s\n", b->name().c_str(), why.c_str());
      }
  if (backends.empty()) {
    std::printf("no backend runs here\n");
    return 0;
  }
  std::printf("tolerance: NMSE = sum (out - ref)^2 / sum ref^2 <= %g per case; seed %llu\n", kMaxNmse,
              static_cast<unsigned long long>(args.seed));
  const auto names = codecs(args);
  // support[codec][backend]: per op, dims where the backend has a kernel.
  std::map<std::string, std::map<std::string, std::map<Op, int>>> support;
  std::map<std::string, std::map<Op, Stats>> stats;
  for (const auto& codec : names)
    for (int dim : kHeadDims) {
      std::unique_ptr<Problem> p;
      try {
        p = make_problem(codec, dim, args.seed);
      } catch (const std::exception& e) {
        std::printf("FAIL %s d=%d: the reference problem: %s\n", codec.c_str(), dim, e.what());
        stats["reference"][Op::encode].failed++;
        continue;
      }
      for (const auto& b : backends)
        for (Op op : kOps) {
          if (!b->unsupported(op, *p).empty()) continue;
          support[codec][b->name()][op]++;
          Stats& st = stats[b->name()][op];
          st.cases++;
          double us = 0, err = 0;
          try {
            err = nmse(b->run(op, *p, args.bench ? 20 : 0, &us), p->reference(op));
          } catch (const std::exception& e) {
            std::printf("FAIL %s d=%d %s %s: %s\n", codec.c_str(), dim, b->name().c_str(), op_name(op), e.what());
            st.failed++;
            continue;
          }
          st.worst = std::max(st.worst, err);
          if (!(err <= kMaxNmse)) {
            std::printf("FAIL %s d=%d %s %s: NMSE %.3g > %g\n", codec.c_str(), dim, b->name().c_str(), op_name(op), err,
                        kMaxNmse);
            st.failed++;
          }
          if (args.bench)
            std::printf("bench %-9s d=%-3d %-18s %-10s %10.2f us\n", codec.c_str(), dim, b->name().c_str(), op_name(op),
                        us);
        }
    }

  std::printf("\nSupport (e encode, s score, a accumulate, t attend, w attend with a window; a letter: every head_dim, "
              "'~': some, '.': none)\n\n");
  std::printf("| codec |");
  for (const auto& b : backends) std::printf(" %s |", b->name().c_str());
  std::printf("\n|---|");
  for (size_t i = 0; i < backends.size(); ++i) std::printf("---|");
  std::printf("\n");
  const int n_dims = static_cast<int>(std::size(kHeadDims));
  for (const auto& codec : names) {
    std::printf("| %s |", codec.c_str());
    for (const auto& b : backends) {
      std::string cell;
      for (Op op : kOps) {
        const int n = support[codec][b->name()][op];
        cell += n == n_dims ? kLetter[static_cast<int>(op)] : n > 0 ? '~' : '.';
      }
      std::printf(" %s |", cell.c_str());
    }
    std::printf("\n");
  }

  int failed = 0;
  std::printf("\n%-18s %-10s %6s %6s %10s\n", "backend", "op", "cases", "failed", "worst NMSE");
  for (const auto& [name, ops] : stats)
    for (const auto& [op, st] : ops) {
      std::printf("%-18s %-10s %6d %6d %10.2e\n", name.c_str(), op_name(op), st.cases, st.failed, st.worst);
      failed += st.failed;
    }
  std::printf(failed ? "\n%d case(s) FAILED\n" : "\nall cases passed\n", failed);
  return failed ? 1 : 0;
}

}  // namespace tq::harness

int main(int argc, char** argv) { return tq::harness::run(argc, argv); }
