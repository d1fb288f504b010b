// The protocol's semantics, in-process: Service over a SeriesStore.
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

// ---------------------------------------------------------------------------
// Issue 11.

// A change log that records what it is given and fails every Append while
// `failing`, as a journal does once its disk has failed.
class FakeChangeLog : public ChangeLog {
 public:
  std::atomic<bool> failing{false};
  std::vector<v1::JournalRecord> records;

  Status Append(const v1::JournalRecord& record, uint64_t* token) override {
    if (failing) return Status::Unavailable("the journal failed (fake)");
    std::lock_guard lock(mu_);
    records.push_back(record);
    *token = records.size();
    return Status::Ok();
  }
  void OnDurable(uint64_t, std::function<void(const Status&)> done) override { done(Status::Ok()); }
  Status Outcome(uint64_t) override { return Status::Ok(); }

 private:
  std::mutex mu_;
};

v1::Request IngestRequest(const std::string& series, std::vector<double> x, std::vector<double> y,
                          const std::string& producer = "", uint64_t sequence = 0) {
  v1::Request r;
  r.mutable_ingest()->set_series(series);
  for (double v : x) r.mutable_ingest()->add_x(v);
  for (double v : y) r.mutable_ingest()->add_y(v);
  r.mutable_ingest()->set_producer_id(producer);
  r.mutable_ingest()->set_sequence(sequence);
  return r;
}

v1::Request ListRequest(uint32_t page_size, const std::string& token,
                        const std::string& prefix = "") {
  v1::Request r;
  r.mutable_list()->set_page_size(page_size);
  r.mutable_list()->set_page_token(token);
  r.mutable_list()->set_prefix(prefix);
  return r;
}

// Every series name, following every page; fails the test on an error.
std::vector<std::string> ListAllNames(Service& service, uint32_t page_size,
                                      const std::string& prefix = "") {
  std::vector<std::string> names;
  std::string token;
  for (int page = 0; page < 1'000'000; ++page) {
    v1::Response response;
    service.Handle(ListRequest(page_size, token, prefix), &response);
    EXPECT_TRUE(response.has_series_list()) << response.DebugString();
    for (const v1::FitReply& fit : response.series_list().series()) names.push_back(fit.series());
    token = response.series_list().next_page_token();
    if (token.empty()) break;
  }
  return names;
}

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

// Points 13/14: pages.
TEST(ServiceListTest, PagesListEverySeriesExactlyOnceWhileSeriesAreCreated) {
  SeriesStore store;
  Service service(store);
  std::set<std::string> before;
  for (int i = 0; i < 2500; ++i) {
    const std::string name = "s" + std::to_string(i * 7919 % 2500);
    v1::Response response;
    service.Handle(IngestRequest(name, {1}, {2}), &response);
    ASSERT_TRUE(response.has_ack());
    before.insert(name);
  }
  // A writer creates series all along, before and after the reader's
  // position, while the reader pages through.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 100'000 && !stop; ++i) {
      v1::Response response;
      service.Handle(IngestRequest((i % 2 ? "a" : "t") + std::to_string(i), {1}, {2}), &response);
    }
  });
  for (const uint32_t page_size : {1u, 7u, 1000u, 0u}) {
    SCOPED_TRACE(page_size);
    const std::vector<std::string> names = ListAllNames(service, page_size);
    const std::set<std::string> unique(names.begin(), names.end());
    EXPECT_EQ(unique.size(), names.size()) << "a series listed twice";
    EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
    for (const std::string& name : before) EXPECT_EQ(unique.count(name), 1u) << name;
  }
  stop = true;
  writer.join();
  // Once creation is over, the pages are exactly the series.
  const std::vector<std::string> all = ListAllNames(service, 333);
  EXPECT_EQ(all.size(), store.size());
  // With a prefix: exactly the names that start with it.
  const std::vector<std::string> prefixed = ListAllNames(service, 10, "s1");
  std::size_t expected = 0;
  for (const std::string& name : all) expected += name.starts_with("s1") ? 1u : 0u;
  EXPECT_EQ(prefixed.size(), expected);
  for (const std::string& name : prefixed) EXPECT_TRUE(name.starts_with("s1")) << name;
  // No page_size means a default page, and says there is more.
  v1::Response first;
  service.Handle(ListRequest(0, ""), &first);
  EXPECT_EQ(first.series_list().series_size(), static_cast<int>(kDefaultListPageSize));
  EXPECT_EQ(first.series_list().next_page_token(),
            first.series_list().series(kDefaultListPageSize - 1).series());
}

