// The protocol's semantics, in-process: Service over a SeriesStore; its
// limits, series names, refused changes, losses that are not finite.
#include "service/service.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service_test_support.h"

namespace gradientd::service {
namespace {

TEST_F(ServiceTest, RevenueLessonValues) {
  ASSERT_TRUE(Configure("revenue", 0.01, 0).has_fit());
  const v1::Response ack = Ingest("revenue", kMonths, kRevenue);
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().accepted(), 12u);
  EXPECT_EQ(ack.ack().total(), 12u);
  EXPECT_EQ(ack.ack().steps(), 0u);

  v1::Request g;
  g.mutable_gradient()->set_series("revenue");
  const v1::Response gradient = Call(g);
  ASSERT_TRUE(gradient.has_gradient());
  EXPECT_NEAR(gradient.gradient().intercept_gradient(), -235.5, 1e-12);
  EXPECT_NEAR(gradient.gradient().slope_gradient(), -1778.0 - 1.0 / 3.0, 1e-11);

  const v1::Response step = Step("revenue", 1);
  ASSERT_TRUE(step.has_step()) << step.DebugString();
  EXPECT_EQ(step.step().iterations(), 1u);
  EXPECT_NEAR(step.step().gradient().b(), 2.355, 1e-13);
  EXPECT_NEAR(step.step().gradient().m(), 17.78333333333333, 1e-12);

