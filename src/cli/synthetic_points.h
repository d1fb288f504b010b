// Points on a line with Gaussian noise, from a seeded generator: what
// `gradctl produce --synthetic` sends and what `gradctl bench` ingests. Pure.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

namespace gradientd::cli {

// The defaults are gradctl produce --synthetic's (and bench's): y = 2x + 1
// + N(0, 0.5), x uniform in [0, 10), seed 42.
struct SyntheticSpec {
  double slope = 2.0;
  double intercept = 1.0;
  double noise = 0.5;  // standard deviation; 0: none
  uint64_t count = 0;
  double x_min = 0.0;
  double x_max = 10.0;
  uint64_t seed = 42;
};

// The same spec gives the same points, in batches of any size.
class SyntheticPoints {
 public:
  explicit SyntheticPoints(const SyntheticSpec& spec);

  // Replaces *x and *y with the next min(max, remaining()) points.
  void Next(std::vector<double>* x, std::vector<double>* y, uint64_t max);
  uint64_t remaining() const { return spec_.count - produced_; }

 private:
  SyntheticSpec spec_;
  std::mt19937_64 rng_;
  std::uniform_real_distribution<double> uniform_;
  std::normal_distribution<double> normal_;
  uint64_t produced_ = 0;
};

}  // namespace gradientd::cli
