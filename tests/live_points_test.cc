// LivePoints: the reservoir keeps a uniform sample within its bound, the
// store tracks at most max_series series and evicts only unwatched ones,
// and the history is bounded and spaced.
#include "http/live_points.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <random>
#include <set>
#include <thread>
#include <vector>

namespace gradientd::http {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

v1::PointBatch Batch(uint64_t first, uint64_t count) {
  v1::PointBatch batch;
  for (uint64_t i = first; i < first + count; ++i) {
    batch.add_x(static_cast<double>(i));
    batch.add_y(2.0 * static_cast<double>(i));
  }
  return batch;
}

TEST(ReservoirTest, KeepsEveryPointWhileFewerThanItsCapacity) {
  std::mt19937_64 random(1);
  Reservoir reservoir(20);
  reservoir.Add(Batch(0, 5), random);
  reservoir.Add(Batch(5, 7), random);
  ASSERT_EQ(reservoir.points().size(), 12u);
  EXPECT_EQ(reservoir.seen(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(reservoir.points()[i], std::make_pair(double(i), 2.0 * double(i)));
  }
}

// 20 reservoirs of 500 over a stream of 200,000 points in batches of
// random sizes (1 to 5,000): each holds 500 distinct points of the stream,
// and the 10,000 kept fall evenly into tenths of the stream (chi-square
// with 9 degrees of freedom below 27.9, p = 0.001; fixed seeds). A sampler
// that stopped replacing, or favoured early or late points, fails.
TEST(ReservoirTest, SampleIsBoundedDistinctAndUniformOverTheStream) {
  constexpr uint64_t kStream = 200'000;
  constexpr std::size_t kCapacity = 500;
  std::array<double, 10> tenths{};
  for (uint64_t seed = 1; seed <= 20; ++seed) {
    std::mt19937_64 random(seed);
    std::mt19937_64 sizes(seed + 1000);
    Reservoir reservoir(kCapacity);
    for (uint64_t first = 0; first < kStream;) {
      const uint64_t count = std::min<uint64_t>(
          kStream - first, std::uniform_int_distribution<uint64_t>(1, 5000)(sizes));
      reservoir.Add(Batch(first, count), random);
      first += count;
    }
    ASSERT_EQ(reservoir.seen(), kStream);
    ASSERT_EQ(reservoir.points().size(), kCapacity);
    std::set<double> distinct;
    for (const auto& [x, y] : reservoir.points()) {
      ASSERT_GE(x, 0);
      ASSERT_LT(x, double(kStream));
      ASSERT_EQ(y, 2 * x);  // kept as a pair
      distinct.insert(x);
      tenths[static_cast<std::size_t>(x / (kStream / 10))] += 1;
    }
    EXPECT_EQ(distinct.size(), kCapacity);
  }
  const double expected = 20.0 * kCapacity / 10;
  double chi_square = 0;
  for (double count : tenths) chi_square += (count - expected) * (count - expected) / expected;
  EXPECT_LT(chi_square, 27.9);
}

TEST(ReservoirTest, ZeroCapacityKeepsNothing) {
  std::mt19937_64 random(1);
  Reservoir reservoir(0);
  reservoir.Add(Batch(0, 10), random);
  EXPECT_TRUE(reservoir.points().empty());
}

LivePointsLimits SmallLimits() {
  LivePointsLimits limits;
  limits.max_series = 2;
  limits.sample_points = 4;
  limits.history_entries = 3;
  return limits;
}

TEST(LivePointsTest, ForgetEmptiesTheSampleAndHistoryAndKeepsTheSeriesTracked) {
  LivePoints points(SmallLimits(), 1);
  points.Observe("a", Batch(0, 10));
  points.RecordHistory("a", {1'000'000'000, 2.0, 3.0});
  points.Forget("a");
  points.Forget("untracked");  // nothing to do
  ASSERT_TRUE(points.Sample("a"));
  EXPECT_EQ(points.Sample("a")->seen, 0u);
  EXPECT_TRUE(points.Sample("a")->points.empty());
  EXPECT_TRUE(points.History("a").empty());
  EXPECT_EQ(points.tracked(), 1u);
  points.Observe("a", Batch(100, 3));
  ASSERT_EQ(points.Sample("a")->points.size(), 3u);
  EXPECT_EQ(points.Sample("a")->seen, 3u);
  EXPECT_FALSE(points.Sample("untracked"));
}

TEST(LivePointsTest, ObserveTracksNewSeriesOnlyWhileASlotIsFree) {
  LivePoints points(SmallLimits(), 1);
  points.Observe("a", Batch(0, 3));
  points.Observe("b", Batch(0, 10));
  points.Observe("c", Batch(0, 3));
  EXPECT_EQ(points.tracked(), 2u);
  ASSERT_TRUE(points.Sample("a"));
  EXPECT_EQ(points.Sample("a")->points.size(), 3u);
  EXPECT_EQ(points.Sample("b")->points.size(), 4u);  // the bound
  EXPECT_EQ(points.Sample("b")->seen, 10u);
  EXPECT_FALSE(points.Sample("c"));
}

TEST(LivePointsTest, WatchEvictsTheLeastRecentlyWatchedOnlyOnceNobodyWatchesIt) {
  LivePoints points(SmallLimits(), 1);
  const int64_t t0 = 1000 * kSecond;
  ASSERT_TRUE(points.Watch("a", t0));
  ASSERT_TRUE(points.Watch("b", t0 + 10 * kSecond));
  // Both watched within the last 60 s: no room, and nothing changes.
  EXPECT_FALSE(points.Watch("c", t0 + 30 * kSecond));
  EXPECT_TRUE(points.Sample("a"));
  EXPECT_TRUE(points.Sample("b"));
  EXPECT_FALSE(points.Sample("c"));
  // a was last watched 61 s ago, b 51 s ago: a goes.
  ASSERT_TRUE(points.Watch("c", t0 + 61 * kSecond));
  EXPECT_FALSE(points.Sample("a"));
  EXPECT_TRUE(points.Sample("b"));
  EXPECT_TRUE(points.Sample("c"));
  EXPECT_EQ(points.tracked(), 2u);
}

TEST(LivePointsTest, AWatchEvictsASeriesTrackedByTrafficAlone) {
  LivePoints points(SmallLimits(), 1);
  points.Observe("a", Batch(0, 3));
  points.Observe("b", Batch(0, 3));
  ASSERT_TRUE(points.Watch("b", 5 * kSecond));
  ASSERT_TRUE(points.Watch("c", 6 * kSecond));
  EXPECT_FALSE(points.Sample("a"));
  EXPECT_EQ(points.Sample("b")->points.size(), 3u);
  // c is sampled from its next batch on.
  EXPECT_EQ(points.Sample("c")->seen, 0u);
  points.Observe("c", Batch(7, 2));
  EXPECT_EQ(points.Sample("c")->points.size(), 2u);
}

TEST(LivePointsTest, HistoryIsSpacedByTheIntervalAndBounded) {
  LivePoints points(SmallLimits(), 1);
  points.RecordHistory("a", {0, 1, 1});  // untracked: ignored
  ASSERT_TRUE(points.Watch("a", 0));
  points.RecordHistory("a", {10 * kSecond, 1, 10});
  points.RecordHistory("a", {10 * kSecond + kSecond / 2, 2, 20});  // too soon
  points.RecordHistory("a", {11 * kSecond, 3, 30});
  points.RecordHistory("a", {12 * kSecond, 4, 40});
  points.RecordHistory("a", {13 * kSecond, 5, 50});  // the first goes
  const std::vector<HistoryEntry> history = points.History("a");
  ASSERT_EQ(history.size(), 3u);
  EXPECT_EQ(history[0].unix_nanos, 11 * kSecond);
  EXPECT_EQ(history[0].loss, 3);
  EXPECT_EQ(history[2].gradient_norm, 50);
  EXPECT_TRUE(points.History("b").empty());
}

// Observers on two threads and pages polling on a third (run under TSan in
// CI): the bounds hold.
TEST(LivePointsTest, ConcurrentObserversAndWatchersKeepTheBounds) {
  LivePointsLimits limits = SmallLimits();
  limits.max_series = 3;
  LivePoints points(limits, 1);
  auto observe = [&](const std::string& prefix) {
    for (int i = 0; i < 2000; ++i) points.Observe(prefix + std::to_string(i % 7), Batch(0, 5));
  };
  std::thread one(observe, "x");
  std::thread two(observe, "y");
  for (int i = 0; i < 2000; ++i) {
    points.Watch("w" + std::to_string(i % 5), int64_t{i} * 20 * kSecond);
    ASSERT_LE(points.tracked(), 3u);
  }
  one.join();
  two.join();
  EXPECT_LE(points.tracked(), 3u);
}

// Ingest threads observing series of their own, with no page polling:
// exactly max_series become tracked, each at its first batch, so each has
// seen every point sent to it (no batch lost to a race on the index).
TEST(LivePointsTest, ConcurrentObserversOfManySeriesLoseNoBatchOfATrackedOne) {
  LivePointsLimits limits = SmallLimits();
  limits.max_series = 8;
  LivePoints points(limits, 1);
  constexpr int kThreads = 4, kSeriesEach = 4, kBatches = 500, kPoints = 5;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&points, t] {
      for (int i = 0; i < kBatches * kSeriesEach; ++i) {
        points.Observe("s" + std::to_string(t) + "-" + std::to_string(i % kSeriesEach),
                       Batch(0, kPoints));
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(points.tracked(), 8u);
  int tracked = 0;
  for (int t = 0; t < kThreads; ++t) {
    for (int k = 0; k < kSeriesEach; ++k) {
      const auto sample = points.Sample("s" + std::to_string(t) + "-" + std::to_string(k));
      if (!sample) continue;
      ++tracked;
      EXPECT_EQ(sample->seen, uint64_t{kBatches} * kPoints);
      EXPECT_EQ(sample->points.size(), limits.sample_points);
    }
  }
  EXPECT_EQ(tracked, 8);
}

}  // namespace
}  // namespace gradientd::http
