// The real Asio server on port 0, driven through the client library and raw
// sockets.
#include "server/server.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/socket.h>
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
#include <functional>
#include <mutex>
#include <random>
#include <stdexcept>
#include <thread>
#include <vector>

#include "app/open_file_limit.h"
#include "auth/authenticator.h"
#include "client/client.h"
#include "core/point_stats.h"
#include "protocol/frame_codec.h"
#include "running_node.h"
#include "server/peer_state.h"
#include "service/change_log.h"
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
  storage::DataDirectoryOptions data_options;
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
  std::unique_ptr<storage::DataDirectory> data;
  storage::RecoveryReport report;
  ASSERT_TRUE(storage::DataDirectory::Open(data_options, service, &data, &report).ok());
  EXPECT_EQ(report.points, acknowledged);
  EXPECT_EQ(report.records_replayed, 90u);
  data.reset();
  std::filesystem::remove_all(dir);
}

// --- Bounded waits, for promises whose breaking would otherwise hang. ---

using SteadyClock = std::chrono::steady_clock;

// Reads one framed Response, giving up after `within`; false at end of
// stream, on error or on giving up.
bool ReadResponseWithin(tcp::socket& socket, v1::Response* response,
                        std::chrono::milliseconds within) {
  const auto deadline = SteadyClock::now() + within;
  std::vector<uint8_t> buffer;
  while (true) {
    const auto h = protocol::DecodeFrameHeader(buffer, 1 << 20);
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      return response->ParseFromArray(buffer.data() + h.header_bytes,
                                      static_cast<int>(h.body_bytes));
    }
    if (h.kind == protocol::FrameHeader::Kind::kError) return false;
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    // Never past this frame: what follows is the next call's.
    std::vector<uint8_t> piece(std::max<std::size_t>(h.missing, 1));
    const ssize_t n = ::recv(socket.native_handle(), piece.data(), piece.size(), 0);
    if (n <= 0) return false;
    buffer.insert(buffer.end(), piece.begin(), piece.begin() + n);
  }
}

