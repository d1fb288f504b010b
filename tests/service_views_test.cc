// Event time, windows, decay and descent modes through the Service,
// in-process: the future-skew policy, late batches, views in every query,
// configure refusals, and a replay that never reads the clock.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/multiprecision/cpp_int.hpp>
#include <chrono>
#include <cmath>
#include <stdexcept>
#include <string>
#include <vector>

#include "service_test_support.h"
#include "views_test_support.h"

namespace gradientd::service {
namespace {

using namespace gradientd::testing;  // the view tests' requests and constants
using Rational = boost::multiprecision::cpp_rational;

class ServiceViewsTest : public ::testing::Test {
 protected:
  ServiceViewsTest() {
    service_.SetClock([this] { return now_.load(); });
    service_.SetChangeLog(&log_);
  }

  v1::Response Call(const v1::Request& request) {
    v1::Response response;
    service_.Handle(request, &response);
    return response;
  }

  const v1::ViewFit* ViewOf(const v1::FitReply& fit, v1::View view) {
    for (const v1::ViewFit& v : fit.views()) {
      if (v.coverage().view() == view) return &v;
    }
    return nullptr;
  }

  std::atomic<int64_t> now_{kEpoch2023};
  FakeChangeLog log_;
  SeriesStore store_;
  Service service_{store_, {.max_future_skew = std::chrono::minutes(5)}};
};

TEST_F(ServiceViewsTest, AFutureSkewedBatchIsRefusedNamingBothTimesAndChangesNothing) {
  ASSERT_TRUE(
      Call(ConfigureViews("s", {.window_ns = kHour, .half_life_ns = 10 * kMinute})).has_fit());
  ASSERT_TRUE(Call(TimedIngest("s", now_.load(), 1, 20, "p", 1)).has_ack());
  const std::string before = EveryViewBytes(service_, {"s", "new"});
  const std::size_t records = log_.records.size();
  const std::size_t producers = service_.producers();
  const int64_t too_late = now_.load() + 5 * kMinute + 1;
  struct Case {
    const char* series;
    const char* producer;
    uint64_t sequence;
  };
  for (const Case& c :
       {Case{"s", "p", 2}, Case{"s", "", 0}, Case{"new", "q", 1}, Case{"new", "", 0}}) {
    SCOPED_TRACE(std::string(c.series) + "/" + c.producer);
    const v1::Response refused =
        Call(TimedIngest(c.series, too_late, 2, 20, c.producer, c.sequence));
    ASSERT_TRUE(refused.has_error()) << refused.DebugString();
    EXPECT_EQ(refused.error().code(), v1::Error::INVALID_ARGUMENT);
    const std::string& message = refused.error().message();
    EXPECT_NE(message.find("(" + std::to_string(too_late) + " ns)"), std::string::npos) << message;
    EXPECT_NE(message.find("(" + std::to_string(now_.load()) + " ns)"), std::string::npos)
        << message;
    EXPECT_NE(message.find("--max-future-skew"), std::string::npos) << message;
    EXPECT_EQ(EveryViewBytes(service_, {"s", "new"}), before);
    EXPECT_EQ(log_.records.size(), records);
    EXPECT_EQ(service_.producers(), producers);
  }
  // At the limit it is accepted, and the refused sequence is new, not a
  // duplicate.
  const v1::Response at_limit = Call(TimedIngest("s", too_late - 1, 2, 20, "p", 2));
  ASSERT_TRUE(at_limit.has_ack()) << at_limit.DebugString();
  EXPECT_FALSE(at_limit.ack().duplicate());
  EXPECT_EQ(at_limit.ack().event_time_unix_nanos(), too_late - 1);
  // A clock far in the past: the difference is not computed in int64.
  now_ = INT64_MIN + 1;
  EXPECT_EQ(Call(TimedIngest("s", INT64_MAX, 3)).error().code(), v1::Error::INVALID_ARGUMENT);
}

TEST_F(ServiceViewsTest, AnAbsentEventTimeIsTheReceiveTimeAndADuplicateIsNotStampedAgain) {
  ASSERT_TRUE(Call(ConfigureViews("s", {.half_life_ns = 10 * kMinute})).has_fit());
  now_ = kEpoch2023 + 7;
  const v1::Response ack = Call(TimedIngest("s", kNoEventTime, 1, 20, "p", 1));
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().event_time_unix_nanos(), kEpoch2023 + 7);
  ASSERT_EQ(log_.records.back().event_time_unix_nanos(), kEpoch2023 + 7);
  EXPECT_TRUE(log_.records.back().has_decay_factor());  // the series decays
  const std::size_t records = log_.records.size();
  const std::string before = EveryViewBytes(service_, {"s"});