TEST(ServiceListTest, BadPageSizeOrPageTokenIsInvalidArgument) {
  SeriesStore store;
  Service service(store);
  v1::Response response;
  service.Handle(IngestRequest("s", {1}, {2}), &response);
  const std::vector<std::pair<const char*, v1::Request>> bad = {
      {"page_size over the limit", ListRequest(kMaxListPageSize + 1, "")},
      {"page_size far over", ListRequest(UINT32_MAX, "")},
      {"token not UTF-8", ListRequest(10, "\xff")},
      {"token with a control", ListRequest(10, "a\x01")},
      {"token too long", ListRequest(10, std::string(kMaxSeriesNameBytes + 1, 'a'))},
      {"token outside the prefix", ListRequest(10, "b", "a")},
      {"prefix too long", ListRequest(10, "", std::string(kMaxSeriesNameBytes + 1, 'a'))},
  };
  for (const auto& [what, request] : bad) {
    SCOPED_TRACE(what);
    v1::Response r;
    service.Handle(request, &r);
    ASSERT_TRUE(r.has_error()) << r.DebugString();
    EXPECT_EQ(r.error().code(), v1::Error::INVALID_ARGUMENT);
    EXPECT_FALSE(r.error().message().empty());
  }
  v1::Response r;
  service.Handle(ListRequest(kMaxListPageSize, ""), &r);
  EXPECT_EQ(r.series_list().series_size(), 1);
  EXPECT_TRUE(r.series_list().next_page_token().empty());
}

// The worst case: the longest names, every optional field set, the largest
// page. The reply stays under the documented bound, which is below the
// default --max-queued-bytes (4 MiB) and far below 2 GiB.
TEST(ServiceListTest, ALargestPageOfLongestNamesStaysUnderTheReplyBound) {
  SeriesStore store;
  Service service(store);
  for (int i = 0; i < static_cast<int>(kMaxListPageSize) + 10; ++i) {
    const std::string number = std::to_string(i);
    const std::string name = std::string(kMaxSeriesNameBytes - number.size(), 'n') + number;
    ASSERT_EQ(name.size(), kMaxSeriesNameBytes);
    v1::Response response;
    service.Handle(IngestRequest(name, {1e150, -1e150, 3}, {-1e150, 1e150, 0.1}), &response);
    ASSERT_TRUE(response.has_ack()) << response.DebugString();
  }
  v1::Response response;
  service.Handle(ListRequest(kMaxListPageSize, ""), &response);
  response.set_id(UINT64_MAX);
  ASSERT_TRUE(response.has_series_list());
  EXPECT_GT(response.series_list().series_size(), 100);
  EXPECT_FALSE(response.series_list().next_page_token().empty());
  const std::size_t bound = kMaxListPageBytes + 2 * kMaxSeriesNameBytes + 1024;
  EXPECT_LE(response.ByteSizeLong(), bound);
  EXPECT_LT(bound, std::size_t{4} << 20);
}

