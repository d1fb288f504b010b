// Tests of gradientd::core::Series: gradient descent on a stream's
// statistics, against the lesson's literal step_gradient loop.
#include "core/series.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <vector>

#include "lesson_reference.h"
#include "point_data.h"
#include "series_test_support.h"

namespace gradientd::core {
namespace {

using ::testing::HasSubstr;

// x ~ 1.7e9 (timestamps), y with a large offset.
Data OffsetData() {
  std::mt19937_64 rng(42);
  std::normal_distribution<double> noise(0, 3);
  Data d;
  for (int i = 0; i < 500; ++i) {
    const double x = 1.7e9 + 60.0 * i + std::uniform_real_distribution<double>(-5, 5)(rng);
    d.x.push_back(x);
    d.y.push_back(2e8 - 0.5 * (x - 1.7e9) + noise(rng));
  }
  return d;
}

void ExpectRelNear(double got, double want, double rel, const std::string& what = "") {
  EXPECT_LE(std::fabs(got - want), rel * std::fabs(want))
      << what << ": got " << got << ", want " << want;
}

// A series holding `d`, with no descent run yet and the given rate.
Series SeriesWith(const Data& d, double learning_rate) {
  Series s;
  EXPECT_TRUE(s.Configure(Change().Rate(learning_rate).StepsPerBatch(0)).ok());
  uint64_t steps_run = 99;
  EXPECT_TRUE(s.Absorb(Stats(d), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 0u);
  EXPECT_EQ(s.steps(), 0u);
  return s;
}

double LossOf(const Series& s) { return s.stats().LossAt(s.model().m, s.model().b); }

double GradientNorm(const Series& s) {
  const Gradient g = s.stats().GradientAt(s.model().m, s.model().b);
  return std::hypot(g.intercept, g.slope);
}

// ---------------------------------------------------------------------------
// Against the lesson.

TEST(SeriesTest, OneStepFromOriginMatchesLesson) {
  const Data d = RevenueData();
  Series s = SeriesWith(d, 0.01);
  StepResult r;
  ASSERT_TRUE(s.Step(1, Opts(std::nullopt, std::nullopt), &r).ok());
  EXPECT_EQ(r.iterations, 1u);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(r.learning_rate, 0.01);
  EXPECT_EQ(s.steps(), 1u);
  // b = 0 - 0.01 * (-235.5), m = 0 - 0.01 * (-1778.333...).
  ExpectRelNear(s.model().b, 2.355, 1e-12, "b");
  ExpectRelNear(s.model().m, 17.783333333333333, 1e-12, "m");
  const auto [b, m] = lesson::step_gradient(d.x, d.y, 0, 0, 0.01);
  ExpectRelNear(s.model().b, b, 1e-12, "b vs loop");
  ExpectRelNear(s.model().m, m, 1e-12, "m vs loop");

  // The same step with the rate given per request, on an auto series.
  Series a = SeriesWith(d, 0);
  ASSERT_TRUE(a.Step(1, Opts(0.01, std::nullopt), &r).ok());
  EXPECT_EQ(r.learning_rate, 0.01);
  EXPECT_EQ(a.model().b, s.model().b);
  EXPECT_EQ(a.model().m, s.model().m);
  EXPECT_EQ(a.config().learning_rate, 0) << "a per-request rate is not stored";
}

TEST(SeriesTest, ThousandStepsMatchLessonLoop) {
  const Data d = RevenueData();
  double b = 0, m = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto next = lesson::step_gradient(d.x, d.y, b, m, 0.01);
    b = next[0];
    m = next[1];
  }
  // In one request ...
  Series s = SeriesWith(d, 0.01);
  StepResult r;
  ASSERT_TRUE(s.Step(1000, Opts(std::nullopt, std::nullopt), &r).ok());
  EXPECT_EQ(r.iterations, 1000u);
  EXPECT_EQ(s.steps(), 1000u);
  ExpectRelNear(s.model().b, b, 1e-9, "b");
  ExpectRelNear(s.model().m, m, 1e-9, "m");
  // ... and in several.
  Series t = SeriesWith(d, 0.01);
  for (int i = 0; i < 8; ++i) ASSERT_TRUE(t.Step(125, Opts(std::nullopt, std::nullopt), &r).ok());
  EXPECT_EQ(t.steps(), 1000u);
  ExpectRelNear(t.model().b, b, 1e-9, "b in 8 requests");
  ExpectRelNear(t.model().m, m, 1e-9, "m in 8 requests");
  // The lesson's run has not converged yet, so this is not trivially the
  // least-squares line.
  const auto ls = s.stats().LeastSquares();
  ASSERT_TRUE(ls.has_value());
  EXPECT_GT(std::fabs(m - ls->m), 1e-3);
}

// ---------------------------------------------------------------------------
// The auto learning rate.

// Plain mode with the auto rate (1/Lipschitz); the default auto mode is
// the standardized step now (issue 13), so these tests ask for plain.
TEST(SeriesTest, AutoLearningRateDescendsMonotonicallyAndConverges) {
  const Data d = RevenueData();
  Series s = SeriesWith(d, 0);
  ASSERT_TRUE(s.Configure(Change().Mode(DescentMode::kPlain)).ok());
  EXPECT_EQ(s.config().learning_rate, 0);
  const double rate = s.EffectiveLearningRate(std::nullopt);
  EXPECT_EQ(rate, 1.0 / s.stats().GradientLipschitzConstant());
  EXPECT_EQ(s.EffectiveLearningRate(0.25), 0.25);
  EXPECT_EQ(s.EffectiveLearningRate(0.0), rate);

  double loss = LossOf(s);
  StepResult r;
  for (int i = 0; i < 3000; ++i) {
    ASSERT_TRUE(s.Step(1, Opts(std::nullopt, std::nullopt), &r).ok());
    ASSERT_EQ(r.iterations, 1u);
    EXPECT_EQ(r.learning_rate, rate);
    const double next = LossOf(s);
    ASSERT_LE(next, loss) << "step " << i;
    loss = next;
  }
  EXPECT_EQ(s.steps(), 3000u);

  // With a tolerance and many iterations allowed, it stops early.
  const uint64_t before = s.steps();
  ASSERT_TRUE(s.Step(1'000'000, Opts(std::nullopt, 1e-9), &r).ok());
  EXPECT_TRUE(r.converged);
  EXPECT_GT(r.iterations, 0u);
  EXPECT_LT(r.iterations, 1'000'000u);
  EXPECT_EQ(s.steps(), before + r.iterations);
  EXPECT_LT(GradientNorm(s), 1e-9);
  // At the least-squares line (exactly, from the rational reference):
  // gradient norm 1e-9 bounds the distance by 1e-9 / (smallest Hessian
  // eigenvalue ~0.43) here.
  const auto exact = lesson::ExactReference(d.x, d.y).LeastSquares();
  EXPECT_NEAR(s.model().m, lesson::ToDouble(exact->m), 1e-8);
  EXPECT_NEAR(s.model().b, lesson::ToDouble(exact->b), 1e-7);
  EXPECT_LE(LossOf(s), loss);

  // Already converged: no iterations, converged.
  ASSERT_TRUE(s.Step(1000, Opts(std::nullopt, 1e-9), &r).ok());
  EXPECT_TRUE(r.converged);
  EXPECT_EQ(r.iterations, 0u);
}

TEST(SeriesTest, AutoLearningRateDescendsOnOffsetData) {
  const Data d = OffsetData();
  Series s = SeriesWith(d, 0);
  ASSERT_TRUE(s.Configure(Change().M(0.1).B(-3e8)).ok());
  double loss = LossOf(s);
  const double first = loss;
  StepResult r;
  for (int i = 0; i < 500; ++i) {
    ASSERT_TRUE(
        s.Step(1 + static_cast<uint64_t>(i % 3), Opts(std::nullopt, std::nullopt), &r).ok());
    const double next = LossOf(s);
    ASSERT_LE(next, loss) << "request " << i;
    loss = next;
  }
  EXPECT_LT(loss, first);
}

TEST(SeriesTest, NotConvergedMeansGradientAtLeastTolerance) {
  Series s = SeriesWith(RevenueData(), 0);
  StepResult r;
  ASSERT_TRUE(s.Step(5, Opts(std::nullopt, 1e-3, DescentMode::kPlain), &r).ok());
  EXPECT_EQ(r.iterations, 5u);
  EXPECT_FALSE(r.converged);
  EXPECT_GE(GradientNorm(s), 1e-3);
}

// ---------------------------------------------------------------------------
// Refused steps change nothing.

TEST(SeriesTest, StepThatWouldOverflowIsRefusedAndChangesNothing) {
  const Data d = RevenueData();
  Series s = SeriesWith(d, 0.01);
  StepResult r;
  ASSERT_TRUE(s.Step(3, Opts(std::nullopt, std::nullopt), &r).ok());
  const Model before = s.model();
  const uint64_t steps = s.steps();
  auto expect_unchanged = [&](const char* what) {
    EXPECT_EQ(s.model().m, before.m) << what;
    EXPECT_EQ(s.model().b, before.b) << what;
    EXPECT_EQ(s.steps(), steps) << what;
  };

  // At 1e300 the first step lands around 1e301 (still finite); the second
  // overflows. All or nothing: the first is not kept either.
  r.iterations = 77;
  Status st = s.Step(2, Opts(1e300, std::nullopt), &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(st.message().empty());
  EXPECT_EQ(r.iterations, 77u) << "no result on failure";
  expect_unchanged("lr 1e300, 2 steps");
  st = s.Step(1'000, Opts(1e300, std::nullopt), &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  expect_unchanged("lr 1e300, 1000 steps");

  // A single step that overflows at once.
  st = s.Step(1, Opts(1e308, std::nullopt), &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  expect_unchanged("lr 1e308, 1 step");

  // A rate that diverges slowly: a hundred-odd finite steps, then overflow.
  st = s.Step(100'000, Opts(1.0, std::nullopt), &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  expect_unchanged("lr 1, 100000 steps");

  // The configured rate too.
  ASSERT_TRUE(s.Configure(Change().Rate(1e300)).ok());
  EXPECT_EQ(s.Step(5, Opts(std::nullopt, std::nullopt), &r).code(), StatusCode::kInvalidArgument);
  expect_unchanged("configured lr 1e300");

  // And the series still works.
  ASSERT_TRUE(s.Step(1, Opts(0.01, std::nullopt), &r).ok());
  EXPECT_EQ(s.steps(), steps + 1);
  const auto [b, m] = lesson::step_gradient(d.x, d.y, before.b, before.m, 0.01);
  ExpectRelNear(s.model().b, b, 1e-12);
  ExpectRelNear(s.model().m, m, 1e-12);
}

TEST(SeriesTest, StepMakingOnlyOneParameterNonFiniteIsRefused) {
  // Tiny x, large y: dL/db is large, dL/dm tiny; only b would overflow.
  const Data only_b{{1e-100, 2e-100, 3e-100}, {1e10, 2e10, 1.5e10}};
  // Symmetric huge x, small y: ybar = 0 so dL/db = 0; only m would overflow.
  const Data only_m{{-1e100, 1e100}, {-1, 1}};
  for (const Data& d : {only_b, only_m}) {
    Series s = SeriesWith(d, 0);
    const Gradient g = s.stats().GradientAt(0, 0);
    ASSERT_TRUE(std::isfinite(0 - 1e300 * g.slope) != std::isfinite(0 - 1e300 * g.intercept))
        << "the data must overflow exactly one parameter";
    StepResult r;
    EXPECT_EQ(s.Step(1, Opts(1e300, std::nullopt), &r).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.model().m, 0);
    EXPECT_EQ(s.model().b, 0);
    EXPECT_EQ(s.steps(), 0u);
  }
}

TEST(SeriesTest, FiniteDivergingStepsAreKept) {
  // Growing but finite: the steps are run (the caller asked for them).
  const Data d = RevenueData();
  Series s = SeriesWith(d, 0.05);
  StepResult r;
  ASSERT_TRUE(s.Step(10, Opts(std::nullopt, std::nullopt), &r).ok());
  EXPECT_EQ(r.iterations, 10u);
  double b = 0, m = 0;
  for (int i = 0; i < 10; ++i) {
    const auto next = lesson::step_gradient(d.x, d.y, b, m, 0.05);
    b = next[0];
    m = next[1];
  }
  EXPECT_GT(std::fabs(m), 1e6) << "the rate should diverge";
  ExpectRelNear(s.model().b, b, 1e-9);
  ExpectRelNear(s.model().m, m, 1e-9);
}

// ---------------------------------------------------------------------------
// Configure.

TEST(SeriesTest, ConfigureAppliesAllPresentFields) {
  Series s;
  EXPECT_EQ(s.config().learning_rate, 0);
  EXPECT_EQ(s.config().steps_per_batch, 1u);
  ASSERT_TRUE(s.Configure(Change().Rate(0.02).StepsPerBatch(5).M(1.5).B(-2)).ok());
  EXPECT_EQ(s.config().learning_rate, 0.02);
  EXPECT_EQ(s.config().steps_per_batch, 5u);
  EXPECT_EQ(s.model().m, 1.5);
  EXPECT_EQ(s.model().b, -2);
  // Absent fields stay.
  ASSERT_TRUE(s.Configure(Change().B(7)).ok());
  EXPECT_EQ(s.config().learning_rate, 0.02);
  EXPECT_EQ(s.config().steps_per_batch, 5u);
  EXPECT_EQ(s.model().m, 1.5);
  EXPECT_EQ(s.model().b, 7);
  ASSERT_TRUE(s.Configure({}).ok());
  EXPECT_EQ(s.model().b, 7);
  // Back to auto; the limit itself is allowed.
  ASSERT_TRUE(s.Configure(Change().Rate(0).StepsPerBatch(kMaxStepsPerBatch)).ok());
  EXPECT_EQ(s.config().learning_rate, 0);
  EXPECT_EQ(s.config().steps_per_batch, kMaxStepsPerBatch);
}

TEST(SeriesTest, ConfigureIsAllOrNothing) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Series s;
  ASSERT_TRUE(s.Configure(Change().Rate(0.01).StepsPerBatch(2).M(3).B(4)).ok());
  const std::vector<SeriesChange> bad = {
      Change().Rate(0.05).M(nan),
      Change().Rate(0.05).B(inf),
      Change().Rate(0.05).StepsPerBatch(9).M(1).B(-inf),
      Change().Rate(-1).B(2),
      Change().Rate(nan).M(1),
      Change().Rate(inf),
      Change().StepsPerBatch(kMaxStepsPerBatch + 1).M(1),
      Change().Rate(0.5).StepsPerBatch(kMaxStepsPerBatch + 1),
  };
  for (const SeriesChange& change : bad) {
    const Status st = s.Configure(change);
    EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(st.message().empty());
    EXPECT_EQ(ValidateSeriesChange(change).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(s.config().learning_rate, 0.01);
    EXPECT_EQ(s.config().steps_per_batch, 2u);
    EXPECT_EQ(s.model().m, 3);
    EXPECT_EQ(s.model().b, 4);
  }
  // The error names the bad field.
  EXPECT_THAT(s.Configure(Change().Rate(0.05).M(nan)).message(), HasSubstr("m"));
  EXPECT_THAT(s.Configure(Change().B(inf)).message(), HasSubstr("b"));
  EXPECT_THAT(s.Configure(Change().StepsPerBatch(kMaxStepsPerBatch + 1)).message(),
              HasSubstr("steps_per_batch"));
  EXPECT_THAT(s.Configure(Change().Rate(-1)).message(), HasSubstr("learning rate"));
}

TEST(SeriesTest, ValidateLearningRate) {
  EXPECT_TRUE(ValidateLearningRate(0).ok());
  EXPECT_TRUE(ValidateLearningRate(1e-300).ok());
  EXPECT_TRUE(ValidateLearningRate(1e300).ok());
  for (const double bad :
       {-1e-300, -1.0, std::numeric_limits<double>::quiet_NaN(),
        std::numeric_limits<double>::infinity(), -std::numeric_limits<double>::infinity()}) {
    EXPECT_EQ(ValidateLearningRate(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
}

// ---------------------------------------------------------------------------
// Absorb and steps_per_batch.

TEST(SeriesTest, AbsorbRunsOneStepPerBatchByDefault) {
  const Data d = RevenueData();
  Series s;
  ASSERT_TRUE(s.Configure(Change().Rate(0.01)).ok());
  EXPECT_EQ(s.config().steps_per_batch, 1u);
  uint64_t steps_run = 0;
  ASSERT_TRUE(s.Absorb(Stats(d), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 1u);
  EXPECT_EQ(s.steps(), 1u);
  EXPECT_EQ(s.stats().count(), 12u);
  ExpectRelNear(s.model().b, 2.355, 1e-12);
  ExpectRelNear(s.model().m, 17.783333333333333, 1e-12);
}

TEST(SeriesTest, AbsorbRunsStepsPerBatchOnAllPointsSoFar) {
  const Data d = RevenueData();
  const std::span<const double> x(d.x), y(d.y);
  Series s;
  ASSERT_TRUE(s.Configure(Change().Rate(0.005).StepsPerBatch(3)).ok());
  uint64_t steps_run = 0;
  ASSERT_TRUE(
      s.Absorb(PointStats::FromPoints(x.first(6), y.first(6)), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 3u);
  ASSERT_TRUE(
      s.Absorb(PointStats::FromPoints(x.subspan(6), y.subspan(6)), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 3u);
  EXPECT_EQ(s.steps(), 6u);
  // 3 lesson steps on the first half, then 3 on everything.
  double b = 0, m = 0;
  for (int i = 0; i < 6; ++i) {
    const auto next = i < 3 ? lesson::step_gradient(x.first(6), y.first(6), b, m, 0.005)
                            : lesson::step_gradient(x, y, b, m, 0.005);
    b = next[0];
    m = next[1];
  }
  ExpectRelNear(s.model().b, b, 1e-12);
  ExpectRelNear(s.model().m, m, 1e-12);
}

TEST(SeriesTest, AbsorbWithZeroStepsPerBatchRunsNone) {
  Series s;
  ASSERT_TRUE(s.Configure(Change().Rate(0.01).StepsPerBatch(0).M(1).B(2)).ok());
  uint64_t steps_run = 99;
  ASSERT_TRUE(s.Absorb(Stats(RevenueData()), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 0u);
  EXPECT_EQ(s.steps(), 0u);
  EXPECT_EQ(s.stats().count(), 12u);
  EXPECT_EQ(s.model().m, 1);
  EXPECT_EQ(s.model().b, 2);
}

TEST(SeriesTest, AbsorbWithAutoRateTakesOneLipschitzStep) {
  const Data d = RevenueData();
  Series s;
  ASSERT_TRUE(s.Configure(Change().Mode(DescentMode::kPlain)).ok());
  uint64_t steps_run = 0;
  ASSERT_TRUE(s.Absorb(Stats(d), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 1u);
  const double rate = 1.0 / Stats(d).GradientLipschitzConstant();
  const auto [b, m] = lesson::step_gradient(d.x, d.y, 0, 0, rate);
  ExpectRelNear(s.model().b, b, 1e-12);
  ExpectRelNear(s.model().m, m, 1e-12);
  EXPECT_LT(LossOf(s), Stats(d).LossAt(0, 0));
}

TEST(SeriesTest, AbsorbWithDivergingRateKeepsPointsAndModel) {
  const Data d = RevenueData();
  Series s;
  // Two steps per batch at 1e300: the second overflows.
  ASSERT_TRUE(s.Configure(Change().Rate(1e300).StepsPerBatch(2).M(0.5).B(-1)).ok());
  uint64_t steps_run = 99;
  Status st = s.Absorb(Stats(d), BatchStamp{}, &steps_run);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_FALSE(st.message().empty());
  EXPECT_EQ(steps_run, 0u);
  EXPECT_EQ(s.stats().count(), 12u) << "the points are applied anyway";
  EXPECT_EQ(s.stats().mean_y(), 117.75);
  EXPECT_EQ(s.model().m, 0.5);
  EXPECT_EQ(s.model().b, -1);
  EXPECT_EQ(s.steps(), 0u);
  // Again: more points, still no steps.
  steps_run = 99;
  EXPECT_EQ(s.Absorb(Stats(d), BatchStamp{}, &steps_run).code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(steps_run, 0u);
  EXPECT_EQ(s.stats().count(), 24u);
  EXPECT_EQ(s.model().m, 0.5);
  EXPECT_EQ(s.model().b, -1);
  EXPECT_EQ(s.steps(), 0u);
  // A sane rate recovers.
  ASSERT_TRUE(s.Configure(Change().Rate(0.01)).ok());
  ASSERT_TRUE(s.Absorb(PointStats(), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 2u);
  EXPECT_EQ(s.steps(), 2u);
}

TEST(SeriesTest, AbsorbingNothingIntoAnEmptySeriesRunsNoSteps) {
  Series s;
  uint64_t steps_run = 99;
  ASSERT_TRUE(s.Absorb(PointStats(), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(steps_run, 0u);
  EXPECT_TRUE(s.stats().empty());
  EXPECT_EQ(s.steps(), 0u);
}

// ---------------------------------------------------------------------------
// Reset, preconditions and argument checks.

TEST(SeriesTest, ResetDropsPointsModelAndStepsButKeepsConfig) {
  Series s;
  ASSERT_TRUE(s.Configure(Change().Rate(0.01).StepsPerBatch(4)).ok());
  uint64_t steps_run = 0;
  ASSERT_TRUE(s.Absorb(Stats(RevenueData()), BatchStamp{}, &steps_run).ok());
  ASSERT_EQ(s.steps(), 4u);
  ASSERT_NE(s.model().m, 0);
  s.Reset();
  EXPECT_TRUE(s.stats().empty());
  EXPECT_EQ(s.stats().count(), 0u);
  EXPECT_EQ(s.model().m, 0);
  EXPECT_EQ(s.model().b, 0);
  EXPECT_EQ(s.steps(), 0u);
  EXPECT_EQ(s.config().learning_rate, 0.01);
  EXPECT_EQ(s.config().steps_per_batch, 4u);
  StepResult r;
  EXPECT_EQ(s.Step(1, Opts(std::nullopt, std::nullopt), &r).code(),
            StatusCode::kFailedPrecondition);
  // It starts over from scratch.
  ASSERT_TRUE(s.Absorb(Stats(RevenueData()), BatchStamp{}, &steps_run).ok());
  EXPECT_EQ(s.stats().count(), 12u);
  EXPECT_EQ(s.steps(), 4u);
}

TEST(SeriesTest, StepOnEmptySeriesFailsPrecondition) {
  Series s;
  ASSERT_TRUE(s.Configure(Change().M(1).B(2)).ok());
  StepResult r;
  for (const std::optional<double> rate : {std::optional<double>(), std::optional<double>(0.1)}) {
    const Status st = s.Step(1, Opts(rate, 1e-3), &r);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_FALSE(st.message().empty());
  }
  EXPECT_EQ(s.model().m, 1);
  EXPECT_EQ(s.model().b, 2);
  EXPECT_EQ(s.steps(), 0u);
}

TEST(SeriesTest, StepRejectsBadRateAndTolerance) {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  Series s = SeriesWith(RevenueData(), 0.01);
  StepResult r;
  for (const double bad : {-0.01, -1e-300, nan, inf, -inf}) {
    EXPECT_EQ(s.Step(1, Opts(bad, std::nullopt), &r).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.Step(1, Opts(std::nullopt, bad), &r).code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_EQ(s.Step(1, Opts(0.01, bad), &r).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_EQ(s.model().m, 0);
  EXPECT_EQ(s.model().b, 0);
  EXPECT_EQ(s.steps(), 0u);
  // Tolerance 0 is allowed (never converges early).
  ASSERT_TRUE(s.Step(2, Opts(std::nullopt, 0.0), &r).ok());
  EXPECT_EQ(r.iterations, 2u);
}

TEST(SeriesTest, IterationLimit) {
  Series s = SeriesWith(RevenueData(), 0);
  StepResult r;
  const Status st = s.Step(kMaxStepIterations + 1, Opts(std::nullopt, 1.0), &r);
  EXPECT_EQ(st.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(st.message(), HasSubstr(std::to_string(kMaxStepIterations)));
  EXPECT_EQ(s.Step(std::numeric_limits<uint64_t>::max(), Opts(std::nullopt, 1.0), &r).code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(s.steps(), 0u);
  EXPECT_EQ(s.model().m, 0);
  // The limit itself is allowed (and stops early on the tolerance).
  ASSERT_TRUE(s.Step(kMaxStepIterations, Opts(std::nullopt, 1e-6), &r).ok());
  EXPECT_TRUE(r.converged);
  EXPECT_LT(r.iterations, kMaxStepIterations);
}

TEST(SeriesTest, ZeroIterationsChangeNothing) {
  Series s = SeriesWith(RevenueData(), 0.01);
  ASSERT_TRUE(s.Configure(Change().M(2).B(3)).ok());
  StepResult r;
  r.iterations = 9;
  r.converged = true;
  ASSERT_TRUE(s.Step(0, Opts(std::nullopt, std::nullopt), &r).ok());
  EXPECT_EQ(r.iterations, 0u);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(s.model().m, 2);
  EXPECT_EQ(s.model().b, 3);
  EXPECT_EQ(s.steps(), 0u);
}

// Issue 11, point 12: the time budget is checked every slice; once out of
// time the step keeps what it ran, exactly as if asked for that many.
TEST(SeriesTest, StepStopsWhenOutOfTimeAndKeepsTheIterationsRun) {
  const Data d = RevenueData();
  Series limited = SeriesWith(d, 1e-6);
  int asked = 0;
  StepResult r;
  ASSERT_TRUE(
      limited.Step(kMaxStepIterations, Opts(std::nullopt, 0.0), &r, [&] { return ++asked == 3; })
          .ok());
  EXPECT_EQ(asked, 3);
  EXPECT_EQ(r.iterations, 3 * kStepSliceIterations);
  EXPECT_TRUE(r.time_limited);
  EXPECT_FALSE(r.converged);
  EXPECT_EQ(limited.steps(), 3 * kStepSliceIterations);
  Series unlimited = SeriesWith(d, 1e-6);
  StepResult u;
  ASSERT_TRUE(unlimited.Step(3 * kStepSliceIterations, Opts(std::nullopt, 0.0), &u).ok());
  EXPECT_FALSE(u.time_limited);
  EXPECT_EQ(limited.model().m, unlimited.model().m);
  EXPECT_EQ(limited.model().b, unlimited.model().b);
  // A step that ends within its budget is not time-limited, even when the
  // budget runs out exactly at its last iteration.
  Series exact = SeriesWith(d, 1e-6);
  ASSERT_TRUE(
      exact.Step(kStepSliceIterations, Opts(std::nullopt, std::nullopt), &r, [] { return true; })
          .ok());
  EXPECT_EQ(r.iterations, kStepSliceIterations);
  EXPECT_FALSE(r.time_limited);
}

}  // namespace
}  // namespace gradientd::core
