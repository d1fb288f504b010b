// Tests of gradientd::core::DecayedStats: weighted statistics against a
// direct exact evaluation of the weighted sums (cpp_rational), with weights
// 2^-k exactly where ages are multiples of the half-life.
#include "core/decayed_stats.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "point_data.h"

namespace gradientd::core {
namespace {

constexpr int64_t kHalfLife = 1'000'000'000;  // 1 s

struct TimedBatch {
  Data points;
  int64_t t = 0;
};

// sum(w*f(x, y)) over weighted points, exactly.
struct WeightedReference {
  Rational w, w2, wx, wy, wxx, wyy, wxy;
  void Add(const Data& d, const Rational& weight) {
    for (std::size_t i = 0; i < d.x.size(); ++i) {
      const Rational x = Exact(d.x[i]), y = Exact(d.y[i]);
      w += weight;
      w2 += weight * weight;
      wx += weight * x;
      wy += weight * y;
      wxx += weight * x * x;
      wyy += weight * y * y;
      wxy += weight * x * y;
    }
  }
  Rational MeanX() const { return wx / w; }
  Rational MeanY() const { return wy / w; }
  Rational VarX() const { return wxx / w - MeanX() * MeanX(); }
  Rational VarY() const { return wyy / w - MeanY() * MeanY(); }
  Rational CovXY() const { return wxy / w - MeanX() * MeanY(); }
};

void ExpectMatches(const DecayedStats& d, const WeightedReference& ref, double tol) {
  const Moments& m = d.moments();
  EXPECT_LE(RelativeError(d.weight(), ref.w), tol);
  EXPECT_LE(RelativeError(d.weight_squares(), ref.w2), tol);
  EXPECT_LE(RelativeError(d.effective_count(), ref.w * ref.w / ref.w2), tol);
  const Rational sd_x = Exact(std::sqrt(lesson::ToDouble(ref.VarX())));
  const Rational sd_y = Exact(std::sqrt(lesson::ToDouble(ref.VarY())));
  // Means relative to their size plus the spread (as ExpectMatchesExact).
  EXPECT_LE(ScaledError(m.mean_x(), ref.MeanX(), lesson::Abs(ref.MeanX()) + sd_x), tol);
  EXPECT_LE(ScaledError(m.mean_y(), ref.MeanY(), lesson::Abs(ref.MeanY()) + sd_y), tol);
  EXPECT_LE(RelativeError(m.var_x, ref.VarX()), tol);
  EXPECT_LE(RelativeError(m.var_y, ref.VarY()), tol);
  EXPECT_LE(ScaledError(m.cov_xy, ref.CovXY(), sd_x * sd_y), tol);
}

Data RandomPoints(std::mt19937_64& rng, double x0) {
  Data d;
  const std::size_t n = UniformIndex(rng, 1, 30);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = x0 + Uniform(rng, 0, 100);
    d.x.push_back(x);
    d.y.push_back(0.5 * (x - x0) + 1e5 + Uniform(rng, -10, 10));
  }
  return d;
}

// 2^-k exactly, k >= 0.
Rational PowHalf(int64_t k) {
  Rational r(1);
  for (int64_t i = 0; i < k; ++i) r /= 2;
  return r;
}

TEST(DecayedStatsTest, ValidateRefusesNonPositiveHalfLives) {
  EXPECT_TRUE(DecayedStats::Validate(1).ok());
  EXPECT_FALSE(DecayedStats::Validate(0).ok());
  EXPECT_FALSE(DecayedStats::Validate(-kHalfLife).ok());
}

// Ages in whole half-lives: every factor is an exact power of 1/2, so the
// reference weights are exact. x are Unix seconds; late batches included.
TEST(DecayedStatsTest, MatchesExactWeightedSumsAtWholeHalfLives) {
  std::mt19937_64 rng(5);
  DecayedStats d(kHalfLife);
  std::vector<TimedBatch> batches;
  int64_t newest = 0;
  for (int i = 0; i < 60; ++i) {
    int64_t k = newest / kHalfLife + static_cast<int64_t>(UniformIndex(rng, 0, 2));
    if (i > 0 && Uniform(rng, 0, 1) < 0.3) k -= static_cast<int64_t>(UniformIndex(rng, 1, 5));
    const int64_t t = k * kHalfLife;
    TimedBatch b{RandomPoints(rng, 1.7e9 + static_cast<double>(k)), t};
    const double f = d.FactorFor(t);
    d.Add(Stats(b.points), t, f);
    batches.push_back(b);
    newest = i == 0 ? t : std::max(newest, t);
    WeightedReference ref;
    for (const TimedBatch& seen : batches)
      ref.Add(seen.points, PowHalf((newest - seen.t) / kHalfLife));
    ExpectMatches(d, ref, 1e-12);
    ASSERT_EQ(d.reference_ns(), newest);
    if (HasFailure()) return;
  }
}

// Any age: the reference weights are 2^(-age/h) in long double, rounded
// exactly into rationals; the state multiplies factors, so it agrees to a
// few ulps per batch.
TEST(DecayedStatsTest, MatchesWeightedSumsAtGenericAges) {
  std::mt19937_64 rng(8);
  DecayedStats d(kHalfLife);
  std::vector<TimedBatch> batches;
  int64_t newest = 1'700'000'000 * kHalfLife / 1000;
  for (int i = 0; i < 80; ++i) {
    const int64_t t = newest + static_cast<int64_t>(Uniform(rng, -3e9, 2e9));
    TimedBatch b{RandomPoints(rng, 1.7e9 + static_cast<double>(t) * 1e-9), t};
    d.Add(Stats(b.points), t, d.FactorFor(t));
    batches.push_back(b);
    newest = i == 0 ? t : std::max(newest, t);
  }
  WeightedReference ref;
  for (const TimedBatch& seen : batches) {
    const long double age = static_cast<long double>(newest - seen.t) / kHalfLife;
    ref.Add(seen.points, Rational(static_cast<double>(std::exp2l(-age))));
  }
  ExpectMatches(d, ref, 1e-10);
  EXPECT_EQ(d.count(), [&] {
    uint64_t n = 0;
    for (const TimedBatch& b : batches) n += b.points.x.size();
    return n;
  }());
}

// Add takes the factor it is given (from the journal): no libm, and the
// same stamp on copies gives identical state.
TEST(DecayedStatsTest, AddUsesTheGivenFactorAndIsDeterministic) {
  DecayedStats d(kHalfLife);
  d.Add(Stats(Data{{1, 2, 3}, {1, 2, 3}}), 0, 1.0);
  DecayedStats a = d, b = d;
  const PointStats batch = Stats(Data{{10}, {20}});
  a.Add(batch, 5 * kHalfLife, 0.75);  // not 2^-5: the factor given wins
  b.Add(batch, 5 * kHalfLife, 0.75);
  EXPECT_EQ(a.raw(), b.raw());
  EXPECT_EQ(a.weight(), 3 * 0.75 + 1);
  EXPECT_EQ(a.weight_squares(), 3 * 0.75 * 0.75 + 1);
  // A late batch joins at n * factor.
  a.Add(batch, 0, 0.25);
  EXPECT_EQ(a.weight(), 3 * 0.75 + 1 + 0.25);
  EXPECT_EQ(a.reference_ns(), 5 * kHalfLife);
  EXPECT_EQ(a.first_ns(), 0);
}

TEST(DecayedStatsTest, FactorForIsTwoToMinusAgeOverHalfLife) {
  DecayedStats d(kHalfLife);
  EXPECT_EQ(d.FactorFor(123), 1.0);  // empty
  d.Add(Stats(Data{{1}, {1}}), 10 * kHalfLife, 1.0);
  EXPECT_EQ(d.FactorFor(12 * kHalfLife), 0.25);
  EXPECT_EQ(d.FactorFor(8 * kHalfLife), 0.25);  // late: same |age|
  EXPECT_EQ(d.FactorFor(10 * kHalfLife), 1.0);
  EXPECT_DOUBLE_EQ(d.FactorFor(10 * kHalfLife + kHalfLife / 2), std::sqrt(0.5));
}

TEST(DecayedStatsTest, LongSilenceUnderflowsAndStartsAfresh) {
  DecayedStats d(kHalfLife);
  d.Add(Stats(Data{{1, 2}, {5, 7}}), 0, 1.0);
  const int64_t later = 2000 * kHalfLife;
  const double f = d.FactorFor(later);
  EXPECT_LT(f, DecayedStats::kMinFactor);
  const PointStats batch = Stats(Data{{100, 101, 103}, {1, 1, 2}});
  d.Add(batch, later, f);
  EXPECT_EQ(d.count(), 3u);
  EXPECT_EQ(d.weight(), 3);
  EXPECT_EQ(d.effective_count(), 3);
  EXPECT_EQ(d.moments(), batch.moments());
  EXPECT_EQ(d.first_ns(), later);
  // A late batch that old is not counted.
  d.Add(Stats(Data{{-1}, {-1}}), 0, d.FactorFor(0));
  EXPECT_EQ(d.count(), 3u);
  EXPECT_EQ(d.moments(), batch.moments());
  // Just above the floor still counts (at a weight of 2^-900).
  d.Add(Stats(Data{{-1}, {-1}}), later - 900 * kHalfLife, d.FactorFor(later - 900 * kHalfLife));
  EXPECT_EQ(d.count(), 4u);
  EXPECT_EQ(d.first_ns(), later - 900 * kHalfLife);
}

TEST(DecayedStatsTest, RawRoundTripsBitForBit) {
  std::mt19937_64 rng(3);
  DecayedStats d(kHalfLife);
  for (int i = 0; i < 20; ++i) {
    const int64_t t = static_cast<int64_t>(Uniform(rng, 0, 1e10));
    d.Add(Stats(RandomPoints(rng, 1e9)), t, d.FactorFor(t));
  }
  const DecayedStats copy = DecayedStats::FromRaw(kHalfLife, d.raw());
  EXPECT_EQ(copy.raw(), d.raw());
  EXPECT_EQ(copy.FactorFor(123456789), d.FactorFor(123456789));
}

TEST(DecayedStatsTest, EqualWeightsGiveEffectiveCountN) {
  DecayedStats d(kHalfLife);
  for (int i = 0; i < 10; ++i) d.Add(Stats(Data{{double(i)}, {1}}), 7, d.FactorFor(7));
  EXPECT_EQ(d.weight(), 10);
  EXPECT_EQ(d.effective_count(), 10);
  EXPECT_EQ(d.moments().mean_x(), 4.5);
}

}  // namespace
}  // namespace gradientd::core
