// PointStats: mergeable sufficient statistics of a set of (x, y) points,
// from which the mean-squared-error loss of any line y = m*x + b, its
// gradient, and the least-squares line come out in O(1).
//
// Numerics: no raw power sums. The state is the count, the means relative to
// a pivot (a point of the set, so large offsets such as Unix timestamps never
// enter the differences), and the population central moments var(x), var(y),
// cov(x, y) (co-moments divided by n, so nothing grows with n). Batches are
// absorbed with a corrected two-pass pass per chunk; states are combined with
// Chan et al.'s pairwise update, which is associative up to rounding.
//
// A value type; not synchronised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>

#include "core/status.h"

namespace gradientd::core {

// The largest magnitude of an x or y value for which no intermediate result
// can overflow. Callers validate against it (see ValidatePoints).
inline constexpr double kMaxAbsValue = 1e150;

// Checks points given by a client: as many x as y, every value finite with
// magnitude at most kMaxAbsValue. The error names the first bad value.
Status ValidatePoints(std::span<const double> x, std::span<const double> y);

struct Gradient {
  double intercept = 0;  // dL/db = -2/N * sum(y - (m*x + b))
  double slope = 0;      // dL/dm = -2/N * sum(x * (y - (m*x + b)))
};

struct LeastSquaresLine {
  double m = 0;
  double b = 0;
  double loss = 0;  // the mean squared residual of the line
};

class PointStats {
 public:
  // The complete state, for snapshots and journals. Restoring a Raw taken
  // from a PointStats gives back the same statistics, bit for bit.
  struct Raw {
    uint64_t n = 0;
    double pivot_x = 0, pivot_y = 0;
    double mean_dx = 0, mean_dy = 0;
    double var_x = 0, var_y = 0, cov_xy = 0;
    bool operator==(const Raw&) const = default;
  };

  PointStats() = default;

  Raw raw() const { return {n_, pivot_x_, pivot_y_, mean_dx_, mean_dy_, var_x_, var_y_, cov_xy_}; }
  // REQUIRES: `raw` came from raw() (possibly through a file that was
  // checksummed); it is not validated.
  static PointStats FromRaw(const Raw& raw) {
    PointStats s;
    s.n_ = raw.n;
    s.pivot_x_ = raw.pivot_x;
    s.pivot_y_ = raw.pivot_y;
    s.mean_dx_ = raw.mean_dx;
    s.mean_dy_ = raw.mean_dy;
    s.var_x_ = raw.var_x;
    s.var_y_ = raw.var_y;
    s.cov_xy_ = raw.cov_xy;
    return s;
  }

  // The statistics of the points (x[i], y[i]).
  // REQUIRES: x.size() == y.size(); every value finite with magnitude at
  // most kMaxAbsValue.
  static PointStats FromPoints(std::span<const double> x, std::span<const double> y);

  // FromPoints for points a client sent: checks them as ValidatePoints does
  // in the same pass over the data, and returns its error if one is bad.
  static Status FromClientPoints(std::span<const double> x, std::span<const double> y,
                                 PointStats* stats);

  // Adds the points summarised by `other` to this set. O(1).
  void Merge(const PointStats& other);

  uint64_t count() const { return n_; }
  bool empty() const { return n_ == 0; }
  // REQUIRES for everything below: !empty().
  double mean_x() const { return pivot_x_ + mean_dx_; }
  double mean_y() const { return pivot_y_ + mean_dy_; }
  double var_x() const { return var_x_; }  // population variance
  double var_y() const { return var_y_; }
  double cov_xy() const { return cov_xy_; }

  // The gradient of L(m, b) = 1/N * sum((y - (m*x + b))^2) at (m, b).
  Gradient GradientAt(double m, double b) const;
  // L(m, b).
  double LossAt(double m, double b) const;
  // The least-squares line; nullopt when x has no spread.
  std::optional<LeastSquaresLine> LeastSquares() const;
  // The coefficient of determination of the least-squares line; nullopt
  // when x or y has no spread.
  std::optional<double> RSquared() const;
  // The largest eigenvalue of the Hessian of L, the Lipschitz constant of
  // its gradient: a step of 1/L can never increase the loss.
  double GradientLipschitzConstant() const;

 private:
  // REQUIRES: n > 0. Sets *in_range to whether every value is finite with
  // magnitude at most kMaxAbsValue (the statistics are meaningless if not).
  static PointStats FromChunk(const double* x, const double* y, std::size_t n, bool* in_range);
  // The mean residual ybar - (m*xbar + b), kept accurate around the pivot.
  double MeanResidual(double m, double b) const;

  uint64_t n_ = 0;
  double pivot_x_ = 0;  // a point of the set: means are kept relative to it
  double pivot_y_ = 0;
  double mean_dx_ = 0;  // mean of (x - pivot_x_)
  double mean_dy_ = 0;
  double var_x_ = 0;  // 1/n * sum((x - xbar)^2)
  double var_y_ = 0;
  double cov_xy_ = 0;  // 1/n * sum((x - xbar) * (y - ybar))
};

}  // namespace gradientd::core
