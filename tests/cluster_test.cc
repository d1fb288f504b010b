// Cluster nodes (in-process) on a real 3-node nats-server cluster on
// loopback (NatsCluster): any node answers any series, bit-identically once
// caught up; a batch retried on another node counts once; a node that
// joins later catches up to the same state; a kill -9 of a stream's leader
// during ingest loses nothing acknowledged and doubles nothing (against an
// independent ledger); with NATS gone, writes get an Error and reads go on.
#include "cluster/cluster.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "jetstream/shard_streams.h"
#include "nats_cluster.h"

namespace gradientd::cluster {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ClusterNodeOptions Options(const testing::NatsCluster& nats, uint32_t shards = 3) {
  ClusterNodeOptions options;
  options.streams.urls = nats.Urls();
  options.streams.name = "test";
  options.streams.shards = shards;
  options.streams.replicas = 3;
  options.streams.timeout = 2000ms;
  return options;
}

// Starts a node once the NATS cluster has a JetStream leader (bounded).
std::unique_ptr<Cluster> StartNode(testing::NatsCluster& nats, const ClusterNodeOptions& options) {
  const auto deadline = Clock::now() + 60s;
  Status last;
  while (Clock::now() < deadline) {
    if (const std::string problem = nats.Problem(); !problem.empty()) {
      ADD_FAILURE() << problem;
      return nullptr;
    }
    auto node = std::make_unique<Cluster>(options);
    std::ostringstream log;
    last = node->Start(log);
    if (last.ok()) return node;
    std::this_thread::sleep_for(250ms);
  }
  ADD_FAILURE() << "no cluster node started in 60 s: " << last.message();
  return nullptr;
}

// A request's response as a client gets it: at once for a query or a
// refusal, once decided for a change.
v1::Response Call(Cluster& node, const v1::Request& request) {
  v1::Response response;
  const uint64_t token = node.Handle(request, &response);
  if (token == 0) return response;
  auto decided = std::make_shared<std::promise<v1::Response>>();
  auto future = decided->get_future();
  node.OnDecided(token, [decided](v1::Response r) { decided->set_value(std::move(r)); });
  // Every change is decided within decide_timeout (20 s).
  if (future.wait_for(60s) != std::future_status::ready) {
    ADD_FAILURE() << "no response in 60 s";
    return {};
  }
  return future.get();
}

v1::Request Batch(const std::string& series, const std::vector<double>& x,
                  const std::vector<double>& y, const std::string& producer, uint64_t sequence) {
  v1::Request r;
  v1::PointBatch* b = r.mutable_ingest();
  b->set_series(series);
  for (double v : x) b->add_x(v);
  for (double v : y) b->add_y(v);
  b->set_producer_id(producer);
  b->set_sequence(sequence);
  return r;
}

// Every series in every view, as one string: what a client can observe.
std::string StateOf(Cluster& node) {
  std::string state;
  for (const v1::View view : {v1::VIEW_ALL, v1::VIEW_DECAYED}) {
    std::string token;
    for (int page = 0; page < 1000; ++page) {
      v1::Request r;
      r.mutable_list()->set_view(view);
      r.mutable_list()->set_page_size(7);  // several pages: the merge across shards
      r.mutable_list()->set_page_token(token);
      const v1::Response response = Call(node, r);
      EXPECT_TRUE(response.has_series_list()) << response.DebugString();
      state += response.SerializeAsString();
      token = response.series_list().next_page_token();
      if (token.empty()) break;
    }
  }
  return state;
}

// What the ledger says a series holds: its acknowledged points.
struct Points {
  std::vector<double> x, y;
};

class ClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(nats_.Problem().empty()) << nats_.Problem();
    for (int i = 0; i < 3; ++i) {
      nodes_.push_back(StartNode(nats_, Options(nats_)));
      ASSERT_NE(nodes_.back(), nullptr);
    }
    jetstream::ClusterOptions probe = Options(nats_).streams;
    ASSERT_TRUE(jetstream::ShardStreams::Open(probe, &probe_).ok());
  }

  // Waits until every node has applied every shard up to its stream's end.
  void WaitCaughtUp(const std::vector<Cluster*>& nodes) {
    std::vector<uint64_t> ends;
    for (uint32_t i = 0; i < probe_->shards(); ++i) {
      jetstream::ShardState state;
      Status s = probe_->State(i, &state);
      for (int tries = 0; !s.ok() && tries < 100; ++tries) {
        std::this_thread::sleep_for(200ms);
        s = probe_->State(i, &state);
      }
      ASSERT_TRUE(s.ok()) << s.message();
      ends.push_back(state.last_sequence);
    }
    const auto deadline = Clock::now() + 60s;
    for (Cluster* node : nodes) {
      while (true) {
        bool done = true;
        const auto progress = node->Progress();
        for (uint32_t i = 0; i < ends.size(); ++i) done = done && progress[i].applied >= ends[i];
        if (done) break;
        ASSERT_LT(Clock::now(), deadline) << "a node did not catch up in 60 s";
        std::this_thread::sleep_for(20ms);
      }
    }
  }
  std::vector<Cluster*> All() {
    std::vector<Cluster*> all;
    for (auto& node : nodes_) all.push_back(node.get());
    return all;
  }

  // Sends producer `id`'s batches 1..count through nodes[first], moving to
  // the next node after an Error (as gradctl's failover does) and resending
  // with the same sequence until acknowledged; the ledger gets each
  // acknowledged batch once.
  void Produce(const std::string& id, int first, int count, const std::vector<std::string>& series,
               std::map<std::string, Points>* ledger, std::mutex* ledger_mu) {
    int node = first;
    for (int sequence = 1; sequence <= count; ++sequence) {
      const std::string& name = series[static_cast<std::size_t>(sequence) % series.size()];
      std::vector<double> x, y;
      for (int k = 0; k < 5; ++k) {
        x.push_back(sequence * 0.37 + k * 1.3 + first);
        y.push_back(2.5 * x.back() - 1.25 + ((sequence * 7 + k * 3) % 11) * 0.01);
      }
      const v1::Request request = Batch(name, x, y, id, static_cast<uint64_t>(sequence));
      bool counted = false;
      for (int attempt = 0; attempt < 50; ++attempt) {
        const v1::Response r = Call(*nodes_[static_cast<std::size_t>(node)], request);
        if (r.has_ack()) {
          // A retry of a batch an earlier attempt stored is a duplicate.
          counted = r.ack().accepted() == 5 || r.ack().duplicate();
          EXPECT_TRUE(counted) << r.DebugString();
          break;
        }
        EXPECT_TRUE(r.has_error()) << r.DebugString();
        EXPECT_EQ(r.error().code(), v1::Error::UNAVAILABLE) << r.error().message();
        node = (node + 1) % static_cast<int>(nodes_.size());
      }
      ASSERT_TRUE(counted) << id << ":" << sequence << " was never acknowledged";
      std::lock_guard lock(*ledger_mu);
      Points& points = (*ledger)[name];
      points.x.insert(points.x.end(), x.begin(), x.end());
      points.y.insert(points.y.end(), y.begin(), y.end());
    }
  }

  // Every node holds what the ledger says: each series' count, and its
  // least-squares line from the ledger's points (near: the order of the
  // batches differs from the ledger's).
  void ExpectLedger(const std::map<std::string, Points>& ledger) {
    for (auto& node : nodes_) {
      for (const auto& [name, points] : ledger) {
        v1::Request r;
        r.mutable_fit()->set_series(name);
        r.mutable_fit()->set_view(v1::VIEW_ALL);
        const v1::Response fit = Call(*node, r);
        ASSERT_TRUE(fit.has_fit()) << name << ": " << fit.DebugString();
        EXPECT_EQ(fit.fit().n(), points.x.size()) << name;
        // Two passes in long double: the ledger's own least-squares slope.
        using Wide = long double;
        const auto n = static_cast<Wide>(points.x.size());
        Wide sx = 0, sy = 0;
        for (std::size_t i = 0; i < points.x.size(); ++i) {
          sx += static_cast<Wide>(points.x[i]);
          sy += static_cast<Wide>(points.y[i]);
        }
        Wide sxx = 0, sxy = 0;
        for (std::size_t i = 0; i < points.x.size(); ++i) {
          const Wide dx = static_cast<Wide>(points.x[i]) - sx / n;
          sxx += dx * dx;
          sxy += dx * (static_cast<Wide>(points.y[i]) - sy / n);
        }
        const double m = static_cast<double>(sxy / sxx);
        EXPECT_NEAR(fit.fit().least_squares().m(), m, 1e-9 * std::abs(m)) << name;
      }
    }
  }

  testing::NatsCluster nats_{3};
  std::vector<std::unique_ptr<Cluster>> nodes_;
  std::unique_ptr<jetstream::ShardStreams> probe_;
};

