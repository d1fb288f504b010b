#include "core/moments.h"

#include <algorithm>
#include <cmath>

namespace gradientd::core {

void Moments::Merge(const Moments& other, double self_share, double other_share) {
  // Express the other set's means relative to this pivot; the pivots are
  // both points of the data, so their difference is small or exact.
  const double delta_x = (other.mean_dx + (other.pivot_x - pivot_x)) - mean_dx;
  const double delta_y = (other.mean_dy + (other.pivot_y - pivot_y)) - mean_dy;
  const double wa = self_share, wb = other_share;
  mean_dx += wb * delta_x;
  mean_dy += wb * delta_y;
  var_x = wa * var_x + wb * other.var_x + (wa * delta_x) * (wb * delta_x);
  var_y = wa * var_y + wb * other.var_y + (wa * delta_y) * (wb * delta_y);
  cov_xy = wa * cov_xy + wb * other.cov_xy + (wa * delta_x) * (wb * delta_y);
}

double Moments::MeanResidual(double m, double b) const {
  // ybar - m*xbar - b, split at the pivot: the large parts cancel exactly
  // where they can, and the small centred parts keep their digits.
  const double r = (mean_dy - m * mean_dx) + (pivot_y - std::fma(m, pivot_x, b));
  if (std::isfinite(r)) return r;
  // For a huge m both parts can overflow, with opposite signs (inf - inf is
  // NaN); unsplit, the residual is finite or overflows with its true sign.
  return (mean_y() - m * mean_x()) - b;
}

Gradient Moments::GradientAt(double m, double b) const {
  const double r = MeanResidual(m, b);
  // E[x*r] = cov(x, r) + xbar*rbar, with cov(x, r) = cov(x, y) - m*var(x).
  const double cov_xr = cov_xy - m * var_x;
  return {.intercept = -2.0 * r, .slope = -2.0 * (cov_xr + mean_x() * r)};
}

double Moments::LossAt(double m, double b) const {
  const double r = MeanResidual(m, b);
  // var(r) = var(y) - 2*m*cov + m^2*var(x), written as two non-negative
  // terms around the least-squares slope so nothing large cancels twice.
  double var_r;
  const double slope = var_x > 0 ? cov_xy / var_x : 0;
  if (var_x > 0 && std::isfinite(slope)) {
    const double dm = m - slope;
    var_r = std::max(0.0, var_y - slope * cov_xy) + var_x * dm * dm;
  } else if (var_x > 0) {
    // A subnormal var(x): the slope overflows, but the terms do not.
    var_r = std::max(0.0, var_y - 2.0 * m * cov_xy + m * (m * var_x));
  } else {
    var_r = var_y;
  }
  return var_r + r * r;
}

double Moments::ExcessLossAt(double m, double b) const {
  const double r = MeanResidual(m, b);
  if (!(var_x > 0)) return r * r;
  const double slope = cov_xy / var_x;
  if (std::isfinite(slope)) {
    const double dm = m - slope;
    return var_x * dm * dm + r * r;
  }
  // A subnormal var(x): var_x * (m - cov/var_x)^2 = d^2 / var_x.
  const double d = m * var_x - cov_xy;
  return d * (d / var_x) + r * r;
}

std::optional<LeastSquaresLine> Moments::LeastSquares() const {
  if (!(var_x > 0)) return std::nullopt;
  const double m = cov_xy / var_x;
  const double b = (mean_dy - m * mean_dx) + (pivot_y - m * pivot_x);
  // x spread too small to divide by (a subnormal var(x)): no line either.
  if (!std::isfinite(m) || !std::isfinite(b)) return std::nullopt;
  return LeastSquaresLine{.m = m, .b = b, .loss = std::max(0.0, var_y - m * cov_xy)};
}

std::optional<double> Moments::RSquared() const {
  if (!LeastSquares() || !(var_y > 0)) return std::nullopt;
  return std::min(1.0, (cov_xy / var_x) * (cov_xy / var_y));
}

double Moments::GradientLipschitzConstant() const {
  // Hessian of L: 2 * [[E(x^2), xbar], [xbar, 1]]; its largest eigenvalue is
  // (a + 1) + sqrt((a - 1)^2 + 4*xbar^2) with a = E(x^2) = var(x) + xbar^2.
  const double xbar = mean_x();
  const double a = var_x + xbar * xbar;
  return (a + 1.0) + std::hypot(a - 1.0, 2.0 * xbar);
}

}  // namespace gradientd::core
