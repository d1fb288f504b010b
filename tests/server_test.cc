// The real Asio server on port 0, driven through the client library and raw
// sockets.
#include "server/server.h"

#include <gtest/gtest.h>
#include <pthread.h>
#include <sched.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>
#include <vector>

#include "auth/authenticator.h"
#include "client/client.h"
#include "core/point_stats.h"
#include "protocol/frame_codec.h"
#include "service/series_store.h"
#include "service/service.h"
#include "storage/data_directory.h"

namespace gradientd {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

class ServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.max_frame_bytes = 1 << 20;
    Configure(&options);
    server_ = std::make_unique<server::Server>(options, service_, nullptr, authenticator_.get());
    ASSERT_TRUE(server_->Start().ok());
    address_ = server::FormatEndpoint(server_->local_endpoint());
    runner_ = std::thread([this] { server_->Run(); });
  }

  void TearDown() override {
    server_->Stop();
    runner_.join();
  }

  // Tests with other limits (or an authenticator_) override this.
  virtual void Configure(server::ServerOptions*) {}

  std::unique_ptr<client::Client> Connect() {
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address_, &c);
    EXPECT_TRUE(s.ok()) << s.message();
    return c;
  }

  v1::Response Call(client::Client& c, v1::Request request) {
    v1::Response response;
    const Status s = c.Call(request, &response);
    EXPECT_TRUE(s.ok()) << s.message();
    return response;
  }

  v1::Response Fit(client::Client& c, const std::string& series) {
    v1::Request r;
    r.mutable_fit()->set_series(series);
    return Call(c, r);
  }

  // A raw socket, for bytes no well-behaved client would send.
  tcp::socket RawConnect() {
    tcp::socket socket(raw_io_);
    socket.connect(server_->local_endpoint());
    return socket;
  }

  service::SeriesStore store_;
  service::Service service_{store_};
  std::unique_ptr<auth::Authenticator> authenticator_;  // null: an open server
  std::unique_ptr<server::Server> server_;
  std::string address_;
  std::thread runner_;
  asio::io_context raw_io_;
};

// Reads one framed Response from a raw socket; false at end of stream.
bool ReadResponse(tcp::socket& socket, v1::Response* response) {
  std::vector<uint8_t> buffer;
  while (true) {
    const auto h = protocol::DecodeFrameHeader(buffer, 1 << 20);
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      return response->ParseFromArray(buffer.data() + h.header_bytes,
                                      static_cast<int>(h.body_bytes));
    }
    if (h.kind == protocol::FrameHeader::Kind::kError) return false;
    uint8_t byte;
    boost::system::error_code ec;
    asio::read(socket, asio::buffer(&byte, 1), ec);
    if (ec) return false;
    buffer.push_back(byte);
  }
}

bool ClosedByServer(tcp::socket& socket) {
  uint8_t byte;
  boost::system::error_code ec;
  asio::read(socket, asio::buffer(&byte, 1), ec);
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

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

// A server with an auth file: an ingester (produce), a reader (query) and
// ops (every role).
class AuthServerTest : public ServerTest {
 protected:
  static constexpr char kIngester[] = "ingester-token-0123456789";
  static constexpr char kReader[] = "reader-token-0123456789";
  static constexpr char kOps[] = "ops-token-0123456789";

  void Configure(server::ServerOptions*) override {
    path_ = std::filesystem::temp_directory_path() /
            ("gradientd-server-test-tokens-" + std::to_string(::getpid()) + "-" +
             ::testing::UnitTest::GetInstance()->current_test_info()->name());
    WriteTokens(std::string("# name roles token\n") + "ingester produce " + kIngester + "\n" +
                "reader query " + kReader + "\n" + "ops produce,query,admin " + kOps + "\n");
    const Status s = auth::Authenticator::Load(path_.string(), &authenticator_);
    ASSERT_TRUE(s.ok()) << s.message();
  }
  void TearDown() override {
    ServerTest::TearDown();
    std::filesystem::remove(path_);
  }

  void WriteTokens(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }

  std::unique_ptr<client::Client> ConnectAs(const std::string& token) {
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address_, {.tls = {}, .token = token}, &c);
    EXPECT_TRUE(s.ok()) << s.message();
    return c;
  }

  static v1::Request Ingest(const std::string& series) {
    v1::Request r;
    r.mutable_ingest()->set_series(series);
    for (int i = 0; i < 5; ++i) {
      r.mutable_ingest()->add_x(i);
      r.mutable_ingest()->add_y(3 * i - 1);
    }
    return r;
  }

  // Every series as ops sees them.
  std::string State() {
    auto ops = ConnectAs(kOps);
    v1::Request list;
    list.mutable_list();
    return Call(*ops, list).SerializeAsString();
  }

  std::filesystem::path path_;
};

