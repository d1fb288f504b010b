// Tests of gradientd::core::PointStats against the lesson's literal loops
// and an exact rational reference (lesson_reference.h): known values,
// random data, batch splits and merges.
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

#include "point_data.h"

namespace gradientd::core {
namespace {

// ---------------------------------------------------------------------------
// Known values.

TEST(PointStatsTest, GradientMatchesLessonLoopOnRevenueData) {
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

TEST(PointStatsTest, LeastSquaresLineOnRevenueData) {
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

TEST(PointStatsTest, MatchesLessonLoopsAndExactReferenceOnRandomData) {
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

TEST(PointStatsTest, BatchSplitAndArrivalOrderGiveSameResults) {
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

TEST(PointStatsTest, MergeIsAssociative) {
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

TEST(PointStatsTest, MergeWithEmptyChangesNothing) {
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

}  // namespace
}  // namespace gradientd::core
