// Tests of gradientd::core::PointStats on degenerate and extreme data, and
// of ValidatePoints.
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

#include "core/point_stats.h"
#include "point_data.h"

namespace gradientd::core {
namespace {

using ::testing::HasSubstr;

// ---------------------------------------------------------------------------
// Degenerate data.

TEST(PointStatsTest, EmptyStats) {
  const PointStats s;
  EXPECT_TRUE(s.empty());
  EXPECT_EQ(s.count(), 0u);
  EXPECT_FALSE(s.LeastSquares().has_value());
  EXPECT_FALSE(s.RSquared().has_value());
  const PointStats from_nothing = PointStats::FromPoints({}, {});
  EXPECT_TRUE(from_nothing.empty());
  EXPECT_FALSE(from_nothing.LeastSquares().has_value());
}

TEST(PointStatsTest, AllXEqualHasNoLine) {
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

TEST(PointStatsTest, NoSpreadInYHasLineButNoRSquared) {
  const Data d{{1, 2, 3, 4}, {7, 7, 7, 7}};
  const auto ls = Stats(d).LeastSquares();
  ASSERT_TRUE(ls.has_value());
  EXPECT_EQ(ls->m, 0);
  EXPECT_EQ(ls->b, 7);
  EXPECT_EQ(ls->loss, 0);
  EXPECT_FALSE(Stats(d).RSquared().has_value());
}

TEST(PointStatsTest, SinglePoint) {
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

TEST(PointStatsTest, ExtremeMagnitudesStayFinite) {
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

TEST(PointStatsValidationTest, AcceptsFiniteValuesUpToTheLimit) {
  const std::vector<double> x = {
      0, -0.0, 1, -kMaxAbsValue, kMaxAbsValue, std::numeric_limits<double>::denorm_min(), 1e-300};
  EXPECT_TRUE(ValidatePoints(x, x).ok());
  EXPECT_TRUE(ValidatePoints({}, {}).ok());
}

TEST(PointStatsValidationTest, RejectsValuesBeyondTheLimitNamingTheIndex) {
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

TEST(PointStatsValidationTest, RejectsNanAndInfinityNamingTheIndex) {
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

TEST(PointStatsValidationTest, RejectsLengthMismatch) {
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
TEST(PointStatsValidationTest, FromClientPointsIsFromPointsAndValidatePointsInOnePass) {
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
    for (const std::size_t at :
         {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{3 * 4096 + 122}}) {
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
  EXPECT_EQ(
      PointStats::FromClientPoints(std::span(x).first(3), std::span(y).first(4), &client).message(),
      ValidatePoints(std::span(x).first(3), std::span(y).first(4)).message());
}

}  // namespace
}  // namespace gradientd::core