// Names NATS subjects cannot carry, and the default series.
const std::vector<std::string> kSeries = {"plain",
                                          "dots.in.name",
                                          "star*",
                                          "gt>",
                                          "with space",
                                          "\xc3\xbc"
                                          "n\xc3\xaf"
                                          "code",
                                          ""};

TEST_F(ClusterTest, ProducersOnEveryNodeAndEveryNodeAnswersBitIdentically) {
  std::map<std::string, Points> ledger;
  std::mutex ledger_mu;
  std::vector<std::thread> producers;
  for (int i = 0; i < 3; ++i) {
    producers.emplace_back(
        [&, i] { Produce("producer-" + std::to_string(i), i, 30, kSeries, &ledger, &ledger_mu); });
  }
  // Descent settings and steps through other nodes meanwhile.
  v1::Request configure;
  configure.mutable_configure()->set_series("plain");
  configure.mutable_configure()->set_half_life_nanos(5'000'000'000);
  configure.mutable_configure()->set_steps_per_batch(2);
  const v1::Response configured = Call(*nodes_[1], configure);
  EXPECT_FALSE(configured.has_error()) << configured.DebugString();
  for (auto& p : producers) p.join();
  v1::Request step;
  step.mutable_step()->set_series("dots.in.name");
  step.mutable_step()->set_iterations(300);
  const v1::Response stepped = Call(*nodes_[2], step);
  ASSERT_TRUE(stepped.has_step()) << stepped.DebugString();
  EXPECT_EQ(stepped.step().iterations(), 300u);

  WaitCaughtUp(All());
  const std::string state = StateOf(*nodes_[0]);
  EXPECT_EQ(StateOf(*nodes_[1]), state);
  EXPECT_EQ(StateOf(*nodes_[2]), state);
  ExpectLedger(ledger);
  EXPECT_EQ(nodes_[0]->series(), kSeries.size());
  // The model after the step is the same on every node.
  v1::Request fit;
  fit.mutable_fit()->set_series("dots.in.name");
  const std::string model = Call(*nodes_[0], fit).SerializeAsString();
  EXPECT_EQ(Call(*nodes_[1], fit).SerializeAsString(), model);
  EXPECT_EQ(Call(*nodes_[2], fit).SerializeAsString(), model);
}

TEST_F(ClusterTest, ABatchRetriedOnAnotherNodeCountsOnceEvenAfterLaterOnes) {
  for (uint64_t sequence = 1; sequence <= 5; ++sequence) {
    const v1::Response r =
        Call(*nodes_[0], Batch("s", {static_cast<double>(sequence)}, {2}, "p", sequence));
    ASSERT_TRUE(r.has_ack()) << r.DebugString();
  }
  // Sequence 3 again, through another node (its first ack was lost).
  const v1::Response retry = Call(*nodes_[1], Batch("s", {3}, {2}, "p", 3));
  ASSERT_TRUE(retry.has_ack()) << retry.DebugString();
  EXPECT_TRUE(retry.ack().duplicate());
  EXPECT_EQ(retry.ack().total(), 5u);
  // Sequence 7 before 6, on the third node: both count.
  EXPECT_EQ(Call(*nodes_[2], Batch("s", {7}, {2}, "p", 7)).ack().accepted(), 1u);
  EXPECT_EQ(Call(*nodes_[0], Batch("s", {6}, {2}, "p", 6)).ack().total(), 7u);
  WaitCaughtUp(All());
  for (auto& node : nodes_) {
    v1::Request r;
    r.mutable_fit()->set_series("s");
    EXPECT_EQ(Call(*node, r).fit().n(), 7u);
  }
}

TEST_F(ClusterTest, ANodeThatJoinsLaterCatchesUpToTheSameState) {
  std::map<std::string, Points> ledger;
  std::mutex ledger_mu;
  Produce("early", 0, 20, kSeries, &ledger, &ledger_mu);
  auto late = StartNode(nats_, Options(nats_));
  ASSERT_NE(late, nullptr);
  // Start returns caught up with what the streams held when it began.
  EXPECT_TRUE(late->CatchingUp().ok());
  WaitCaughtUp({nodes_[0].get(), late.get()});
  EXPECT_EQ(StateOf(*late), StateOf(*nodes_[0]));
  // And it takes part: its changes reach the others.
  ASSERT_TRUE(Call(*late, Batch("from-late", {1, 2}, {3, 4}, "", 0)).has_ack());
  WaitCaughtUp(All());
  v1::Request r;
  r.mutable_fit()->set_series("from-late");
  EXPECT_EQ(Call(*nodes_[2], r).fit().n(), 2u);
}

TEST_F(ClusterTest, KillingAStreamLeaderDuringIngestLosesNothingAcknowledged) {
  std::map<std::string, Points> ledger;
  std::mutex ledger_mu;
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int i = 0; i < 3; ++i) {
    producers.emplace_back([&, i] {
      Produce("killed-" + std::to_string(i), i, 60, kSeries, &ledger, &ledger_mu);
      ++done;
    });
  }
  // Once some batches are in, kill -9 the leader of shard 0's stream.
  const auto deadline = Clock::now() + 60s;
  jetstream::ShardState state;
  while (Clock::now() < deadline) {
    if (probe_->State(0, &state).ok() && state.last_sequence >= 10) break;
    std::this_thread::sleep_for(20ms);
  }
  const int leader = nats_.IndexOf(state.leader);
  ASSERT_GE(leader, 0) << "leader '" << state.leader << "'";
  nats_.Kill(leader);
  for (auto& p : producers) p.join();
  EXPECT_EQ(done.load(), 3);
  nats_.Start(leader);
  WaitCaughtUp(All());
  ExpectLedger(ledger);
  const std::string state0 = StateOf(*nodes_[0]);
  EXPECT_EQ(StateOf(*nodes_[1]), state0);
  EXPECT_EQ(StateOf(*nodes_[2]), state0);
}

