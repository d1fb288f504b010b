// Tests of gradientd::core::PointStats and ValidatePoints against the
// lesson's literal loops and an exact rational reference (lesson_reference.h).
#include "core/point_stats.h"

#include <gmock/gmock.h>
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

#include "lesson_reference.h"

namespace gradientd::core {
namespace {

using lesson::Exact;
using lesson::ExactReference;
using lesson::Rational;
using lesson::RelativeError;
using lesson::ScaledError;
using ::testing::HasSubstr;

struct Data {
  std::vector<double> x;
  std::vector<double> y;
};

// The lesson's data: monthly revenue over a year.
Data RevenueData() {
  return {{1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12},
          {52, 74, 79, 95, 115, 110, 129, 126, 147, 146, 156, 184}};
}

PointStats Stats(const Data& d) { return PointStats::FromPoints(d.x, d.y); }

double Uniform(std::mt19937_64& rng, double lo, double hi) {
  return std::uniform_real_distribution<double>(lo, hi)(rng);
}

std::size_t UniformIndex(std::mt19937_64& rng, std::size_t lo, std::size_t hi) {
  return std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
}

// x uniform in [x0, x0 + spread), y = y0 + slope*(x - x0) + noise.
Data LinearData(std::mt19937_64& rng, std::size_t n, double x0, double spread, double y0,
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
Data TimestampData(std::mt19937_64& rng, std::size_t n, double t0, double step, double jitter,
                   double y0, double slope, double noise) {
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
Rational InterceptScale(const ExactReference& ref, double m, double b) {
  return 2 *
         (lesson::Abs(ref.MeanY()) + lesson::Abs(Exact(m) * ref.MeanX()) + lesson::Abs(Exact(b)));
}
Rational SlopeScale(const ExactReference& ref, double m, double b) {
  return 2 * (lesson::Abs(ref.MeanXY()) + lesson::Abs(Exact(m) * ref.MeanXX()) +
              lesson::Abs(Exact(b) * ref.MeanX()));
}

// The same scales, from the data itself (sums of magnitudes): an upper
// bound of the terms a per-point sum cancels.
struct TermScales {
  double intercept = 0;
  double slope = 0;
};
TermScales DataScales(const Data& d, double m, double b) {
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
void ExpectMatchesExact(const PointStats& stats, const Data& data,
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

// ---------------------------------------------------------------------------
// Known values.

TEST(PointStats, GradientMatchesLessonLoopOnRevenueData) {
  const Data d = RevenueData();
  const PointStats s = Stats(d);
  ASSERT_EQ(s.count(), 12u);

  // At (m, b) = (0, 0): dL/db = -2/12 * sum(y) = -2/12 * 1413 = -235.5 and
  // dL/dm = -2/12 * sum(x*y) = -2/12 * 10670 = -1778.333...
  const Gradient g = s.GradientAt(0, 0);
  EXPECT_DOUBLE_EQ(g.intercept, -235.5);
  EXPECT_NEAR(g.slope, -10670.0 / 6.0, 1e-12 * 1778.34);
  EXPECT_NEAR(g.slope, -1778.3333333333333, 1e-9);
  EXPECT_DOUBLE_EQ(lesson::get_gradient_at_b(d.x, d.y, 0, 0), -235.5);
  EXPECT_NEAR(lesson::get_gradient_at_m(d.x, d.y, 0, 0), -1778.3333333333333, 1e-9);

  // Elsewhere, against the literal loops.
  for (const auto& [m, b] : std::vector<std::pair<double, double>>{
           {17.783333333333335, 2.355}, {10, 50}, {-3.5, 120.25}, {10.388, 50.227}}) {
    const Gradient gi = s.GradientAt(m, b);
    EXPECT_NEAR(gi.intercept, lesson::get_gradient_at_b(d.x, d.y, m, b), 1e-12 * 2 * 400)
        << m << ", " << b;
    EXPECT_NEAR(gi.slope, lesson::get_gradient_at_m(d.x, d.y, m, b), 1e-12 * 2 * 4000)
        << m << ", " << b;
  }
}

TEST(PointStats, LeastSquaresLineOnRevenueData) {
  const Data d = RevenueData();
  const PointStats s = Stats(d);
  const auto ls = s.LeastSquares();
  ASSERT_TRUE(ls.has_value());
  // m = (N*Sxy - Sx*Sy) / (N*Sxx - Sx^2) = 17826 / 1716 = 10.388111888...
  // b = (Sy - m*Sx) / N = 50.2272727...
  EXPECT_NEAR(ls->m, 10.388111888111888, 1e-12 * 10.4);
  EXPECT_NEAR(ls->b, 50.227272727272727, 1e-12 * 50.3);
  // The least-squares line is where the lesson's gradients vanish.
  EXPECT_NEAR(lesson::get_gradient_at_b(d.x, d.y, ls->m, ls->b), 0, 1e-10);
  EXPECT_NEAR(lesson::get_gradient_at_m(d.x, d.y, ls->m, ls->b), 0, 1e-9);
  const Gradient g = s.GradientAt(ls->m, ls->b);
  EXPECT_NEAR(g.intercept, 0, 1e-10);
  EXPECT_NEAR(g.slope, 0, 1e-9);

  ExpectMatchesExact(s, d, {{0, 0}, {ls->m, ls->b}, {17.78, 2.355}, {-1, 1000}}, 1e-14);
  EXPECT_EQ(s.mean_x(), 6.5);
  EXPECT_EQ(s.mean_y(), 117.75);
}

// ---------------------------------------------------------------------------
// Random small data, many (m, b).

TEST(PointStats, MatchesLessonLoopsAndExactReferenceOnRandomData) {
  std::mt19937_64 rng(20240611);
  for (int trial = 0; trial < 300; ++trial) {
    const std::size_t n = UniformIndex(rng, 1, 40);
    const double x_scale = std::pow(10.0, Uniform(rng, -3, 4));
    const double y_scale = std::pow(10.0, Uniform(rng, -3, 4));
    const double x_off = trial % 3 == 0 ? 0 : Uniform(rng, -10, 10) * x_scale;
    Data d;
    for (std::size_t i = 0; i < n; ++i) {
      d.x.push_back(x_off + Uniform(rng, -1, 1) * x_scale);
      d.y.push_back(Uniform(rng, -1, 1) * y_scale);
    }
    const PointStats s = Stats(d);
    const ExactReference ref(d.x, d.y);
    const auto mbs = RandomModels(rng, 25, 0, 3 * y_scale / x_scale, 0, 3 * y_scale);
    SCOPED_TRACE("trial " + std::to_string(trial) + " n=" + std::to_string(n));
    ExpectMatchesExact(s, d, mbs, 1e-13);
    for (const auto& [m, b] : mbs) {
      const Gradient g = s.GradientAt(m, b);
      const double loop_b = lesson::get_gradient_at_b(d.x, d.y, m, b);
      const double loop_m = lesson::get_gradient_at_m(d.x, d.y, m, b);
      const TermScales sc = DataScales(d, m, b);
      // The literal loops agree with the exact reference (sanity of the
      // reference header) ...
      EXPECT_LE(std::fabs(loop_b - ref.GradientBAt(m, b)), 1e-13 * sc.intercept);
      EXPECT_LE(std::fabs(loop_m - ref.GradientMAt(m, b)), 1e-13 * sc.slope);
      // ... and with PointStats.
      EXPECT_LE(std::fabs(g.intercept - loop_b), 1e-13 * sc.intercept) << m << ", " << b;
      EXPECT_LE(std::fabs(g.slope - loop_m), 1e-13 * sc.slope) << m << ", " << b;
    }
  }
}

// ---------------------------------------------------------------------------
// Batches and arrival order.

// Merges FromPoints of consecutive batches of `d` cut at `cuts`.
PointStats MergeBatches(const Data& d, std::vector<std::size_t> cuts) {
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

std::vector<std::size_t> RandomCuts(std::mt19937_64& rng, std::size_t n, std::size_t count) {
  std::vector<std::size_t> cuts;
  for (std::size_t i = 0; i < count; ++i) cuts.push_back(UniformIndex(rng, 0, n));
  return cuts;
}

Data Shuffled(const Data& d, std::mt19937_64& rng) {
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

// Every result of `a` and `b` agrees to `tol`, relative to the size of the
// quantity (or of the terms it cancels).
void ExpectSameResults(const PointStats& a, const PointStats& b,
                       const std::vector<std::pair<double, double>>& mbs, double tol) {
  ASSERT_EQ(a.count(), b.count());
  auto near = [tol](double u, double v, double scale, const char* what) {
    EXPECT_LE(std::fabs(u - v), tol * scale) << what << ": " << u << " vs " << v;
  };
  const double sx = std::sqrt(a.var_x()), sy = std::sqrt(a.var_y());
  near(a.mean_x(), b.mean_x(), std::fabs(a.mean_x()) + sx, "mean_x");
  near(a.mean_y(), b.mean_y(), std::fabs(a.mean_y()) + sy, "mean_y");
  near(a.var_x(), b.var_x(), a.var_x(), "var_x");
  near(a.var_y(), b.var_y(), a.var_y(), "var_y");
  near(a.cov_xy(), b.cov_xy(), sx * sy, "cov_xy");
  const auto la = a.LeastSquares(), lb = b.LeastSquares();
  ASSERT_EQ(la.has_value(), lb.has_value());
  if (la) {
    near(la->m, lb->m, std::fabs(la->m), "least-squares m");
    near(la->b, lb->b, std::fabs(la->b) + std::fabs(la->m * a.mean_x()) + std::fabs(a.mean_y()),
         "least-squares b");
    near(la->loss, lb->loss, a.var_y(), "least-squares loss");
  }
  const auto ra = a.RSquared(), rb = b.RSquared();
  ASSERT_EQ(ra.has_value(), rb.has_value());
  if (ra) near(*ra, *rb, 1, "r^2");
  near(a.GradientLipschitzConstant(), b.GradientLipschitzConstant(), a.GradientLipschitzConstant(),
       "lipschitz");
  const double ex2 = a.var_x() + a.mean_x() * a.mean_x();
  const double ey2 = a.var_y() + a.mean_y() * a.mean_y();
  for (const auto& [m, bb] : mbs) {
    const Gradient ga = a.GradientAt(m, bb), gb = b.GradientAt(m, bb);
    near(ga.intercept, gb.intercept,
         2 * (std::fabs(a.mean_y()) + sy + std::fabs(m) * (std::fabs(a.mean_x()) + sx) +
              std::fabs(bb)),
         "dL/db");
    near(
        ga.slope, gb.slope,
        2 * (std::sqrt(ex2) * std::sqrt(ey2) + std::fabs(m) * ex2 + std::fabs(bb) * std::sqrt(ex2)),
        "dL/dm");
    const double r = a.mean_y() - m * a.mean_x() - bb;
    near(a.LossAt(m, bb), b.LossAt(m, bb),
         a.var_y() + 2 * std::fabs(m * a.cov_xy()) + m * m * a.var_x() + r * r, "loss");
  }
}

std::vector<Data> SplitTestData(std::mt19937_64& rng) {
  return {
      LinearData(rng, 1000, -50, 100, 0, 0.5, 3),
      LinearData(rng, 777, 1e6, 500, -2e4, -7.25, 10),
      TimestampData(rng, 2000, 1.7e9, 60, 5, 3e8, 0.25, 50),
      // Several internal chunks of FromPoints.
      LinearData(rng, 10000, 10, 1, 5, 2, 0.1),
  };
}

TEST(PointStats, BatchSplitAndArrivalOrderGiveSameResults) {
  std::mt19937_64 rng(7);
  for (const Data& d : SplitTestData(rng)) {
    const PointStats whole = Stats(d);
    const auto ls = whole.LeastSquares();
    ASSERT_TRUE(ls.has_value());
    const auto mbs = RandomModels(rng, 8, ls->m, std::fabs(ls->m) + 1, ls->b, std::fabs(ls->b) + 1);
    for (std::size_t trial = 0; trial < 20; ++trial) {
      SCOPED_TRACE("n=" + std::to_string(d.x.size()) + " trial " + std::to_string(trial));
      // Random batches, in order.
      ExpectSameResults(whole, MergeBatches(d, RandomCuts(rng, d.x.size(), 1 + trial)), mbs, 1e-13);
      // Random arrival order, whole and in random batches.
      const Data shuffled = Shuffled(d, rng);
      ExpectSameResults(whole, Stats(shuffled), mbs, 1e-13);
      ExpectSameResults(whole, MergeBatches(shuffled, RandomCuts(rng, d.x.size(), 3 * trial)), mbs,
                        1e-13);
    }
    // One point per batch: the most merges there can be.
    std::vector<std::size_t> every(d.x.size());
    std::iota(every.begin(), every.end(), std::size_t{0});
    ExpectSameResults(whole, MergeBatches(Shuffled(d, rng), every), mbs, 1e-13);
  }
}

TEST(PointStats, MergeIsAssociative) {
  std::mt19937_64 rng(11);
  for (const Data& d : SplitTestData(rng)) {
    const auto ls = Stats(d).LeastSquares();
    ASSERT_TRUE(ls.has_value());
    const auto mbs = RandomModels(rng, 8, ls->m, std::fabs(ls->m) + 1, ls->b, std::fabs(ls->b) + 1);
    for (int trial = 0; trial < 20; ++trial) {
      const Data s = Shuffled(d, rng);
      std::size_t i = UniformIndex(rng, 1, s.x.size() - 2);
      std::size_t j = UniformIndex(rng, 1, s.x.size() - 2);
      if (i > j) std::swap(i, j);
      if (i == j) ++j;
      auto part = [&s](std::size_t lo, std::size_t hi) {
        return PointStats::FromPoints(std::span(s.x).subspan(lo, hi - lo),
                                      std::span(s.y).subspan(lo, hi - lo));
      };
      const PointStats a = part(0, i), b = part(i, j), c = part(j, s.x.size());
      PointStats left = a;  // (a + b) + c
      left.Merge(b);
      left.Merge(c);
      PointStats bc = b;  // a + (b + c)
      bc.Merge(c);
      PointStats right = a;
      right.Merge(bc);
      PointStats swapped = c;  // (c + a) + b: order of arrival differs
      swapped.Merge(a);
      swapped.Merge(b);
      SCOPED_TRACE("cuts " + std::to_string(i) + ", " + std::to_string(j));
      ExpectSameResults(left, right, mbs, 1e-13);
      ExpectSameResults(left, swapped, mbs, 1e-13);
      ExpectSameResults(Stats(d), left, mbs, 1e-13);
    }
  }
}

void ExpectIdentical(const PointStats& a, const PointStats& b) {
  EXPECT_EQ(a.count(), b.count());
  EXPECT_EQ(a.mean_x(), b.mean_x());
  EXPECT_EQ(a.mean_y(), b.mean_y());
  EXPECT_EQ(a.var_x(), b.var_x());
  EXPECT_EQ(a.var_y(), b.var_y());
  EXPECT_EQ(a.cov_xy(), b.cov_xy());
  for (const auto& [m, bb] : std::vector<std::pair<double, double>>{{0, 0}, {2, -3}}) {
    EXPECT_EQ(a.GradientAt(m, bb).intercept, b.GradientAt(m, bb).intercept);
    EXPECT_EQ(a.GradientAt(m, bb).slope, b.GradientAt(m, bb).slope);
    EXPECT_EQ(a.LossAt(m, bb), b.LossAt(m, bb));
  }
}

TEST(PointStats, MergeWithEmptyChangesNothing) {
  const Data d = RevenueData();
  const PointStats s = Stats(d);
  const PointStats empty;
  const PointStats empty_points = PointStats::FromPoints({}, {});
  EXPECT_TRUE(empty_points.empty());

  PointStats a = s;
  a.Merge(empty);
  a.Merge(empty_points);
  ExpectIdentical(a, s);

  PointStats b;
  b.Merge(s);
  ExpectIdentical(b, s);

  PointStats c;
  c.Merge(empty);
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(c.count(), 0u);

  // Empty batches interleaved with real ones.
  PointStats d2;
  d2.Merge(empty);
  d2.Merge(PointStats::FromPoints(std::span(d.x).first(5), std::span(d.y).first(5)));
  d2.Merge(empty);
  d2.Merge(PointStats::FromPoints(std::span(d.x).subspan(5), std::span(d.y).subspan(5)));
  d2.Merge(empty);
  ExpectMatchesExact(d2, d, {{0, 0}, {10, 50}}, 1e-14);
}

// ---------------------------------------------------------------------------
// Offset data: x ~ 1e9 (Unix timestamps), y with a large offset.

std::vector<Data> OffsetData() {
  std::mt19937_64 rng(1700000000);
  std::vector<Data> out;
  // One point per second with sub-second jitter: x spans 5000 around 1.7e9.
  out.push_back(TimestampData(rng, 5000, 1.7e9, 1, 0.25, 3e8, 0.25, 2));
  // One per minute, falling; y offset 5e7.
  out.push_back(TimestampData(rng, 1000, 1.0e9, 60, 5, 5e7, -3.5, 20));
  // x = 1e9 + noise in [0, 1000), random order; 37 points.
  out.push_back(LinearData(rng, 37, 1e9, 1000, -4e6, 0.001, 0.01));
  // Negative timestamps (before the epoch) with a tiny spread.
  out.push_back(LinearData(rng, 300, -2e9, 10, 1e6, 100, 1));
  return out;
}

// A model's (m, b) near and far from the least-squares line.
std::vector<std::pair<double, double>> OffsetModels(const ExactReference& ref) {
  const auto ls = ref.LeastSquares();
  const double m = lesson::ToDouble(ls->m), b = lesson::ToDouble(ls->b);
  return {{0, 0},      {m, b},    {1, 0},
          {m, 0},      {0, b},    {m * (1 + 1e-6), b},
          {m, b + 10}, {-3, 5e9}, {m * 2, b - lesson::ToDouble(ref.MeanY())},
          {1e-3, -1e6}};
}

TEST(PointStats, OffsetDataMatchesExactReference) {
  for (const Data& d : OffsetData()) {
    const ExactReference ref(d.x, d.y);
    const auto exact_ls = ref.LeastSquares();
    ASSERT_TRUE(exact_ls.has_value());
    SCOPED_TRACE("n=" + std::to_string(d.x.size()) +
                 " xbar=" + std::to_string(lesson::ToDouble(ref.MeanX())));
    const PointStats s = Stats(d);
    const auto ls = s.LeastSquares();
    ASSERT_TRUE(ls.has_value());
    // At least 12 significant digits.
    const double m_err = RelativeError(ls->m, exact_ls->m);
    const double b_err = RelativeError(ls->b, exact_ls->b);
    EXPECT_GE(-std::log10(m_err), 12) << "slope " << ls->m << " rel err " << m_err;
    EXPECT_GE(-std::log10(b_err), 12) << "intercept " << ls->b << " rel err " << b_err;

    for (const auto& [m, b] : OffsetModels(ref)) {
      const Gradient g = s.GradientAt(m, b);
      const Rational mr = Exact(m), br = Exact(b);
      EXPECT_LE(ScaledError(g.intercept, ref.GradientB(mr, br), InterceptScale(ref, m, b)), 1e-12)
          << "dL/db at m=" << m << " b=" << b;
      EXPECT_LE(ScaledError(g.slope, ref.GradientM(mr, br), SlopeScale(ref, m, b)), 1e-12)
          << "dL/dm at m=" << m << " b=" << b;
    }
    // The loss at the least-squares line is the residual variance, tiny next
    // to ybar^2 (~1e17): it comes out accurate relative to var(y), the term
    // it cancels (a raw-power-sum loss would be off by ~eps*ybar^2).
    const double m = lesson::ToDouble(exact_ls->m), b = lesson::ToDouble(exact_ls->b);
    EXPECT_LE(ScaledError(s.LossAt(m, b), ref.Loss(Exact(m), Exact(b)), ref.VarY()), 1e-13);
    EXPECT_LE(ScaledError(ls->loss, exact_ls->loss, ref.VarY()), 1e-13);

    // Everything, with the default tolerance for the moments and r^2.
    ExpectMatchesExact(s, d, OffsetModels(ref), 1e-12);

    // Streaming: the same data one point at a time, and in random batches,
    // still gives 12 digits.
    PointStats streamed;
    for (std::size_t i = 0; i < d.x.size(); ++i) {
      streamed.Merge(
          PointStats::FromPoints(std::span(d.x).subspan(i, 1), std::span(d.y).subspan(i, 1)));
    }
    const auto sls = streamed.LeastSquares();
    ASSERT_TRUE(sls.has_value());
    EXPECT_GE(-std::log10(RelativeError(sls->m, exact_ls->m)), 12);
    EXPECT_GE(-std::log10(RelativeError(sls->b, exact_ls->b)), 12);
  }
}

// Points exactly on a line, x ~ 1.7e9: every residual y[i] - (m*x[i] + b)
// is exactly 0 in double arithmetic (integers below 2^53), so the lesson's
// loops give exactly 0 gradient and loss at (m, b). PointStats' error there
// must scale with the spread of the data, not with where it sits: computing
// ybar - m*xbar - b from the rounded means would give an error of
// ~eps*|ybar| ~ 1e-6 in dL/db and ~1e3 in dL/dm here.
TEST(PointStats, ExactLineOnOffsetDataHasNoSpuriousGradient) {
  struct Line {
    double m, b;
  };
  std::mt19937_64 rng(5);
  for (const Line line :
       {Line{3, 3}, Line{0.75, -1e9}, Line{-7, 5e9}, Line{1.5, 12345}, Line{10, 3}, Line{2, 3}}) {
    Data d;
    for (const double dx : {0.0, 1.0, 3.0, 7.0, 8.0, 20.0, 21.0, 1000.0, 4.0}) {
      d.x.push_back(1.7e9 + 4 * dx);
      d.y.push_back(line.m * d.x.back() + line.b);
    }
    SCOPED_TRACE("m=" + std::to_string(line.m) + " b=" + std::to_string(line.b));
    ASSERT_EQ(lesson::get_gradient_at_b(d.x, d.y, line.m, line.b), 0);
    ASSERT_EQ(lesson::get_gradient_at_m(d.x, d.y, line.m, line.b), 0);
    for (int trial = 0; trial < 6; ++trial) {
      const PointStats s =
          trial == 0 ? Stats(d) : MergeBatches(Shuffled(d, rng), RandomCuts(rng, d.x.size(), 3));
      // The spread terms: sd(y) + |m|*sd(x).
      const double spread = 2 * (std::sqrt(s.var_y()) + std::fabs(line.m) * std::sqrt(s.var_x()));
      const Gradient g = s.GradientAt(line.m, line.b);
      EXPECT_LE(std::fabs(g.intercept), 1e-12 * spread) << g.intercept;
      EXPECT_LE(std::fabs(g.slope), 1e-12 * spread * s.mean_x()) << g.slope;
      EXPECT_LE(s.LossAt(line.m, line.b), 1e-13 * s.var_y());
      const auto ls = s.LeastSquares();
      ASSERT_TRUE(ls.has_value());
      EXPECT_NEAR(ls->m, line.m, 1e-15 * std::fabs(line.m));
      // b is limited by the rounding of m times xbar.
      EXPECT_NEAR(ls->b, line.b, 1e-14 * (std::fabs(line.b) + std::fabs(line.m * s.mean_x())));
      EXPECT_LE(ls->loss, 1e-13 * s.var_y());
    }
  }
}

// A naive raw-power-sum implementation (sum x, sum x^2, sum x*y) on the same
// data: the test above would reject it, so it has teeth.
TEST(PointStats, NaiveRawPowerSumsFailOnOffsetData) {
  const Data d = OffsetData()[0];
  const ExactReference ref(d.x, d.y);
  const auto exact_ls = ref.LeastSquares();
  double n = 0, sx = 0, sy = 0, sxx = 0, sxy = 0, syy = 0;
  for (std::size_t i = 0; i < d.x.size(); ++i) {
    n += 1;
    sx += d.x[i];
    sy += d.y[i];
    sxx += d.x[i] * d.x[i];
    sxy += d.x[i] * d.y[i];
    syy += d.y[i] * d.y[i];
  }
  const double naive_m = (n * sxy - sx * sy) / (n * sxx - sx * sx);
  const double naive_b = (sy - naive_m * sx) / n;
  const double naive_m_err = RelativeError(naive_m, exact_ls->m);
  const double naive_b_err = RelativeError(naive_b, exact_ls->b);
  // Fewer than 9 correct digits (in practice: none or a few).
  EXPECT_GT(naive_m_err, 1e-9) << "naive slope " << naive_m;
  EXPECT_GT(naive_b_err, 1e-9) << "naive intercept " << naive_b;
  // Its loss at the least-squares line is off in the leading digits.
  const double m = lesson::ToDouble(exact_ls->m), b = lesson::ToDouble(exact_ls->b);
  const double naive_loss =
      (syy - 2 * m * sxy - 2 * b * sy + m * m * sxx + 2 * m * b * sx + n * b * b) / n;
  EXPECT_GT(ScaledError(naive_loss, ref.Loss(Exact(m), Exact(b)), ref.VarY()), 1e-9);
  // PointStats gets all of them right on the same data.
  const auto ls = Stats(d).LeastSquares();
  EXPECT_LT(RelativeError(ls->m, exact_ls->m), 1e-12);
  EXPECT_LT(RelativeError(ls->b, exact_ls->b), 1e-12);
  EXPECT_LT(ScaledError(Stats(d).LossAt(m, b), ref.Loss(Exact(m), Exact(b)), ref.VarY()), 1e-13);
}

// ---------------------------------------------------------------------------
// NIST StRD Norris (linear least squares, lower difficulty): 36 observations,
// transcribed from the NIST data file as reproduced in GSL's fit/test.c
// (github.com/BrianGladman/gsl, fit/test.c) and cross-checked against a
// second copy of https://www.itl.nist.gov/div898/strd/lls/data/LINKS/DATA/Norris.dat.

constexpr double kNorrisX[] = {0.2,   337.4, 118.2, 884.6, 10.1,  226.5, 666.3, 996.3, 448.6,
                               777.0, 558.2, 0.4,   0.6,   775.5, 666.9, 338.0, 447.5, 11.6,
                               556.0, 228.1, 995.8, 887.6, 120.2, 0.3,   0.3,   556.8, 339.1,
                               887.2, 999.0, 779.0, 11.1,  118.3, 229.2, 669.1, 448.9, 0.5};
constexpr double kNorrisY[] = {0.1,   338.8, 118.1, 888.0, 9.2,   228.1, 668.5, 998.5, 449.1,
                               778.9, 559.2, 0.3,   0.1,   778.1, 668.8, 339.3, 448.9, 10.8,
                               557.7, 228.3, 998.0, 888.8, 119.6, 0.3,   0.6,   557.6, 339.3,
                               888.0, 998.5, 778.9, 10.2,  117.6, 228.9, 668.4, 449.2, 0.2};
// Certified values.
constexpr double kNorrisB0 = -0.262323073774029;
constexpr double kNorrisB1 = 1.00211681802045;
constexpr double kNorrisResidualSumOfSquares = 26.6173985294224;
constexpr double kNorrisRSquared = 0.999993745883712;

// The exact decimal value of a data value written with one decimal digit.
Rational Tenths(double v) {
  const double tenths = std::round(v * 10);
  EXPECT_EQ(tenths / 10, v) << "not a one-decimal value: " << v;
  return Rational(static_cast<long long>(tenths)) / 10;
}

double SignificantDigits(double got, double certified) {
  return -std::log10(std::fabs(got - certified) / std::fabs(certified));
}

TEST(PointStats, NistNorrisCertifiedValues) {
  const Data d{{std::begin(kNorrisX), std::end(kNorrisX)},
               {std::begin(kNorrisY), std::end(kNorrisY)}};
  ASSERT_EQ(d.x.size(), 36u);
  ASSERT_EQ(d.y.size(), 36u);

  // The transcription: the exact least squares of the decimal data must
  // reproduce the certified values to their 15 digits.
  std::vector<Rational> dx, dy;
  for (double v : d.x) dx.push_back(Tenths(v));
  for (double v : d.y) dy.push_back(Tenths(v));
  const ExactReference decimal(dx, dy);
  const auto certified = decimal.LeastSquares();
  ASSERT_TRUE(certified.has_value());
  EXPECT_LT(RelativeError(kNorrisB0, certified->b), 5e-15);
  EXPECT_LT(RelativeError(kNorrisB1, certified->m), 5e-15);
  EXPECT_LT(RelativeError(kNorrisResidualSumOfSquares, 36 * certified->loss), 5e-15);
  EXPECT_LT(RelativeError(kNorrisRSquared, *decimal.RSquared()), 5e-15);

  // PointStats on the doubles, whole and streamed in batches.
  PointStats streamed;
  for (std::size_t i = 0; i < 36; i += 5) {
    const std::size_t len = std::min<std::size_t>(5, 36 - i);
    streamed.Merge(
        PointStats::FromPoints(std::span(d.x).subspan(i, len), std::span(d.y).subspan(i, len)));
  }
  for (const PointStats& s : {Stats(d), streamed}) {
    const auto ls = s.LeastSquares();
    ASSERT_TRUE(ls.has_value());
    EXPECT_GE(SignificantDigits(ls->b, kNorrisB0), 12) << "B0 = " << ls->b;
    EXPECT_GE(SignificantDigits(ls->m, kNorrisB1), 12) << "B1 = " << ls->m;
    ASSERT_TRUE(s.RSquared().has_value());
    EXPECT_GE(SignificantDigits(*s.RSquared(), kNorrisRSquared), 12);
    // The residual sum of squares cancels var(y) ~ 1e5 down to ~0.7 per
    // point: 9 digits is what double arithmetic guarantees there.
    EXPECT_GE(SignificantDigits(36 * ls->loss, kNorrisResidualSumOfSquares), 9);
    // The lesson's gradients vanish at the certified line (to the size of
    // its 15 digits).
    EXPECT_NEAR(s.GradientAt(kNorrisB1, kNorrisB0).intercept, 0, 1e-11);
    EXPECT_NEAR(s.GradientAt(kNorrisB1, kNorrisB0).slope, 0, 1e-8);
  }
  ExpectMatchesExact(Stats(d), d, {{0, 0}, {kNorrisB1, kNorrisB0}, {1, 0}}, 1e-13);
}

// ---------------------------------------------------------------------------
// Degenerate data.

TEST(PointStats, EmptyStats) {
  const PointStats s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.count(), 0u);
  EXPECT_FALSE(s.LeastSquares().has_value());
  EXPECT_FALSE(s.RSquared().has_value());
  const PointStats from_nothing = PointStats::FromPoints({}, {});
  EXPECT_TRUE(from_nothing.empty());
  EXPECT_FALSE(from_nothing.LeastSquares().has_value());
}

TEST(PointStats, AllXEqualHasNoLine) {
  std::mt19937_64 rng(3);
  for (const double x0 : {1e9, 0.0, 0.1, -7.3, 1.7e9 + 0.123, 1e150, -1e-300}) {
    Data d;
    for (int i = 0; i < 50; ++i) {
      d.x.push_back(x0);
      d.y.push_back(Uniform(rng, -100, 100) + 1e6);
    }
    SCOPED_TRACE("x = " + std::to_string(x0));
    const PointStats whole = Stats(d);
    EXPECT_EQ(whole.var_x(), 0);
    EXPECT_EQ(whole.cov_xy(), 0);
    EXPECT_EQ(whole.mean_x(), x0);
    EXPECT_FALSE(whole.LeastSquares().has_value());
    EXPECT_FALSE(whole.RSquared().has_value());
    // Across several merged batches, in any order.
    for (int trial = 0; trial < 10; ++trial) {
      const PointStats merged = MergeBatches(
          Shuffled(d, rng), RandomCuts(rng, d.x.size(), 1 + 2 * static_cast<std::size_t>(trial)));
      EXPECT_EQ(merged.var_x(), 0);
      EXPECT_FALSE(merged.LeastSquares().has_value());
      EXPECT_FALSE(merged.RSquared().has_value());
      EXPECT_TRUE(std::isfinite(merged.LossAt(0, 1e6)));
    }
    // The gradient is still defined, and matches the exact reference.
    if (std::fabs(x0) < 1e100) {
      const ExactReference ref(d.x, d.y);
      for (const auto& [m, b] : std::vector<std::pair<double, double>>{{0, 0}, {1, 1e6}}) {
        const Gradient g = whole.GradientAt(m, b);
        EXPECT_LE(
            ScaledError(g.intercept, ref.GradientB(Exact(m), Exact(b)), InterceptScale(ref, m, b)),
            1e-13);
        EXPECT_LE(ScaledError(g.slope, ref.GradientM(Exact(m), Exact(b)),
                              SlopeScale(ref, m, b) + Rational(1e-300)),
                  1e-13);
      }
    }
  }
  // All points equal too: no spread in x or y.
  const Data same{{5, 5, 5}, {2, 2, 2}};
  EXPECT_FALSE(Stats(same).LeastSquares().has_value());
  EXPECT_FALSE(Stats(same).RSquared().has_value());
  EXPECT_EQ(Stats(same).LossAt(0, 2), 0);
}

TEST(PointStats, NoSpreadInYHasLineButNoRSquared) {
  const Data d{{1, 2, 3, 4}, {7, 7, 7, 7}};
  const auto ls = Stats(d).LeastSquares();
  ASSERT_TRUE(ls.has_value());
  EXPECT_EQ(ls->m, 0);
  EXPECT_EQ(ls->b, 7);
  EXPECT_EQ(ls->loss, 0);
  EXPECT_FALSE(Stats(d).RSquared().has_value());
}

TEST(PointStats, SinglePoint) {
  const Data d{{3.5}, {-2.25}};
  const PointStats s = Stats(d);
  EXPECT_FALSE(s.empty());
  EXPECT_EQ(s.count(), 1u);
  EXPECT_EQ(s.mean_x(), 3.5);
  EXPECT_EQ(s.mean_y(), -2.25);
  EXPECT_EQ(s.var_x(), 0);
  EXPECT_EQ(s.var_y(), 0);
  EXPECT_FALSE(s.LeastSquares().has_value());
  EXPECT_FALSE(s.RSquared().has_value());
  for (const auto& [m, b] : std::vector<std::pair<double, double>>{{0, 0}, {1, 1}, {-0.5, 4}}) {
    const Gradient g = s.GradientAt(m, b);
    EXPECT_DOUBLE_EQ(g.intercept, lesson::get_gradient_at_b(d.x, d.y, m, b));
    EXPECT_DOUBLE_EQ(g.slope, lesson::get_gradient_at_m(d.x, d.y, m, b));
    const double r = -2.25 - (m * 3.5 + b);
    EXPECT_DOUBLE_EQ(s.LossAt(m, b), r * r);
  }
  // The line through the point has no loss and no gradient.
  EXPECT_EQ(s.LossAt(0, -2.25), 0);
  EXPECT_EQ(s.GradientAt(1, -5.75).intercept, 0);
  EXPECT_EQ(s.GradientAt(1, -5.75).slope, 0);
}

void ExpectAllFinite(const PointStats& s, const std::vector<std::pair<double, double>>& mbs) {
  EXPECT_TRUE(std::isfinite(s.mean_x()));
  EXPECT_TRUE(std::isfinite(s.mean_y()));
  EXPECT_TRUE(std::isfinite(s.var_x())) << s.var_x();
  EXPECT_TRUE(std::isfinite(s.var_y())) << s.var_y();
  EXPECT_TRUE(std::isfinite(s.cov_xy())) << s.cov_xy();
  EXPECT_TRUE(std::isfinite(s.GradientLipschitzConstant())) << s.GradientLipschitzConstant();
  EXPECT_GT(s.GradientLipschitzConstant(), 0);
  std::vector<std::pair<double, double>> all = mbs;
  if (const auto ls = s.LeastSquares()) {
    EXPECT_TRUE(std::isfinite(ls->m));
    EXPECT_TRUE(std::isfinite(ls->b));
    EXPECT_TRUE(std::isfinite(ls->loss));
    all.emplace_back(ls->m, ls->b);
  }
  if (const auto r2 = s.RSquared()) {
    EXPECT_TRUE(std::isfinite(*r2));
    EXPECT_GE(*r2, 0);
    EXPECT_LE(*r2, 1);
  }
  for (const auto& [m, b] : all) {
    const Gradient g = s.GradientAt(m, b);
    EXPECT_TRUE(std::isfinite(g.intercept)) << m << ", " << b;
    EXPECT_TRUE(std::isfinite(g.slope)) << m << ", " << b;
    EXPECT_TRUE(std::isfinite(s.LossAt(m, b))) << m << ", " << b;
  }
}

TEST(PointStats, ExtremeMagnitudesStayFinite) {
  constexpr double kMax = kMaxAbsValue;
  std::mt19937_64 rng(150);
  std::vector<Data> sets;
  // Alternating extremes, correlated and anti-correlated.
  Data alt, anti, lopsided, mixed, uniform;
  for (int i = 0; i < 9000; ++i) {
    const double s = i % 2 == 0 ? 1.0 : -1.0;
    alt.x.push_back(s * kMax);
    alt.y.push_back(s * kMax);
    anti.x.push_back(s * kMax);
    anti.y.push_back(-s * kMax);
    lopsided.x.push_back(i == 0 ? -kMax : kMax);
    lopsided.y.push_back(i == 0 ? kMax : -kMax);
    mixed.x.push_back(i % 3 == 0 ? kMax : 1e-150);
    mixed.y.push_back(i % 5 == 0 ? -kMax : 1e-300);
    uniform.x.push_back(Uniform(rng, -kMax, kMax));
    uniform.y.push_back(0.5 * uniform.x.back() + Uniform(rng, -0.4, 0.4) * kMax);
  }
  sets = {alt, anti, lopsided, mixed, uniform};
  const std::vector<std::pair<double, double>> mbs = {
      {0, 0}, {1, 0}, {-1, kMax}, {0.5, -kMax}, {1, 1}};
  for (const Data& d : sets) {
    ASSERT_TRUE(ValidatePoints(d.x, d.y).ok());
    const PointStats whole = Stats(d);
    ExpectAllFinite(whole, mbs);
    const PointStats merged = MergeBatches(Shuffled(d, rng), RandomCuts(rng, d.x.size(), 7));
    ExpectAllFinite(merged, mbs);
    const PointStats singles = MergeBatches(d, [&] {
      std::vector<std::size_t> every(200);
      std::iota(every.begin(), every.end(), std::size_t{0});
      return every;
    }());
    ExpectAllFinite(singles, mbs);
  }
  // Still accurate at that scale.
  const PointStats s = Stats(uniform);
  const ExactReference ref(uniform.x, uniform.y);
  EXPECT_LT(RelativeError(s.LeastSquares()->m, ref.LeastSquares()->m), 1e-12);
  EXPECT_LT(RelativeError(s.var_x(), ref.VarX()), 1e-12);
  EXPECT_LT(RelativeError(Stats(alt).var_x(), Rational(kMax) * Rational(kMax)), 1e-13);
}

// ---------------------------------------------------------------------------
// ValidatePoints.

TEST(PointStatsValidation, AcceptsFiniteValuesUpToTheLimit) {
  const std::vector<double> x = {
      0, -0.0, 1, -kMaxAbsValue, kMaxAbsValue, std::numeric_limits<double>::denorm_min(), 1e-300};
  EXPECT_TRUE(ValidatePoints(x, x).ok());
  EXPECT_TRUE(ValidatePoints({}, {}).ok());
}

TEST(PointStatsValidation, RejectsValuesBeyondTheLimitNamingTheIndex) {
  const double inf = std::numeric_limits<double>::infinity();
  for (const double bad :
       {std::nextafter(kMaxAbsValue, inf), -std::nextafter(kMaxAbsValue, inf), 1e151,
        std::numeric_limits<double>::max(), -std::numeric_limits<double>::max()}) {
    std::vector<double> x = {1, 2, 3, 4, 5};
    std::vector<double> y = {1, 2, 3, 4, 5};
    x[3] = bad;
    Status s = ValidatePoints(x, y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("x[3]"));
    x[3] = 4;
    y[0] = bad;
    s = ValidatePoints(x, y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("y[0]"));
  }
}

TEST(PointStatsValidation, RejectsNanAndInfinityNamingTheIndex) {
  const double inf = std::numeric_limits<double>::infinity();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  for (const double bad : {nan, -nan, inf, -inf}) {
    std::vector<double> x = {1, 2, 3, 4, 5, 6, 7};
    std::vector<double> y = {1, 2, 3, 4, 5, 6, 7};
    y[6] = bad;
    Status s = ValidatePoints(x, y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("y[6]"));
    // The first bad value is named.
    x[2] = bad;
    x[5] = bad;
    s = ValidatePoints(x, y);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr("x[2]"));
  }
}

TEST(PointStatsValidation, RejectsLengthMismatch) {
  const std::vector<double> x = {1, 2, 3};
  const std::vector<double> y = {1, 2, 3, 4};
  Status s = ValidatePoints(x, y);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("3"));
  EXPECT_THAT(s.message(), HasSubstr("4"));
  EXPECT_EQ(ValidatePoints(y, x).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ValidatePoints({}, y).code(), StatusCode::kInvalidArgument);
}

// FromClientPoints: FromPoints and ValidatePoints in one pass. Valid points
// give FromPoints' statistics bit for bit; one bad value, wherever it is
// (any chunk, either coordinate, any kind), gives ValidatePoints' error.
TEST(PointStatsValidation, FromClientPointsIsFromPointsAndValidatePointsInOnePass) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> noise(0, 3);
  std::vector<double> x, y;
  for (int i = 0; i < 3 * 4096 + 123; ++i) {
    x.push_back(1e6 + i * 0.25);
    y.push_back(2 * x.back() + noise(rng));
  }
  PointStats client;
  ASSERT_TRUE(PointStats::FromClientPoints(x, y, &client).ok());
  const PointStats reference = PointStats::FromPoints(x, y);
  EXPECT_EQ(client.raw(), reference.raw());
  ASSERT_TRUE(PointStats::FromClientPoints({}, {}, &client).ok());
  EXPECT_TRUE(client.empty());

  const double inf = std::numeric_limits<double>::infinity();
  for (const double bad : {std::numeric_limits<double>::quiet_NaN(), inf, -inf, 1e151,
                           -std::nextafter(kMaxAbsValue, inf)}) {
    for (const std::size_t at : {std::size_t{0}, std::size_t{4095}, std::size_t{4096},
                                 std::size_t{3 * 4096 + 122}}) {
      for (std::vector<double>* v : {&x, &y}) {
        const double kept = (*v)[at];
        (*v)[at] = bad;
        PointStats untouched = reference;
        const Status s = PointStats::FromClientPoints(x, y, &untouched);
        const Status expected = ValidatePoints(x, y);
        ASSERT_FALSE(expected.ok());
        EXPECT_EQ(s.code(), expected.code()) << bad << " at " << at;
        EXPECT_EQ(s.message(), expected.message());
        EXPECT_EQ(untouched.raw(), reference.raw()) << "an error must leave the output alone";
        (*v)[at] = kept;
      }
    }
  }
  EXPECT_EQ(PointStats::FromClientPoints(std::span(x).first(3), std::span(y).first(4), &client)
                .message(),
            ValidatePoints(std::span(x).first(3), std::span(y).first(4)).message());
}

// ---------------------------------------------------------------------------
// GradientLipschitzConstant.

using BigFloat = boost::multiprecision::cpp_bin_float_50;

// The largest eigenvalue of the Hessian 2*[[E x^2, xbar], [xbar, 1]], from
// exact moments, in 50-digit arithmetic.
double ExactLargestHessianEigenvalue(const ExactReference& ref) {
  const BigFloat a = BigFloat(ref.MeanXX());
  const BigFloat xbar = BigFloat(ref.MeanX());
  const BigFloat lambda = (a + 1) + sqrt((a - 1) * (a - 1) + 4 * xbar * xbar);
  return lambda.convert_to<double>();
}

std::vector<Data> LipschitzData() {
  std::mt19937_64 rng(99);
  std::vector<Data> out = {
      RevenueData(),
      {{std::begin(kNorrisX), std::end(kNorrisX)}, {std::begin(kNorrisY), std::end(kNorrisY)}}};
  out.push_back(LinearData(rng, 100, -1, 2, 0, 3, 0.5));
  out.push_back(LinearData(rng, 100, 0, 1e-3, 5, 1000, 0.01));
  out.push_back(LinearData(rng, 100, -1e4, 1, 2e3, -0.5, 1));
  for (Data& d : OffsetData()) out.push_back(std::move(d));
  return out;
}

TEST(PointStats, GradientLipschitzConstantIsTheLargestHessianEigenvalue) {
  for (const Data& d : LipschitzData()) {
    const ExactReference ref(d.x, d.y);
    const double l = Stats(d).GradientLipschitzConstant();
    EXPECT_LT(std::fabs(l - ExactLargestHessianEigenvalue(ref)) / l, 1e-13);
    // Between half the trace and the trace, 2*(E x^2 + 1).
    const double trace = 2 * (lesson::ToDouble(ref.MeanXX()) + 1);
    EXPECT_GE(l, trace / 2 * (1 - 1e-15));
    EXPECT_LE(l, trace * (1 + 1e-15));
  }
}

TEST(PointStats, LipschitzStepNeverIncreasesLoss) {
  std::mt19937_64 rng(31337);
  for (const Data& d : LipschitzData()) {
    const PointStats s = Stats(d);
    const ExactReference ref(d.x, d.y);
    const auto ls = s.LeastSquares();
    ASSERT_TRUE(ls.has_value());
    const double lr = 1.0 / s.GradientLipschitzConstant();
    SCOPED_TRACE("n=" + std::to_string(d.x.size()) + " xbar=" + std::to_string(s.mean_x()));
    int decreased = 0;
    for (int trial = 0; trial < 400; ++trial) {
      // Near and far from the optimum, on every scale.
      const double dm = Uniform(rng, -1, 1) * std::pow(10.0, Uniform(rng, -8, 3));
      const double db =
          Uniform(rng, -1, 1) * std::pow(10.0, Uniform(rng, -8, 3)) * (std::fabs(ls->b) + 1);
      const double m = trial % 4 == 0 ? Uniform(rng, -10, 10) : ls->m + dm;
      const double b = trial % 4 == 0 ? Uniform(rng, -1e3, 1e3) : ls->b + db;
      const Gradient g = s.GradientAt(m, b);
      const double m2 = m - lr * g.slope;
      const double b2 = b - lr * g.intercept;
      const double before = s.LossAt(m, b), after = s.LossAt(m2, b2);
      EXPECT_LE(after, before) << "from m=" << m << " b=" << b;
      // And in exact arithmetic on the actual doubles.
      const Rational exact_before = ref.Loss(Exact(m), Exact(b));
      const Rational exact_after = ref.Loss(Exact(m2), Exact(b2));
      EXPECT_LE(exact_after, exact_before) << "from m=" << m << " b=" << b;
      if (exact_after < exact_before) ++decreased;
    }
    // The steps are real steps, not no-ops.
    EXPECT_GT(decreased, 300);
  }
}

}  // namespace
}  // namespace gradientd::core
