// Tests of gradientd::core::BucketWindow: the statistics of exactly the
// points whose event time falls in the covered interval, against exact
// rational references; no subtraction (an outlier leaving changes nothing
// of the rest); snapshots round-trip bit for bit.
#include "core/window.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <vector>

#include "point_data.h"

namespace gradientd::core {
namespace {

// A batch with its event time, remembered point by point.
struct TimedBatch {
  Data points;
  int64_t t = 0;
};

TimedBatch RandomBatch(std::mt19937_64& rng, int64_t t, double x0) {
  TimedBatch b;
  b.t = t;
  const std::size_t n = UniformIndex(rng, 1, 20);
  for (std::size_t i = 0; i < n; ++i) {
    const double x = x0 + Uniform(rng, -1000, 1000);
    b.points.x.push_back(x);
    b.points.y.push_back(3e6 - 0.25 * (x - x0) + Uniform(rng, -50, 50));
  }
  return b;
}

// The points of the batches whose event time is in [start, end).
Data PointsIn(const std::vector<TimedBatch>& batches, int64_t start, int64_t end) {
  Data d;
  for (const TimedBatch& b : batches) {
    if (b.t < start || b.t >= end) continue;
    d.x.insert(d.x.end(), b.points.x.begin(), b.points.x.end());
    d.y.insert(d.y.end(), b.points.y.begin(), b.points.y.end());
  }
  return d;
}

TEST(WindowTest, ValidateRefusesBadSettings) {
  EXPECT_TRUE(BucketWindow::Validate(60, 60).ok());
  EXPECT_TRUE(BucketWindow::Validate(1, 1).ok());
  EXPECT_TRUE(BucketWindow::Validate(int64_t{3'600'000'000'000}, BucketWindow::kMaxBuckets).ok());
  EXPECT_FALSE(BucketWindow::Validate(0, 1).ok());
  EXPECT_FALSE(BucketWindow::Validate(-5, 1).ok());
  EXPECT_FALSE(BucketWindow::Validate(100, 0).ok());
  EXPECT_FALSE(BucketWindow::Validate(100'000, BucketWindow::kMaxBuckets + 1).ok());
  EXPECT_FALSE(BucketWindow::Validate(59, 60).ok());  // buckets under 1 ns
}

TEST(WindowTest, EmptyWindowCoversNothing) {
  const BucketWindow w(100, 10);
  EXPECT_EQ(w.bucket_width_ns(), 10);
  EXPECT_TRUE(w.Total().empty());
  EXPECT_EQ(w.start_ns(), 0);
  EXPECT_EQ(w.end_ns(), 0);
  EXPECT_FALSE(w.has_latest());
  EXPECT_TRUE(w.Buckets().empty());
}

// Random event times (mostly forward, some late, some far jumps), random
// batch sizes: after every Add the window holds exactly the points of the
// reported interval.
TEST(WindowTest, MatchesExactPointsInsideCoveredIntervalOverRandomStreams) {
  std::mt19937_64 rng(13);
  for (const uint32_t buckets : {1u, 2u, 5u, 8u, 60u}) {
    const std::size_t width_draw = UniformIndex(rng, 1, 1000);
    const int64_t width = static_cast<int64_t>(width_draw);
    // A length with a remainder the buckets drop.
    BucketWindow w(width * buckets + static_cast<int64_t>(UniformIndex(rng, 0, buckets - 1)),
                   buckets);
    ASSERT_EQ(w.bucket_width_ns(), width);
    std::vector<TimedBatch> batches;
    int64_t now = static_cast<int64_t>(UniformIndex(rng, 0, 1'000'000)) - 500'000;
    for (int i = 0; i < 300; ++i) {
      const double r = Uniform(rng, 0, 1);
      int64_t t = now;
      if (r < 0.6) {
        now += static_cast<int64_t>(UniformIndex(rng, 0, width_draw * 2));
        t = now;
      } else if (r < 0.9) {
        t = now - static_cast<int64_t>(UniformIndex(rng, 0, width_draw * (buckets + 2)));  // late
      } else if (r < 0.95) {
        now += width * static_cast<int64_t>(buckets) * 3;  // a jump past the window
        t = now;
      }
      TimedBatch b = RandomBatch(rng, t, 1.7e9);
      const bool inside = w.Add(Stats(b.points), b.t);
      const int64_t start = w.start_ns(), end = w.end_ns();
      EXPECT_EQ(inside, b.t >= start && b.t < end);
      if (inside) batches.push_back(b);
      ASSERT_EQ(end - start, width * static_cast<int64_t>(buckets));
      const Data expected = PointsIn(batches, start, end);
      ASSERT_FALSE(expected.x.empty());
      ExpectMatchesExact(w.Total(), expected, {{0.1, 2e6}, {-0.25, 3e6}}, 1e-9);
      if (HasFailure()) return;
    }
  }
}

// The 1e12 outlier's bucket leaves: what remains is exactly (bit for bit)
// the window that never saw it, and matches the exact reference.
TEST(WindowTest, OutlierLeavingLeavesExactlyTheRest) {
  std::mt19937_64 rng(7);
  const int64_t width = 1'000'000'000;  // 1 s buckets, 10 s window
  BucketWindow with(10 * width, 10), without(10 * width, 10);
  Data outlier{{1.7e9}, {1e12}};
  with.Add(Stats(outlier), 0);
  std::vector<TimedBatch> rest;
  for (int s = 1; s <= 15; ++s) {
    rest.push_back(RandomBatch(rng, s * width + s, 1.7e9 + s));
    with.Add(Stats(rest.back().points), rest.back().t);
    without.Add(Stats(rest.back().points), rest.back().t);
    if (s < 10) {
      EXPECT_GT(with.Total().var_y(), 1e20);  // the outlier still counts
    }
  }
  EXPECT_EQ(with.Total().raw(), without.Total().raw());
  EXPECT_GE(with.Total().var_y(), 0);
  ExpectMatchesExact(with.Total(), PointsIn(rest, with.start_ns(), with.end_ns()), {{0, 0}}, 1e-9);
  EXPECT_EQ(with.start_ns(), 6 * width);
  EXPECT_EQ(with.end_ns(), 16 * width);
}

TEST(WindowTest, FromBucketsRoundTripAnswersBitForBit) {
  std::mt19937_64 rng(99);
  BucketWindow w(70, 7);
  for (int i = 0; i < 200; ++i) {
    const int64_t t = static_cast<int64_t>(UniformIndex(rng, 0, 400)) - 200 + i;
    w.Add(Stats(RandomBatch(rng, t, -5e8).points), t);
    const BucketWindow copy = BucketWindow::FromBuckets(w.length_ns(), w.buckets(), w.has_latest(),
                                                        w.latest_bucket(), w.Buckets());
    ASSERT_EQ(copy.Total().raw(), w.Total().raw()) << i;
    ASSERT_EQ(copy.start_ns(), w.start_ns());
    ASSERT_EQ(copy.end_ns(), w.end_ns());
    ASSERT_EQ(copy.Buckets().size(), w.Buckets().size());
  }
  // And the rebuilt window keeps answering the same as it is fed.
  BucketWindow copy = BucketWindow::FromBuckets(w.length_ns(), w.buckets(), w.has_latest(),
                                                w.latest_bucket(), w.Buckets());
  for (int i = 0; i < 50; ++i) {
    const int64_t t = 200 + 3 * i;
    const PointStats batch = Stats(RandomBatch(rng, t, -5e8).points);
    EXPECT_EQ(w.Add(batch, t), copy.Add(batch, t));
    ASSERT_EQ(copy.Total().raw(), w.Total().raw()) << i;
  }
}

TEST(WindowTest, NegativeEventTimesUseFloorBuckets) {
  BucketWindow w(30, 3);             // buckets of 10 ns
  w.Add(Stats(Data{{1}, {1}}), -1);  // bucket -1: [-10, 0)
  EXPECT_EQ(w.latest_bucket(), -1);
  EXPECT_EQ(w.start_ns(), -30);
  EXPECT_EQ(w.end_ns(), 0);
  EXPECT_TRUE(w.Add(Stats(Data{{2}, {2}}), -10));   // bucket -1 too
  EXPECT_TRUE(w.Add(Stats(Data{{3}, {3}}), -30));   // bucket -3, the oldest live
  EXPECT_FALSE(w.Add(Stats(Data{{4}, {4}}), -31));  // bucket -4: left already
  EXPECT_EQ(w.Total().count(), 3u);
  const std::vector<BucketWindow::Bucket> buckets = w.Buckets();
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].index, -3);
  EXPECT_EQ(buckets[1].index, -1);
  EXPECT_EQ(buckets[1].stats.count(), 2u);
  EXPECT_TRUE(w.Add(Stats(Data{{5}, {5}}), 5));  // bucket 0: bucket -3 leaves
  EXPECT_EQ(w.Total().count(), 3u);
  EXPECT_DOUBLE_EQ(w.Total().mean_x(), (1.0 + 2.0 + 5.0) / 3.0);
  EXPECT_EQ(w.start_ns(), -20);
}

TEST(WindowTest, JumpOfAWholeWindowOrMoreClearsEverything) {
  BucketWindow w(40, 4);
  for (int i = 0; i < 4; ++i) w.Add(Stats(Data{{double(i)}, {1}}), 10 * i);
  EXPECT_EQ(w.Total().count(), 4u);
  w.Add(Stats(Data{{9}, {9}}), 60);  // bucket 6: buckets 0..2 leave, 3 stays
  EXPECT_EQ(w.Total().count(), 2u);
  w.Add(Stats(Data{{8}, {8}}), 100);  // bucket 10: exactly 4 ahead
  EXPECT_EQ(w.Total().count(), 1u);
  EXPECT_EQ(w.Total().mean_y(), 8);
}

TEST(WindowTest, IntervalSaturatesAtTheInt64Range) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  BucketWindow hi(1000, 10);
  hi.Add(Stats(Data{{1}, {1}}), kMax);
  EXPECT_EQ(hi.end_ns(), kMax);
  EXPECT_LT(hi.start_ns(), kMax);
  EXPECT_EQ(hi.Total().count(), 1u);
  BucketWindow lo(1000, 10);
  lo.Add(Stats(Data{{1}, {1}}), kMin);
  EXPECT_EQ(lo.start_ns(), kMin);
  EXPECT_GT(lo.end_ns(), kMin);
  EXPECT_TRUE(lo.Add(Stats(Data{{2}, {2}}), kMax));  // the far future: all cleared
  EXPECT_EQ(lo.Total().count(), 1u);
}

}  // namespace
}  // namespace gradientd::core