// Whether the server closes the socket (end of stream or reset) within
// `within`, discarding any responses before that.
bool ClosedWithin(tcp::socket& socket, std::chrono::milliseconds within) {
  const auto deadline = SteadyClock::now() + within;
  while (true) {
    const auto left =
        std::chrono::duration_cast<std::chrono::milliseconds>(deadline - SteadyClock::now());
    if (left.count() <= 0) return false;
    pollfd p{socket.native_handle(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) return false;
    char bytes[4096];
    const ssize_t n = ::recv(socket.native_handle(), bytes, sizeof bytes, 0);
    if (n <= 0) return true;
  }
}

// Calls `done` on a thread and reports whether it returned within `within`;
// if not, the thread is left to finish (joined by the returned guard).
class Joiner {
 public:
  explicit Joiner(std::thread& t) : thread_(t) {}
  ~Joiner() {
    if (thread_.joinable()) thread_.join();
  }
  bool JoinWithin(std::chrono::milliseconds within, const std::atomic<bool>& finished) {
    const auto deadline = SteadyClock::now() + within;
    while (!finished && SteadyClock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (!finished) return false;
    thread_.join();
    return true;
  }

 private:
  std::thread& thread_;
};

std::string Frame(const v1::Request& request) {
  std::string frame;
  protocol::AppendFrame(request, &frame);
  return frame;
}

v1::Request IngestRequest(uint64_t id, double x) {
  v1::Request r;
  r.set_id(id);
  r.mutable_ingest()->set_series("s");
  r.mutable_ingest()->add_x(x);
  r.mutable_ingest()->add_y(x);
  return r;
}

v1::Request FitRequest(uint64_t id) {
  v1::Request r;
  r.set_id(id);
  r.mutable_fit()->set_series("s");
  return r;
}

// A change log whose records up to durable_upto are durable and whose later
// ones failed with `error`; while held, OnDurable for a later one does not
// answer until Release.
class FakeChangeLog : public service::ChangeLog {
 public:
  FakeChangeLog(uint64_t durable_upto, Status error, bool hold = false)
      : durable_upto_(durable_upto), error_(std::move(error)), hold_(hold) {}

  Status Append(const v1::JournalRecord&, uint64_t*) override {
    return Status::Internal("unused by the server");
  }
  void OnDurable(uint64_t token, std::function<void(const Status&)> done) override {
    {
      std::lock_guard lock(mu_);
      if (hold_ && token > durable_upto_) {
        held_.push_back(std::move(done));
        return;
      }
    }
    done(Outcome(token));
  }
  Status Outcome(uint64_t token) override { return token <= durable_upto_ ? Status::Ok() : error_; }
  std::size_t held() {
    std::lock_guard lock(mu_);
    return held_.size();
  }
  // Answers every held wait with the error.
  void Release() {
    std::vector<std::function<void(const Status&)>> held;
    {
      std::lock_guard lock(mu_);
      hold_ = false;
      held.swap(held_);
    }
    for (auto& done : held) done(error_);
  }

 private:
  const uint64_t durable_upto_;
  const Status error_;
  std::mutex mu_;
  bool hold_;
  std::vector<std::function<void(const Status&)>> held_;
};

// Acknowledges each ingest with the next token (1, 2, ...) and answers
// other requests at once; `slow_step` makes each step take that long (as a
// step bounded by the Service's time limit may) and `throw_on_list` makes a
// list throw, like protobuf serialising a reply over 2 GiB.
class FakeHandler : public protocol::RequestHandler {
 public:
  uint64_t Handle(const v1::Request& request, v1::Response* response) override {
    if (request.has_ingest()) {
      response->mutable_ack()->set_accepted(static_cast<uint64_t>(request.ingest().x_size()));
      return ++tokens_;
    }
    if (request.has_step()) {
      ++steps_started;
      std::this_thread::sleep_for(slow_step);
      response->mutable_step()->set_iterations(1);
      ++steps_done;
      return 0;
    }
    if (request.has_list()) {
      if (throw_on_list) throw std::length_error("reply too large to serialise");
      response->mutable_series_list();
      return 0;
    }
    response->mutable_fit();
    return 0;
  }

  std::chrono::milliseconds slow_step{0};
  bool throw_on_list = false;
  std::atomic<int> steps_started{0};
  std::atomic<int> steps_done{0};

 private:
  std::atomic<uint64_t> tokens_{0};
};

// A server around a FakeHandler (and, when given, a change log), started
// per test.
class FakeServer {
 public:
  FakeServer(server::ServerOptions options, protocol::RequestHandler& handler,
             service::ChangeLog* log = nullptr)
      : server_(std::move(options), handler, log) {
    const Status s = server_.Start();
    EXPECT_TRUE(s.ok()) << s.message();
    runner_ = std::thread([this] {
      server_.Run();
      finished_ = true;
    });
  }
  ~FakeServer() {
    server_.Stop();
    if (runner_.joinable()) runner_.join();
  }
  // Stops, and says whether Run returned within `within`.
  bool StopsWithin(std::chrono::milliseconds within) {
    server_.Stop();
    return Joiner(runner_).JoinWithin(within, finished_);
  }
  // The socket may outlive the FakeServer (a test may reset it first), so
  // it is on an io_context that lives as long as the process.
  tcp::socket RawConnect() {
    static asio::io_context io;
    tcp::socket socket(io);
    socket.connect(server_.local_endpoint());
    return socket;
  }
  std::string address() const { return server::FormatEndpoint(server_.local_endpoint()); }
  tcp::endpoint endpoint() const { return server_.local_endpoint(); }

 private:
  server::Server server_;
  std::atomic<bool> finished_{false};
  std::thread runner_;
};

server::ServerOptions FakeServerOptions() {
  server::ServerOptions options;
  options.listen = "127.0.0.1:0";
  options.threads = 1;
  return options;
}

constexpr auto kHangBound = std::chrono::seconds(20);  // only to turn a hang into a failure

TEST(ServerDurabilityTest, AfterALogFailureEachChangeIsAnsweredByItsOwnFate) {
  // Records 1-3 were made durable before the log failed; 4-6 were not.
  FakeChangeLog log(3, Status::Unavailable("journal write failed: no space left on device"));
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler, &log);
  tcp::socket socket = server.RawConnect();
  std::string frames;
  for (uint64_t id = 1; id <= 6; ++id) frames += Frame(IngestRequest(id, static_cast<double>(id)));
  asio::write(socket, asio::buffer(frames));  // one write: most likely one chunk waiting on 6
  for (uint64_t id = 1; id <= 6; ++id) {
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "response " << id;
    EXPECT_EQ(response.id(), id);
    if (id <= 3) {
      EXPECT_TRUE(response.has_ack()) << "durable before the failure: " << response.DebugString();
    } else {
      EXPECT_TRUE(response.has_error()) << response.DebugString();
      EXPECT_NE(response.error().message().find("no space left"), std::string::npos);
    }
  }
}

TEST(ServerDurabilityTest, QueriesStillWorkAfterErrorsLongerThanTheAcksTheyReplace) {
  // Every change fails with an Error much longer than the ack it replaces:
  // the connection's count of queued bytes must not go wrong (it once
  // underflowed and the connection stopped being read).
  FakeChangeLog log(0, Status::Unavailable("journal failed: " + std::string(2000, 'x')));
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler, &log);
  tcp::socket socket = server.RawConnect();
  std::string frames;
  for (uint64_t id = 1; id <= 20; ++id) frames += Frame(IngestRequest(id, 1.0));
  asio::write(socket, asio::buffer(frames));
  for (uint64_t id = 1; id <= 20; ++id) {
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "response " << id;
    EXPECT_TRUE(response.has_error());
  }
  for (uint64_t id = 100; id < 105; ++id) {
    asio::write(socket, asio::buffer(Frame(FitRequest(id))));
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "query " << id;
    EXPECT_EQ(response.id(), id);
    EXPECT_TRUE(response.has_fit());
  }
}