// Point 5: the producer table.
class ProducerTableTest : public ::testing::Test {
 protected:
  ProducerTableTest() {
    service_.SetClock([this] { return now_.load(); });
    service_.SetChangeLog(&log_);
  }
  v1::Response Send(const std::string& producer, uint64_t sequence, const std::string& series = "s",
                    Service* service = nullptr) {
    v1::Response response;
    (service ? *service : service_)
        .Handle(IngestRequest(series, {1, 2}, {3, 4}, producer, sequence), &response);
    return response;
  }
  static constexpr int64_t kMinute = 60'000'000'000;
  std::atomic<int64_t> now_{1'700'000'000'000'000'000};
  SeriesStore store_;
  Service service_{store_, {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)}};
  FakeChangeLog log_;
};

TEST_F(ProducerTableTest, ANewProducerIsRefusedOnlyWhileTheTableIsFullOfUnexpiredOnes) {
  for (const char* p : {"p1", "p2", "p3"}) ASSERT_TRUE(Send(p, 1).has_ack()) << p;
  const std::string before = [&] {
    v1::Response r;
    service_.Handle(ListRequest(0, ""), &r);
    return r.SerializeAsString();
  }();
  const v1::Response refused = Send("p4", 1, "new-series");
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error().message().find("producers"), std::string::npos);
  v1::Response after;
  service_.Handle(ListRequest(0, ""), &after);
  EXPECT_EQ(after.SerializeAsString(), before);  // no series, no points
  EXPECT_EQ(service_.producers(), 3u);
  // Known producers, and batches without a producer, keep working.
  EXPECT_TRUE(Send("p1", 2).has_ack());
  EXPECT_TRUE(Send("", 0).has_ack());
  // p2 and p3 expire; p1 was seen later and stays.
  now_ += 5 * kMinute;
  EXPECT_TRUE(Send("p1", 3).has_ack());
  now_ += 6 * kMinute;
  EXPECT_EQ(Send("p4", 1).ack().accepted(), 2u);
  EXPECT_EQ(Send("p5", 1).ack().accepted(), 2u);
  EXPECT_EQ(Send("p6", 1).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Send("p1", 3).ack().duplicate());  // p1 is remembered
  EXPECT_LE(service_.producers(), 3u);
}

TEST_F(ProducerTableTest, AnExpiredProducerIsForgottenSoItsRetryCountsAgain) {
  ASSERT_EQ(Send("p", 5).ack().accepted(), 2u);
  now_ += 9 * kMinute;
  EXPECT_TRUE(Send("p", 5).ack().duplicate());  // within the expiry
  now_ += 1 * kMinute;                          // 10 minutes since p's last batch
  const v1::Response again = Send("p", 5);
  EXPECT_FALSE(again.ack().duplicate());  // documented: counts again
  EXPECT_EQ(again.ack().total(), 4u);
  EXPECT_TRUE(Send("p", 5).ack().duplicate());
  EXPECT_TRUE(Send("p", 1).ack().duplicate());
}

TEST_F(ProducerTableTest, ProducerIdsOutsideTheAlphabetAreRefusedAndChangeNothing) {
  for (const std::string& bad :
       {std::string("with space"), std::string("tab\t"), std::string("nul\0x", 5),
        std::string("caf\xc3\xa9"), std::string("del\x7f"),
        std::string(kMaxProducerIdBytes + 1, 'p')}) {
    const v1::Response r = Send(bad, 1, "fresh");
    ASSERT_TRUE(r.has_error()) << bad;
    EXPECT_EQ(r.error().code(), v1::Error::INVALID_ARGUMENT);
    EXPECT_NE(r.error().message().find("producer_id"), std::string::npos);
    EXPECT_EQ(r.error().message().find(bad), std::string::npos);  // not echoed
  }
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(service_.producers(), 0u);
  // gradctl's ids and the widest legal one pass.
  EXPECT_TRUE(Send("gradctl-0123456789abcdef", 1).has_ack());
  EXPECT_TRUE(Send("gradctl-replay-0123456789abcdef", 1).has_ack());
  EXPECT_TRUE(Send(std::string(kMaxProducerIdBytes, '~'), 1).has_ack());
  std::string all;
  for (char c = 0x21; c <= 0x7e; ++c) all += c;
  Service wide(store_, {.max_producers = 10});
  EXPECT_TRUE(Send(all, 1, "s", &wide).has_ack());
}