  const v1::Response fit = Fit("revenue");
  ASSERT_TRUE(fit.fit().has_least_squares());
  EXPECT_NEAR(fit.fit().least_squares().m(), 10.388111888111888, 1e-12);
  EXPECT_NEAR(fit.fit().least_squares().b(), 50.227272727272727, 1e-11);
  EXPECT_EQ(fit.fit().steps(), 1u);
  EXPECT_DOUBLE_EQ(fit.fit().learning_rate(), 0.01);
  EXPECT_FALSE(fit.fit().learning_rate_auto());
}

TEST_F(ServiceTest, EmptySeriesNameMeansDefault) {
  ASSERT_TRUE(Ingest("", {1, 2}, {3, 4}).has_ack());
  const v1::Response fit = Fit("default");
  ASSERT_TRUE(fit.has_fit());
  EXPECT_EQ(fit.fit().series(), "default");
  EXPECT_EQ(fit.fit().n(), 2u);
}

TEST_F(ServiceTest, IngestRunsStepsPerBatchAtTheAutoRate) {
  const v1::Response ack = Ingest("s", kMonths, kRevenue);
  EXPECT_EQ(ack.ack().steps(), 1u);
  const v1::Response fit = Fit("s");
  EXPECT_TRUE(fit.fit().learning_rate_auto());
  EXPECT_GT(fit.fit().learning_rate(), 0);
  EXPECT_EQ(fit.fit().steps(), 1u);
  // One auto step from (0, 0) lowers the loss below the loss at (0, 0).
  double loss0 = 0;
  for (std::size_t i = 0; i < kMonths.size(); ++i) loss0 += kRevenue[i] * kRevenue[i] / 12.0;
  EXPECT_LT(fit.fit().descent().loss(), loss0);
}

TEST_F(ServiceTest, ConfigureCreatesAnEmptySeriesThatAnswersFitButNotGradient) {
  const v1::Response configured = Configure("new", 0.5, 3);
  ASSERT_TRUE(configured.has_fit());
  EXPECT_EQ(configured.fit().n(), 0u);
  EXPECT_FALSE(configured.fit().has_least_squares());
  EXPECT_FALSE(configured.fit().descent().has_loss());
  EXPECT_EQ(configured.fit().steps_per_batch(), 3u);

  v1::Request g;
  g.mutable_gradient()->set_series("new");
  ExpectErrorAndNoChange(g, v1::Error::FAILED_PRECONDITION);
  v1::Request s;
  s.mutable_step()->set_series("new");
  s.mutable_step()->set_iterations(1);
  ExpectErrorAndNoChange(s, v1::Error::FAILED_PRECONDITION);
}

TEST_F(ServiceTest, ResetDropsPointsAndModelButKeepsConfiguration) {
  Configure("s", 0.01, 2);
  Ingest("s", kMonths, kRevenue);
  v1::Request r;
  r.mutable_reset()->set_series("s");
  const v1::Response reset = Call(r);
  ASSERT_TRUE(reset.has_fit());
  EXPECT_EQ(reset.fit().n(), 0u);
  EXPECT_EQ(reset.fit().steps(), 0u);
  EXPECT_EQ(reset.fit().descent().m(), 0);
  EXPECT_EQ(reset.fit().descent().b(), 0);
  EXPECT_EQ(reset.fit().steps_per_batch(), 2u);
  EXPECT_DOUBLE_EQ(reset.fit().learning_rate(), 0.01);
}

TEST_F(ServiceTest, NoSpreadInXHasNoLeastSquaresLine) {
  Ingest("flat", {1e9, 1e9, 1e9}, {1, 2, 3});
  Ingest("flat", {1e9}, {4});
  const v1::Response fit = Fit("flat");
  ASSERT_TRUE(fit.has_fit());
  EXPECT_FALSE(fit.fit().has_least_squares());
  EXPECT_FALSE(fit.fit().has_r_squared());
}

TEST_F(ServiceTest, ListIsSortedByName) {
  Ingest("b", {1}, {1});
  Ingest("a", {1}, {1});
  Configure("c", std::nullopt);
  v1::Request r;
  r.mutable_list();
  const v1::Response list = Call(r);
  ASSERT_EQ(list.series_list().series_size(), 3);
  EXPECT_EQ(list.series_list().series(0).series(), "a");
  EXPECT_EQ(list.series_list().series(1).series(), "b");
  EXPECT_EQ(list.series_list().series(2).series(), "c");
}

TEST_F(ServiceTest, BadRequestsGetErrorsAndChangeNothing) {
  Configure("s", 0.01);
  Ingest("s", kMonths, kRevenue);
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();

  v1::Request mismatch;
  mismatch.mutable_ingest()->set_series("s");
  mismatch.mutable_ingest()->add_x(1);
  ExpectErrorAndNoChange(mismatch, v1::Error::INVALID_ARGUMENT);

  for (double bad : {nan, inf, -inf, 1e151}) {
    v1::Request r;
    r.mutable_ingest()->set_series("s");
    r.mutable_ingest()->add_x(1);
    r.mutable_ingest()->add_y(1);
    r.mutable_ingest()->add_x(2);
    r.mutable_ingest()->add_y(bad);
    ExpectErrorAndNoChange(r, v1::Error::INVALID_ARGUMENT);
    // A bad batch for a series that does not exist creates nothing.
    r.mutable_ingest()->set_series("never");
    ExpectErrorAndNoChange(r, v1::Error::INVALID_ARGUMENT);
  }

  for (double bad : {-0.1, nan, inf}) {
    v1::Request step;
    step.mutable_step()->set_series("s");
    step.mutable_step()->set_iterations(1);
    step.mutable_step()->set_learning_rate(bad);
    ExpectErrorAndNoChange(step, v1::Error::INVALID_ARGUMENT);
    v1::Request configure;
    configure.mutable_configure()->set_series("s");
    configure.mutable_configure()->set_learning_rate(bad);
    configure.mutable_configure()->set_m(1);  // valid, but the request is all or nothing
    ExpectErrorAndNoChange(configure, v1::Error::INVALID_ARGUMENT);
    configure.mutable_configure()->set_series("never");
    ExpectErrorAndNoChange(configure, v1::Error::INVALID_ARGUMENT);
  }

  v1::Request diverge;
  diverge.mutable_step()->set_series("s");
  diverge.mutable_step()->set_iterations(10000);
  diverge.mutable_step()->set_learning_rate(1.0);
  ExpectErrorAndNoChange(diverge, v1::Error::INVALID_ARGUMENT);

  v1::Request bad_point;
  bad_point.mutable_gradient()->set_series("s");
  bad_point.mutable_gradient()->set_m(nan);
  ExpectErrorAndNoChange(bad_point, v1::Error::INVALID_ARGUMENT);

  for (const char* missing : {"nope", "S"}) {
    v1::Request g;
    g.mutable_gradient()->set_series(missing);
    ExpectErrorAndNoChange(g, v1::Error::NOT_FOUND);
    v1::Request f;
    f.mutable_fit()->set_series(missing);
    ExpectErrorAndNoChange(f, v1::Error::NOT_FOUND);
    v1::Request s;
    s.mutable_step()->set_series(missing);
    s.mutable_step()->set_iterations(1);
    ExpectErrorAndNoChange(s, v1::Error::NOT_FOUND);
    v1::Request r;
    r.mutable_reset()->set_series(missing);
    ExpectErrorAndNoChange(r, v1::Error::NOT_FOUND);
  }

  v1::Request long_name;
  long_name.mutable_ingest()->set_series(std::string(kMaxSeriesNameBytes + 1, 'a'));
  long_name.mutable_ingest()->add_x(1);
  long_name.mutable_ingest()->add_y(1);
  ExpectErrorAndNoChange(long_name, v1::Error::INVALID_ARGUMENT);

  ExpectErrorAndNoChange(v1::Request(), v1::Error::INVALID_ARGUMENT);
}

TEST_F(ServiceTest, DivergingAutoStepsStillApplyThePointsAndReportWhy) {
  Configure("s", 1e300, 5);  // the first step would overflow m
  const v1::Response ack = Ingest("s", kMonths, kRevenue);
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().accepted(), 12u);
  EXPECT_EQ(ack.ack().steps(), 0u);
  EXPECT_NE(ack.ack().descent_error().find("non-finite"), std::string::npos);
  const v1::Response fit = Fit("s");
  EXPECT_EQ(fit.fit().n(), 12u);
  EXPECT_EQ(fit.fit().steps(), 0u);
  EXPECT_EQ(fit.fit().descent().m(), 0);
  EXPECT_EQ(fit.fit().descent().b(), 0);
}

