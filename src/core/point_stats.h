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

#include "core/moments.h"
#include "core/status.h"

namespace gradientd::core {

// The largest magnitude of an x or y value for which no intermediate result
// can overflow. Callers validate against it (see ValidatePoints).
inline constexpr double kMaxAbsValue = 1e150;

// Checks points given by a client: as many x as y, every value finite with
// magnitude at most kMaxAbsValue. The error names the first bad value.
Status ValidatePoints(std::span<const double> x, std::span<const double> y);

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

  Raw raw() const {
    return {n_, m_.pivot_x, m_.pivot_y, m_.mean_dx, m_.mean_dy, m_.var_x, m_.var_y, m_.cov_xy};
  }
  // REQUIRES: `raw` came from raw() (possibly through a file that was
  // checksummed); it is not validated.
  static PointStats FromRaw(const Raw& raw) {
    PointStats s;
    s.n_ = raw.n;
    s.m_ = Moments{.pivot_x = raw.pivot_x,
                   .pivot_y = raw.pivot_y,
                   .mean_dx = raw.mean_dx,
                   .mean_dy = raw.mean_dy,
                   .var_x = raw.var_x,
                   .var_y = raw.var_y,
                   .cov_xy = raw.cov_xy};
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
  double mean_x() const { return m_.mean_x(); }
  double mean_y() const { return m_.mean_y(); }
  double var_x() const { return m_.var_x; }  // population variance
  double var_y() const { return m_.var_y; }
  double cov_xy() const { return m_.cov_xy; }
  // The moments the queries below are computed from (see moments.h).
  const Moments& moments() const { return m_; }

  // The gradient of L(m, b) = 1/N * sum((y - (m*x + b))^2) at (m, b).
  Gradient GradientAt(double m, double b) const { return m_.GradientAt(m, b); }
  // L(m, b).
  double LossAt(double m, double b) const { return m_.LossAt(m, b); }
  // The least-squares line; nullopt when x has no spread.
  std::optional<LeastSquaresLine> LeastSquares() const {
    if (n_ == 0) return std::nullopt;
    return m_.LeastSquares();
  }
  // The coefficient of determination of the least-squares line; nullopt
  // when x or y has no spread.
  std::optional<double> RSquared() const {
    if (n_ == 0) return std::nullopt;
    return m_.RSquared();
  }
  // The largest eigenvalue of the Hessian of L, the Lipschitz constant of
  // its gradient: a step of 1/L can never increase the loss.
  double GradientLipschitzConstant() const { return m_.GradientLipschitzConstant(); }

 private:
  // REQUIRES: n > 0. Sets *in_range to whether every value is finite with
  // magnitude at most kMaxAbsValue (the statistics are meaningless if not).
  static PointStats FromChunk(const double* x, const double* y, std::size_t n, bool* in_range);
  uint64_t n_ = 0;
  Moments m_;  // the pivot is a point of the set
};

}  // namespace gradientd::core
