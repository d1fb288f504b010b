// Service's producer table: its bound, expiry, the id alphabet, recovery,
// and a race for a small table.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cmath>
#include <limits>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "service/service.h"
#include "service_test_support.h"

namespace gradientd::service {
namespace {

// Point 5: the producer table.
class ProducerTableTest : public ::testing::Test {
 protected:
  ProducerTableTest() {
    service_.SetClock([this] { return now_.load(); });
    service_.SetChangeLog(&log_);
  }
  v1::Response Send(const std::string& producer, uint64_t sequence, const std::string& series = "s",
                    Service* service = nullptr) {
    v1::Response response;
    (service ? *service : service_)
        .Handle(IngestRequest(series, {1, 2}, {3, 4}, producer, sequence), &response);
    return response;
  }
  static constexpr int64_t kMinute = 60'000'000'000;
  std::atomic<int64_t> now_{1'700'000'000'000'000'000};
  SeriesStore store_;
  Service service_{store_, {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)}};
  FakeChangeLog log_;
};

TEST_F(ProducerTableTest, ANewProducerIsRefusedOnlyWhileTheTableIsFullOfUnexpiredOnes) {
  for (const char* p : {"p1", "p2", "p3"}) ASSERT_TRUE(Send(p, 1).has_ack()) << p;
  const std::string before = [&] {
    v1::Response r;
    service_.Handle(ListRequest(0, ""), &r);
    return r.SerializeAsString();
  }();
  const v1::Response refused = Send("p4", 1, "new-series");
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(refused.error().message().find("producers"), std::string::npos);
  v1::Response after;
  service_.Handle(ListRequest(0, ""), &after);
  EXPECT_EQ(after.SerializeAsString(), before);  // no series, no points
  EXPECT_EQ(service_.producers(), 3u);
  // Known producers, and batches without a producer, keep working.
  EXPECT_TRUE(Send("p1", 2).has_ack());
  EXPECT_TRUE(Send("", 0).has_ack());
  // p2 and p3 expire; p1 was seen later and stays.
  now_ += 5 * kMinute;
  EXPECT_TRUE(Send("p1", 3).has_ack());
  now_ += 6 * kMinute;
  EXPECT_EQ(Send("p4", 1).ack().accepted(), 2u);
  EXPECT_EQ(Send("p5", 1).ack().accepted(), 2u);
  EXPECT_EQ(Send("p6", 1).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Send("p1", 3).ack().duplicate());  // p1 is remembered
  EXPECT_LE(service_.producers(), 3u);
}

TEST_F(ProducerTableTest, AnExpiredProducerIsForgottenSoItsRetryCountsAgain) {
  ASSERT_EQ(Send("p", 5).ack().accepted(), 2u);
  now_ += 9 * kMinute;
  EXPECT_TRUE(Send("p", 5).ack().duplicate());  // within the expiry
  now_ += 1 * kMinute;                          // 10 minutes since p's last batch
  const v1::Response again = Send("p", 5);
  EXPECT_FALSE(again.ack().duplicate());  // documented: counts again
  EXPECT_EQ(again.ack().total(), 4u);
  EXPECT_TRUE(Send("p", 5).ack().duplicate());
  // Forgotten with it: sequences below 5 are new, once.
  EXPECT_FALSE(Send("p", 1).ack().duplicate());
  EXPECT_TRUE(Send("p", 1).ack().duplicate());
}

TEST_F(ProducerTableTest, ProducerIdsOutsideTheAlphabetAreRefusedAndChangeNothing) {
  const std::string bad_ids[] = {
      std::string("with space"), std::string("tab\t"),
      std::string("nul\0x", 5),  std::string("caf\xc3\xa9"),
      std::string("del\x7f"),    std::string(kMaxProducerIdBytes + 1, 'p')};
  for (const std::string& bad : bad_ids) {
    const v1::Response r = Send(bad, 1, "fresh");
    ASSERT_TRUE(r.has_error()) << bad;
    EXPECT_EQ(r.error().code(), v1::Error::INVALID_ARGUMENT);
    EXPECT_NE(r.error().message().find("producer_id"), std::string::npos);
    EXPECT_EQ(r.error().message().find(bad), std::string::npos);  // not echoed
  }
  EXPECT_EQ(store_.size(), 0u);
  EXPECT_EQ(service_.producers(), 0u);
  // gradctl's ids and the widest legal one pass.
  EXPECT_TRUE(Send("gradctl-0123456789abcdef", 1).has_ack());
  EXPECT_TRUE(Send("gradctl-replay-0123456789abcdef", 1).has_ack());
  EXPECT_TRUE(Send(std::string(kMaxProducerIdBytes, '~'), 1).has_ack());
  std::string all;
  for (char c = 0x21; c <= 0x7e; ++c) all += c;
  Service wide(store_, {.max_producers = 10});
  EXPECT_TRUE(Send(all, 1, "s", &wide).has_ack());
}

// Whatever survives a restart is rebuilt identically: from a snapshot, and
// from the log's records (Apply), expiry included.
TEST_F(ProducerTableTest, RecoveryRebuildsTheProducerTableIdentically) {
  ASSERT_TRUE(Send("old", 7).has_ack());
  now_ += 5 * kMinute;
  ASSERT_TRUE(Send("young", 3).has_ack());
  v1::Snapshot snapshot;
  service_.Checkpoint([] { return uint64_t{1}; }, &snapshot);
  ASSERT_EQ(snapshot.producers_size(), 2);
  for (const v1::ProducerState& p : snapshot.producers()) EXPECT_NE(p.last_seen_unix_nanos(), 0);

  // From the snapshot.
  SeriesStore restored_store;
  Service restored(restored_store,
                   {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)});
  restored.SetClock([this] { return now_.load(); });
  restored.Restore(snapshot);
  // From the log alone.
  SeriesStore replayed_store;
  Service replayed(replayed_store,
                   {.max_producers = 3, .producer_expiry = std::chrono::minutes(10)});
  replayed.SetClock([this] { return now_.load(); });
  for (const v1::JournalRecord& record : log_.records) replayed.Apply(record);

