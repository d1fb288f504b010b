// Tests of gradientd::core::PointStats on hard data: offset (timestamp-like)
// data against the exact reference, NIST's Norris certified values, and the
// gradient's Lipschitz constant.
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

TEST(PointStatsTest, OffsetDataMatchesExactReference) {
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
TEST(PointStatsTest, ExactLineOnOffsetDataHasNoSpuriousGradient) {
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
TEST(PointStatsTest, NaiveRawPowerSumsFailOnOffsetData) {
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

TEST(PointStatsTest, NistNorrisCertifiedValues) {
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

TEST(PointStatsTest, GradientLipschitzConstantIsTheLargestHessianEigenvalue) {
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

TEST(PointStatsTest, LipschitzStepNeverIncreasesLoss) {
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
