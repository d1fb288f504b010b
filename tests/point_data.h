// The core numerics tests' data sets and checks: the lesson's revenue data,
// random linear and timestamp-like data, batch cuts and shuffles, and
// ExpectMatchesExact (every PointStats result against the exact rational
// reference of lesson_reference.h).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <boost/multiprecision/cpp_bin_float.hpp>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <numeric>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/point_stats.h"
#include "lesson_reference.h"

namespace gradientd::core {

using lesson::Exact;
using lesson::ExactReference;
using lesson::Rational;
using lesson::RelativeError;
using lesson::ScaledError;

struct Data {
  std::vector<double> x;
  std::vector<double> y;
};

// The lesson's data: monthly revenue over a year.
inline Data RevenueData() {
  return {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
          {52, 74, 79, 95, 115, 110, 129, 126, 147, 146, 156, 184}};
}

inline PointStats Stats(const Data& d) { return PointStats::FromPoints(d.x, d.y); }

inline double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

inline std::size_t UniformIndex(std::mt19937_64& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

// x uniform in [x0, x0 + spread), y = y0 + slope*(x - x0) + noise.
inline Data LinearData(std::mt19937_64& rng, std::size_t n, double x0, double spread, double y0,
                       double slope, double noise) {
  Data d;
  std::normal_distribution<double> gauss(0.0, noise);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = x0 + Uniform(rng, 0, spread);
    d.x.push_back(x);
    d.y.push_back(y0 + slope * (x - x0) + gauss(rng));
  }
  return d;
}

// Unix-timestamp-like data: x = t0 + step*i + small jitter (so x - x' is
// small but x itself is ~1e9), y with a large offset.
inline Data TimestampData(std::mt19937_64& rng, std::size_t n, double t0, double step,
                          double jitter, double y0, double slope, double noise) {
  Data d;
  std::normal_distribution<double> gauss(0.0, noise);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = t0 + step * static_cast<double>(i) + Uniform(rng, -jitter, jitter);
    d.x.push_back(x);
    d.y.push_back(y0 + slope * (x - t0) + gauss(rng));
  }
  return d;
}

// The sizes of the terms each gradient component cancels, from the exact
// reference: dL/db = -2*(ybar - m*xbar - b) and
// dL/dm = -2*(E[xy] - m*E[x^2] - b*xbar).
inline Rational InterceptScale(const ExactReference& ref, double m, double b) {
  return 2 *
         (lesson::Abs(ref.MeanY()) + lesson::Abs(Exact(m) * ref.MeanX()) + lesson::Abs(Exact(b)));
}
inline Rational SlopeScale(const ExactReference& ref, double m, double b) {
  return 2 * (lesson::Abs(ref.MeanXY()) + lesson::Abs(Exact(m) * ref.MeanXX()) +
              lesson::Abs(Exact(b) * ref.MeanX()));
}

// The same scales, from the data itself (sums of magnitudes): an upper
// bound of the terms a per-point sum cancels.
struct TermScales {
  double intercept = 0;
  double slope = 0;
};
inline TermScales DataScales(const Data& d, double m, double b) {
  TermScales s;
  const double n = static_cast<double>(d.x.size());
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    const double t = std::fabs(d.y[i]) + std::fabs(m * d.x[i]) + std::fabs(b);
    s.intercept += 2 * t / n;
    s.slope += 2 * std::fabs(d.x[i]) * t / n;
  }
  return s;
}