TEST_F(AuthServerTest, RequestsWithoutHelloAreUnauthenticatedAndChangeNothing) {
  const std::string before = State();
  auto c = Connect();  // no token: no Hello
  // Pipelined: every one is answered, in order, and the connection stays.
  v1::Request configure;
  configure.mutable_configure()->set_series("created-by-nobody");
  v1::Request ingest = Ingest("created-by-nobody");
  v1::Request list;
  list.mutable_list();
  for (v1::Request* r : {&configure, &ingest, &list}) ASSERT_TRUE(c->Send(*r).ok());
  for (int i = 0; i < 3; ++i) {
    v1::Response response;
    ASSERT_TRUE(c->Receive(&response).ok());
    EXPECT_EQ(response.id(), static_cast<uint64_t>(i + 1));
    ASSERT_TRUE(response.has_error()) << response.DebugString();
    EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
  }
  EXPECT_EQ(State(), before);
  EXPECT_EQ(store_.size(), 0u);
  // The same connection may still authenticate.
  v1::HelloReply reply;
  ASSERT_TRUE(c->Hello(kReader, &reply).ok());
  EXPECT_EQ(reply.name(), "reader");
  EXPECT_TRUE(Call(*c, list).has_series_list());
}

TEST_F(AuthServerTest, WrongTokenIsRefusedWithoutEchoingIt) {
  std::unique_ptr<client::Client> c;
  const std::string wrong = "reader-token-0123456780";
  const Status s = client::Client::Connect(address_, {.tls = {}, .token = wrong}, &c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kUnauthenticated);
  EXPECT_NE(s.message().find("refused the token: UNAUTHENTICATED"), std::string::npos)
      << s.message();
  EXPECT_EQ(s.message().find(wrong), std::string::npos) << s.message();
  EXPECT_EQ(c, nullptr);
}

TEST_F(AuthServerTest, ForbiddenOperationsArePermissionDeniedAndChangeNothing) {
  auto ops = ConnectAs(kOps);
  ASSERT_TRUE(Call(*ops, Ingest("s")).has_ack());
  const std::string before = State();

  auto reader = ConnectAs(kReader);
  v1::Request step;
  step.mutable_step()->set_series("s");
  step.mutable_step()->set_iterations(10);
  v1::Response response = Call(*reader, step);
  ASSERT_TRUE(response.has_error());
  EXPECT_EQ(response.error().code(), v1::Error::PERMISSION_DENIED);
  EXPECT_EQ(response.error().message(),
            "'reader' (roles: query) may not step: it needs the admin role");
  EXPECT_EQ(Call(*reader, Ingest("s")).error().code(), v1::Error::PERMISSION_DENIED);

  auto ingester = ConnectAs(kIngester);
  EXPECT_EQ(Fit(*ingester, "s").error().code(), v1::Error::PERMISSION_DENIED);
  v1::Request reset;
  reset.mutable_reset()->set_series("s");
  EXPECT_EQ(Call(*ingester, reset).error().code(), v1::Error::PERMISSION_DENIED);
  EXPECT_EQ(State(), before);
}

TEST_F(AuthServerTest, AllowedOperationsWork) {
  auto ingester = ConnectAs(kIngester);
  const v1::Response ack = Call(*ingester, Ingest("s"));
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().total(), 5u);

  auto reader = ConnectAs(kReader);
  const v1::Response fit = Fit(*reader, "s");
  ASSERT_TRUE(fit.has_fit()) << fit.DebugString();
  EXPECT_EQ(fit.fit().n(), 5u);
  EXPECT_NEAR(fit.fit().least_squares().m(), 3.0, 1e-12);
  EXPECT_NEAR(fit.fit().least_squares().b(), -1.0, 1e-12);

  auto ops = ConnectAs(kOps);
  v1::Request step;
  step.mutable_step()->set_series("s");
  step.mutable_step()->set_iterations(2);
  EXPECT_TRUE(Call(*ops, step).has_step());
}

