// The protocol's semantics, in-process: Service over a SeriesStore.
#include "service/service.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

namespace gradientd::service {
namespace {

const std::vector<double> kMonths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const std::vector<double> kRevenue = {52, 74, 79, 95, 115, 110, 129, 126, 147, 146, 156, 184};

class ServiceTest : public ::testing::Test {
 protected:
  v1::Response Call(const v1::Request& request) {
    v1::Response response;
    service_.Handle(request, &response);
    return response;
  }

  v1::Response Ingest(const std::string& series, const std::vector<double>& x,
                      const std::vector<double>& y) {
    v1::Request r;
    r.mutable_ingest()->set_series(series);
    for (double v : x) r.mutable_ingest()->add_x(v);
    for (double v : y) r.mutable_ingest()->add_y(v);
    return Call(r);
  }

  v1::Response Fit(const std::string& series) {
    v1::Request r;
    r.mutable_fit()->set_series(series);
    return Call(r);
  }

  v1::Response Step(const std::string& series, uint64_t iterations,
                    std::optional<double> rate = std::nullopt) {
    v1::Request r;
    r.mutable_step()->set_series(series);
    r.mutable_step()->set_iterations(iterations);
    if (rate) r.mutable_step()->set_learning_rate(*rate);
    return Call(r);
  }

  v1::Response Configure(const std::string& series, std::optional<double> rate,
                         std::optional<uint32_t> steps_per_batch = std::nullopt) {
    v1::Request r;
    r.mutable_configure()->set_series(series);
    if (rate) r.mutable_configure()->set_learning_rate(*rate);
    if (steps_per_batch) r.mutable_configure()->set_steps_per_batch(*steps_per_batch);
    return Call(r);
  }

  // Everything a client can observe about every series.
  std::string ObservableState() {
    v1::Request r;
    r.mutable_list();
    return Call(r).SerializeAsString();
  }

  void ExpectErrorAndNoChange(const v1::Request& request, v1::Error::Code code) {
    const std::string before = ObservableState();
    const v1::Response response = Call(request);
    ASSERT_TRUE(response.has_error()) << response.DebugString();
    EXPECT_EQ(response.error().code(), code) << response.error().message();
    EXPECT_FALSE(response.error().message().empty());
    EXPECT_EQ(ObservableState(), before);
  }

  SeriesStore store_;
  Service service_{store_};
};

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

}  // namespace
}  // namespace gradientd::service
