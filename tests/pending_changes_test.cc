// PendingChanges: each change is decided once (first decision wins), its
// response reaches a waiter whether it waits before or after; deadlines
// expire undecided changes with an error saying what is known; unclaimed
// responses are forgotten; shutdown fails everything left.
#include "cluster/pending_changes.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "protocol/error_codes.h"

namespace gradientd::cluster {
namespace {

using Clock = PendingChanges::Clock;
using namespace std::chrono_literals;

v1::Response Ack(uint64_t total) {
  v1::Response response;
  response.mutable_ack()->set_total(total);
  return response;
}

TEST(PendingChangesTest, TheFirstDecisionWinsWhetherTheWaiterComesBeforeOrAfter) {
  PendingChanges pending;
  const uint64_t early = pending.Add(0, Clock::now() + 1h);
  const uint64_t late = pending.Add(1, Clock::now() + 1h);
  EXPECT_NE(early, late);
  EXPECT_GT(early, 0u);

  std::vector<v1::Response> got;
  pending.OnDecided(early, [&](v1::Response r) { got.push_back(std::move(r)); });
  EXPECT_TRUE(got.empty());
  pending.Decide(early, Ack(7));
  pending.Decide(early, Ack(8));  // a second decision is ignored
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].ack().total(), 7u);

  pending.Decide(late, Ack(9));
  pending.Decide(late, Ack(10));
  pending.OnDecided(late, [&](v1::Response r) { got.push_back(std::move(r)); });
  ASSERT_EQ(got.size(), 2u);
  EXPECT_EQ(got[1].ack().total(), 9u);
  EXPECT_EQ(pending.size(), 0u);
}

TEST(PendingChangesTest, ExpiryTellsWhetherTheChangeWasStoredAndLaterDecisionsAreIgnored) {
  PendingChanges pending;
  const auto now = Clock::now();
  const uint64_t unstored = pending.Add(2, now + 1s);
  const uint64_t stored = pending.Add(3, now + 1s);
  const uint64_t alive = pending.Add(3, now + 1h);
  pending.Stored(stored, 41);
  std::vector<v1::Response> got(2);
  pending.OnDecided(unstored, [&](v1::Response r) { got[0] = std::move(r); });
  pending.OnDecided(stored, [&](v1::Response r) { got[1] = std::move(r); });

  pending.Expire(now + 2s, 1min);
  ASSERT_TRUE(got[0].has_error());
  EXPECT_EQ(got[0].error().code(), v1::Error::UNAVAILABLE);
  EXPECT_NE(got[0].error().message().find("may or may not be applied"), std::string::npos);
  ASSERT_TRUE(got[1].has_error());
  EXPECT_NE(got[1].error().message().find("shard 3 at position 41"), std::string::npos)
      << got[1].error().message();
  // The applier comes too late: the client has its answer already.
  pending.Decide(stored, Ack(1));
  EXPECT_TRUE(got[1].has_error());
  EXPECT_EQ(pending.size(), 1u);  // `alive` only

  v1::Response last;
  pending.OnDecided(alive, [&](v1::Response r) { last = std::move(r); });
  pending.Decide(alive, Ack(3));
  EXPECT_EQ(last.ack().total(), 3u);
}

TEST(PendingChangesTest, AResponseNobodyClaimsIsForgottenAndAskingForItThenFails) {
  PendingChanges pending;
  const uint64_t token = pending.Add(0, Clock::now() + 1h);
  pending.Decide(token, Ack(5));
  pending.Expire(Clock::now() + 30s, 1min);
  EXPECT_EQ(pending.size(), 1u);  // still within `unclaimed`
  pending.Expire(Clock::now() + 2min, 1min);
  EXPECT_EQ(pending.size(), 0u);
  v1::Response response;
  pending.OnDecided(token, [&](v1::Response r) { response = std::move(r); });
  ASSERT_TRUE(response.has_error());
  EXPECT_EQ(response.error().code(), v1::Error::INTERNAL);
}

TEST(PendingChangesTest, FailAllAnswersEveryWaiterAndKeepsAnswersForLaterWaiters) {
  PendingChanges pending;
  const uint64_t waited = pending.Add(0, Clock::now() + 1h);
  const uint64_t not_yet = pending.Add(0, Clock::now() + 1h);
  v1::Response a;
  pending.OnDecided(waited, [&](v1::Response r) { a = std::move(r); });
  pending.FailAll(Status::Unavailable("shutting down"));
  EXPECT_EQ(a.error().code(), v1::Error::UNAVAILABLE);
  v1::Response b;
  pending.OnDecided(not_yet, [&](v1::Response r) { b = std::move(r); });
  EXPECT_EQ(b.error().message(), "shutting down");
}

TEST(PendingChangesTest, ConcurrentDecisionsAndWaitersAnswerEachChangeExactlyOnce) {
  PendingChanges pending;
  constexpr std::size_t kChanges = 2000;
  std::vector<uint64_t> tokens;
  for (std::size_t i = 0; i < kChanges; ++i) tokens.push_back(pending.Add(0, Clock::now() + 1h));
  std::vector<std::atomic<int>> calls(kChanges);
  std::thread deciders[2];
  for (int t = 0; t < 2; ++t) {
    deciders[t] = std::thread([&, t] {
      for (std::size_t i = 0; i < kChanges; ++i)
        pending.Decide(tokens[i], Ack(static_cast<uint64_t>(t)));
    });
  }
  std::thread waiter([&] {
    for (std::size_t i = 0; i < kChanges; ++i) {
      pending.OnDecided(tokens[i], [&, i](v1::Response r) {
        EXPECT_TRUE(r.has_ack());
        calls[i]++;
      });
    }
  });
  for (auto& d : deciders) d.join();
  waiter.join();
  for (std::size_t i = 0; i < kChanges; ++i) EXPECT_EQ(calls[i].load(), 1) << i;
  EXPECT_EQ(pending.size(), 0u);
}

}  // namespace
}  // namespace gradientd::cluster