TEST(ServerStopTest, StopFinishesWithinTheGracePeriodWhateverConnectionsAreDoing) {
  // The log never answers: a producer's writer waits on durability forever.
  FakeChangeLog log(0, Status::Unavailable("journal stalled"), /*hold=*/true);
  FakeHandler handler;
  handler.slow_step = std::chrono::milliseconds(50);
  server::ServerOptions options = FakeServerOptions();
  options.max_queued_bytes = 16 * 1024;
  auto server = std::make_unique<FakeServer>(options, handler, &log);
  tcp::socket producer = server->RawConnect();
  asio::write(producer, asio::buffer(Frame(IngestRequest(1, 1.0))));
  // A client that pipelines and never reads: its reader parks on
  // back-pressure once its socket buffers are full.
  tcp::socket greedy = server->RawConnect();
  greedy.set_option(asio::socket_base::receive_buffer_size(4096));
  greedy.non_blocking(true);
  std::string fits;
  for (int i = 0; i < 1000; ++i) fits += Frame(FitRequest(static_cast<uint64_t>(i)));
  for (int round = 0; round < 200; ++round) {
    boost::system::error_code ec;
    greedy.write_some(asio::buffer(fits), ec);
    if (ec) break;
  }
  // A long pipeline: 1000 steps of 50 ms, 50 s of work.
  tcp::socket stepper = server->RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  std::string steps;
  for (int i = 0; i < 1000; ++i) steps += Frame(step);
  asio::write(stepper, asio::buffer(steps));
  // A partial frame.
  tcp::socket partial = server->RawConnect();
  const std::string fit = Frame(FitRequest(7));
  asio::write(partial, asio::buffer(fit.data(), fit.size() - 1));
  for (int i = 0; i < 2000 && (log.held() == 0 || handler.steps_started == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(log.held(), 0u);
  ASSERT_GT(handler.steps_started.load(), 0);
  // The grace period is 2 s; 10 s of slack for a loaded machine, far less
  // than the 50 s the pipeline would take.
  EXPECT_TRUE(server->StopsWithin(std::chrono::seconds(12)));
  EXPECT_LT(handler.steps_done.load(), 1000);
  log.Release();  // late answers to abandoned waits touch nothing
  server.reset();
}

TEST(ServerStepTest, LongWorkDoesNotRunOnTheThreadThatAnswersQueries) {
  FakeHandler handler;
  handler.slow_step = std::chrono::seconds(3);  // one step at the Service's time limit, and more
  FakeServer server(FakeServerOptions(), handler);
  tcp::socket stepper = server.RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  asio::write(stepper, asio::buffer(Frame(step)));
  for (int i = 0; i < 2000 && handler.steps_started == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(handler.steps_started.load(), 0);
  // A query on a fresh connection is answered while the step still runs.
  tcp::socket querier = server.RawConnect();
  asio::write(querier, asio::buffer(Frame(FitRequest(5))));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(querier, &response, kHangBound));
  EXPECT_TRUE(response.has_fit());
  EXPECT_EQ(handler.steps_done.load(), 0) << "the query waited behind the step";
}

TEST(ServerStepTest, OneConnectionsLongPipelineDoesNotStarveAnotherOnTheSameThread) {
  FakeHandler handler;
  handler.slow_step = std::chrono::milliseconds(50);
  FakeServer server(FakeServerOptions(), handler);  // one ingest thread: both land on it
  tcp::socket pipeline = server.RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  std::string steps;
  constexpr int kSteps = 60;
  for (int i = 0; i < kSteps; ++i) steps += Frame(step);
  asio::write(pipeline, asio::buffer(steps));
  for (int i = 0; i < 2000 && handler.steps_started < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  tcp::socket other = server.RawConnect();
  step.set_id(99);
  asio::write(other, asio::buffer(Frame(step)));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(other, &response, kHangBound));
  EXPECT_EQ(response.id(), 99u);
  EXPECT_LT(handler.steps_done.load(), kSteps) << "it waited for the other's whole pipeline";
}

// Whether a new connection is served (a fit answered) rather than refused,
// retrying a refusal for a while: a closed connection's slot is freed just
// after its socket is closed, maybe on another thread.
bool ServedOnceTheSlotIsFree(FakeServer& server) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    tcp::socket next = server.RawConnect();
    asio::write(next, asio::buffer(Frame(FitRequest(3))));
    v1::Response response;
    if (!ReadResponseWithin(next, &response, kHangBound)) return false;
    if (response.has_fit()) return true;
    if (response.error().code() != v1::Error::RESOURCE_EXHAUSTED) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ServerFaultTest, AnExceptionFromTheHandlerClosesOnlyThatConnectionAndFreesItsSlot) {
  FakeHandler handler;
  handler.throw_on_list = true;
  server::ServerOptions options = FakeServerOptions();
  options.max_connections = 1;
  auto server = std::make_unique<FakeServer>(options, handler);
  tcp::socket doomed = server->RawConnect();
  v1::Request list;
  list.mutable_list();
  asio::write(doomed, asio::buffer(Frame(list)));
  ASSERT_TRUE(ClosedWithin(doomed, kHangBound));
  // Its one slot is free again: the next connection is served, not refused.
  EXPECT_TRUE(ServedOnceTheSlotIsFree(*server));
  EXPECT_TRUE(server->StopsWithin(kHangBound));
}

TEST(ServerFaultTest, AnExceptionWhileAChangeWaitsOnAStalledLogStillClosesTheConnection) {
  FakeChangeLog log(1, Status::Unavailable("journal stalled"), /*hold=*/true);
  FakeHandler handler;
  handler.throw_on_list = true;
  server::ServerOptions options = FakeServerOptions();
  options.max_connections = 1;
  auto server = std::make_unique<FakeServer>(options, handler, &log);
  tcp::socket doomed = server->RawConnect();
  v1::Response response;
  asio::write(doomed, asio::buffer(Frame(IngestRequest(1, 1.0))));  // durable: answered
  ASSERT_TRUE(ReadResponseWithin(doomed, &response, kHangBound));
  asio::write(doomed, asio::buffer(Frame(IngestRequest(2, 1.0))));  // waits on the log
  for (int i = 0; i < 2000 && log.held() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(log.held(), 1u);
  v1::Request list;
  list.mutable_list();
  asio::write(doomed, asio::buffer(Frame(list)));  // throws
  ASSERT_TRUE(ClosedWithin(doomed, kHangBound));
  EXPECT_TRUE(ServedOnceTheSlotIsFree(*server));
  EXPECT_TRUE(server->StopsWithin(kHangBound));
  log.Release();  // the late answer to the cancelled wait touches nothing
  server.reset();
}

class SlowlorisTest : public ServerTest {
 protected:
  static constexpr auto kTimeout = std::chrono::milliseconds(400);
  void Configure(server::ServerOptions* options) override {
    options->request_timeout = kTimeout;
    options->idle_timeout = std::chrono::seconds(30);
  }
};

TEST_F(SlowlorisTest, TricklingOneByteAtATimeIsClosedWithinAboutTheRequestTimeout) {
  tcp::socket slow = RawConnect();
  v1::Request fit;
  fit.mutable_fit()->set_series(std::string(200, 's'));
  const std::string frame = Frame(fit);  // ~200 bytes: 20 s at a byte per 100 ms
  const auto start = SteadyClock::now();
  bool closed = false;
  for (std::size_t i = 0; i + 1 < frame.size() && !closed; ++i) {
    boost::system::error_code ec;
    asio::write(slow, asio::buffer(frame.data() + i, 1), ec);
    if (ec) break;  // reset by the server
    closed = ClosedWithin(slow, kTimeout / 4);
  }
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_TRUE(closed) << "the frame stayed open while it trickled in";
  EXPECT_LT(elapsed, 3 * kTimeout + std::chrono::seconds(2));
}

TEST_F(SlowlorisTest, AFrameSentSlowlyButWithinTheRequestTimeoutIsServed) {
  tcp::socket slow = RawConnect();
  const std::string frame = Frame(FitRequest(11));
  // In three pieces, well within the timeout.
  const std::size_t third = frame.size() / 3;
  asio::write(slow, asio::buffer(frame.data(), third));
  std::this_thread::sleep_for(kTimeout / 8);
  asio::write(slow, asio::buffer(frame.data() + third, third));
  std::this_thread::sleep_for(kTimeout / 8);
  asio::write(slow, asio::buffer(frame.data() + 2 * third, frame.size() - 2 * third));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(slow, &response, kHangBound));
  EXPECT_EQ(response.id(), 11u);
}

// The highest open descriptor number.
int HighestDescriptor() {
  int highest = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  return highest;
}

TEST(ServerAcceptTest, OutOfDescriptorsAcceptBacksOffKeepsServingAndRecovers) {
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler);
  tcp::socket existing = server.RawConnect();
  v1::Response response;
  asio::write(existing, asio::buffer(Frame(FitRequest(1))));
  ASSERT_TRUE(ReadResponseWithin(existing, &response, kHangBound));
  asio::io_context io;
  std::vector<tcp::socket> later;  // their descriptors exist before the limit drops
  for (int i = 0; i < 3; ++i) later.emplace_back(io).open(tcp::v4());
  // Fill the holes below the highest descriptor, then allow no new one: the
  // server's accept fails with EMFILE.
  std::vector<int> fillers;
  const int highest = HighestDescriptor();
  for (int i = 0; i < 4096; ++i) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    if (fd > highest) {
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit none = before;
  none.rlim_cur = static_cast<rlim_t>(HighestDescriptor() + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &none), 0);
  for (auto& s : later) s.connect(server.endpoint());  // queued in the backlog
  // While accept fails, the connection already open is served.
  for (uint64_t id = 2; id < 6; ++id) {
    asio::write(existing, asio::buffer(Frame(FitRequest(id))));
    EXPECT_TRUE(ReadResponseWithin(existing, &response, kHangBound));
    EXPECT_EQ(response.id(), id);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a few failed accepts
  }
  ::setrlimit(RLIMIT_NOFILE, &before);
  for (int fd : fillers) ::close(fd);
  // Descriptors again: the queued connections are accepted and served.
  for (auto& s : later) {
    asio::write(s, asio::buffer(Frame(FitRequest(9))));
    ASSERT_TRUE(ReadResponseWithin(s, &response, kHangBound));
    EXPECT_EQ(response.id(), 9u);
  }
}

TEST(FileLimitTest, MaxConnectionsBeyondTheOpenFileLimitIsRefusedNamingBothNumbers) {
  const Status s = app::CheckOpenFileLimit(1024, 1024);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-connections 1024"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("1024 open files"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ulimit -n"), std::string::npos) << s.message();
  EXPECT_TRUE(app::CheckOpenFileLimit(
                  1024, 1024 + app::kReservedDescriptors + server::Server::kRefusalAllowance)
                  .ok());
}

TEST(FileLimitTest, TheSoftOpenFileLimitIsRaisedToTheHardLimit) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  uint64_t limit = 0;
  ASSERT_TRUE(app::RaiseOpenFileLimit(&limit).ok());
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(limit, after.rlim_cur);
  ::setrlimit(RLIMIT_NOFILE, &before);
}

}  // namespace
}  // namespace gradientd
