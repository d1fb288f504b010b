#include "cli/synthetic_points.h"

#include <algorithm>

namespace gradientd::cli {

SyntheticPoints::SyntheticPoints(const SyntheticSpec& spec)
    : spec_(spec),
      rng_(spec.seed),
      uniform_(spec.x_min, spec.x_max),
      normal_(0.0, spec.noise > 0 ? spec.noise : 1.0) {}

void SyntheticPoints::Next(std::vector<double>* x, std::vector<double>* y, uint64_t max) {
  x->clear();
  y->clear();
  const uint64_t n = std::min(max, remaining());
  x->reserve(n);
  y->reserve(n);
  for (uint64_t i = 0; i < n; ++i) {
    const double xv = spec_.x_min == spec_.x_max ? spec_.x_min : uniform_(rng_);
    const double noise = spec_.noise > 0 ? normal_(rng_) : 0.0;
    x->push_back(xv);
    y->push_back(spec_.slope * xv + spec_.intercept + noise);
  }
  produced_ += n;
}

}  // namespace gradientd::cli
