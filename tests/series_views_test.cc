// Tests of gradientd::core::Series's views: configuration (validation, all
// or nothing, views starting empty), coverage, the stamp/absorb split,
// Reset, and State/Restore bit for bit.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>

#include "core/series.h"
#include "point_data.h"

namespace gradientd::core {
namespace {

constexpr int64_t kSecond = 1'000'000'000;

SeriesChange WindowOf(int64_t length, std::optional<uint32_t> buckets = std::nullopt) {
  SeriesChange c;
  c.window_ns = length;
  c.window_buckets = buckets;
  return c;
}

SeriesChange HalfLife(int64_t h) {
  SeriesChange c;
  c.half_life_ns = h;
  return c;
}

void Feed(Series& s, const Data& d, int64_t t) {
  uint64_t steps = 0;
  ASSERT_TRUE(s.Absorb(Stats(d), s.StampFor(t), &steps).ok());
}

Series WithAllViews() {
  Series s;
  SeriesChange c = WindowOf(60 * kSecond, 6);
  c.half_life_ns = 10 * kSecond;
  EXPECT_TRUE(s.Configure(c).ok());
  return s;
}

TEST(SeriesViewsTest, RefusesBadChangesAndChangesNothing) {
  Series s = WithAllViews();
  Feed(s, Data{{1, 2, 3}, {2, 4, 7}}, 5 * kSecond);
  const Series::State before = s.state();
  std::vector<SeriesChange> bad;
  bad.push_back(WindowOf(0));
  bad.push_back(WindowOf(-kSecond));
  bad.push_back(WindowOf(kSecond, 0));
  bad.push_back(WindowOf(kSecond * 100, BucketWindow::kMaxBuckets + 1));
  bad.push_back(WindowOf(10, 11));  // a bucket under 1 ns
  bad.push_back(HalfLife(0));
  bad.push_back(HalfLife(-1));
  SeriesChange both = WindowOf(kSecond);
  both.remove_window = true;
  bad.push_back(both);
  SeriesChange both_decay = HalfLife(kSecond);
  both_decay.remove_decay = true;
  bad.push_back(both_decay);
  SeriesChange standardized_fast;
  standardized_fast.mode = DescentMode::kStandardized;
  standardized_fast.learning_rate = 1;
  bad.push_back(standardized_fast);
  // A valid part with an invalid one: nothing applies.
  SeriesChange mixed = WindowOf(2 * kSecond);
  mixed.steps_per_batch = 7;
  mixed.half_life_ns = 0;
  bad.push_back(mixed);
  for (const SeriesChange& c : bad) {
    EXPECT_EQ(s.Configure(c).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(ValidateSeriesChange(c, s.config()).code(), StatusCode::kInvalidArgument);
  }
  const Series::State after = s.state();
  EXPECT_EQ(after.stats.raw(), before.stats.raw());
  EXPECT_EQ(after.config.window_ns, before.config.window_ns);
  EXPECT_EQ(after.config.steps_per_batch, before.config.steps_per_batch);
  EXPECT_EQ(after.window->Total().raw(), before.window->Total().raw());
  EXPECT_EQ(after.decayed->raw(), before.decayed->raw());
}

TEST(SeriesViewsTest, ViewsNeedTheirSettings) {
  Series s;
  SeriesChange buckets_only;
  buckets_only.window_buckets = 10;
  EXPECT_EQ(s.Configure(buckets_only).code(), StatusCode::kInvalidArgument);
  SeriesChange follow_window;
  follow_window.view = View::kWindow;
  EXPECT_EQ(s.Configure(follow_window).code(), StatusCode::kInvalidArgument);
  SeriesChange follow_decay;
  follow_decay.view = View::kDecayed;
  EXPECT_EQ(s.Configure(follow_decay).code(), StatusCode::kInvalidArgument);
  // Set together: fine; the default bucket count applies.
  follow_window.window_ns = 60 * kSecond;
  ASSERT_TRUE(s.Configure(follow_window).ok());
  EXPECT_EQ(s.config().window_buckets, kDefaultWindowBuckets);
  EXPECT_TRUE(s.Has(View::kWindow));
  EXPECT_FALSE(s.Has(View::kDecayed));
  // The descent follows the window: it cannot be removed.
  SeriesChange remove;
  remove.remove_window = true;
  EXPECT_EQ(s.Configure(remove).code(), StatusCode::kInvalidArgument);
  remove.view = View::kAll;
  ASSERT_TRUE(s.Configure(remove).ok());
  EXPECT_FALSE(s.Has(View::kWindow));
  EXPECT_EQ(s.config().window_ns, 0);
  EXPECT_FALSE(s.ViewOf(View::kWindow).has_value());
  // Buckets alone once a window exists.
  ASSERT_TRUE(s.Configure(WindowOf(kSecond)).ok());
  ASSERT_TRUE(s.Configure(buckets_only).ok());
  EXPECT_EQ(s.window()->buckets(), 10u);
  EXPECT_EQ(s.window()->length_ns(), kSecond);
}

TEST(SeriesViewsTest, SettingAWindowOrHalfLifeStartsThatViewEmpty) {
  Series s = WithAllViews();
  Feed(s, Data{{1, 2}, {1, 2}}, kSecond);
  ASSERT_EQ(s.ViewOf(View::kWindow)->coverage.n, 2u);
  SeriesChange other;
  other.steps_per_batch = 3;
  ASSERT_TRUE(s.Configure(other).ok());  // other fields: the views stay
  EXPECT_EQ(s.ViewOf(View::kWindow)->coverage.n, 2u);
  EXPECT_EQ(s.ViewOf(View::kDecayed)->coverage.n, 2u);
  ASSERT_TRUE(s.Configure(WindowOf(60 * kSecond, 6)).ok());  // set, even unchanged
  EXPECT_EQ(s.ViewOf(View::kWindow)->coverage.n, 0u);
  Feed(s, Data{{1, 2}, {1, 2}}, kSecond);
  ASSERT_TRUE(s.Configure(WindowOf(30 * kSecond)).ok());
  EXPECT_EQ(s.ViewOf(View::kWindow)->coverage.n, 0u);
  EXPECT_EQ(s.ViewOf(View::kDecayed)->coverage.n, 4u);
  ASSERT_TRUE(s.Configure(HalfLife(10 * kSecond)).ok());  // unchanged, still set
  EXPECT_EQ(s.ViewOf(View::kDecayed)->coverage.n, 0u);
  EXPECT_EQ(s.stats().count(), 4u);
}

TEST(SeriesViewsTest, CoverageOfEveryView) {
  Series s = WithAllViews();
  EXPECT_TRUE(s.ViewOf(View::kAll)->empty());
  EXPECT_EQ(s.ViewOf(View::kAll)->coverage.end_ns, 0);
  Feed(s, Data{{1, 2, 3}, {1, 2, 3}}, 100 * kSecond);
  Feed(s, Data{{4}, {4}}, 110 * kSecond);
  Feed(s, Data{{5, 6}, {5, 6}}, 20 * kSecond);  // late: out of the window
  const ViewStats all = *s.ViewOf(View::kAll);
  EXPECT_EQ(all.coverage.view, View::kAll);
  EXPECT_EQ(all.coverage.n, 6u);
  EXPECT_EQ(all.coverage.weight, 6);
  EXPECT_EQ(all.coverage.effective_n, 6);
  EXPECT_EQ(all.coverage.start_ns, 20 * kSecond);
  EXPECT_EQ(all.coverage.end_ns, 110 * kSecond + 1);
  const ViewStats window = *s.ViewOf(View::kWindow);
  EXPECT_EQ(window.coverage.n, 4u);
  EXPECT_EQ(window.coverage.start_ns, 60 * kSecond);
  EXPECT_EQ(window.coverage.end_ns, 120 * kSecond);
  const ViewStats decayed = *s.ViewOf(View::kDecayed);
  EXPECT_EQ(decayed.coverage.n, 6u);
  // 3 points at age 10 s (one half-life), 1 at 0, 2 at 90 s (9 half-lives).
  const double w = 3 * 0.5 + 1 + 2 * 0x1p-9;
  EXPECT_DOUBLE_EQ(decayed.coverage.weight, w);
  EXPECT_DOUBLE_EQ(decayed.coverage.effective_n, w * w / (3 * 0.25 + 1 + 2 * 0x1p-18));
  EXPECT_EQ(decayed.coverage.start_ns, 20 * kSecond);
  EXPECT_EQ(decayed.coverage.end_ns, 110 * kSecond + 1);
}

// StampFor computes the factor; Absorb only applies it: the same stamp on
// copies gives identical state, and a stamp made up differently is applied
// as given.
TEST(SeriesViewsTest, AbsorbAppliesTheStampItIsGiven) {
  Series s = WithAllViews();
  Feed(s, Data{{1, 2, 3}, {1, 2, 3}}, 0);
  const BatchStamp stamp = s.StampFor(10 * kSecond);
  ASSERT_TRUE(stamp.decay_factor.has_value());
  EXPECT_EQ(*stamp.decay_factor, 0.5);
  Series a = s, b = s;
  uint64_t steps = 0;
  ASSERT_TRUE(a.Absorb(Stats(Data{{9}, {9}}), stamp, &steps).ok());
  ASSERT_TRUE(b.Absorb(Stats(Data{{9}, {9}}), stamp, &steps).ok());
  EXPECT_EQ(a.decayed()->raw(), b.decayed()->raw());
  EXPECT_EQ(a.model().m, b.model().m);
  BatchStamp made_up = stamp;
  made_up.decay_factor = 0.25;
  ASSERT_TRUE(b.Absorb(Stats(Data{{9}, {9}}), made_up, &steps).ok());
  // At the reference time the batch joins at n * factor: 0.25 as given, not 1.
  EXPECT_EQ(b.decayed()->weight(), (3 * 0.5 + 1) + 0.25);
  EXPECT_FALSE(Series().StampFor(5).decay_factor.has_value());
}

TEST(SeriesViewsTest, ResetEmptiesEveryViewAndTheEventTimes) {
  Series s = WithAllViews();
  Feed(s, Data{{1, 2, 3}, {1, 2, 3}}, 7 * kSecond);
  s.Reset();
  EXPECT_TRUE(s.ViewOf(View::kAll)->empty());
  EXPECT_TRUE(s.ViewOf(View::kWindow)->empty());
  EXPECT_TRUE(s.ViewOf(View::kDecayed)->empty());
  EXPECT_EQ(s.first_event_ns(), 0);
  EXPECT_EQ(s.last_event_ns(), 0);
  EXPECT_EQ(s.window()->start_ns(), 0);
  EXPECT_EQ(s.config().window_ns, 60 * kSecond);
}

TEST(SeriesViewsTest, StateRestoresBitForBit) {
  std::mt19937_64 rng(4);
  Series s = WithAllViews();
  for (int i = 0; i < 50; ++i) {
    const Data d = TimestampData(rng, 20, 1.7e9 + 100.0 * i, 1, 0.5, 10, 0.3, 1);
    Feed(s, d, static_cast<int64_t>(Uniform(rng, 0, 200)) * kSecond);
  }
  Series restored;
  restored.Restore(s.state());
  for (View v : {View::kAll, View::kWindow, View::kDecayed}) {
    const ViewStats a = *s.ViewOf(v), b = *restored.ViewOf(v);
    EXPECT_EQ(a.moments, b.moments);
    EXPECT_EQ(a.coverage.n, b.coverage.n);
    EXPECT_EQ(a.coverage.weight, b.coverage.weight);
    EXPECT_EQ(a.coverage.start_ns, b.coverage.start_ns);
    EXPECT_EQ(a.coverage.end_ns, b.coverage.end_ns);
  }
  EXPECT_EQ(restored.model().m, s.model().m);
  EXPECT_EQ(restored.steps(), s.steps());
  // And they go on identically.
  const Data next{{1.7e9}, {3}};
  Feed(s, next, 300 * kSecond);
  Feed(restored, next, 300 * kSecond);
  EXPECT_EQ(restored.decayed()->raw(), s.decayed()->raw());
  EXPECT_EQ(restored.window()->Total().raw(), s.window()->Total().raw());
  EXPECT_EQ(restored.model().b, s.model().b);
}

TEST(SeriesViewsTest, StepOnAMissingOrEmptyViewFailsPrecondition) {
  Series s;
  Feed(s, Data{{1, 2}, {1, 2}}, 0);
  StepOptions options;
  options.view = View::kWindow;
  StepResult r;
  EXPECT_EQ(s.Step(1, options, &r).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(s.Configure(WindowOf(kSecond)).ok());
  EXPECT_EQ(s.Step(1, options, &r).code(), StatusCode::kFailedPrecondition);  // empty
  Feed(s, Data{{1, 2}, {5, 7}}, 0);
  ASSERT_TRUE(s.Step(1, options, &r).ok());
  EXPECT_EQ(r.view, View::kWindow);
  EXPECT_DOUBLE_EQ(s.model().m, 2);  // the window's line, not all history's
}

}  // namespace
}  // namespace gradientd::core
