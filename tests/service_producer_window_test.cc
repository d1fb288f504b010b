// Exactly-once producers whose batches land out of order (retries on other
// connections, or nodes): each applied once, through restarts, checked
// against an independent ledger of what the producers sent.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <memory>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "service/service.h"
#include "service_test_support.h"

namespace gradientd::service {
namespace {

constexpr uint64_t kWindow = 64;

ServiceLimits WindowLimits() { return {.max_producers = 100, .producer_window = kWindow}; }

v1::Response Send(Service& service, const std::string& producer, uint64_t sequence,
                  const std::string& series = "s") {
  v1::Response response;
  service.Handle(IngestRequest(series, {1, 2}, {3, 4}, producer, sequence), &response);
  return response;
}

uint64_t Count(Service& service, const std::string& series) {
  v1::Request fit;
  fit.mutable_fit()->set_series(series);
  v1::Response r;
  service.Handle(fit, &r);
  return r.has_fit() ? r.fit().n() : 0;
}

TEST(ProducerWindowTest, ARetryLandingAfterLaterBatchesIsAppliedOnce) {
  SeriesStore store;
  Service service(store, WindowLimits());
  for (uint64_t s : std::initializer_list<uint64_t>{1, 2, 4, 5})
    ASSERT_FALSE(Send(service, "p", s).ack().duplicate()) << s;
  const v1::Response late = Send(service, "p", 3);  // 3's first delivery, after 4 and 5
  ASSERT_TRUE(late.has_ack()) << late.DebugString();
  EXPECT_FALSE(late.ack().duplicate());
  EXPECT_EQ(late.ack().accepted(), 2u);
  EXPECT_EQ(late.ack().total(), 10u);
  for (uint64_t s = 1; s <= 5; ++s) {
    const v1::Response again = Send(service, "p", s);
    EXPECT_TRUE(again.ack().duplicate()) << s;
    EXPECT_FALSE(again.ack().below_window()) << s;
    EXPECT_EQ(again.ack().accepted(), 0u);
  }
  EXPECT_EQ(Count(service, "s"), 10u);
}

TEST(ProducerWindowTest, ABatchBelowTheWindowIsTakenAsADuplicateAndSaysSo) {
  SeriesStore store;
  Service service(store, WindowLimits());
  ASSERT_TRUE(Send(service, "p", 1).has_ack());
  ASSERT_TRUE(Send(service, "p", 1 + kWindow + 1).has_ack());  // 2..65 never sent
  const v1::Response old = Send(service, "p", 2);              // 64 below: in the window
  EXPECT_FALSE(old.ack().duplicate());
  ASSERT_TRUE(Send(service, "p", 3 + kWindow).has_ack());  // now 2 is 65 below
  const v1::Response older = Send(service, "p", 1);
  EXPECT_TRUE(older.ack().duplicate());
  EXPECT_TRUE(older.ack().below_window());
  EXPECT_EQ(older.ack().accepted(), 0u);
  EXPECT_EQ(Count(service, "s"), 8u);
}

// Holes below the highest survive a snapshot, and the journal's replay.
TEST(ProducerWindowTest, RecoveryKeepsTheHolesBelowTheHighest) {
  SeriesStore store;
  FakeChangeLog log;
  Service service(store, WindowLimits());
  service.SetChangeLog(&log);
  for (uint64_t s : std::initializer_list<uint64_t>{1, 5, 3, 9})
    ASSERT_TRUE(Send(service, "p", s).has_ack());
  v1::Snapshot snapshot;
  service.Checkpoint([] { return uint64_t{1}; }, &snapshot);
  ASSERT_EQ(snapshot.producers_size(), 1);
  EXPECT_FALSE(snapshot.producers(0).applied_below().empty());

  SeriesStore restored_store;
  Service restored(restored_store, WindowLimits());
  restored.Restore(snapshot);
  SeriesStore replayed_store;
  Service replayed(replayed_store, WindowLimits());
  for (const v1::JournalRecord& record : log.records) replayed.Apply(record);
  for (Service* s : {&restored, &replayed}) {
    for (uint64_t seq : std::initializer_list<uint64_t>{1, 3, 5, 9})
      EXPECT_TRUE(Send(*s, "p", seq).ack().duplicate()) << seq;
    for (uint64_t seq : std::initializer_list<uint64_t>{2, 4, 6, 7, 8, 10}) {
      EXPECT_FALSE(Send(*s, "p", seq).ack().duplicate()) << seq;
    }
    EXPECT_EQ(Count(*s, "s"), 20u);
  }
}

// A log may hold a batch twice (a shared log past its deduplication
// window): replaying it counts the batch once, and two replicas of the same
// log end bit for bit alike.
TEST(ProducerWindowTest, ABatchTwiceInTheLogIsAppliedOnceOnEveryReplica) {
  SeriesStore store;
  FakeChangeLog log;
  Service service(store, WindowLimits());
  service.SetChangeLog(&log);
  for (const uint64_t s : std::initializer_list<uint64_t>{1, 3, 2}) {
    ASSERT_TRUE(Send(service, "p", s).has_ack());
  }
  ASSERT_EQ(log.records.size(), 3u);
  std::vector<v1::JournalRecord> doubled = log.records;
  doubled.push_back(log.records[0]);                    // 1 again, after 3 and 2
  doubled.insert(doubled.begin() + 2, log.records[1]);  // 3 again, at once
  std::string first;
  for (int replica = 0; replica < 2; ++replica) {
    SeriesStore replica_store;
    Service replayed(replica_store, WindowLimits());
    for (const v1::JournalRecord& record : doubled) replayed.Apply(record);
    EXPECT_EQ(Count(replayed, "s"), 6u);
    v1::Snapshot snapshot;
    replayed.Checkpoint([] { return uint64_t{0}; }, &snapshot);
    if (replica == 0) first = snapshot.SerializeAsString();
    EXPECT_EQ(snapshot.SerializeAsString(), first);
    EXPECT_TRUE(Send(replayed, "p", 2).ack().duplicate());
    EXPECT_FALSE(Send(replayed, "p", 4).ack().duplicate());
  }
}

// Producers deliver their batches in random orders, each possibly several
// times (a lost ack, a retry elsewhere), never running more than the window
// ahead of their oldest unacknowledged batch; the server restarts from a
// snapshot and the journal after it. The ledger (what was sent, and what
// the server acknowledged as applied) says each batch counted exactly once.
TEST(ProducerWindowTest, OutOfOrderRetriesThroughRestartsCountEachBatchOnce) {
  for (uint64_t seed = 1; seed <= 12; ++seed) {
    std::mt19937_64 rng(seed);
    FakeChangeLog log;  // the journal: every record since the start
    auto store = std::make_unique<SeriesStore>();
    auto service = std::make_unique<Service>(*store, WindowLimits());
    service->SetChangeLog(&log);
    v1::Snapshot snapshot;  // the last checkpoint

    struct Producer {
      uint64_t next = 1;
      std::set<uint64_t> sent;     // the ledger
      std::set<uint64_t> pending;  // sent, no ack seen
      std::set<uint64_t> applied;  // acknowledged as applied (not duplicate)
    };
    std::map<std::string, Producer> producers;
    for (int p = 0; p < 5; ++p) producers["p" + std::to_string(p)];
    for (int step = 0; step < 3000; ++step) {
      auto it = producers.begin();
      std::advance(it, static_cast<long>(rng() % producers.size()));
      const std::string& id = it->first;
      Producer& producer = it->second;
      const bool can_send =
          producer.pending.empty() || producer.next - *producer.pending.begin() < kWindow;
      if (can_send && (producer.pending.empty() || rng() % 3 == 0)) {
        producer.sent.insert(producer.next);
        producer.pending.insert(producer.next);
        producer.next += 1 + rng() % 3;  // gaps are allowed
        continue;
      }
      if (producer.pending.empty()) continue;
      auto pick = producer.pending.begin();
      std::advance(pick, static_cast<long>(rng() % producer.pending.size()));
      const uint64_t sequence = *pick;
      const v1::Response r = Send(*service, id, sequence, "s-" + id);
      ASSERT_TRUE(r.has_ack()) << r.DebugString();
      ASSERT_FALSE(r.ack().below_window()) << id << " " << sequence;
      if (r.ack().duplicate()) {
        ASSERT_TRUE(producer.applied.count(sequence))
            << "seed " << seed << ": " << id << "'s " << sequence << " taken for a duplicate";
      } else {
        ASSERT_TRUE(producer.applied.insert(sequence).second)
            << "seed " << seed << ": " << id << "'s " << sequence << " applied twice";
      }
      if (rng() % 4 != 0) producer.pending.erase(pick);  // else its ack was lost
      if (rng() % 200 == 0) {
        service->Checkpoint([&] { return static_cast<uint64_t>(log.records.size()); }, &snapshot);
      }
      if (rng() % 500 == 0) {  // a crash: the last snapshot, then the journal after it
        store = std::make_unique<SeriesStore>();
        service = std::make_unique<Service>(*store, WindowLimits());
        service->Restore(snapshot);
        for (uint64_t i = snapshot.journal_position(); i < log.records.size(); ++i) {
          service->Apply(log.records[i]);
        }
        service->SetChangeLog(&log);
      }
    }
    for (auto& [id, producer] : producers) {
      for (const uint64_t sequence : producer.pending) {  // the retries still owed
        const v1::Response r = Send(*service, id, sequence, "s-" + id);
        ASSERT_TRUE(r.has_ack());
        if (!r.ack().duplicate()) {
          ASSERT_TRUE(producer.applied.insert(sequence).second);
        }
      }
      EXPECT_EQ(producer.applied, producer.sent) << "seed " << seed << ", " << id;
      EXPECT_EQ(Count(*service, "s-" + id), 2 * producer.sent.size())
          << "seed " << seed << ", " << id;
      for (const uint64_t sequence : producer.applied) {
        EXPECT_TRUE(Send(*service, id, sequence, "s-" + id).ack().duplicate()) << sequence;
      }
    }
  }
}

}  // namespace
}  // namespace gradientd::service