// Whatever survives a restart is rebuilt identically: from a snapshot, and
// from the log's records (Apply), expiry included.
TEST_F(ProducerTableTest, RecoveryRebuildsTheProducerTableIdentically) {
  ASSERT_TRUE(Send("old", 7).has_ack());
  now_ += 5 * kMinute;
  ASSERT_TRUE(Send("young", 3).has_ack());
  v1::Snapshot snapshot;
  service_.Checkpoint([] { return uint64_t{1}; }, &snapshot);
  ASSERT_EQ(snapshot.producers_size(), 2);
  for (const v1::ProducerState& p : snapshot.producers()) EXPECT_NE(p.last_seen_unix_nanos(), 0);

  // From the snapshot.
  SeriesStore restored_store;
  Service restored(restored_store,
                   {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)});
  restored.SetClock([this] { return now_.load(); });
  restored.Restore(snapshot);
  // From the log alone.
  SeriesStore replayed_store;
  Service replayed(replayed_store,
                   {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)});
  replayed.SetClock([this] { return now_.load(); });
  for (const v1::JournalRecord& record : log_.records) replayed.Apply(record);

  now_ += 6 * kMinute;  // "old" has expired, "young" has not
  for (Service* s : {&service_, &restored, &replayed}) {
    EXPECT_FALSE(Send("old", 7, "s", s).ack().duplicate());
    EXPECT_TRUE(Send("young", 3, "s", s).ack().duplicate());
  }
  EXPECT_EQ(Send("old", 7, "s", &restored).ack().duplicate(), true);
}

TEST_F(ProducerTableTest, AnEmptyBatchUnderAProducerIdTakesAPlaceLikeAnyOther) {
  for (const char* p : {"e1", "e2", "e3"}) {
    v1::Response r;
    service_.Handle(IngestRequest("s", {}, {}, p, 1), &r);
    ASSERT_TRUE(r.has_ack()) << r.DebugString();
  }
  EXPECT_EQ(service_.producers(), 3u);
  EXPECT_EQ(Send("p4", 1).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  v1::Response again;
  service_.Handle(IngestRequest("s", {}, {}, "e1", 1), &again);
  EXPECT_TRUE(again.ack().duplicate());
}

// Many producers race for a small table while the clock runs: every batch
// is applied once or refused, the table never passes its bound, and every
// point acknowledged is in the series.
TEST(ProducerTableRaceTest, ConcurrentProducersNeverOvershootTheTableOrLoseABatch) {
  std::atomic<int64_t> now{1'000'000'000'000'000'000};
  SeriesStore store;
  Service service(store, {.max_producers = 8, .producer_expiry = std::chrono::seconds(1)});
  service.SetClock([&] { return now.load(); });
  std::atomic<uint64_t> accepted{0};
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string id = "p" + std::to_string((i * 7 + t) % 40);
        v1::Response r;
        service.Handle(IngestRequest("s", {1, 2}, {3, 4}, id, static_cast<uint64_t>(i + 1)), &r);
        if (r.has_ack()) {
          accepted += r.ack().accepted();
        } else if (r.error().code() != v1::Error::RESOURCE_EXHAUSTED) {
          bad = true;
        }
        if (service.producers() > 8) bad = true;
        if (i % 50 == 0) now += 300'000'000;  // 0.3 s
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(bad);
  EXPECT_GT(accepted.load(), 0u);
  v1::Request fit;
  fit.mutable_fit()->set_series("s");
  v1::Response r;
  service.Handle(fit, &r);
  EXPECT_EQ(r.fit().n(), accepted.load());
}

}  // namespace
}  // namespace gradientd::service
