// SequenceWindow against an independent model (the set of sequences
// applied), in random orders with gaps, jumps past the window and retries;
// and its snapshot form.
#include "service/sequence_window.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <random>
#include <set>
#include <string>

namespace gradientd::service {
namespace {

using Seen = SequenceWindow::Seen;

// The rule, written from the set of sequences applied.
struct Model {
  uint64_t width;
  std::set<uint64_t> applied;
  uint64_t Highest() const { return applied.empty() ? 0 : *applied.rbegin(); }
  Seen Check(uint64_t s) const {
    if (s < Highest() && Highest() - s > width) return Seen::kBelowWindow;  // applied or not
    if (applied.count(s)) return Seen::kApplied;
    return Seen::kNew;
  }
};

const char* Name(Seen seen) {
  switch (seen) {
    case Seen::kNew:
      return "new";
    case Seen::kApplied:
      return "applied";
    case Seen::kBelowWindow:
      return "below the window";
  }
  return "?";
}

// Every sequence from below the window to above the highest answers as in
// the model.
void ExpectSame(const SequenceWindow& window, const Model& model, const std::string& where) {
  const uint64_t high = model.Highest();
  const uint64_t from = high > model.width + 3 ? high - model.width - 3 : 1;
  ASSERT_EQ(window.highest(), high) << where;
  for (uint64_t s = from; s <= high + 3; ++s) {
    ASSERT_EQ(Name(window.Check(s)), std::string(Name(model.Check(s))))
        << where << ": sequence " << s << ", highest " << high;
  }
}

// A producer's next sequence: mostly the next, sometimes a gap, a jump past
// the window, a retry of a recent one, or one from long ago.
uint64_t NextSequence(std::mt19937_64& rng, const Model& model) {
  const uint64_t high = model.Highest();
  const uint64_t w = model.width;
  switch (rng() % 10) {
    case 0:
      return high + 2 + rng() % 5;  // a gap
    case 1:
      return high + w - 2 + rng() % 5;  // about a window ahead
    case 2:
    case 3:
    case 4:
      return high > 1 ? high - rng() % std::min(high, w + 2) : 1;  // recent, maybe a hole
    case 5:
      return 1 + rng() % (high + 1);  // anywhere before
    default:
      return high + 1;
  }
}

TEST(SequenceWindowTest, AnswersAsTheSetOfAppliedSequencesInRandomOrders) {
  for (const uint64_t width : {64u, 128u, 192u, 4096u}) {
    for (uint64_t seed = 1; seed <= 20; ++seed) {
      std::mt19937_64 rng(seed * 7919 + width);
      SequenceWindow window(width);
      Model model{width, {}};
      for (int step = 0; step < 400; ++step) {
        const uint64_t s = NextSequence(rng, model);
        const std::string where = "width " + std::to_string(width) + ", seed " +
                                  std::to_string(seed) + ", step " + std::to_string(step);
        ASSERT_EQ(Name(window.Check(s)), std::string(Name(model.Check(s))))
            << where << ": sequence " << s;
        if (model.Check(s) == Seen::kNew) {
          window.Mark(s);
          model.applied.insert(s);
        }
        if (step % 37 == 0) ExpectSame(window, model, where);
      }
      ExpectSame(
          window, model,
          "width " + std::to_string(width) + ", seed " + std::to_string(seed) + " at the end");
    }
  }
}

TEST(SequenceWindowTest, ARetryThatLandsAfterLaterBatchesIsNewOnceThenApplied) {
  SequenceWindow window(64);
  for (uint64_t s : std::initializer_list<uint64_t>{1, 2, 4, 5, 6}) window.Mark(s);
  EXPECT_EQ(window.Check(3), Seen::kNew);  // the retry of 3, after 4..6
  window.Mark(3);
  EXPECT_EQ(window.Check(3), Seen::kApplied);
  for (uint64_t s = 1; s <= 6; ++s) EXPECT_EQ(window.Check(s), Seen::kApplied) << s;
  EXPECT_TRUE(window.AppliedBelow().empty());  // nothing missing: no bitmap
}

TEST(SequenceWindowTest, AProducerInOrderNeedsNoBitmap) {
  SequenceWindow window(4096);
  for (uint64_t s = 1; s <= 100'000; ++s) {
    ASSERT_EQ(window.Check(s), Seen::kNew);
    window.Mark(s);
  }
  EXPECT_TRUE(window.AppliedBelow().empty());
  EXPECT_EQ(window.Check(100'000 - 4096), Seen::kApplied);
  EXPECT_EQ(window.Check(100'000 - 4097), Seen::kBelowWindow);
}

TEST(SequenceWindowTest, AFirstSequenceAboveOneLeavesTheEarlierOnesNew) {
  SequenceWindow window(64);
  window.Mark(10);
  for (uint64_t s = 1; s < 10; ++s) EXPECT_EQ(window.Check(s), Seen::kNew) << s;
  EXPECT_EQ(window.AppliedBelow().size(), 8u);
  for (uint64_t s = 1; s < 10; ++s) window.Mark(s);
  EXPECT_TRUE(window.AppliedBelow().empty());
}

TEST(SequenceWindowTest, AJumpPastTheWindowForgetsWhatWasBelowIt) {
  SequenceWindow window(64);
  window.Mark(1);
  window.Mark(1000);
  EXPECT_EQ(window.Check(1), Seen::kBelowWindow);
  EXPECT_EQ(window.Check(936), Seen::kNew);  // 64 below 1000: in the window, never applied
  EXPECT_EQ(window.Check(935), Seen::kBelowWindow);
  window.Mark(1064);  // exactly a window above: 1000 stays in it
  EXPECT_EQ(window.Check(1000), Seen::kApplied);
  EXPECT_EQ(window.Check(1001), Seen::kNew);
}

TEST(SequenceWindowTest, SnapshotFormRestoresTheSameAnswers) {
  std::mt19937_64 rng(42);
  for (const uint64_t width : {64u, 256u}) {
    SequenceWindow window(width);
    Model model{width, {}};
    for (int step = 0; step < 2000; ++step) {
      const uint64_t s = NextSequence(rng, model);
      if (model.Check(s) != Seen::kNew) continue;
      window.Mark(s);
      model.applied.insert(s);
      if (step % 50 != 0) continue;
      SequenceWindow restored(width);
      restored.Restore(window.highest(), window.AppliedBelow());
      ExpectSame(restored, model, "restored at step " + std::to_string(step));
      EXPECT_EQ(restored.AppliedBelow(), window.AppliedBelow());
    }
  }
}

// A restart with another --producer-window: never a batch applied twice.
TEST(SequenceWindowTest, RestoringIntoAnotherWidthNeverTakesAnAppliedSequenceForNew) {
  SequenceWindow wide(256);
  Model model{256, {}};
  for (uint64_t s = 1; s <= 300; ++s) {
    if (s % 3 != 0) {
      wide.Mark(s);
      model.applied.insert(s);
    }
  }
  for (const uint64_t width : {64u, 128u, 1024u}) {
    SequenceWindow other(width);
    other.Restore(wide.highest(), wide.AppliedBelow());
    const uint64_t high = wide.highest();  // 299
    for (uint64_t s = 1; s <= high; ++s) {
      const Seen seen = other.Check(s);
      if (model.applied.count(s)) {
        EXPECT_NE(seen, Seen::kNew) << "width " << width << ", sequence " << s;
      } else if (high - s <= std::min<uint64_t>(width, 256)) {
        EXPECT_EQ(seen, Seen::kNew) << "width " << width << ", sequence " << s;
      } else {
        EXPECT_NE(seen, Seen::kNew) << "width " << width << ", sequence " << s;  // assumed
      }
    }
  }
}

// Snapshots of versions before the window: everything at or below the last
// sequence was applied (their rule).
TEST(SequenceWindowTest, AnOlderSnapshotWithoutABitmapMeansAllBelowWereApplied) {
  SequenceWindow window(64);
  window.Restore(500, "");
  for (uint64_t s = 436; s <= 500; ++s) EXPECT_EQ(window.Check(s), Seen::kApplied) << s;
  EXPECT_EQ(window.Check(435), Seen::kBelowWindow);
  EXPECT_EQ(window.Check(501), Seen::kNew);
}

TEST(SequenceWindowTest, ClearForgetsEverything) {
  SequenceWindow window(64);
  window.Mark(5);
  window.Mark(7);
  window.Clear();
  EXPECT_EQ(window.highest(), 0u);
  EXPECT_TRUE(window.AppliedBelow().empty());
  for (uint64_t s = 1; s <= 8; ++s) EXPECT_EQ(window.Check(s), Seen::kNew) << s;
}

}  // namespace
}  // namespace gradientd::service
