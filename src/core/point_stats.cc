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

PointStats PointStats::FromChunk(const double* x, const double* y, std::size_t n,
                                 bool* in_range) {
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
      out_of_range |= !(std::fabs(x[i + l]) <= kMaxAbsValue) | !(std::fabs(y[i + l]) <= kMaxAbsValue);
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
  s.pivot_x_ = px;
  s.pivot_y_ = py;
  s.mean_dx_ = mx + cx / nd;
  s.mean_dy_ = my + cy / nd;
  s.var_x_ = std::max(0.0, (total(qx) - cx * (cx / nd)) / nd);
  s.var_y_ = std::max(0.0, (total(qy) - cy * (cy / nd)) / nd);
  s.cov_xy_ = (total(qxy) - cx * (cy / nd)) / nd;
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
  // Express the other set's means relative to this pivot; the pivots are
  // both points of the data, so their difference is small or exact.
  const double delta_x = (other.mean_dx_ + (other.pivot_x_ - pivot_x_)) - mean_dx_;
  const double delta_y = (other.mean_dy_ + (other.pivot_y_ - pivot_y_)) - mean_dy_;
  const uint64_t n = n_ + other.n_;
  const double nd = static_cast<double>(n);
  const double wa = static_cast<double>(n_) / nd;
  const double wb = static_cast<double>(other.n_) / nd;
  mean_dx_ += wb * delta_x;
  mean_dy_ += wb * delta_y;
  var_x_ = wa * var_x_ + wb * other.var_x_ + (wa * delta_x) * (wb * delta_x);
  var_y_ = wa * var_y_ + wb * other.var_y_ + (wa * delta_y) * (wb * delta_y);
  cov_xy_ = wa * cov_xy_ + wb * other.cov_xy_ + (wa * delta_x) * (wb * delta_y);
  n_ = n;
}

double PointStats::MeanResidual(double m, double b) const {
  // ybar - m*xbar - b, split at the pivot: the large parts cancel exactly
  // where they can, and the small centred parts keep their digits.
  const double r = (mean_dy_ - m * mean_dx_) + (pivot_y_ - std::fma(m, pivot_x_, b));
  if (std::isfinite(r)) return r;
  // For a huge m both parts can overflow, with opposite signs (inf - inf is
  // NaN); unsplit, the residual is finite or overflows with its true sign.
  return (mean_y() - m * mean_x()) - b;
}

Gradient PointStats::GradientAt(double m, double b) const {
  const double r = MeanResidual(m, b);
  // E[x*r] = cov(x, r) + xbar*rbar, with cov(x, r) = cov(x, y) - m*var(x).
  const double cov_xr = cov_xy_ - m * var_x_;
  return {.intercept = -2.0 * r, .slope = -2.0 * (cov_xr + mean_x() * r)};
}

double PointStats::LossAt(double m, double b) const {
  const double r = MeanResidual(m, b);
  // var(r) = var(y) - 2*m*cov + m^2*var(x), written as two non-negative
  // terms around the least-squares slope so nothing large cancels twice.
  double var_r;
  const double slope = var_x_ > 0 ? cov_xy_ / var_x_ : 0;
  if (var_x_ > 0 && std::isfinite(slope)) {
    const double dm = m - slope;
    var_r = std::max(0.0, var_y_ - slope * cov_xy_) + var_x_ * dm * dm;
  } else if (var_x_ > 0) {
    // A subnormal var(x): the slope overflows, but the terms do not.
    var_r = std::max(0.0, var_y_ - 2.0 * m * cov_xy_ + m * (m * var_x_));
  } else {
    var_r = var_y_;
  }
  return var_r + r * r;
}

std::optional<LeastSquaresLine> PointStats::LeastSquares() const {
  if (n_ == 0 || !(var_x_ > 0)) return std::nullopt;
  const double m = cov_xy_ / var_x_;
  const double b = (mean_dy_ - m * mean_dx_) + (pivot_y_ - m * pivot_x_);
  // x spread too small to divide by (a subnormal var(x)): no line either.
  if (!std::isfinite(m) || !std::isfinite(b)) return std::nullopt;
  return LeastSquaresLine{.m = m, .b = b, .loss = std::max(0.0, var_y_ - m * cov_xy_)};
}

std::optional<double> PointStats::RSquared() const {
  if (!LeastSquares() || !(var_y_ > 0)) return std::nullopt;
  return std::min(1.0, (cov_xy_ / var_x_) * (cov_xy_ / var_y_));
}

double PointStats::GradientLipschitzConstant() const {
  // Hessian of L: 2 * [[E(x^2), xbar], [xbar, 1]]; its largest eigenvalue is
  // (a + 1) + sqrt((a - 1)^2 + 4*xbar^2) with a = E(x^2) = var(x) + xbar^2.
  const double xbar = mean_x();
  const double a = var_x_ + xbar * xbar;
  return (a + 1.0) + std::hypot(a - 1.0, 2.0 * xbar);
}

}  // namespace gradientd::core