  now_ += 6 * kMinute;  // "old" has expired, "young" has not
  for (Service* s : {&service_, &restored, &replayed}) {
    EXPECT_FALSE(Send("old", 7, "s", s).ack().duplicate());
    EXPECT_TRUE(Send("young", 3, "s", s).ack().duplicate());
  }
  EXPECT_EQ(Send("old", 7, "s", &restored).ack().duplicate(), true);
}

TEST_F(ProducerTableTest, AnEmptyBatchUnderAProducerIdTakesAPlaceLikeAnyOther) {
  for (const char* p : {"e1", "e2", "e3"}) {
    v1::Response r;
    service_.Handle(IngestRequest("s", {}, {}, p, 1), &r);
    ASSERT_TRUE(r.has_ack()) << r.DebugString();
  }
  EXPECT_EQ(service_.producers(), 3u);
  EXPECT_EQ(Send("p4", 1).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  v1::Response again;
  service_.Handle(IngestRequest("s", {}, {}, "e1", 1), &again);
  EXPECT_TRUE(again.ack().duplicate());
}

// Many producers race for a small table while the clock runs: every batch
// is applied once or refused, the table never passes its bound, and every
// point acknowledged is in the series.
TEST(ProducerTableRaceTest, ConcurrentProducersNeverOvershootTheTableOrLoseABatch) {
  std::atomic<int64_t> now{1'000'000'000'000'000'000};
  SeriesStore store;
  Service service(store, {.max_producers = 8, .producer_expiry = std::chrono::seconds(1)});
  service.SetClock([&] { return now.load(); });
  std::atomic<uint64_t> accepted{0};
  std::atomic<bool> bad{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 3000; ++i) {
        const std::string id = "p" + std::to_string((i * 7 + t) % 40);
        v1::Response r;
        service.Handle(IngestRequest("s", {1, 2}, {3, 4}, id, static_cast<uint64_t>(i + 1)), &r);
        if (r.has_ack()) {
          accepted += r.ack().accepted();
        } else if (r.error().code() != v1::Error::RESOURCE_EXHAUSTED) {
          bad = true;
        }
        if (service.producers() > 8) bad = true;
        if (i % 50 == 0) now += 300'000'000;  // 0.3 s
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_FALSE(bad);
  EXPECT_GT(accepted.load(), 0u);
  v1::Request fit;
  fit.mutable_fit()->set_series("s");
  v1::Response r;
  service.Handle(fit, &r);
  EXPECT_EQ(r.fit().n(), accepted.load());
}

}  // namespace
}  // namespace gradientd::service