  now_ = kEpoch2023 + kHour;
  const v1::Response duplicate = Call(TimedIngest("s", kNoEventTime, 1, 20, "p", 1));
  ASSERT_TRUE(duplicate.ack().duplicate()) << duplicate.DebugString();
  EXPECT_EQ(duplicate.ack().event_time_unix_nanos(), 0);
  EXPECT_EQ(log_.records.size(), records);
  EXPECT_EQ(EveryViewBytes(service_, {"s"}), before);

  const v1::FitReply fit = Call(FitIn("s", v1::VIEW_DECAYED)).fit();
  EXPECT_EQ(fit.coverage().view(), v1::VIEW_DECAYED);
  EXPECT_EQ(fit.coverage().start_unix_nanos(), kEpoch2023 + 7);
  EXPECT_EQ(fit.coverage().end_unix_nanos(), kEpoch2023 + 8);
  // A series without decay journals no factor.
  ASSERT_TRUE(Call(TimedIngest("plain", kNoEventTime, 5)).has_ack());
  EXPECT_FALSE(log_.records.back().has_decay_factor());
  EXPECT_EQ(log_.records.back().event_time_unix_nanos(), kEpoch2023 + kHour);
}

// Exact weighted sums of batches, each point weighing its batch's weight.
struct WeightedSums {
  Rational w, x, y, xx, xy;
  void Add(const v1::PointBatch& batch, const Rational& weight) {
    for (int i = 0; i < batch.x_size(); ++i) {
      const Rational xi(batch.x(i)), yi(batch.y(i));
      w += weight;
      x += weight * xi;
      y += weight * yi;
      xx += weight * xi * xi;
      xy += weight * xi * yi;
    }
  }
  double MeanX() const { return static_cast<double>(x / w); }
  double Slope() const { return static_cast<double>((w * xy - x * y) / (w * xx - x * x)); }
};

TEST_F(ServiceViewsTest, ALateBatchCountsInAllHistoryAndDecayButNotInTheWindow) {
  ASSERT_TRUE(Call(ConfigureViews("s", {.window_ns = kHour,
                                        .buckets = 60,
                                        .half_life_ns = 10 * kMinute,
                                        .steps_per_batch = 0}))
                  .has_fit());
  const int64_t t = kEpoch2023 + 3 * kHour;
  now_ = t;
  const v1::Request on_time = TimedIngest("s", t, 1, 20);
  const v1::Request late = TimedIngest("s", t - 2 * kHour, 2, 30);  // 12 half-lives old
  ASSERT_TRUE(Call(on_time).has_ack());
  const v1::Response late_ack = Call(late);
  ASSERT_TRUE(late_ack.has_ack()) << late_ack.DebugString();
  EXPECT_EQ(late_ack.ack().accepted(), 30u);
  EXPECT_EQ(late_ack.ack().total(), 50u);
  EXPECT_EQ(late_ack.ack().event_time_unix_nanos(), t - 2 * kHour);

  const v1::FitReply all = Call(FitIn("s", v1::VIEW_ALL)).fit();
  EXPECT_EQ(all.n(), 50u);
  EXPECT_EQ(all.coverage().start_unix_nanos(), t - 2 * kHour);
  EXPECT_EQ(all.coverage().end_unix_nanos(), t + 1);
  EXPECT_EQ(all.views_size(), 3);

  WeightedSums window_ref, decayed_ref;
  window_ref.Add(on_time.ingest(), 1);
  const v1::FitReply window = Call(FitIn("s", v1::VIEW_WINDOW)).fit();
  EXPECT_EQ(window.n(), 20u);
  EXPECT_EQ(window.coverage().view(), v1::VIEW_WINDOW);
  EXPECT_LE(window.coverage().start_unix_nanos(), t);
  EXPECT_GT(window.coverage().end_unix_nanos(), t);
  EXPECT_LE(window.coverage().end_unix_nanos() - window.coverage().start_unix_nanos(), kHour);
  EXPECT_NEAR(window.mean_x(), window_ref.MeanX(), 1e-15 * window_ref.MeanX());
  EXPECT_NEAR(window.least_squares().m(), window_ref.Slope(), 1e-9 * std::abs(window_ref.Slope()));

  const Rational late_weight = Rational(1) / 4096;  // 2^-12
  decayed_ref.Add(on_time.ingest(), 1);
  decayed_ref.Add(late.ingest(), late_weight);
  const v1::FitReply decayed = Call(FitIn("s", v1::VIEW_DECAYED)).fit();
  EXPECT_EQ(decayed.n(), 50u);
  EXPECT_DOUBLE_EQ(decayed.coverage().weight(), 20 + 30.0 / 4096);
  EXPECT_DOUBLE_EQ(decayed.coverage().effective_n(),
                   (20 + 30.0 / 4096) * (20 + 30.0 / 4096) / (20 + 30.0 / 4096 / 4096));
  EXPECT_NEAR(decayed.mean_x(), decayed_ref.MeanX(), 1e-15 * decayed_ref.MeanX());
  EXPECT_NEAR(decayed.least_squares().m(), decayed_ref.Slope(),
              1e-9 * std::abs(decayed_ref.Slope()));
  // The gradient's N is the view's count; the gradient is over the weights.
  const v1::GradientReply g = Call(GradientIn("s", v1::VIEW_DECAYED)).gradient();
  EXPECT_EQ(g.n(), 50u);
  EXPECT_EQ(g.coverage().view(), v1::VIEW_DECAYED);
  EXPECT_DOUBLE_EQ(g.intercept_gradient(), -2 * static_cast<double>(decayed_ref.y / decayed_ref.w));
}

TEST_F(ServiceViewsTest, BadViewSettingsAreRefusedAndCreateNothing) {
  ASSERT_TRUE(Call(ConfigureViews("s", {.window_ns = kHour})).has_fit());
  ASSERT_TRUE(Call(TimedIngest("s", now_.load(), 1)).has_ack());
  std::vector<std::pair<const char*, v1::ConfigureSeries>> bad;
  const auto add = [&](const char* what, auto&& set) {
    v1::ConfigureSeries c;
    set(c);
    bad.emplace_back(what, c);
  };
  add("zero window", [](auto& c) { c.set_window_nanos(0); });
  add("negative window", [](auto& c) { c.set_window_nanos(-kHour); });
  add("zero buckets", [](auto& c) { c.set_window_nanos(kHour), c.set_window_buckets(0); });
  add("4097 buckets", [](auto& c) { c.set_window_nanos(kHour), c.set_window_buckets(4097); });
  add("buckets narrower than 1 ns",
      [](auto& c) { c.set_window_nanos(10), c.set_window_buckets(11); });
  add("zero half-life", [](auto& c) { c.set_half_life_nanos(0); });
  add("negative half-life", [](auto& c) { c.set_half_life_nanos(-1); });
  add("unknown view", [](auto& c) { c.set_descent_view(static_cast<v1::View>(9)); });
  add("unknown mode", [](auto& c) { c.set_descent_mode(static_cast<v1::DescentMode>(7)); });
  add("descent on a decayed view it lacks", [](auto& c) { c.set_descent_view(v1::VIEW_DECAYED); });
  add("a valid window with a bad rate",
      [](auto& c) { c.set_window_nanos(kMinute), c.set_learning_rate(-1); });
  for (auto& [what, configure] : bad) {
    for (const char* series : {"s", "never"}) {
      SCOPED_TRACE(std::string(what) + " on " + series);
      configure.set_series(series);
      v1::Request r;
      *r.mutable_configure() = configure;
      const std::string before = EveryViewBytes(service_, {"s", "never"});
      const std::size_t records = log_.records.size();
      const v1::Response response = Call(r);
      ASSERT_TRUE(response.has_error()) << response.DebugString();
      EXPECT_EQ(response.error().code(), v1::Error::INVALID_ARGUMENT);
      EXPECT_EQ(EveryViewBytes(service_, {"s", "never"}), before);
      EXPECT_EQ(log_.records.size(), records);
      EXPECT_EQ(store_.size(), 1u);
    }
  }
}

TEST_F(ServiceViewsTest, AViewTheSeriesLacksIsFailedPreconditionSayingHowToConfigureIt) {
  ASSERT_TRUE(Call(TimedIngest("plain", now_.load(), 1)).has_ack());
  ASSERT_TRUE(Call(ConfigureViews("windowed", {.window_ns = kHour})).has_fit());
  ASSERT_TRUE(Call(TimedIngest("windowed", now_.load(), 2)).has_ack());
  for (const auto& [view, words] : {std::pair{v1::VIEW_WINDOW, "window_nanos"},
                                    std::pair{v1::VIEW_DECAYED, "half_life_nanos"}}) {
    v1::Request step;
    step.mutable_step()->set_series("plain");
    step.mutable_step()->set_iterations(1);
    step.mutable_step()->set_view(view);
    for (const v1::Request& r : {FitIn("plain", view), GradientIn("plain", view), step}) {
      const std::string before = EveryViewBytes(service_, {"plain"});
      const v1::Response response = Call(r);
      EXPECT_EQ(response.error().code(), v1::Error::FAILED_PRECONDITION) << response.DebugString();
      EXPECT_NE(response.error().message().find(words), std::string::npos)
          << response.error().message();
      EXPECT_EQ(EveryViewBytes(service_, {"plain"}), before);
    }
  }
  // A listing in a view: a series without it is listed with VIEW_ALL.
  const v1::SeriesList list = Call(gradientd::testing::ListIn(v1::VIEW_WINDOW)).series_list();
  ASSERT_EQ(list.series_size(), 2);
  EXPECT_EQ(list.series(0).coverage().view(), v1::VIEW_ALL);
  EXPECT_EQ(list.series(1).coverage().view(), v1::VIEW_WINDOW);
  EXPECT_EQ(list.series(1).views_size(), 2);
  EXPECT_EQ(list.series(1).window_nanos(), kHour);
  EXPECT_EQ(list.series(1).window_buckets(), core::kDefaultWindowBuckets);
  // An unknown view in a query is INVALID_ARGUMENT.
  EXPECT_EQ(Call(FitIn("plain", static_cast<v1::View>(5))).error().code(),
            v1::Error::INVALID_ARGUMENT);
}

TEST_F(ServiceViewsTest, StepModeAndViewOverridesAndTheNewReplyFields) {
  ASSERT_TRUE(
      Call(ConfigureViews("revenue", {.learning_rate = 0.01, .steps_per_batch = 0})).has_fit());
  ASSERT_TRUE(Call(IngestRequest("revenue", kMonths, kRevenue)).has_ack());
  v1::Request plain;
  plain.mutable_step()->set_series("revenue");
  plain.mutable_step()->set_iterations(1);
  const v1::StepReply lesson = Call(plain).step();
  EXPECT_EQ(lesson.mode(), v1::DESCENT_MODE_PLAIN);  // a fixed rate: the lesson's step
  EXPECT_NEAR(lesson.gradient().b(), 2.355, 1e-13);
  EXPECT_NEAR(lesson.gradient().m(), 17.78333333333333, 1e-12);
  EXPECT_GT(lesson.condition_number(), 1);

  v1::Request standardized;
  standardized.mutable_step()->set_series("revenue");
  standardized.mutable_step()->set_iterations(100);
  standardized.mutable_step()->set_learning_rate(0);
  standardized.mutable_step()->set_mode(v1::DESCENT_MODE_STANDARDIZED);
  standardized.mutable_step()->set_relative_tolerance(1e-12);
  const v1::StepReply converged = Call(standardized).step();
  EXPECT_EQ(converged.mode(), v1::DESCENT_MODE_STANDARDIZED);
  EXPECT_TRUE(converged.converged());
  EXPECT_LE(converged.relative_excess_loss(), 1e-12);
  const v1::FitReply fit = Call(FitIn("revenue", v1::VIEW_ALL)).fit();
  EXPECT_NEAR(fit.descent().m(), fit.least_squares().m(), 1e-9);
  EXPECT_EQ(fit.descent_mode(), v1::DESCENT_MODE_UNSPECIFIED);
  EXPECT_EQ(fit.effective_descent_mode(), v1::DESCENT_MODE_PLAIN);
  EXPECT_EQ(fit.descent_view(), v1::VIEW_ALL);
  EXPECT_EQ(fit.window_nanos(), 0);
  EXPECT_EQ(fit.half_life_nanos(), 0);

  v1::Request unknown = standardized;
  unknown.mutable_step()->set_mode(static_cast<v1::DescentMode>(9));
  const std::string before = EveryViewBytes(service_, {"revenue"});
  EXPECT_EQ(Call(unknown).error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_EQ(EveryViewBytes(service_, {"revenue"}), before);
}

TEST_F(ServiceViewsTest, AReplayedJournalAndSnapshotNeverReadTheClockAndReproduceEveryView) {
  const std::vector<std::string> names = {"s", "t"};
  ASSERT_TRUE(Call(ConfigureViews("s", {.window_ns = kHour,
                                        .buckets = 12,
                                        .half_life_ns = 10 * kMinute,
                                        .descent_view = v1::VIEW_DECAYED}))
                  .has_fit());
  for (int i = 0; i < 30; ++i) {
    now_ = kEpoch2023 + i * 7 * kMinute;
    // Every third batch 50 minutes late; every fifth without an event time.
    const int64_t t = now_.load() - (i % 3 == 2 ? 50 * kMinute : 0);
    const int64_t event = i % 5 == 4 ? kNoEventTime : t;
    ASSERT_TRUE(
        Call(TimedIngest("s", event, i, 10 + i, "p", static_cast<uint64_t>(i) + 1)).has_ack());
    ASSERT_TRUE(Call(TimedIngest("t", event, i)).has_ack());
    if (i == 25) {  // the same window again: Configure restarts it; so must replay
      ASSERT_TRUE(Call(ConfigureViews("s", {.window_ns = kHour})).has_fit());
    }
    if (i == 27) {  // a longer window: restarted too
      ASSERT_TRUE(Call(ConfigureViews("s", {.window_ns = 2 * kHour})).has_fit());
    }
    if (i == 20) {
      ASSERT_TRUE(
          Call(ConfigureViews("t", {.half_life_ns = kHour, .steps_per_batch = 3})).has_fit());
    }
  }
  v1::Request step;
  step.mutable_step()->set_series("s");
  step.mutable_step()->set_iterations(5);
  ASSERT_TRUE(Call(step).has_step());
  const std::string live = EveryViewBytes(service_, names);

  const auto throwing_clock = []() -> int64_t {
    throw std::logic_error("recovery read the clock");
  };
  SeriesStore replayed_store;
  Service replayed(replayed_store);
  replayed.SetClock(throwing_clock);
  for (const v1::JournalRecord& record : log_.records) replayed.Apply(record);
  EXPECT_EQ(EveryViewBytes(replayed, names), live);

  v1::Snapshot snapshot;
  service_.Checkpoint([&] { return uint64_t{log_.records.size()}; }, &snapshot);
  SeriesStore restored_store;
  Service restored(restored_store);
  restored.SetClock(throwing_clock);
  restored.Restore(snapshot);
  EXPECT_EQ(EveryViewBytes(restored, names), live);
}

}  // namespace
}  // namespace gradientd::service
