#include "core/point_stats.h"

#include <algorithm>
#include <cassert>
#include <cmath>
#include <cstddef>
#include <cstdio>
#include <string>
#include <utility>

namespace gradientd::core {
namespace {

// Points per two-pass chunk: small enough that sums of squared deviations
// cannot overflow (4096 * (2e150)^2 << DBL_MAX) and that rounding stays
// local; chunks are then combined pairwise by Merge.
constexpr std::size_t kChunk = 4096;

// Accumulators are spread over kLanes independent sums so the loops pipeline
// (and vectorise) without reassociating floating-point additions.
constexpr std::size_t kLanes = 4;

}  // namespace

namespace {

// True when every value is finite with magnitude at most kMaxAbsValue. No
// early exit, so it vectorises: NaN compares false and ±inf exceeds the bound.
bool AllInRange(std::span<const double> values) {
  unsigned out_of_range = 0;
  for (const double v : values) out_of_range |= !(std::fabs(v) <= kMaxAbsValue);
  return out_of_range == 0;
}

}  // namespace

Status ValidatePoints(std::span<const double> x, std::span<const double> y) {
  if (x.size() != y.size()) {
    return Status::InvalidArgument("x has " + std::to_string(x.size()) + " values but y has " +
                                   std::to_string(y.size()));
  }
  if (AllInRange(x) && AllInRange(y)) return Status::Ok();
  // Rare: find the first offending value for the message.
  for (const auto& [name, values] : {std::pair{"x", x}, std::pair{"y", y}}) {
    for (std::size_t i = 0; i < values.size(); ++i) {
      const double v = values[i];
      if (std::fabs(v) <= kMaxAbsValue) continue;
      char buf[160];
      std::snprintf(buf, sizeof buf,
                    "%s[%zu] is %.17g: values must be finite with magnitude at most 1e150", name, i,
                    v);
      return Status::InvalidArgument(buf);
    }
  }
  return Status::Ok();  // unreachable: AllInRange found a value out of range
}

PointStats PointStats::FromChunk(const double* x, const double* y, std::size_t n, bool* in_range) {
  const double px = x[0], py = y[0];
  // First pass: means of the differences to the pivot, and the range check
  // (branch-free, so it vectorises with the sums).
  double sx[kLanes] = {}, sy[kLanes] = {};
  unsigned out_of_range = 0;
  std::size_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      sx[l] += x[i + l] - px;
      sy[l] += y[i + l] - py;
      out_of_range |=
          !(std::fabs(x[i + l]) <= kMaxAbsValue) | !(std::fabs(y[i + l]) <= kMaxAbsValue);
    }
  }
  for (; i < n; ++i) {
    sx[0] += x[i] - px;
    sy[0] += y[i] - py;
    out_of_range |= !(std::fabs(x[i]) <= kMaxAbsValue) | !(std::fabs(y[i]) <= kMaxAbsValue);
  }
  *in_range = out_of_range == 0;
  const double nd = static_cast<double>(n);
  const double mx = ((sx[0] + sx[1]) + (sx[2] + sx[3])) / nd;
  const double my = ((sy[0] + sy[1]) + (sy[2] + sy[3])) / nd;

  // Second pass: central moments, with the sums of deviations as the
  // correction term of the corrected two-pass algorithm.
  double ex[kLanes] = {}, ey[kLanes] = {}, qx[kLanes] = {}, qy[kLanes] = {}, qxy[kLanes] = {};
  i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (std::size_t l = 0; l < kLanes; ++l) {
      const double dx = (x[i + l] - px) - mx;
      const double dy = (y[i + l] - py) - my;
      ex[l] += dx;
      ey[l] += dy;
      qx[l] += dx * dx;
      qy[l] += dy * dy;
      qxy[l] += dx * dy;
    }
  }
  for (; i < n; ++i) {
    const double dx = (x[i] - px) - mx;
    const double dy = (y[i] - py) - my;
    ex[0] += dx;
    ey[0] += dy;
    qx[0] += dx * dx;
    qy[0] += dy * dy;
    qxy[0] += dx * dy;
  }
  auto total = [](const double(&a)[kLanes]) { return (a[0] + a[1]) + (a[2] + a[3]); };
  const double cx = total(ex), cy = total(ey);
  PointStats s;
  s.n_ = n;
  s.m_ = Moments{.pivot_x = px,
                 .pivot_y = py,
                 .mean_dx = mx + cx / nd,
                 .mean_dy = my + cy / nd,
                 .var_x = std::max(0.0, (total(qx) - cx * (cx / nd)) / nd),
                 .var_y = std::max(0.0, (total(qy) - cy * (cy / nd)) / nd),
                 .cov_xy = (total(qxy) - cx * (cy / nd)) / nd};
  return s;
}

PointStats PointStats::FromPoints(std::span<const double> x, std::span<const double> y) {
  PointStats stats;
  const Status valid = FromClientPoints(x, y, &stats);
  assert(valid.ok());  // REQUIRES: the points are valid
  (void)valid;
  return stats;
}

Status PointStats::FromClientPoints(std::span<const double> x, std::span<const double> y,
                                    PointStats* stats) {
  if (x.size() != y.size()) return ValidatePoints(x, y);
  PointStats total;
  for (std::size_t start = 0; start < x.size(); start += kChunk) {
    const std::size_t len = std::min(kChunk, x.size() - start);
    bool in_range = true;
    const PointStats chunk = FromChunk(x.data() + start, y.data() + start, len, &in_range);
    if (!in_range) return ValidatePoints(x, y);  // names the first bad value
    total.Merge(chunk);
  }
  *stats = total;
  return Status::Ok();
}

void PointStats::Merge(const PointStats& other) {
  if (other.n_ == 0) return;
  if (n_ == 0) {
    *this = other;
    return;
  }
  const uint64_t n = n_ + other.n_;
  const double nd = static_cast<double>(n);
  m_.Merge(other.m_, static_cast<double>(n_) / nd, static_cast<double>(other.n_) / nd);
  n_ = n;
}

}  // namespace gradientd::core
