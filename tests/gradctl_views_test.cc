// gradctl's flags of issue 13 end to end (RunGradctl against a real server):
// configure's window and decay with fit's views, produce --event-time,
// replay keeping or re-stamping event times, step's modes and diagnosis,
// and bad flags refused with the series unchanged. References: exact
// rationals of the points a view covers (lesson_reference.h).
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "gradctl_test_support.h"
#include "lesson_reference.h"
#include "temp_dir.h"

namespace gradientd::cli {
namespace {

using lesson::Exact;
using lesson::Rational;

// Points at 6 s of Unix time apart from kStart, in batches of kBatch: with
// --event-time x-seconds each batch is stamped 60 s after the one before.
constexpr int64_t kStart = 1'699'999'200;  // 2023-11-14T22:00:00Z, a whole minute
constexpr int kBatch = 10;
constexpr int kPoints = 2000;  // 200 batches, 3 h 20 min of event time
constexpr int64_t kNanos = 1'000'000'000;

double XAt(int i) { return static_cast<double>(kStart + 6 * i); }
// A trend that drifts, so every view has its own line.
double YAt(int i) { return 3.0 + 0.001 * i * (1 + i / 500) + ((i * 7919) % 13 - 6) * 0.25; }

// Every digit: the CSV parses back to the same double.
std::string FormatExact(double v) {
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

std::string TimestampedCsv() {
  std::string csv = "x,y\n";
  for (int i = 0; i < kPoints; ++i) {
    csv += std::to_string(kStart + 6 * i) + "," + FormatExact(YAt(i)) + "\n";
  }
  return csv;
}

// The event time --event-time x-seconds gives batch k.
int64_t BatchEventNanos(int k) { return (kStart + 6 * (kBatch * k + kBatch - 1)) * kNanos; }

v1::Response ParseReply(const Result& r) {
  v1::Response response;
  EXPECT_EQ(r.code, 0) << r.err;
  const auto status = google::protobuf::util::JsonStringToMessage(r.out, &response);
  EXPECT_TRUE(status.ok()) << r.out;
  return response;
}

// The exact least-squares slope and intercept of the points of the batches
// whose event time is in [start, end).
lesson::ExactReference BatchesIn(int64_t start, int64_t end) {
  std::vector<double> x;
  std::vector<double> y;
  for (int k = 0; k < kPoints / kBatch; ++k) {
    if (BatchEventNanos(k) < start || BatchEventNanos(k) >= end) continue;
    for (int i = kBatch * k; i < kBatch * (k + 1); ++i) {
      x.push_back(XAt(i));
      y.push_back(YAt(i));
    }
  }
  return lesson::ExactReference(x, y);
}

class GradctlViewsTest : public ::testing::Test {
 protected:
  Result Run(const std::vector<std::string>& args, const std::string& input = "") {
    return Gradctl(args, server_.address(), input);
  }
  Result Produce(const std::string& series, const std::vector<std::string>& extra = {}) {
    std::vector<std::string> args = {
        "--series",     series,     "produce", "--batch", std::to_string(kBatch),
        "--event-time", "x-seconds"};
    args.insert(args.end(), extra.begin(), extra.end());
    return Run(args, TimestampedCsv());
  }
  v1::FitReply Fit(const std::string& series, const std::string& view) {
    return ParseReply(Run({"--series", series, "fit", "--json", "--view", view})).fit();
  }
  std::string Path(const std::string& name) const { return (temp_.path() / name).string(); }

  TestServer server_;
  const gradientd::testing::TestDirectory temp_{"gradctl_views_test"};
};

TEST_F(GradctlViewsTest, TheWindowIsTheExactFitOfTheBatchesInTheIntervalItReports) {
  ASSERT_EQ(Run({"--series", "s", "configure", "--window", "1h", "--buckets", "60"}).code, 0);
  ASSERT_EQ(Produce("s").code, 0);
  const v1::FitReply fit = Fit("s", "window");
  const v1::Coverage& c = fit.coverage();
  EXPECT_EQ(c.view(), v1::VIEW_WINDOW);
  // It ends with the newest batch's bucket (a minute) and spans at most an hour.
  const int64_t minute = 60 * kNanos;
  const int64_t newest = BatchEventNanos(kPoints / kBatch - 1);
  EXPECT_EQ(c.end_unix_nanos(), (newest / minute + 1) * minute);
  EXPECT_LE(c.end_unix_nanos() - c.start_unix_nanos(), 3600 * kNanos);
  EXPECT_GE(c.end_unix_nanos() - c.start_unix_nanos(), 3540 * kNanos);
  const lesson::ExactReference exact = BatchesIn(c.start_unix_nanos(), c.end_unix_nanos());
  ASSERT_GT(exact.n(), 0u);
  EXPECT_LT(exact.n(), static_cast<std::size_t>(kPoints));
  EXPECT_EQ(c.n(), exact.n());
  const auto line = exact.LeastSquares();
  ASSERT_TRUE(line && fit.has_least_squares());
  EXPECT_LT(lesson::RelativeError(fit.least_squares().m(), line->m), 1e-9);
  EXPECT_LT(lesson::RelativeError(fit.least_squares().b(), line->b), 1e-9);
  // The all-history view still has every point.
  EXPECT_EQ(Fit("s", "all").n(), static_cast<uint64_t>(kPoints));
}

// Weighted exactly: with a one-minute half-life and batches a minute apart,
// batch k's weight is 2^-(199 - k), a dyadic rational.
TEST_F(GradctlViewsTest, TheDecayedViewIsTheExactWeightedFit) {
  ASSERT_EQ(Run({"--series", "d", "configure", "--half-life", "1m"}).code, 0);
  ASSERT_EQ(Produce("d").code, 0);
  Rational w_sum, w2_sum, sx, sy, sxx, sxy;
  const int batches = kPoints / kBatch;
  for (int k = 0; k < batches; ++k) {
    Rational w = 1;
    for (int j = k; j < batches - 1; ++j) w /= 2;
    for (int i = kBatch * k; i < kBatch * (k + 1); ++i) {
      const Rational x = Exact(XAt(i)) - kStart;  // exact either way; smaller numbers
      const Rational y = Exact(YAt(i));
      w_sum += w;
      w2_sum += w * w;
      sx += w * x;
      sy += w * y;
      sxx += w * x * x;
      sxy += w * x * y;
    }
  }
  const Rational m = (w_sum * sxy - sx * sy) / (w_sum * sxx - sx * sx);
  const Rational b = (sy - m * sx) / w_sum - m * kStart;
  const v1::FitReply fit = Fit("d", "decayed");
  EXPECT_EQ(fit.coverage().view(), v1::VIEW_DECAYED);
  EXPECT_EQ(fit.coverage().n(), static_cast<uint64_t>(kPoints));
  // Weights relative to the newest batch, whose points weigh 1 each.
  EXPECT_LT(lesson::RelativeError(fit.coverage().weight(), w_sum), 1e-9);
  EXPECT_LT(lesson::RelativeError(fit.coverage().effective_n(), w_sum * w_sum / w2_sum), 1e-9);
  ASSERT_TRUE(fit.has_least_squares());
  EXPECT_LT(lesson::RelativeError(fit.least_squares().m(), m), 1e-9);
  EXPECT_LT(lesson::RelativeError(fit.least_squares().b(), b), 1e-9);
}

TEST_F(GradctlViewsTest, FitPrintsTheSettingsAndEveryView) {
  ASSERT_EQ(Run({"--series", "s", "configure", "--window", "1h", "--buckets", "60", "--half-life",
                 "10m", "--descent-view", "window"})
                .code,
            0);
  ASSERT_EQ(Produce("s").code, 0);
  const Result r = Run({"--series", "s", "fit"});
  ASSERT_EQ(r.code, 0) << r.err;
  for (const char* line :
       {"\nwindow:             1h in 60 buckets of 1m\n", "\nhalf-life:          10m\n",
        "\ndescent view:       window\n", "\nview all\n", "\nview window\n", "\nview decayed\n",
        "2023-11-15T01:20:00.000Z"}) {
    EXPECT_NE(r.out.find(line), std::string::npos) << line << " in\n" << r.out;
  }
  const v1::FitReply fit = Fit("s", "all");
  ASSERT_EQ(fit.views_size(), 3);
  EXPECT_EQ(fit.views(0).coverage().view(), v1::VIEW_ALL);
  EXPECT_EQ(fit.window_nanos(), 3600 * kNanos);
  EXPECT_EQ(fit.window_buckets(), 60u);
  EXPECT_EQ(fit.half_life_nanos(), 600 * kNanos);
  EXPECT_EQ(fit.descent_view(), v1::VIEW_WINDOW);
  // --no-window and --no-decay drop them.
  ASSERT_EQ(
      Run({"--series", "s", "configure", "--descent-view", "all", "--no-window", "--no-decay"})
          .code,
      0);
  EXPECT_EQ(Fit("s", "all").views_size(), 1);
  EXPECT_EQ(Run({"--series", "s", "fit", "--view", "window"}).code, 1);
}

TEST_F(GradctlViewsTest, ProduceStampsBatchesAndSaveRecordsTheEventTimes) {
  const std::string recording = Path("stamped.rec");
  ASSERT_EQ(Produce("s", {"--save", recording}).code, 0);
  const Result r = Run({"inspect", "--json", recording});
  ASSERT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\"event_time_batches\":200"), std::string::npos) << r.out;
  EXPECT_NE(
      r.out.find("\"first_event_time_unix_nanos\":\"" + std::to_string(BatchEventNanos(0)) + "\""),
      std::string::npos)
      << r.out;
  EXPECT_NE(
      r.out.find("\"last_event_time_unix_nanos\":\"" + std::to_string(BatchEventNanos(199)) + "\""),
      std::string::npos)
      << r.out;
  // A fixed stamp; and without one (now) the recording has none.
  const std::string fixed = Path("fixed.rec");
  ASSERT_EQ(
      Run({"--series", "t", "produce", "--event-time", "1700000000000000000", "--save", fixed},
          "1,2\n2,3\n")
          .code,
      0);
  EXPECT_NE(Run({"inspect", fixed})
                .out.find("1 batch of 1, 2023-11-14T22:13:20.000Z to 2023-11-14T22:13:20.000Z"),
            std::string::npos);
  const std::string now = Path("now.rec");
  ASSERT_EQ(Run({"--series", "t", "produce", "--save", now}, "1,2\n").code, 0);
  EXPECT_NE(Run({"inspect", now}).out.find("event times: none"), std::string::npos);
}

TEST_F(GradctlViewsTest, ReplayKeepsTheRecordedEventTimesAndRestampDropsThem) {
  const std::string recording = Path("stamped.rec");
  for (const char* series : {"original", "kept", "restamped"}) {
    ASSERT_EQ(Run({"--series", series, "configure", "--window", "1h"}).code, 0);
  }
  ASSERT_EQ(Produce("original", {"--save", recording}).code, 0);
  ASSERT_EQ(Run({"replay", "--max", "--series", "kept", recording}).code, 0);
  ASSERT_EQ(Run({"replay", "--max", "--restamp", "--series", "restamped", recording}).code, 0);
  const v1::FitReply original = Fit("original", "window");
  const v1::FitReply kept = Fit("kept", "window");
  EXPECT_EQ(kept.coverage().n(), original.coverage().n());
  EXPECT_EQ(kept.coverage().start_unix_nanos(), original.coverage().start_unix_nanos());
  EXPECT_EQ(kept.least_squares().m(), original.least_squares().m());
  EXPECT_EQ(kept.least_squares().b(), original.least_squares().b());
  // Stamped on receipt, every batch falls within the last hour.
  const v1::FitReply restamped = Fit("restamped", "window");
  EXPECT_LT(original.coverage().n(), static_cast<uint64_t>(kPoints));
  EXPECT_EQ(restamped.coverage().n(), static_cast<uint64_t>(kPoints));
  EXPECT_GT(restamped.coverage().start_unix_nanos(), original.coverage().end_unix_nanos());
}

TEST_F(GradctlViewsTest, BadFlagsAreRefusedAndChangeNothing) {
  ASSERT_EQ(Run({"--series", "s", "configure", "--window", "1h"}).code, 0);
  ASSERT_EQ(Produce("s").code, 0);
  const std::string before = Run({"--series", "s", "fit", "--json"}).out;
  const std::vector<std::pair<std::vector<std::string>, std::string>> usage = {
      {{"configure", "--window", "0"}, "--window must be above zero"},
      {{"configure", "--window", "-5s"}, "--window: bad duration '-5s'"},
      {{"configure", "--half-life", "0s"}, "--half-life must be above zero"},
      {{"configure", "--buckets", "0"}, "--buckets must be between 1 and 4096"},
      {{"configure", "--buckets", "4097"}, "--buckets must be between 1 and 4096"},
      {{"configure", "--window", "10ns", "--buckets", "60"}, "at least --buckets nanoseconds"},
      {{"configure", "--window", "1h", "--no-window"}, "--no-window conflicts"},
      {{"configure", "--half-life", "1h", "--no-decay"}, "--no-decay conflicts"},
      {{"configure", "--descent-mode", "fast"}, "--descent-mode must be auto, plain or"},
      {{"configure", "--descent-view", "sideways"}, "--descent-view must be all, window or"},
      {{"step", "--mode", "newton"}, "--mode must be auto, plain or standardized"},
      {{"step", "--relative-tolerance", "-1"}, "--relative-tolerance must be a number >= 0"},
      {{"fit", "--view", "recent"}, "--view must be all, window or decayed, got 'recent'"},
      {{"produce", "--event-time", "yesterday"}, "--event-time must be now, x-seconds or"},
  };
  for (const auto& [args, message] : usage) {
    std::vector<std::string> line = {"--series", "s"};
    line.insert(line.end(), args.begin(), args.end());
    const Result r = Run(line, "1,2\n");
    EXPECT_EQ(r.code, 2) << args[1];
    EXPECT_NE(r.err.find(message), std::string::npos) << r.err;
  }
  // What only the server can judge: a view the series lacks, a batch from
  // the far future.
  Result r = Run({"--series", "s", "fit", "--view", "decayed"});
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("FAILED_PRECONDITION"), std::string::npos) << r.err;
  r = Run({"--series", "s", "produce", "--event-time", "9000000000000000000"}, "1,2\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find("INVALID_ARGUMENT"), std::string::npos) << r.err;
  EXPECT_EQ(Run({"--series", "s", "fit", "--json"}).out, before);
}

TEST_F(GradctlViewsTest, StepConvergesOnUnixSecondsAndSaysWhenPlainCannot) {
  ASSERT_EQ(Produce("u").code, 0);
  ASSERT_EQ(Run({"--series", "u", "configure", "--m", "0", "--b", "0"}).code, 0);
  const v1::StepReply step = ParseReply(Run({"--series", "u", "step", "--json", "--iterations",
                                             "100", "--relative-tolerance", "1e-9"}))
                                 .step();
  EXPECT_TRUE(step.converged());
  EXPECT_EQ(step.mode(), v1::DESCENT_MODE_STANDARDIZED);
  EXPECT_LE(step.relative_excess_loss(), 1e-9);
  EXPECT_LE(step.iterations(), 100u);
  const lesson::ExactReference exact = BatchesIn(0, INT64_MAX);
  EXPECT_LT(lesson::RelativeError(step.gradient().m(), exact.LeastSquares()->m), 1e-6);
  // The readable form names the mode; plain steps on this data warn, exit 0.
  Result r = Run({"--series", "u", "step", "--iterations", "1"});
  EXPECT_NE(r.out.find("\nmode:                 standardized\n"), std::string::npos) << r.out;
  ASSERT_EQ(Run({"--series", "u", "configure", "--m", "0", "--b", "0"}).code, 0);
  r = Run({"--series", "u", "step", "--mode", "plain", "--iterations", "10"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nmode:                 plain\n"), std::string::npos) << r.out;
  EXPECT_EQ(r.err.rfind("gradctl: warning: ", 0), 0u) << r.err;
}

// The README's lesson: one plain step at 0.01 from (0, 0).
TEST_F(GradctlViewsTest, TheLessonsStepFromTheOrigin) {
  ASSERT_EQ(Run({"--series", "revenue", "produce", "--x-column", "month", "--y-column", "revenue"},
                RevenueCsv())
                .code,
            0);
  ASSERT_EQ(Run({"--series", "revenue", "configure", "--m", "0", "--b", "0"}).code, 0);
  const Result r =
      Run({"--series", "revenue", "step", "--iterations", "1", "--learning-rate", "0.01"});
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("\nm:                    17.7833333333\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nb:                    2.355\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nmode:                 plain\n"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace gradientd::cli