TEST(ServiceLimitsTest, LimitsRefuseWithClearErrorsAndChangeNothing) {
  SeriesStore store;
  Service service(store, {.max_series = 2, .max_series_name_bytes = 8, .max_batch_points = 3});
  auto call = [&](const v1::Request& r) {
    v1::Response response;
    service.Handle(r, &response);
    return response;
  };
  auto ingest = [&](const std::string& series, int points) {
    v1::Request r;
    r.mutable_ingest()->set_series(series);
    for (int i = 0; i < points; ++i) {
      r.mutable_ingest()->add_x(i);
      r.mutable_ingest()->add_y(i);
    }
    return call(r);
  };
  EXPECT_TRUE(ingest("a", 3).has_ack());
  EXPECT_TRUE(ingest("b", 1).has_ack());
  const v1::Response third = ingest("c", 1);
  EXPECT_EQ(third.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(third.error().message().find("limit of 2 series"), std::string::npos);
  v1::Request configure;
  configure.mutable_configure()->set_series("c");
  EXPECT_EQ(call(configure).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(ingest("a", 2).ack().total(), 5u);  // existing series keep working

  const v1::Response big = ingest("a", 4);
  EXPECT_EQ(big.error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_NE(big.error().message().find("limit is 3"), std::string::npos);
  EXPECT_EQ(ingest("longer-than-8", 1).error().code(), v1::Error::INVALID_ARGUMENT);
  const v1::Response control = ingest(std::string("a\nb"), 1);
  EXPECT_EQ(control.error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_NE(control.error().message().find("control character"), std::string::npos);
  v1::Request fit;
  fit.mutable_fit()->set_series("a");
  EXPECT_EQ(call(fit).fit().n(), 5u);
}

// ---------------------------------------------------------------------------
// Issue 11.

// Point 18.
TEST_F(ServiceTest, SeriesNamesMustBeUtf8WithoutC0OrC1Controls) {
  const std::vector<std::pair<const char*, std::string>> bad = {
      {"C0 control", "a\x01z"},
      {"DEL", "a\x7fz"},
      {"C1 control U+0080", "a\xc2\x80z"},
      {"C1 control U+0085 (NEL)", "a\xc2\x85z"},
      {"C1 control U+009F", "a\xc2\x9fz"},
      {"a lone continuation byte", "a\x80z"},
      {"a truncated sequence", "a\xe2\x82"},
      {"an overlong '/'", "a\xc0\xafz"},
      {"an overlong 3-byte form", "a\xe0\x80\xafz"},
      {"an overlong 4-byte form", "a\xf0\x80\x80\xafz"},
      {"a surrogate U+D800", "a\xed\xa0\x80z"},
      {"a surrogate U+DFFF", "a\xed\xbf\xbfz"},
      {"past U+10FFFF", "a\xf4\x90\x80\x80z"},
      {"an invalid lead byte", "a\xffz"},
      {"Latin-1, not UTF-8", "caf\xe9"},
  };
  Ingest("kept", {1}, {1});
  for (const auto& [what, name] : bad) {
    SCOPED_TRACE(what);
    ExpectErrorAndNoChange(IngestRequest(name, {1}, {2}), v1::Error::INVALID_ARGUMENT);
    v1::Request configure;
    configure.mutable_configure()->set_series(name);
    ExpectErrorAndNoChange(configure, v1::Error::INVALID_ARGUMENT);
    v1::Response fit = Fit(name);
    EXPECT_EQ(fit.error().code(), v1::Error::INVALID_ARGUMENT);
  }
  for (const std::string good : {"caf\xc3\xa9", "\xc2\xa0nbsp", "\xe2\x82\xac", "\xf0\x9f\x98\x80",
                                 "\xef\xbf\xbf", "\xf4\x8f\xbf\xbf", "a b~"}) {
    SCOPED_TRACE(good);
    EXPECT_TRUE(Ingest(good, {1}, {2}).has_ack());
    EXPECT_TRUE(Fit(good).has_fit());
  }
}

// Point 18: whatever refuses a change, no series appears.
TEST_F(ServiceTest, ARefusedRequestCreatesNoSeriesWhenTheLogFails) {
  FakeChangeLog log;
  service_.SetChangeLog(&log);
  ASSERT_TRUE(Ingest("kept", {1, 2}, {3, 4}).has_ack());
  log.failing = true;
  for (const std::string& name : {std::string("new"), std::string("kept")}) {
    SCOPED_TRACE(name);
    ExpectErrorAndNoChange(IngestRequest(name, {1}, {2}), v1::Error::INTERNAL);
    ExpectErrorAndNoChange(IngestRequest(name, {1}, {2}, "producer-1", 1), v1::Error::INTERNAL);
    ExpectErrorAndNoChange(IngestRequest(name, {}, {}, "producer-2", 1), v1::Error::INTERNAL);
    v1::Request configure;
    configure.mutable_configure()->set_series(name);
    configure.mutable_configure()->set_m(1);
    ExpectErrorAndNoChange(configure, v1::Error::INTERNAL);
  }
  EXPECT_EQ(store_.size(), 1u);
  EXPECT_EQ(service_.producers(), 0u);  // a refused batch remembers no producer
  // Once the log works again, the refused producer's batch is new, not a
  // duplicate.
  log.failing = false;
  const v1::Response ack = Call(IngestRequest("new", {1}, {2}, "producer-1", 1));
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_FALSE(ack.ack().duplicate());
  EXPECT_EQ(ack.ack().accepted(), 1u);
  EXPECT_EQ(store_.size(), 2u);
}

// Point 18, with the series limit: the refused series does not count.
TEST(ServiceLimitsTest, ASeriesRefusedByTheLogDoesNotCountAgainstMaxSeries) {
  SeriesStore store;
  Service service(store, {.max_series = 2});
  FakeChangeLog log;
  service.SetChangeLog(&log);
  log.failing = true;
  for (int i = 0; i < 10; ++i) {
    v1::Response response;
    service.Handle(IngestRequest("s" + std::to_string(i), {1}, {2}), &response);
    EXPECT_EQ(response.error().code(), v1::Error::INTERNAL);
  }
  log.failing = false;
  for (const char* name : {"a", "b"}) {
    v1::Response response;
    service.Handle(IngestRequest(name, {1}, {2}), &response);
    EXPECT_TRUE(response.has_ack()) << name << ": " << response.DebugString();
  }
  EXPECT_EQ(ListAllNames(service, 0), (std::vector<std::string>{"a", "b"}));
}

// Point 17: a loss that is not finite is never reported, anywhere; the
// reply says why it has none.
TEST_F(ServiceTest, AnOverflowingLossIsNeverReportedButExplained) {
  Ingest("s", kMonths, kRevenue);
  v1::Request configure;
  configure.mutable_configure()->set_series("s");
  configure.mutable_configure()->set_m(1e300);
  configure.mutable_configure()->set_b(-1e300);
  configure.mutable_configure()->set_steps_per_batch(0);
  const v1::Response configured = Call(configure);
  ASSERT_TRUE(configured.has_fit()) << configured.DebugString();
  const auto check = [](const v1::FitReply& fit) {
    EXPECT_FALSE(fit.descent().has_loss()) << fit.DebugString();
    EXPECT_EQ(fit.descent().loss_error(), kLossOverflows);
    // The least-squares line of the same points is fine.
    ASSERT_TRUE(fit.least_squares().has_loss());
    EXPECT_TRUE(std::isfinite(fit.least_squares().loss()));
    EXPECT_TRUE(fit.least_squares().loss_error().empty());
  };
  check(configured.fit());
  check(Fit("s").fit());
  v1::Response list = Call(ListRequest(0, ""));
  ASSERT_EQ(list.series_list().series_size(), 1);
  check(list.series_list().series(0));
  // The gradient there is refused for the same reason, and so is a step
  // that would end there.
  v1::Request gradient;
  gradient.mutable_gradient()->set_series("s");
  EXPECT_EQ(Call(gradient).error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_EQ(Step("s", 0).error().code(), v1::Error::INVALID_ARGUMENT);
  // The steps after a batch would end there too: skipped, with the reason;
  // the points are applied.
  configure.mutable_configure()->set_steps_per_batch(1);
  ASSERT_TRUE(Call(configure).has_fit());
  const v1::Response ack = Ingest("s", {1, 2}, {3, 4});
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().accepted(), 2u);
  EXPECT_EQ(ack.ack().steps(), 0u);
  EXPECT_FALSE(ack.ack().descent_error().empty());
  check(Fit("s").fit());
  // A finite model reports a loss again.
  configure.mutable_configure()->set_m(1);
  configure.mutable_configure()->set_b(1);
  const v1::Response back = Call(configure);
  EXPECT_TRUE(back.fit().descent().has_loss());
  EXPECT_TRUE(back.fit().descent().loss_error().empty());
}

// Point 12: a step request's time is bounded, and it says it was stopped.
TEST(ServiceLimitsTest, AStepStopsAtMaxStepTimeAndKeepsTheIterationsRun) {
  SeriesStore store;
  Service service(store, {.max_step_time = std::chrono::nanoseconds(1)});
  FakeChangeLog log;
  service.SetChangeLog(&log);
  v1::Response response;
  service.Handle(IngestRequest("s", kMonths, kRevenue), &response);
  ASSERT_TRUE(response.has_ack());
  v1::Request step;
  step.mutable_step()->set_series("s");
  step.mutable_step()->set_iterations(core::kMaxStepIterations);
  step.mutable_step()->set_learning_rate(1e-6);  // far from converging in that many
  step.mutable_step()->set_tolerance(0);
  response.Clear();
  service.Handle(step, &response);
  ASSERT_TRUE(response.has_step()) << response.DebugString();
  EXPECT_TRUE(response.step().time_limited());
  EXPECT_FALSE(response.step().converged());
  EXPECT_GT(response.step().iterations(), 0u);
  EXPECT_LT(response.step().iterations(), core::kMaxStepIterations);
  // All or nothing as before: the model and the log hold what was run.
  const uint64_t run = response.step().iterations();
  v1::Request fit;
  fit.mutable_fit()->set_series("s");
  v1::Response fitted;
  service.Handle(fit, &fitted);
  EXPECT_EQ(fitted.fit().steps(), 1 + run);  // one step after the batch, then those
  ASSERT_FALSE(log.records.empty());
  EXPECT_EQ(log.records.back().model().steps(), 1 + run);
  EXPECT_EQ(log.records.back().model().m(), fitted.fit().descent().m());
}

}  // namespace
}  // namespace gradientd::service
