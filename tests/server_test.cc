// The real Asio server on port 0, driven through the client library and raw
// sockets: pipelining, ordering, thread placement, bad frames; the Peer's
// state; durability through an app::Node.
#include <gtest/gtest.h>

#include "durable/data_directory.h"
#include "running_node.h"
#include "server/peer_state.h"
#include "server_test_support.h"

namespace gradientd {
namespace {

TEST_F(ServerTest, ManyPipeliningProducersAreCountedExactly) {
  constexpr int kProducers = 6, kBatches = 40, kPoints = 500, kWindow = 8;
  std::vector<std::vector<double>> xs(kProducers), ys(kProducers);
  std::vector<std::thread> producers;
  std::atomic<int> failures{0};
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      std::mt19937_64 rng(static_cast<uint64_t>(p) + 1);
      std::normal_distribution<double> noise(0, 3);
      std::unique_ptr<client::Client> c = Connect();
      if (!c) return failures++, void();
      for (int batch = 0; batch < kBatches; ++batch) {
        v1::Request r;
        v1::PointBatch* b = r.mutable_ingest();
        b->set_series("shared");
        for (int i = 0; i < kPoints; ++i) {
          const double x = 1.7e9 + (batch * kPoints + i) * 0.5 + p;
          const double y = 2.5 * (x - 1.7e9) - 40 + noise(rng);
          b->add_x(x);
          b->add_y(y);
          xs[static_cast<std::size_t>(p)].push_back(x);
          ys[static_cast<std::size_t>(p)].push_back(y);
        }
        if (!c->Send(r).ok()) return failures++, void();
        while (c->in_flight() >= kWindow) {
          v1::Response ack;
          if (!c->Receive(&ack).ok() || !ack.has_ack()) return failures++, void();
        }
      }
      while (c->in_flight() > 0) {
        v1::Response ack;
        if (!c->Receive(&ack).ok() || !ack.has_ack()) return failures++, void();
      }
    });
  }
  for (auto& t : producers) t.join();
  ASSERT_EQ(failures.load(), 0);

  core::PointStats expected;
  for (int p = 0; p < kProducers; ++p) {
    expected.Merge(core::PointStats::FromPoints(xs[static_cast<std::size_t>(p)],
                                                ys[static_cast<std::size_t>(p)]));
  }
  auto c = Connect();
  const v1::Response fit = Fit(*c, "shared");
  ASSERT_TRUE(fit.has_fit()) << fit.DebugString();
  EXPECT_EQ(fit.fit().n(), static_cast<uint64_t>(kProducers * kBatches * kPoints));
  const auto line = expected.LeastSquares();
  ASSERT_TRUE(line && fit.fit().has_least_squares());
  EXPECT_NEAR(fit.fit().least_squares().m(), line->m, 1e-12 * std::fabs(line->m));
  EXPECT_NEAR(fit.fit().mean_x(), expected.mean_x(), 1e-12 * expected.mean_x());
  EXPECT_NEAR(fit.fit().mean_y(), expected.mean_y(), 1e-9 * std::fabs(expected.mean_y()));
}

TEST_F(ServerTest, PipelinedResponsesComeInRequestOrderWithTheirIds) {
  auto c = Connect();
  std::vector<uint64_t> ids;
  for (int i = 0; i < 50; ++i) {
    v1::Request r;
    if (i % 3 == 0) {
      r.mutable_ingest()->add_x(i);
      r.mutable_ingest()->add_y(2 * i);
    } else if (i % 3 == 1) {
      r.mutable_fit();
    } else {
      r.mutable_gradient()->set_series("missing");
    }
    ASSERT_TRUE(c->Send(r).ok());
    ids.push_back(r.id());
  }
  for (int i = 0; i < 50; ++i) {
    v1::Response response;
    ASSERT_TRUE(c->Receive(&response).ok());
    EXPECT_EQ(response.id(), ids[static_cast<std::size_t>(i)]);
    switch (i % 3) {
      case 0:
        EXPECT_EQ(response.ack().total(), static_cast<uint64_t>(i / 3 + 1));
        break;
      case 1:
        EXPECT_TRUE(response.has_fit());
        break;
      default:
        EXPECT_EQ(response.error().code(), v1::Error::NOT_FOUND);
    }
  }
}