// Checks every result of `stats` against the exact reference for `data`.
// `tol` bounds relative errors (gradients: relative to the terms cancelled).
inline void ExpectMatchesExact(const PointStats& stats, const Data& data,
                               const std::vector<std::pair<double, double>>& mbs, double tol) {
  const ExactReference ref(data.x, data.y);
  ASSERT_EQ(stats.count(), data.x.size());
  // Means relative to the mean's size plus the spread around it.
  const Rational tiny(std::numeric_limits<double>::min());
  const Rational sd_x = Exact(std::sqrt(lesson::ToDouble(ref.VarX())));
  const Rational sd_y = Exact(std::sqrt(lesson::ToDouble(ref.VarY())));
  EXPECT_LE(ScaledError(stats.mean_x(), ref.MeanX(), lesson::Abs(ref.MeanX()) + sd_x + tiny), tol);
  EXPECT_LE(ScaledError(stats.mean_y(), ref.MeanY(), lesson::Abs(ref.MeanY()) + sd_y + tiny), tol);
  if (ref.VarX() > 0) {
    EXPECT_LE(RelativeError(stats.var_x(), ref.VarX()), tol);
  }
  if (ref.VarY() > 0) {
    EXPECT_LE(RelativeError(stats.var_y(), ref.VarY()), tol);
  }
  // cov relative to sqrt(var_x * var_y) (|cov| may be ~0).
  const double cov_scale = std::sqrt(lesson::ToDouble(ref.VarX() * ref.VarY()));
  if (cov_scale > 0) {
    EXPECT_LE(ScaledError(stats.cov_xy(), ref.CovXY(), Exact(cov_scale)), tol);
  }
  const auto ls = stats.LeastSquares();
  const auto exact_ls = ref.LeastSquares();
  ASSERT_EQ(ls.has_value(), exact_ls.has_value());
  if (ls) {
    EXPECT_LE(RelativeError(ls->m, exact_ls->m), tol) << "slope " << ls->m;
    const Rational b_scale = lesson::Abs(ref.MeanY()) + lesson::Abs(exact_ls->m * ref.MeanX()) +
                             lesson::Abs(exact_ls->b);
    EXPECT_LE(ScaledError(ls->b, exact_ls->b, b_scale), tol) << "intercept " << ls->b;
    // The residual of the line, relative to var(y) (which it cancels).
    EXPECT_LE(ScaledError(ls->loss, exact_ls->loss, ref.VarY()), tol);
  }
  const auto r2 = stats.RSquared();
  const auto exact_r2 = ref.RSquared();
  ASSERT_EQ(r2.has_value(), exact_r2.has_value());
  if (r2) {
    EXPECT_LE(ScaledError(*r2, *exact_r2, Rational(1)), tol);
  }

  for (const auto& [m, b] : mbs) {
    const Gradient g = stats.GradientAt(m, b);
    const Rational mr = Exact(m), br = Exact(b);
    // Relative to the terms a per-point sum cancels.
    const TermScales sc = DataScales(data, m, b);
    EXPECT_LE(ScaledError(g.intercept, ref.GradientB(mr, br), Exact(sc.intercept) + tiny), tol)
        << "dL/db at m=" << m << " b=" << b;
    EXPECT_LE(ScaledError(g.slope, ref.GradientM(mr, br), Exact(sc.slope) + tiny), tol)
        << "dL/dm at m=" << m << " b=" << b;
    // L = var(y) - 2m cov + m^2 var(x) + r^2 with r = ybar - m*xbar - b:
    // relative to those terms, plus the loss's own sensitivity to the
    // rounding of r (|dL/dr| * the size of the terms r cancels).
    const Rational r = ref.MeanY() - mr * ref.MeanX() - br;
    const Rational loss_scale = ref.VarY() + 2 * lesson::Abs(mr * ref.CovXY()) +
                                mr * mr * ref.VarX() + r * r +
                                2 * lesson::Abs(r) * InterceptScale(ref, m, b) + tiny;
    EXPECT_LE(ScaledError(stats.LossAt(m, b), ref.Loss(mr, br), loss_scale), tol)
        << "loss at m=" << m << " b=" << b;
  }
}

std::vector<std::pair<double, double>> RandomModels(std::mt19937_64& rng, std::size_t count,
                                                    double m_center, double m_spread,
                                                    double b_center, double b_spread) {
  std::vector<std::pair<double, double>> mbs;
  for (std::size_t i = 0; i < count; ++i) {
    mbs.emplace_back(m_center + Uniform(rng, -m_spread, m_spread),
                     b_center + Uniform(rng, -b_spread, b_spread));
  }
  return mbs;
}

// Merges FromPoints of consecutive batches of `d` cut at `cuts`.
inline PointStats MergeBatches(const Data& d, std::vector<std::size_t> cuts) {
  cuts.push_back(0);
  cuts.push_back(d.x.size());
  std::sort(cuts.begin(), cuts.end());
  PointStats total;
  for (std::size_t i = 0; i + 1 < cuts.size(); ++i) {
    const std::size_t lo = cuts[i], len = cuts[i + 1] - cuts[i];
    total.Merge(
        PointStats::FromPoints(std::span(d.x).subspan(lo, len), std::span(d.y).subspan(lo, len)));
  }
  return total;
}

inline std::vector<std::size_t> RandomCuts(std::mt19937_64& rng, std::size_t n, std::size_t count) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < count; ++i) cuts.push_back(UniformIndex(rng, 0, n));
  return cuts;
}

inline Data Shuffled(const Data& d, std::mt19937_64& rng) {
  std::vector<std::size_t> order(d.x.size());
  std::iota(order.begin(), order.end(), std::size_t{0});
  std::shuffle(order.begin(), order.end(), rng);
  Data out;
  for (std::size_t i : order) {
    out.x.push_back(d.x[i]);
    out.y.push_back(d.y[i]);
  }
  return out;
}

}  // namespace gradientd::core