TEST_F(AuthServerTest, HelloMayBePipelinedWithTheRequestsAfterIt) {
  auto c = Connect();
  v1::Request hello;
  hello.mutable_hello()->set_token(kIngester);
  v1::Request ingest = Ingest("s");
  ASSERT_TRUE(c->Send(hello).ok());
  ASSERT_TRUE(c->Send(ingest).ok());
  v1::Response response;
  ASSERT_TRUE(c->Receive(&response).ok());
  EXPECT_TRUE(response.has_hello()) << response.DebugString();
  ASSERT_TRUE(c->Receive(&response).ok());
  EXPECT_TRUE(response.has_ack()) << response.DebugString();
}

TEST_F(AuthServerTest, ReloadPicksUpANewTokenAndDropsARemovedOne) {
  auto reader = ConnectAs(kReader);            // authenticated before the reload
  ASSERT_TRUE(Fit(*reader, "s").has_error());  // NOT_FOUND: allowed, no series
  EXPECT_EQ(Fit(*reader, "s").error().code(), v1::Error::NOT_FOUND);

  const std::string newcomer = "newcomer-token-0123456789";
  WriteTokens("ops produce,query,admin " + std::string(kOps) + "\nnewcomer query " + newcomer +
              "\n");
  ASSERT_TRUE(authenticator_->Reload().ok());

  auto fresh = ConnectAs(newcomer);
  EXPECT_EQ(Fit(*fresh, "s").error().code(), v1::Error::NOT_FOUND);  // allowed

  std::unique_ptr<client::Client> refused;
  EXPECT_EQ(client::Client::Connect(address_, {.tls = {}, .token = kReader}, &refused).code(),
            StatusCode::kUnauthenticated);
  // The connection that authenticated with the removed token is refused at
  // its next request.
  const v1::Response response = Fit(*reader, "s");
  ASSERT_TRUE(response.has_error());
  EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
  EXPECT_NE(response.error().message().find("'reader' is no longer valid"), std::string::npos);
}

TEST_F(AuthServerTest, AFailedReloadKeepsServingThePreviousTokens) {
  WriteTokens("broken line\n");
  EXPECT_FALSE(authenticator_->Reload().ok());
  auto reader = ConnectAs(kReader);
  EXPECT_EQ(Fit(*reader, "s").error().code(), v1::Error::NOT_FOUND);
}

// A server whose handler refuses every request as one without an operation,
// as a gradientd from before Hello does.
class RefuseEverything : public protocol::RequestHandler {
 public:
  uint64_t Handle(const v1::Request&, v1::Response* response) override {
    response->mutable_error()->set_code(v1::Error::INVALID_ARGUMENT);
    response->mutable_error()->set_message("request has no operation (empty or unknown body)");
    return 0;
  }
};