// A connection starts on the query thread and moves to an ingest thread at
// its first ingest: nothing it sent or was sent may be lost or reordered.
TEST_F(ServerTest, ConnectionThatStartsIngestingKeepsItsStateAndOrder) {
  auto c = Connect();
  v1::Request query;
  query.mutable_gradient()->set_series("moving");
  EXPECT_EQ(Call(*c, query).error().code(), v1::Error::NOT_FOUND);
  for (int round = 1; round <= 20; ++round) {
    // Each round pipelines an ingest between two queries.
    v1::Request before = query, ingest, after;
    ingest.mutable_ingest()->set_series("moving");
    ingest.mutable_ingest()->add_x(round);
    ingest.mutable_ingest()->add_y(3.0 * round + 1);
    after.mutable_fit()->set_series("moving");
    for (v1::Request* r : {&before, &ingest, &after}) ASSERT_TRUE(c->Send(*r).ok());
    v1::Response response;
    ASSERT_TRUE(c->Receive(&response).ok());
    EXPECT_EQ(response.id(), before.id());
    if (round == 1) {
      EXPECT_EQ(response.error().code(), v1::Error::NOT_FOUND);
    } else {
      EXPECT_TRUE(response.has_gradient()) << response.DebugString();
    }
    ASSERT_TRUE(c->Receive(&response).ok());
    EXPECT_EQ(response.id(), ingest.id());
    EXPECT_EQ(response.ack().total(), static_cast<uint64_t>(round));
    ASSERT_TRUE(c->Receive(&response).ok());
    EXPECT_EQ(response.id(), after.id());
    EXPECT_EQ(response.fit().n(), static_cast<uint64_t>(round));
  }
  // Other connections, querying and ingesting, see the same series.
  auto other = Connect();
  EXPECT_EQ(Fit(*other, "moving").fit().n(), 20u);
  EXPECT_NEAR(Fit(*other, "moving").fit().least_squares().m(), 3.0, 1e-12);
}

TEST_F(ServerTest, ClientMayChooseItsTcpCongestionControl) {
  tcp::socket raw = RawConnect();
  ASSERT_TRUE(client::SetTcpCongestion(raw.native_handle(), "reno").ok());
  EXPECT_EQ(client::TcpCongestion(raw.native_handle()), "reno");

  client::ConnectOptions options;
  options.tcp_congestion = "reno";
  std::unique_ptr<client::Client> c;
  ASSERT_TRUE(client::Client::Connect(address_, options, &c).ok());
  EXPECT_EQ(Fit(*c, "none").error().code(), v1::Error::NOT_FOUND);

  options.tcp_congestion = "no-such-algorithm";
  const Status refused = client::Client::Connect(address_, options, &c);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(refused.message(),
            "cannot use TCP congestion control 'no-such-algorithm': this kernel has no such "
            "algorithm (see net.ipv4.tcp_available_congestion_control)");
}

// The scheduling policy of each of this process's threads named `prefix`*.
std::vector<int> PoliciesOfThreadsNamed(const std::string& prefix) {
  std::vector<int> policies;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::string name;
    std::getline(std::ifstream(task.path() / "comm"), name);
    if (name.rfind(prefix, 0) != 0) continue;
    policies.push_back(sched_getscheduler(std::stoi(task.path().filename().string())));
  }
  return policies;
}

TEST_F(ServerTest, IngestThreadsRunAsBatchWorkAndTheQueryThreadDoesNot) {
  // Where the kernel refuses SCHED_BATCH, the server goes on without it.
  bool allowed = false;
  std::thread probe([&allowed] {
    sched_param param{};
    allowed = pthread_setschedparam(pthread_self(), SCHED_BATCH, &param) == 0;
  });
  probe.join();
  if (!allowed) GTEST_SKIP() << "this kernel refuses SCHED_BATCH";
  // Run() names and sets up its threads as they start: give them time.
  const std::vector<int> batch = {SCHED_BATCH, SCHED_BATCH}, other = {SCHED_OTHER};
  std::vector<int> ingest, query;
  for (int i = 0; i < 10'000 && (ingest != batch || query != other); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    ingest = PoliciesOfThreadsNamed("gd-ingest-");
    query = PoliciesOfThreadsNamed("gd-query");
  }
  EXPECT_EQ(ingest, batch);
  EXPECT_EQ(query, other);
}

