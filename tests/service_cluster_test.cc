// Cluster mode's replicated state machine, in-process: a change proposed by
// one Service (Propose) and applied, after a serialization round trip, by
// replicas whose clocks are far apart (ApplyChange) leaves bit-identical
// state and gives bit-identical responses, the same a single node's Handle
// gives for the request at the proposer's time. Exactly-once across
// proposers: a batch proposed on two nodes (a producer's retry after
// failover) counts once, even when it lands after later batches.
#include <gtest/gtest.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "gradientd/v1/cluster.pb.h"
#include "service/series_store.h"
#include "service/service.h"
#include "service_test_support.h"

namespace gradientd::service {
namespace {

constexpr int64_t kSecond = 1'000'000'000;
constexpr int64_t kStart = 1'800'000'000 * kSecond;

// A Service over its own store with a clock the test sets.
struct Node {
  explicit Node(int64_t clock, ServiceLimits limits = {}) : now(clock), service(store, limits) {
    service.SetClock([this] { return now; });
  }
  v1::Response Handle(const v1::Request& request) {
    v1::Response response;
    service.Handle(request, &response);
    return response;
  }
  v1::Response Apply(const v1::ClusterChange& change) {
    v1::Response response;
    service.ApplyChange(change, &response);
    return response;
  }
  // Every series as a client can see it, in every view.
  std::string State() {
    std::string state;
    for (const v1::View view : {v1::VIEW_ALL, v1::VIEW_WINDOW, v1::VIEW_DECAYED}) {
      v1::Request r;
      r.mutable_list()->set_view(view);
      state += Handle(r).SerializeAsString();
    }
    return state;
  }
  int64_t now;
  SeriesStore store;
  Service service;
};

// A proposer, two replicas with other clocks, and a single node that
// handles every request itself at the proposer's time.
class ReplicatedServiceTest : public ::testing::Test {
 protected:
  // Proposes `request` on `proposer`; when it may be applied, applies the
  // change (serialized and parsed, as the stream carries it) on every
  // replica, checks that they answer alike, and returns the answer; else
  // the proposer's refusal.
  v1::Response Replicate(Node& proposer, const v1::Request& request) {
    v1::ClusterChange change;
    v1::Response refusal;
    if (!proposer.service.Propose(request, &change, &refusal)) {
      EXPECT_TRUE(refusal.has_error()) << refusal.DebugString();
      return refusal;
    }
    EXPECT_FALSE(refusal.has_error());
    v1::ClusterChange carried;
    EXPECT_TRUE(carried.ParseFromString(change.SerializeAsString()));
    const v1::Response first = replicas_[0]->Apply(carried);
    for (std::size_t i = 1; i < replicas_.size(); ++i) {
      EXPECT_EQ(replicas_[i]->Apply(carried).SerializeAsString(), first.SerializeAsString());
    }
    return first;
  }
  // Replicated from the first replica, and handled by the single node at
  // the same time: both answers must be the same.
  v1::Response Both(const v1::Request& request) {
    single_.now = replicas_[0]->now;
    const v1::Response replicated = Replicate(*replicas_[0], request);
    const v1::Response handled = single_.Handle(request);
    EXPECT_EQ(replicated.SerializeAsString(), handled.SerializeAsString())
        << "replicated: " << replicated.DebugString() << "handled: " << handled.DebugString();
    return replicated;
  }
  void Advance(int64_t nanos) {
    for (auto& replica : replicas_) replica->now += nanos;
  }
  void ExpectSameState() {
    const std::string state = replicas_[0]->State();
    for (auto& replica : replicas_) EXPECT_EQ(replica->State(), state);
    EXPECT_EQ(single_.State(), state);
  }

  // The proposer (replicas_[0]) runs at kStart; the others hours apart.
  std::vector<std::unique_ptr<Node>> replicas_ = [] {
    std::vector<std::unique_ptr<Node>> nodes;
    nodes.push_back(std::make_unique<Node>(kStart));
    nodes.push_back(std::make_unique<Node>(kStart + 7200 * kSecond));
    nodes.push_back(std::make_unique<Node>(kStart - 86400 * kSecond));
    return nodes;
  }();
  Node single_{kStart};
};

v1::Request Configure(const std::string& series) {
  v1::Request r;
  r.mutable_configure()->set_series(series);
  return r;
}

v1::Request StepRequest(const std::string& series, uint64_t iterations) {
  v1::Request r;
  r.mutable_step()->set_series(series);
  r.mutable_step()->set_iterations(iterations);
  return r;
}

TEST_F(ReplicatedServiceTest, EveryKindOfChangeLeavesTheSameStateAsASingleNode) {
  // Plain batches, with and without event times, into two series.
  EXPECT_TRUE(Both(IngestRequest("revenue", kMonths, kRevenue)).has_ack());
  v1::Request timed = IngestRequest("decayed", {1, 2, 3}, {2.5, 4.1, 6.2});
  timed.mutable_ingest()->set_event_time_unix_nanos(kStart - 30 * kSecond);
  EXPECT_TRUE(Both(timed).has_ack());

  // A half-life and a window: decay factors are computed at apply time,
  // from the record's event times, the same on every node.
  v1::Request decay = Configure("decayed");
  decay.mutable_configure()->set_half_life_nanos(10 * kSecond);
  decay.mutable_configure()->set_window_nanos(60 * kSecond);
  decay.mutable_configure()->set_window_buckets(6);
  decay.mutable_configure()->set_steps_per_batch(3);
  EXPECT_FALSE(Both(decay).has_error());
  for (int i = 0; i < 20; ++i) {
    Advance(7 * kSecond + i);
    v1::Request later = IngestRequest("decayed", {1.0 * i, 2.0 * i + 0.1}, {0.3 * i, 1.7 * i});
    later.mutable_ingest()->set_event_time_unix_nanos(kStart + i * 7 * kSecond + 12345);
    EXPECT_TRUE(Both(later).has_ack());
  }

  // Descent: a step, a learning rate, a position, a reset.
  v1::Request rate = Configure("revenue");
  rate.mutable_configure()->set_learning_rate(0.001);
  EXPECT_FALSE(Both(rate).has_error());
  EXPECT_TRUE(Both(StepRequest("revenue", 500)).has_step());
  EXPECT_TRUE(Both(StepRequest("decayed", 50)).has_step());
  EXPECT_TRUE(Both(IngestRequest("doomed", {1, 2}, {3, 4})).has_ack());
  v1::Request reset;
  reset.mutable_reset()->set_series("doomed");
  EXPECT_FALSE(Both(reset).has_error());

  // Refusals are the proposer's, before anything reaches the log.
  EXPECT_TRUE(Both(StepRequest("nothing-here", 5)).has_error());
  EXPECT_TRUE(Both(IngestRequest("bad", {1, 2}, {3})).has_error());
  v1::Request bad_rate = Configure("revenue");
  bad_rate.mutable_configure()->set_learning_rate(-1);
  EXPECT_TRUE(Both(bad_rate).has_error());
  ExpectSameState();
}

TEST_F(ReplicatedServiceTest, ExactlyOnceBatchesCountOnceAcrossProposersAndOutOfOrderRetries) {
  Node other(kStart + 3 * kSecond);
  // Sequences 1..6 through the first node; 3 was also proposed on another
  // (a producer's retry after failover) and lands after 5 and 6.
  for (const uint64_t sequence : {1u, 2u, 4u, 5u, 6u}) {
    const v1::Response r = Replicate(
        *replicas_[0], IngestRequest("eo", {static_cast<double>(sequence)}, {2.0}, "p1", sequence));
    ASSERT_TRUE(r.has_ack());
    EXPECT_FALSE(r.ack().duplicate());
  }
  // Two copies of 3, from two proposers: the first counts, the second is a
  // duplicate, on every replica.
  const v1::Response first = Replicate(other, IngestRequest("eo", {3.0}, {2.0}, "p1", 3));
  ASSERT_TRUE(first.has_ack());
  EXPECT_FALSE(first.ack().duplicate());
  EXPECT_EQ(first.ack().accepted(), 1u);
  const v1::Response retry = Replicate(*replicas_[0], IngestRequest("eo", {3.0}, {2.0}, "p1", 3));
  ASSERT_TRUE(retry.has_ack());
  EXPECT_TRUE(retry.ack().duplicate());
  EXPECT_EQ(retry.ack().accepted(), 0u);
  EXPECT_EQ(retry.ack().total(), 6u);
  const std::string state = replicas_[0]->State();
  for (auto& replica : replicas_) EXPECT_EQ(replica->State(), state);
}

TEST_F(ReplicatedServiceTest, ProducerExpiryFollowsTheChangesTimeNotTheReplicasClock) {
  ServiceLimits limits;
  limits.producer_expiry = std::chrono::seconds(60);
  Node proposer(kStart, limits);
  // One replica's clock is a day ahead: were it used, the producer would
  // look expired there and its repeat would count twice.
  Node behind(kStart, limits);
  Node ahead(kStart + 86400 * kSecond, limits);
  auto replicate = [&](const v1::Request& request) {
    v1::ClusterChange change;
    v1::Response refusal;
    EXPECT_TRUE(proposer.service.Propose(request, &change, &refusal)) << refusal.DebugString();
    const v1::Response a = behind.Apply(change);
    EXPECT_EQ(ahead.Apply(change).SerializeAsString(), a.SerializeAsString());
    EXPECT_EQ(proposer.Apply(change).SerializeAsString(), a.SerializeAsString());
    return a;
  };
  EXPECT_FALSE(replicate(IngestRequest("s", {1}, {2}, "p", 1)).ack().duplicate());
  proposer.now += 30 * kSecond;
  EXPECT_TRUE(replicate(IngestRequest("s", {1}, {2}, "p", 1)).ack().duplicate());
  // Past the expiry by the proposer's clock: the producer is forgotten on
  // every replica alike, and its batch counts again (as documented).
  proposer.now += 120 * kSecond;
  const v1::Response again = replicate(IngestRequest("s", {1}, {2}, "p", 1));
  EXPECT_FALSE(again.ack().duplicate());
  EXPECT_EQ(again.ack().total(), 2u);
  EXPECT_EQ(behind.State(), ahead.State());
}

TEST_F(ReplicatedServiceTest, StepRunsExactlyTheProposedIterationsWithoutATimeBudget) {
  Node& proposer = *replicas_[0];
  ServiceLimits slow;
  slow.max_step_time = std::chrono::nanoseconds(1);  // every timed step stops at once
  Node replica(kStart, slow);
  v1::ClusterChange change;
  v1::Response refusal;
  ASSERT_TRUE(proposer.service.Propose(IngestRequest("s", kMonths, kRevenue), &change, &refusal));
  ASSERT_TRUE(proposer.Apply(change).has_ack());
  ASSERT_TRUE(replica.Apply(change).has_ack());
  ASSERT_TRUE(proposer.service.Propose(StepRequest("s", 1000), &change, &refusal));
  EXPECT_EQ(change.step().iterations(), 1000u);  // the proposer had the time
  const v1::Response stepped = replica.Apply(change);
  ASSERT_TRUE(stepped.has_step()) << stepped.DebugString();
  EXPECT_EQ(stepped.step().iterations(), 1000u);
  EXPECT_EQ(stepped.SerializeAsString(), proposer.Apply(change).SerializeAsString());
  EXPECT_EQ(replica.State(), proposer.State());
}

TEST_F(ReplicatedServiceTest, AChangeThisNodeDoesNotKnowIsRefusedAlikeAndChangesNothing) {
  ASSERT_TRUE(Both(IngestRequest("s", kMonths, kRevenue)).has_ack());
  const std::string before = replicas_[0]->State();
  v1::ClusterChange unknown;
  unknown.set_origin("somewhere");
  unknown.set_time_unix_nanos(kStart);
  for (auto& replica : replicas_) {
    const v1::Response response = replica->Apply(unknown);
    ASSERT_TRUE(response.has_error());
    EXPECT_EQ(response.error().code(), v1::Error::INVALID_ARGUMENT);
  }
  // A batch record with a name no node accepts.
  v1::ClusterChange bad;
  bad.mutable_batch()->set_series(std::string(1, '\0'));
  for (auto& replica : replicas_) EXPECT_TRUE(replica->Apply(bad).has_error());
  for (auto& replica : replicas_) EXPECT_EQ(replica->State(), before);
}

}  // namespace
}  // namespace gradientd::service
