// Tests of the descent modes of gradientd::core::Series: the lesson's plain
// step kept exactly, the standardized step converging on any scale of x
// (calendar years, Unix seconds, negative offsets), its diagnostics, and a
// plain step on ill-conditioned data saying so.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/series.h"
#include "point_data.h"
#include "r_datasets.h"

namespace gradientd::core {
namespace {

struct NamedData {
  std::string name;
  Data data;
};

// Own data sets shaped like R's: yearly levels, monthly CO2 with a season,
// the same in Unix seconds (positive and negative), daily Unix seconds; then
// R's own Nile, LakeHuron and AirPassengers (r_datasets.h).
std::vector<NamedData> Datasets() {
  std::mt19937_64 rng(1871);
  std::vector<NamedData> out;
  std::normal_distribution<double> noise(0, 1);
  Data nile, huron, co2, co2_unix, co2_unix_old, daily;
  for (int i = 0; i < 100; ++i) {
    nile.x.push_back(1871 + i);
    nile.y.push_back(1100 - 2.7 * i + 150 * noise(rng));
    huron.x.push_back(1875 + i);
    huron.y.push_back(580 - 0.024 * i + 1.1 * noise(rng));
  }
  for (int i = 0; i < 468; ++i) {
    const double season = 3 * std::sin(2 * M_PI * i / 12.0);
    const double y = 315 + 0.11 * i + season + 0.3 * noise(rng);
    co2.x.push_back(1959 + i / 12.0);
    co2.y.push_back(y);
    co2_unix.x.push_back(1.7e9 + 2629800.0 * i);  // 1.7e9 .. 2.9e9
    co2_unix.y.push_back(y);
    co2_unix_old.x.push_back(-3.4e8 + 2629800.0 * i);  // 1959 in Unix seconds
    co2_unix_old.y.push_back(y);
  }
  for (int i = 0; i < 1000; ++i) {
    daily.x.push_back(1.7e9 + 86400.0 * i);
    daily.y.push_back(-4e3 + 0.002 * i + noise(rng));
  }
  out.push_back({"years/nile", nile});
  out.push_back({"years/huron", huron});
  out.push_back({"years/co2", co2});
  out.push_back({"unix/co2", co2_unix});
  out.push_back({"unix/co2-negative", co2_unix_old});
  out.push_back({"unix/daily", daily});
  // R's own data, x in calendar years and in Unix seconds (a Julian year of
  // 31,557,600 s from 1970), also shifted past 1.7e9 as a live sensor's.
  constexpr double kYear = 31557600;
  const auto add_r = [&](const std::string& name, const std::vector<double>& y, int first_year,
                         double per_year) {
    Data years, unix, unix_now;
    for (std::size_t i = 0; i < y.size(); ++i) {
      const double t = first_year + static_cast<double>(i) / per_year;
      years.x.push_back(t);
      unix.x.push_back((t - 1970) * kYear);
      unix_now.x.push_back((t - 1970) * kYear + 2.5e9);
    }
    years.y = unix.y = unix_now.y = y;
    out.push_back({"r-years/" + name, years});
    out.push_back({"r-unix/" + name, unix});
    out.push_back({"r-unix+2.5e9/" + name, unix_now});
  };
  add_r("Nile", r_datasets::kNile, r_datasets::kNileFirstYear, 1);
  add_r("LakeHuron", r_datasets::kLakeHuron, r_datasets::kLakeHuronFirstYear, 1);
  add_r("AirPassengers", r_datasets::kAirPassengers, r_datasets::kAirPassengersFirstYear, 12);
  return out;
}

Series Holding(const Data& d) {
  Series s;
  SeriesChange no_steps;
  no_steps.steps_per_batch = 0;
  EXPECT_TRUE(s.Configure(no_steps).ok());
  uint64_t steps = 0;
  EXPECT_TRUE(s.Absorb(Stats(d), BatchStamp{}, &steps).ok());
  return s;
}

StepOptions PlainUntil(double relative_tolerance) {
  StepOptions options;
  options.mode = DescentMode::kPlain;
  options.relative_tolerance = relative_tolerance;
  return options;
}

// (L(m, b) - L*) / L*, exactly.
double ExactRelativeExcess(const Data& d, double m, double b) {
  const ExactReference ref(d.x, d.y);
  const auto line = ref.LeastSquares();
  return lesson::ToDouble((ref.Loss(Exact(m), Exact(b)) - line->loss) / line->loss);
}

TEST(DescentTest, StandardizedConvergesWithin100StepsOnEveryScaleOfX) {
  for (const NamedData& set : Datasets()) {
    Series s = Holding(set.data);
    StepOptions options;
    options.relative_tolerance = 1e-9;
    StepResult r;
    ASSERT_TRUE(s.Step(100, options, &r).ok()) << set.name;
    EXPECT_EQ(r.mode, DescentMode::kStandardized) << set.name;
    EXPECT_EQ(r.learning_rate, 0.5) << set.name;
    EXPECT_TRUE(r.converged) << set.name;
    EXPECT_LE(r.iterations, 100u) << set.name;
    EXPECT_LE(r.relative_excess_loss, 1e-9) << set.name;
    EXPECT_LE(ExactRelativeExcess(set.data, s.model().m, s.model().b), 1e-9) << set.name;
    EXPECT_EQ(r.condition_number, 1) << set.name;
    ASSERT_TRUE(r.estimated_steps.has_value()) << set.name;
    EXPECT_EQ(*r.estimated_steps, 0u) << set.name;
    EXPECT_TRUE(r.warning.empty()) << set.name << ": " << r.warning;
  }
}

// The default settings at ingest (steps_per_batch 1, auto rate): the model
// follows a drifting line batch by batch, in all history and in a window.
TEST(DescentTest, TracksADriftingStreamBatchByBatch) {
  std::mt19937_64 rng(2);
  Series s;
  SeriesChange window;
  window.window_ns = 10'000;
  window.window_buckets = 10;
  window.view = View::kWindow;
  ASSERT_TRUE(s.Configure(window).ok());
  for (int batch = 0; batch < 200; ++batch) {
    const double slope = 0.001 * std::sin(batch / 20.0);  // drifts
    const Data d = TimestampData(rng, 50, 1.7e9 + 600.0 * batch, 10, 1, 5e3, slope, 0.1);
    uint64_t steps = 0;
    ASSERT_TRUE(s.Absorb(Stats(d),
                         BatchStamp{.event_time_ns = 1000 * batch, .decay_factor = std::nullopt},
                         &steps)
                    .ok());
    ASSERT_EQ(steps, 1u);
    const ViewStats v = *s.ViewOf(View::kWindow);
    const Moments& mo = v.moments;
    const double excess = mo.ExcessLossAt(s.model().m, s.model().b) / mo.LeastSquares()->loss;
    ASSERT_LE(excess, 1e-9) << "batch " << batch;
    EXPECT_EQ(v.coverage.n, 50u * static_cast<uint64_t>(std::min(batch + 1, 10)));
  }
}

TEST(DescentTest, FixedRateIsTheLessonsPlainStep) {
  const Data d = RevenueData();
  Series s = Holding(d);
  StepOptions options;
  options.learning_rate = 0.01;
  StepResult r;
  ASSERT_TRUE(s.Step(1, options, &r).ok());
  EXPECT_EQ(r.mode, DescentMode::kPlain);
  EXPECT_NEAR(s.model().b, 2.355, 1e-12);
  EXPECT_NEAR(s.model().m, 17.783333333333333, 1e-12);
  ASSERT_TRUE(s.Step(999, options, &r).ok());
  double b = 0, m = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto next = lesson::step_gradient(d.x, d.y, b, m, 0.01);
    b = next[0];
    m = next[1];
  }
  EXPECT_LE(std::fabs(s.model().b - b), 1e-9 * std::fabs(b));
  EXPECT_LE(std::fabs(s.model().m - m), 1e-9 * std::fabs(m));
  EXPECT_EQ(s.EffectiveMode(std::nullopt, 0.01), DescentMode::kPlain);
  EXPECT_EQ(s.EffectiveMode(std::nullopt, std::nullopt), DescentMode::kStandardized);
}

TEST(DescentTest, PlainOnUnixSecondsReportsConditioningAndWarns) {
  const Data d = Datasets()[3].data;  // unix/co2
  Series s = Holding(d);
  StepResult r;
  ASSERT_TRUE(s.Step(10'000, PlainUntil(1e-9), &r).ok());
  EXPECT_EQ(r.mode, DescentMode::kPlain);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.iterations, 10'000u);
  EXPECT_GT(r.condition_number, 1e18);  // ~(E x^2)^2 / var(x)
  EXPECT_GT(r.relative_excess_loss, 1);
  EXPECT_TRUE(!r.estimated_steps || *r.estimated_steps > kMaxStepIterations);
  EXPECT_NE(r.warning.find("standardized"), std::string::npos) << r.warning;
  EXPECT_NE(r.warning.find("condition number"), std::string::npos) << r.warning;
}

// The condition number of 2[[E x^2, xbar], [xbar, 1]], against its
// eigenvalues computed directly in long double.
TEST(DescentTest, PlainConditionNumberMatchesTheHessiansEigenvalues) {
  const Data d = RevenueData();
  Series s = Holding(d);
  StepOptions options;
  options.mode = DescentMode::kPlain;
  StepResult r;
  ASSERT_TRUE(s.Step(1, options, &r).ok());
  long double exx = 0, xbar = 0;
  const long double n = static_cast<long double>(d.x.size());
  for (double x : d.x) {
    const long double lx = static_cast<long double>(x);
    exx += lx * lx / n;
    xbar += lx / n;
  }
  const long double tr = 2 * (exx + 1), det = 4 * (exx - xbar * xbar);
  const long double disc = std::sqrt(tr * tr / 4 - det);
  const long double cond = (tr / 2 + disc) / (tr / 2 - disc);
  EXPECT_LE(std::fabs(r.condition_number - static_cast<double>(cond)),
            1e-10 * static_cast<double>(cond));
  ASSERT_TRUE(r.estimated_steps.has_value());
  EXPECT_GT(*r.estimated_steps, 100u);
  EXPECT_LT(*r.estimated_steps, 100'000u);
  EXPECT_TRUE(r.warning.empty()) << r.warning;
}

// Standardized at rate 1/4: every mode contracts by exactly 1/2 per step,
// so the excess shrinks by 1/4 and the estimate is exact.
TEST(DescentTest, EstimatedStepsAreTheStepsNeeded) {
  const Data d = Datasets()[4].data;
  Series s = Holding(d);
  StepOptions options;
  options.learning_rate = 0.25;
  options.mode = DescentMode::kStandardized;
  StepResult r;
  ASSERT_TRUE(s.Step(1, options, &r).ok());
  ASSERT_TRUE(r.estimated_steps.has_value());
  const uint64_t estimate = *r.estimated_steps;
  EXPECT_GT(estimate, 5u);
  Series shy = s;
  ASSERT_TRUE(shy.Step(estimate - 1, options, &r).ok());
  EXPECT_GT(r.relative_excess_loss, kDefaultRelativeTolerance);
  ASSERT_TRUE(s.Step(estimate, options, &r).ok());
  EXPECT_LE(r.relative_excess_loss, kDefaultRelativeTolerance);
  EXPECT_EQ(*r.estimated_steps, 0u);
}

TEST(DescentTest, RelativeToleranceStopsAtTheFirstStepWithin) {
  const Data d = RevenueData();
  Series s = Holding(d);
  StepOptions options = PlainUntil(1e-3);
  StepResult r;
  ASSERT_TRUE(s.Step(100'000, options, &r).ok());
  ASSERT_TRUE(r.converged);
  EXPECT_LE(r.relative_excess_loss, 1e-3);
  EXPECT_LE(ExactRelativeExcess(d, s.model().m, s.model().b), 1e-3 * (1 + 1e-9));
  Series before = Holding(d);
  options.relative_tolerance.reset();
  ASSERT_TRUE(before.Step(r.iterations - 1, options, &r).ok());
  EXPECT_GT(r.relative_excess_loss, 1e-3);
}

TEST(DescentTest, StandardizedRateOfOneOrMoreIsRefused) {
  Series s = Holding(RevenueData());
  StepOptions options;
  options.mode = DescentMode::kStandardized;
  StepResult r;
  for (const double rate : {1.0, 1.5, 1e9}) {
    options.learning_rate = rate;
    const Status st = s.Step(1, options, &r);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument) << rate;
    EXPECT_NE(st.message().find("standardized"), std::string::npos) << st.message();
  }
  EXPECT_EQ(s.model().m, 0);
  EXPECT_EQ(s.steps(), 0u);
  options.learning_rate = 0.999;
  EXPECT_TRUE(s.Step(1, options, &r).ok());
}

// No x spread: only the height moves, onto mean y.
TEST(DescentTest, StandardizedWithoutXSpreadMovesOnlyTheHeight) {
  Series s = Holding(Data{{1.7e9, 1.7e9, 1.7e9}, {1, 2, 6}});
  StepResult r;
  ASSERT_TRUE(s.Step(1, StepOptions{}, &r).ok());
  EXPECT_EQ(r.mode, DescentMode::kStandardized);
  EXPECT_EQ(s.model().m, 0);
  EXPECT_EQ(s.model().b, 3);
  EXPECT_EQ(r.condition_number, 0);
  EXPECT_EQ(r.relative_excess_loss, 0);
}

}  // namespace
}  // namespace gradientd::core
