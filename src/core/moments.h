// Moments: the centred moments of a (possibly weighted) set of points, from
// which the loss of any line, its gradient and the least-squares line come
// out in O(1). PointStats (counted points), DecayedStats (weighted points)
// and every query view share it. A value type; not synchronised.
#pragma once

#include <optional>

namespace gradientd::core {

struct Gradient {
  double intercept = 0;  // dL/db = -2/N * sum(y - (m*x + b))
  double slope = 0;      // dL/dm = -2/N * sum(x * (y - (m*x + b)))
};

struct LeastSquaresLine {
  double m = 0;
  double b = 0;
  double loss = 0;  // the mean squared residual of the line
};

// Means relative to a pivot (a point of the set, so large offsets such as
// Unix timestamps never enter the differences) and the population central
// moments (co-moments divided by the total weight, so nothing grows with n).
struct Moments {
  double pivot_x = 0, pivot_y = 0;
  double mean_dx = 0, mean_dy = 0;  // mean of (x - pivot_x), (y - pivot_y)
  double var_x = 0, var_y = 0, cov_xy = 0;

  bool operator==(const Moments&) const = default;

  double mean_x() const { return pivot_x + mean_dx; }
  double mean_y() const { return pivot_y + mean_dy; }

  // Adds the set `other`, this set weighing `self_share` and `other` weighing
  // `other_share` of the union (Chan et al.'s pairwise update).
  // REQUIRES: both shares in (0, 1], summing to 1 up to rounding.
  void Merge(const Moments& other, double self_share, double other_share);

  // The gradient of L(m, b) = mean((y - (m*x + b))^2) at (m, b).
  Gradient GradientAt(double m, double b) const;
  // L(m, b).
  double LossAt(double m, double b) const;
  // The least-squares line; nullopt when x has no spread.
  std::optional<LeastSquaresLine> LeastSquares() const;
  // The coefficient of determination of the least-squares line; nullopt
  // when x or y has no spread.
  std::optional<double> RSquared() const;
  // The largest eigenvalue of the Hessian of L, the Lipschitz constant of
  // its gradient: a plain step of 1/L can never increase the loss.
  double GradientLipschitzConstant() const;
  // L(m, b) - L*, L* the least possible loss, without subtracting losses:
  // var_x * (m - m*)^2 + (mean_y - m*mean_x - b)^2 (just the squared mean
  // residual when x has no spread).
  double ExcessLossAt(double m, double b) const;
  // The mean residual mean_y - (m*mean_x + b), kept accurate around the pivot.
  double MeanResidual(double m, double b) const;
};

}  // namespace gradientd::core