TEST(ServerWithoutHello, ClientSaysTheHelloWasNotAcceptedNotThatTheTokenIsWrong) {
  RefuseEverything handler;
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  server::Server server(options, handler);
  ASSERT_TRUE(server.Start().ok());
  std::thread runner([&] { server.Run(); });
  std::unique_ptr<client::Client> c;
  const Status s = client::Client::Connect(server::FormatEndpoint(server.local_endpoint()),
                                           {.tls = {}, .token = "some-token-0123456789"}, &c);
  server.Stop();
  runner.join();
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(s.message().find("did not accept the Hello"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("some-token"), std::string::npos) << s.message();
}

class LimitedServerTest : public ServerTest {
 protected:
  void Configure(server::ServerOptions* options) override {
    options->max_connections = 3;
    options->max_queued_bytes = 64 * 1024;
    options->idle_timeout = std::chrono::milliseconds(300);
    options->request_timeout = std::chrono::milliseconds(300);
    options->write_timeout = std::chrono::milliseconds(300);
  }
};

TEST_F(LimitedServerTest, ConnectionsBeyondTheLimitGetAnErrorAndAreClosed) {
  auto a = Connect();
  auto b = Connect();
  auto c = Connect();
  ASSERT_TRUE(Fit(*a, "x").has_error());  // all three are being served
  ASSERT_TRUE(Fit(*c, "x").has_error());
  tcp::socket extra = RawConnect();
  v1::Response response;
  ASSERT_TRUE(ReadResponse(extra, &response));
  EXPECT_EQ(response.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(response.error().message().find("too many connections"), std::string::npos);
  EXPECT_TRUE(ClosedByServer(extra));
  EXPECT_TRUE(Fit(*b, "x").has_error());  // the others go on
}

TEST_F(LimitedServerTest, StalledPartialFrameAndIdleConnectionsAreClosed) {
  tcp::socket stalled = RawConnect();
  std::string frame;
  v1::Request r;
  r.mutable_fit()->set_series("s");
  protocol::AppendFrame(r, &frame);
  asio::write(stalled, asio::buffer(frame.data(), frame.size() - 1));
  tcp::socket idle = RawConnect();
  // Both are closed by the server (the reads return once it does).
  EXPECT_TRUE(ClosedByServer(stalled));
  EXPECT_TRUE(ClosedByServer(idle));
}

TEST_F(LimitedServerTest, ClientThatDoesNotReadStopsBeingReadAndOthersAreServed) {
  // A client pipelines requests and never reads a response.
  tcp::socket greedy = RawConnect();
  greedy.non_blocking(true);
  std::string frames;
  v1::Request list;
  list.mutable_list();
  for (int i = 0; i < 1000; ++i) protocol::AppendFrame(list, &frames);
  std::size_t sent = 0;
  for (int round = 0; round < 2000; ++round) {
    boost::system::error_code ec;
    const std::size_t n = greedy.write_some(asio::buffer(frames), ec);
    if (ec == asio::error::would_block) break;  // the server stopped reading
    ASSERT_FALSE(ec) << ec.message();
    sent += n;
  }
  // It filled the socket buffers and the server's bounded queue; it was
  // not read without bound (2000 rounds would be megabytes more).
  EXPECT_LT(sent, frames.size() * 2000);
  // Meanwhile a well-behaved producer is served, every point counted.
  auto c = Connect();
  for (int i = 0; i < 20; ++i) {
    v1::Request ingest;
    ingest.mutable_ingest()->set_series("good");
    ingest.mutable_ingest()->add_x(i);
    ingest.mutable_ingest()->add_y(i);
    ASSERT_TRUE(Call(*c, ingest).has_ack());
  }
  EXPECT_EQ(Fit(*c, "good").fit().n(), 20u);
}

TEST_F(LimitedServerTest, ClientThatNeverReadsIsClosedOnceAWriteTimesOut) {
  tcp::socket greedy = RawConnect();
  greedy.set_option(asio::socket_base::receive_buffer_size(4096));
  greedy.non_blocking(true);
  std::string frames;
  v1::Request list;
  list.mutable_list();
  for (int i = 0; i < 1000; ++i) protocol::AppendFrame(list, &frames);
  // It sends requests and never reads: the server's responses fill the
  // socket buffers, its write cannot finish, and after write_timeout it
  // gives up on the client and closes the connection, which this client
  // sees as a failing write. (The bound only keeps a broken server from
  // hanging the test.)
  boost::system::error_code ec;
  for (int attempt = 0; attempt < 20000; ++attempt) {
    greedy.write_some(asio::buffer(frames), ec);
    if (ec && ec != asio::error::would_block) break;
    if (ec) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
  // Others are served.
  auto c = Connect();
  EXPECT_TRUE(Fit(*c, "x").has_error());
}

TEST(DurableServerTest, EveryAcknowledgedBatchSurvivesARestart) {
  const std::string dir =
      ::testing::TempDir() + "durable_server_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  storage::DataDirectoryOptions data_options;
  data_options.path = dir;
  uint64_t acknowledged = 0;
  {
    service::SeriesStore store;
    service::Service service(store);
    std::unique_ptr<storage::DataDirectory> data;
    storage::RecoveryReport report;
    ASSERT_TRUE(storage::DataDirectory::Open(data_options, service, &data, &report).ok());
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    server::Server server(options, service, data->change_log());
    ASSERT_TRUE(server.Start().ok());
    std::thread runner([&] { server.Run(); });
    std::vector<std::thread> producers;
    std::atomic<uint64_t> acked{0};
    for (int p = 0; p < 3; ++p) {
      producers.emplace_back([&, p] {
        std::unique_ptr<client::Client> c;
        ASSERT_TRUE(
            client::Client::Connect(server::FormatEndpoint(server.local_endpoint()), &c).ok());
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
    server.Stop();
    runner.join();
    acknowledged = acked.load();
    // No Close(): recovery must come from the journal alone.
  }
  EXPECT_EQ(acknowledged, 9000u);
  service::SeriesStore store;
  service::Service service(store);
  std::unique_ptr<storage::DataDirectory> data;
  storage::RecoveryReport report;
  ASSERT_TRUE(storage::DataDirectory::Open(data_options, service, &data, &report).ok());
  EXPECT_EQ(report.points, acknowledged);
  EXPECT_EQ(report.records_replayed, 90u);
  data.reset();
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradientd
