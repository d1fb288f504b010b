// The metrics library: the exact exposition text of a small registry,
// exact sums of concurrent updates, histogram bucket bounds, escaping,
// registration errors and the process_* metrics.
#include "metrics/metrics.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <ctime>
#include <stdexcept>
#include <thread>
#include <vector>

#include "metrics/process.h"

namespace gradientd::metrics {
namespace {

TEST(MetricsTest, ASmallRegistryRendersExactlyInRegistrationOrder) {
  Registry registry;
  Counter& requests = registry.AddCounter("demo_requests_total", "Requests handled.");
  CounterFamily& codes = registry.AddCounterFamily(
      "demo_replies_total", "Replies by operation and code.",
      LabelProduct({{"operation", {"ingest", "fit"}}, {"code", {"ok", "NOT_FOUND"}}}));
  Gauge& temperature = registry.AddGauge("demo_temperature_celsius", "A gauge.");
  Histogram& latency = registry.AddHistogram("demo_latency_seconds", "A histogram.", {0.5, 1, 2});
  registry.AddGaugeCallback("demo_read_at_scrape", "Read by a callback.", [] { return 42.0; });

  requests.Add();
  requests.Add(2);
  codes.at(1 * 2 + 1).Add(5);  // fit, NOT_FOUND
  temperature.Set(-1.5);
  latency.Observe(0.25);
  latency.Observe(1);
  latency.Observe(7);

  EXPECT_EQ(registry.Render(),
            "# HELP demo_requests_total Requests handled.\n"
            "# TYPE demo_requests_total counter\n"
            "demo_requests_total 3\n"
            "# HELP demo_replies_total Replies by operation and code.\n"
            "# TYPE demo_replies_total counter\n"
            "demo_replies_total{operation=\"ingest\",code=\"ok\"} 0\n"
            "demo_replies_total{operation=\"ingest\",code=\"NOT_FOUND\"} 0\n"
            "demo_replies_total{operation=\"fit\",code=\"ok\"} 0\n"
            "demo_replies_total{operation=\"fit\",code=\"NOT_FOUND\"} 5\n"
            "# HELP demo_temperature_celsius A gauge.\n"
            "# TYPE demo_temperature_celsius gauge\n"
            "demo_temperature_celsius -1.5\n"
            "# HELP demo_latency_seconds A histogram.\n"
            "# TYPE demo_latency_seconds histogram\n"
            "demo_latency_seconds_bucket{le=\"0.5\"} 1\n"
            "demo_latency_seconds_bucket{le=\"1\"} 2\n"
            "demo_latency_seconds_bucket{le=\"2\"} 2\n"
            "demo_latency_seconds_bucket{le=\"+Inf\"} 3\n"
            "demo_latency_seconds_sum 8.25\n"
            "demo_latency_seconds_count 3\n"
            "# HELP demo_read_at_scrape Read by a callback.\n"
            "# TYPE demo_read_at_scrape gauge\n"
            "demo_read_at_scrape 42\n");
}

TEST(MetricsTest, ConcurrentIncrementsFromManyThreadsSumExactly) {
  // More threads than shards, so some share one.
  constexpr int kThreads = 24;
  Registry registry;
  Counter& counter = registry.AddCounter("c_total", "c");
  Histogram& histogram = registry.AddHistogram("h_seconds", "h", {1, 10});
  std::vector<uint64_t> ledger(kThreads, 0);  // each thread's own count
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      const int n = 5000 + 137 * t;
      for (int i = 0; i < n; ++i) {
        counter.Add(static_cast<uint64_t>(t + 1));
        histogram.Observe(static_cast<double>(i % 20));  // integers: exact sums
        ledger[static_cast<std::size_t>(t)] += static_cast<uint64_t>(t + 1);
      }
    });
  }
  for (auto& thread : threads) thread.join();
  uint64_t expected = 0, observations = 0;
  double expected_sum = 0;
  std::vector<uint64_t> expected_buckets(3, 0);
  for (int t = 0; t < kThreads; ++t) {
    expected += ledger[static_cast<std::size_t>(t)];
    for (int i = 0; i < 5000 + 137 * t; ++i) {
      const int v = i % 20;
      expected_sum += v;
      ++expected_buckets[v <= 1 ? 0 : v <= 10 ? 1 : 2];
      ++observations;
    }
  }
  EXPECT_EQ(counter.Value(), expected);
  const Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.buckets, expected_buckets);
  EXPECT_EQ(snapshot.count, observations);
  EXPECT_EQ(snapshot.sum, expected_sum);
}

TEST(MetricsTest, AShardedGaugeSumsUpsAndDownsFromManyThreadsExactly) {
  ShardedGauge gauge;
  std::vector<std::thread> threads;
  // Thread t adds t + 1 a thousand times and takes 1 away 1500 times: some
  // shards go below zero.
  for (int t = 0; t < 20; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 1000; ++i) gauge.Add(t + 1);
      for (int i = 0; i < 1500; ++i) gauge.Add(-1);
    });
  }
  for (auto& thread : threads) thread.join();
  int64_t expected = 0;
  for (int t = 0; t < 20; ++t) expected += 1000 * (t + 1) - 1500;
  EXPECT_EQ(gauge.Value(), expected);
  ShardedGauge negative;
  negative.Add(-7);
  EXPECT_EQ(negative.Value(), -7);
}

TEST(MetricsTest, AValueEqualToABoundIsInThatBucket) {
  Histogram histogram({0.001, 0.01, 0.1});
  for (const double v : {0.001, 0.0010000001, 0.01, 0.1, 0.1000001, -5.0, 0.0}) {
    histogram.Observe(v);
  }
  histogram.Observe(std::nan(""));  // ignored
  const Histogram::Snapshot snapshot = histogram.Read();
  EXPECT_EQ(snapshot.buckets, (std::vector<uint64_t>{3, 2, 1, 1}));
  EXPECT_EQ(snapshot.count, 7u);
}

TEST(MetricsTest, ExponentialBoundsGrowByTheFactor) {
  EXPECT_EQ(ExponentialBounds(0.001, 10, 4), (std::vector<double>{0.001, 0.01, 0.1, 1.0}));
}

TEST(MetricsTest, LabelValuesAndHelpAreEscapedPerTheFormat) {
  EXPECT_EQ(EscapeLabelValue("a\\b\"c\nd"), "a\\\\b\\\"c\\nd");
  EXPECT_EQ(EscapeHelp("a\\b\"c\nd"), "a\\\\b\"c\\nd");
  Registry registry;
  registry.AddGauge("g", "line one\nline two", {{"path", "C:\\dir \"x\""}}).Set(1);
  EXPECT_EQ(registry.Render(),
            "# HELP g line one\\nline two\n"
            "# TYPE g gauge\n"
            "g{path=\"C:\\\\dir \\\"x\\\"\"} 1\n");
}

TEST(MetricsTest, ValuesAreFormattedAsTheFormatSpells) {
  EXPECT_EQ(FormatValue(1.0 / 0.0), "+Inf");
  EXPECT_EQ(FormatValue(-1.0 / 0.0), "-Inf");
  EXPECT_EQ(FormatValue(std::nan("")), "NaN");
  EXPECT_EQ(FormatValue(0.1), "0.1");
  EXPECT_EQ(FormatValue(1e21), "1e+21");
  EXPECT_EQ(FormatValue(3.0), "3");
}

TEST(MetricsTest, BadNamesAndDuplicatesAreRefusedAtRegistration) {
  Registry registry;
  registry.AddCounter("ok_total", "fine");
  EXPECT_THROW(registry.AddCounter("ok_total", "again"), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("1starts_with_a_digit", "x"), std::invalid_argument);
  EXPECT_THROW(registry.AddCounter("has-dash", "x"), std::invalid_argument);
  EXPECT_THROW(registry.AddGauge("g1", "x", {{"__reserved", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.AddGauge("g2", "x", {{"a:b", "v"}}), std::invalid_argument);
  EXPECT_THROW(registry.AddHistogramFamily("h", "x", {{{"le", "1"}}}, {1}), std::invalid_argument);
  EXPECT_THROW(registry.AddHistogram("h2", "x", {2, 1}), std::invalid_argument);
  EXPECT_THROW(registry.AddCallback("c", "x", "summary", {Labels{}}, [](auto*) {}),
               std::invalid_argument);
  // Only the one good family was registered.
  EXPECT_EQ(registry.Render(), "# HELP ok_total fine\n# TYPE ok_total counter\nok_total 0\n");
}

TEST(MetricsTest, ProcessMetricsAreSane) {
  const auto before = ReadProcessStats();
  ASSERT_TRUE(before.has_value());
  // Burn some CPU so that the counter has something to count.
  volatile double x = 0;
  const std::clock_t start = std::clock();
  for (int i = 0; i < 200'000'000 && std::clock() - start < CLOCKS_PER_SEC / 5; ++i) x = x + 1;
  const int extra_fd = dup(0);
  const auto stats = ReadProcessStats();
  ASSERT_TRUE(stats.has_value());
  EXPECT_GE(stats->cpu_seconds, before->cpu_seconds);
  EXPECT_GT(stats->cpu_seconds, 0.0);
  EXPECT_GT(stats->resident_bytes, 1u << 20);
  EXPECT_GE(stats->virtual_bytes, stats->resident_bytes);
  if (extra_fd >= 0) {
    EXPECT_EQ(stats->open_fds, before->open_fds + 1);
  }
  EXPECT_GE(stats->max_fds, stats->open_fds);
  const double now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(stats->start_time_seconds, now + 2);
  EXPECT_GT(stats->start_time_seconds, now - 24 * 3600.0);
  if (extra_fd >= 0) close(extra_fd);

  Registry registry;
  AddProcessMetrics(registry);
  const std::string text = registry.Render();
  for (const char* name : {"process_cpu_seconds_total", "process_resident_memory_bytes",
                           "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
                           "process_start_time_seconds"}) {
    EXPECT_NE(text.find(std::string("\n") + name + " "), std::string::npos) << name;
  }
}

}  // namespace
}  // namespace gradientd::metrics