TEST_F(ClusterTest, WithNatsGoneWritesGetAnErrorAndReadsGoOn) {
  ClusterNodeOptions options = Options(nats_);
  options.decide_timeout = 3000ms;
  auto node = StartNode(nats_, options);
  ASSERT_NE(node, nullptr);
  ASSERT_TRUE(Call(*node, Batch("kept", {1, 2, 3}, {2, 4, 7}, "", 0)).has_ack());
  WaitCaughtUp({node.get()});
  for (int i = 0; i < nats_.size(); ++i) nats_.Kill(i);
  const auto start = Clock::now();
  const v1::Response refused = Call(*node, Batch("kept", {4}, {9}, "p", 1));
  ASSERT_TRUE(refused.has_error()) << refused.DebugString();
  EXPECT_EQ(refused.error().code(), v1::Error::UNAVAILABLE);
  EXPECT_LT(Clock::now() - start, 30s);
  v1::Request fit;
  fit.mutable_fit()->set_series("kept");
  const v1::Response read = Call(*node, fit);
  ASSERT_TRUE(read.has_fit()) << read.DebugString();
  EXPECT_EQ(read.fit().n(), 3u);
  // /readyz says why (bounded: the client notices the lost connection).
  Status health = node->Health();
  for (int i = 0; i < 300 && health.ok(); ++i) {
    std::this_thread::sleep_for(100ms);
    health = node->Health();
  }
  EXPECT_EQ(health.code(), StatusCode::kUnavailable);
  EXPECT_NE(health.message().find("not connected to the cluster's NATS servers"), std::string::npos)
      << health.message();
}

}  // namespace
}  // namespace gradientd::cluster