TEST_F(ServerTest, InvalidRequestGetsAnErrorAndTheConnectionStaysUsable) {
  auto c = Connect();
  v1::Request good;
  good.mutable_ingest()->set_series("s");
  good.mutable_ingest()->add_x(1);
  good.mutable_ingest()->add_y(2);
  good.mutable_ingest()->add_x(3);
  good.mutable_ingest()->add_y(5);
  ASSERT_TRUE(Call(*c, good).has_ack());
  const std::string before = Fit(*c, "s").SerializeAsString();

  v1::Request bad = good;
  bad.mutable_ingest()->add_x(std::nan(""));
  bad.mutable_ingest()->add_y(1);
  const v1::Response error = Call(*c, bad);
  ASSERT_TRUE(error.has_error());
  EXPECT_EQ(error.error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_NE(error.error().message().find("x[2]"), std::string::npos) << error.error().message();

  v1::Request step;
  step.mutable_step()->set_series("s");
  step.mutable_step()->set_iterations(1);
  step.mutable_step()->set_learning_rate(-1);
  EXPECT_EQ(Call(*c, step).error().code(), v1::Error::INVALID_ARGUMENT);

  // Same connection, state exactly as before.
  const v1::Response after = Fit(*c, "s");
  v1::Response normalized = after;
  normalized.set_id(0);
  v1::Response expected;
  ASSERT_TRUE(expected.ParseFromString(before));
  expected.set_id(0);
  EXPECT_EQ(normalized.SerializeAsString(), expected.SerializeAsString());
}

TEST_F(ServerTest, UndecodableFrameGetsAnErrorThenTheConnectionCloses) {
  auto bystander = Connect();
  v1::Request ingest;
  ingest.mutable_ingest()->add_x(1);
  ingest.mutable_ingest()->add_y(1);
  ASSERT_TRUE(Call(*bystander, ingest).has_ack());

  tcp::socket raw = RawConnect();
  const uint8_t garbage[] = {5, 0xff, 0xff, 0xff, 0xff, 0xff};
  asio::write(raw, asio::buffer(garbage));
  v1::Response response;
  ASSERT_TRUE(ReadResponse(raw, &response));
  EXPECT_EQ(response.error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_TRUE(ClosedByServer(raw));

  // Another client is unaffected.
  const v1::Response fit = Fit(*bystander, "default");
  EXPECT_EQ(fit.fit().n(), 1u);
}

TEST_F(ServerTest, OversizeFrameIsRefusedBeforeItsBodyArrives) {
  tcp::socket raw = RawConnect();
  // Declares 2 MiB (the limit here is 1 MiB) and sends none of it.
  std::string header;
  v1::Request big;
  big.mutable_ingest()->mutable_x()->Resize(1 << 18, 0.0);
  big.mutable_ingest()->mutable_y()->Resize(1 << 18, 0.0);
  protocol::AppendFrame(big, &header);
  asio::write(raw, asio::buffer(header.data(), 4));
  v1::Response response;
  ASSERT_TRUE(ReadResponse(raw, &response));
  EXPECT_EQ(response.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(response.error().message().find("limit"), std::string::npos);
  EXPECT_TRUE(ClosedByServer(raw));
  EXPECT_EQ(store_.size(), 0u);
}

TEST_F(ServerTest, ConnectionDroppedMidFrameChangesNothing) {
  {
    tcp::socket raw = RawConnect();
    std::string frame;
    v1::Request r;
    r.mutable_ingest()->set_series("half");
    r.mutable_ingest()->add_x(1);
    r.mutable_ingest()->add_y(1);
    protocol::AppendFrame(r, &frame);
    asio::write(raw, asio::buffer(frame.data(), frame.size() - 3));
  }  // closed mid-frame
  auto c = Connect();
  EXPECT_EQ(Fit(*c, "half").error().code(), v1::Error::NOT_FOUND);
}

TEST_F(ServerTest, StopEndsIdleConnections) {
  auto idle = Connect();
  auto also_idle = Connect();
  ASSERT_TRUE(Fit(*idle, "x").has_error());
  // TearDown's Stop() and join() must return although these stay open.
}

TEST_F(ServerTest, OpenServerAnswersAnyHelloWithEveryRole) {
  auto c = Connect();
  v1::Request hello;
  hello.mutable_hello()->set_token("whatever-it-is");
  const v1::Response response = Call(*c, hello);
  ASSERT_TRUE(response.has_hello()) << response.DebugString();
  EXPECT_TRUE(response.hello().open());
  EXPECT_EQ(response.hello().roles_size(), 3);
  // And without one, everything is allowed as before.
  auto plain = Connect();
  v1::Request configure;
  configure.mutable_configure()->set_series("s");
  EXPECT_TRUE(Call(*plain, configure).has_fit());
}

// --- PeerState: the connection's coroutines, by named transitions. -----------

TEST(PeerStateTest, ANewPeerReadsWatchesAndMayMoveOnce) {
  server::PeerState state;
  EXPECT_TRUE(state.reading());
  EXPECT_TRUE(state.watching());
  EXPECT_TRUE(state.may_move());
  EXPECT_FALSE(state.reader_ended());
  EXPECT_FALSE(state.wants_move());
  EXPECT_TRUE(state.closes_cleanly());
  state.ReaderParkedForMove();
  state.ReaderEnded();
  state.WriterEnded();
  EXPECT_TRUE(state.wants_move());
  EXPECT_FALSE(state.watching());
  state.Moved();
  EXPECT_FALSE(state.may_move());
  EXPECT_FALSE(state.wants_move());
  EXPECT_FALSE(state.reader_ended());
  EXPECT_TRUE(state.watching());
}

TEST(PeerStateTest, AFailedWriteStopsTheReaderAndCancelsTheMove) {
  server::PeerState state;
  state.ReaderParkedForMove();
  state.WriteFailed();
  EXPECT_FALSE(state.reading());
  EXPECT_FALSE(state.wants_move());
  EXPECT_FALSE(state.closes_cleanly());
  EXPECT_TRUE(state.watching());  // until the writer ends
}

TEST(PeerStateTest, AbandonStopsAllThreeWithoutACleanClose) {
  server::PeerState state;
  state.Abandon();
  EXPECT_TRUE(state.abandoned());
  EXPECT_FALSE(state.reading());
  EXPECT_FALSE(state.watching());
  EXPECT_FALSE(state.closes_cleanly());
}

TEST(DurableServerTest, EveryAcknowledgedBatchSurvivesARestart) {
  const std::string dir =
      ::testing::TempDir() + "durable_server_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  durable::DataDirectoryOptions data_options;
  data_options.path = dir;
  uint64_t acknowledged = 0;
  {
    testing::RunningNode node(testing::LoopbackNodeOptions(dir, 2));
    ASSERT_TRUE(node.Start().ok());
    std::vector<std::thread> producers;
    std::atomic<uint64_t> acked{0};
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&, p] {
        std::unique_ptr<client::Client> c;
        ASSERT_TRUE(client::Client::Connect(node.address(), &c).ok());
        for (int batch = 0; batch < 30; ++batch) {
          v1::Request r;
          r.mutable_ingest()->set_series("s");
          r.mutable_ingest()->set_producer_id("producer-" + std::to_string(p));
          r.mutable_ingest()->set_sequence(static_cast<uint64_t>(batch) + 1);
          for (int i = 0; i < 100; ++i) {
            r.mutable_ingest()->add_x(i);
            r.mutable_ingest()->add_y(p + i * 0.5);
          }
          ASSERT_TRUE(c->Send(r).ok());
          while (c->in_flight() >= 4) {
            v1::Response ack;
            ASSERT_TRUE(c->Receive(&ack).ok());
            ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
            acked += ack.ack().accepted();
          }
        }
        while (c->in_flight() > 0) {
          v1::Response ack;
          ASSERT_TRUE(c->Receive(&ack).ok());
          acked += ack.ack().accepted();
        }
      });
    }
    for (auto& t : producers) t.join();
    node.Stop();
    acknowledged = acked.load();
    // No Finish(): recovery must come from the journal alone.
  }
  EXPECT_EQ(acknowledged, 9000u);
  service::SeriesStore store;
  service::Service service(store);
  std::unique_ptr<durable::DataDirectory> data;
  durable::RecoveryReport report;
  ASSERT_TRUE(durable::DataDirectory::Open(data_options, service, &data, &report).ok());
  EXPECT_EQ(report.points, acknowledged);
  EXPECT_EQ(report.records_replayed, 90u);
  data.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradientd
