// TLS: the real Asio server on port 0 with certificates from a throw-away CA
// made at test time (test_ca.h), driven through the client library.
// Serving over TLS: round trips, pipelining, slow and plaintext clients,
// limits, Stop and durability. Handshakes and certificates: tls_handshake_test.cc.
#include "client/tls.h"

#include <gtest/gtest.h>
#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <fstream>
#include <thread>
#include <vector>

#include "client/client.h"
#include "durable/data_directory.h"
#include "protocol/frame_codec.h"
#include "running_node.h"
#include "server/server.h"
#include "server/tls.h"
#include "service/series_store.h"
#include "service/service.h"
#include "test_ca.h"
#include "tls_test_support.h"

namespace gradientd {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;

TEST_F(TlsTest, IngestAndQueryRoundTripOverTls) {
  const std::string address = StartServer(TlsServerOptions());
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  v1::Request ingest = Ingest("line", {1, 2, 3, 4}, {3, 5, 7, 9});
  v1::Response ack;
  ASSERT_TRUE(c->Call(ingest, &ack).ok());
  ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  EXPECT_EQ(ack.ack().accepted(), 4u);
  v1::Request fit = FitRequest("line");
  v1::Response response;
  ASSERT_TRUE(c->Call(fit, &response).ok());
  ASSERT_TRUE(response.has_fit()) << response.DebugString();
  EXPECT_EQ(response.fit().n(), 4u);
  EXPECT_NEAR(response.fit().least_squares().m(), 2.0, 1e-12);
  EXPECT_NEAR(response.fit().least_squares().b(), 1.0, 1e-12);
}

TEST_F(TlsTest, HostNameInTheCertificateIsAccepted) {
  const std::string address = StartServer(TlsServerOptions());
  const std::string port = address.substr(address.rfind(':') + 1);
  auto c = Connect("localhost:" + port, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  ExpectServed(*c);
}

TEST_F(TlsTest, PipelinedRequestsBeyondTheQueueLimitAreAnsweredInOrder) {
  server::ServerOptions options = TlsServerOptions();
  options.max_queued_bytes = 1024;  // back-pressure engages often
  const std::string address = StartServer(options);
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  constexpr int kBatches = 300, kPoints = 200, kWindow = 64;
  uint64_t next_id = 1, acked = 0;
  const auto receive = [&] {
    v1::Response response;
    const Status s = c->Receive(&response);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(response.has_ack()) << response.DebugString();
    EXPECT_EQ(response.id(), next_id++);
    acked += response.ack().accepted();
  };
  for (int batch = 0; batch < kBatches; ++batch) {
    std::vector<double> x, y;
    for (int i = 0; i < kPoints; ++i) {
      x.push_back(batch * kPoints + i);
      y.push_back(0.5 * (batch * kPoints + i));
    }
    v1::Request r = Ingest("pipelined", x, y);
    ASSERT_TRUE(c->Send(r).ok());
    while (c->in_flight() >= kWindow) ASSERT_NO_FATAL_FAILURE(receive());
  }
  while (c->in_flight() > 0) ASSERT_NO_FATAL_FAILURE(receive());
  EXPECT_EQ(acked, static_cast<uint64_t>(kBatches * kPoints));
  v1::Request fit = FitRequest("pipelined");
  v1::Response response;
  ASSERT_TRUE(c->Call(fit, &response).ok());
  EXPECT_EQ(response.fit().n(), static_cast<uint64_t>(kBatches * kPoints));
}

TEST_F(TlsTest, ClientThatDoesNotReadIsClosedAfterTheWriteTimeoutAndOthersAreServed) {
  server::ServerOptions options = TlsServerOptions();
  options.max_queued_bytes = 64 * 1024;
  options.write_timeout = std::chrono::milliseconds(300);
  const std::string address = StartServer(options);
  const client::ConnectOptions tls = ClientOptions(Path("ca.pem"));
  auto good = Connect(address, tls);
  ASSERT_TRUE(good);
  // Series with long names, so that each list response is about 14 KB.
  for (int i = 0; i < 50; ++i) {
    v1::Request r = Ingest(std::string(200, 'a') + std::to_string(i), {1}, {1});
    v1::Response ack;
    ASSERT_TRUE(good->Call(r, &ack).ok());
  }
  // A client pipelines list requests and never reads: once the socket
  // buffers and the bounded queue are full the server stops reading it, its
  // write times out, and it is closed, which fails a later Send.
  auto greedy = Connect(address, tls);
  ASSERT_TRUE(greedy);
  std::atomic<bool> greedy_closed{false};
  std::thread greedy_thread([&] {
    v1::Request list;
    list.mutable_list();
    for (int i = 0; i < 10'000'000 && greedy->Send(list).ok(); ++i) {
    }
    greedy_closed = true;
  });
  ExpectServed(*good);
  for (int i = 0; i < 6000 && !greedy_closed; ++i) {  // at most ~60 s
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(greedy_closed);
  ExpectServed(*good);
  if (!greedy_closed) servers_.front().server->Stop();  // closes it after the grace period
  greedy_thread.join();
}

TEST_F(TlsTest, PlaintextClientsAreDroppedAndTlsClientsAreStillServed) {
  const std::string address = StartServer(TlsServerOptions());
  const client::ConnectOptions tls = ClientOptions(Path("ca.pem"));
  auto before = Connect(address, tls);
  ASSERT_TRUE(before);
  ExpectServed(*before);

  // The client library without TLS: connects, but gets no answer.
  std::unique_ptr<client::Client> plain;
  ASSERT_TRUE(client::Client::Connect(address, &plain).ok());
  v1::Request fit = FitRequest("s");
  v1::Response response;
  EXPECT_FALSE(plain->Call(fit, &response).ok());

  // A raw socket writing a request frame is closed too.
  asio::io_context io;
  tcp::socket raw(io);
  tcp::resolver resolver(io);
  const auto colon = address.rfind(':');
  asio::connect(raw, resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
  std::string frame;
  protocol::AppendFrame(fit, &frame);
  asio::write(raw, asio::buffer(frame));
  boost::system::error_code ec;
  std::vector<uint8_t> ignored(4096);
  while (!ec) raw.read_some(asio::buffer(ignored), ec);  // whatever alert, then the end
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();

  ExpectServed(*before);
  auto after = Connect(address, tls);
  ASSERT_TRUE(after);
  ExpectServed(*after);
}

TEST_F(TlsTest, IdleTlsConnectionIsClosedCleanly) {
  server::ServerOptions options = TlsServerOptions();
  options.idle_timeout = std::chrono::milliseconds(200);
  const std::string address = StartServer(options);
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  ExpectServed(*c);
  v1::Response response;  // returns once the server gives up on the silent client
  EXPECT_EQ(c->Receive(&response).message(), "connection to " + address + " closed by the server");
}

TEST_F(TlsTest, ConnectionsBeyondTheLimitGetTheErrorOverTls) {
  server::ServerOptions options = TlsServerOptions();
  options.max_connections = 1;
  const std::string address = StartServer(options);
  const client::ConnectOptions tls = ClientOptions(Path("ca.pem"));
  auto served = Connect(address, tls);
  ASSERT_TRUE(served);
  ExpectServed(*served);  // it holds the one place
  auto extra = Connect(address, tls);
  ASSERT_TRUE(extra);
  v1::Response response;
  ASSERT_TRUE(extra->Receive(&response).ok());
  EXPECT_EQ(response.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_TRUE(Contains(response.error().message(), "too many connections"));
  const Status end = extra->Receive(&response);
  EXPECT_EQ(end.message(), "connection to " + address + " closed by the server");
  ExpectServed(*served);
}

TEST_F(TlsTest, StopClosesTlsConnectionsWithCloseNotify) {
  const std::string address = StartServer(TlsServerOptions());
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  for (int i = 0; i < 20; ++i) {
    v1::Request r = Ingest("s", {1.0 * i}, {2.0 * i});
    ASSERT_TRUE(c->Send(r).ok());
  }
  for (int i = 0; i < 20; ++i) {
    v1::Response ack;
    ASSERT_TRUE(c->Receive(&ack).ok());
    ASSERT_TRUE(ack.has_ack());
  }
  servers_.front().server->Stop();
  v1::Response response;
  const Status end = c->Receive(&response);
  // A clean TLS end (close_notify), not a cut connection.
  EXPECT_EQ(end.message(), "connection to " + address + " closed by the server");
}

TEST_F(TlsTest, StopStillSendsTheResponsesToWhatWasReceived) {
  const std::string address = StartServer(TlsServerOptions());
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  constexpr int kRequests = 2000;
  for (int i = 0; i < kRequests; ++i) {
    v1::Request r = Ingest("s", {1.0 * i}, {2.0 * i});
    ASSERT_TRUE(c->Send(r).ok());
  }
  // Every request has reached the server's socket (loopback) before Stop
  // half-closes it, most of them still unanswered: they are answered, over
  // TLS, before the server closes the connection.
  v1::Response first;
  ASSERT_TRUE(c->Receive(&first).ok());
  servers_.front().server->Stop();
  for (int i = 1; i < kRequests; ++i) {
    v1::Response ack;
    const Status s = c->Receive(&ack);
    ASSERT_TRUE(s.ok()) << "response " << i + 1 << ": " << s.message();
    ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
    ASSERT_EQ(ack.id(), static_cast<uint64_t>(i) + 1);
  }
  v1::Response response;
  EXPECT_EQ(c->Receive(&response).message(), "connection to " + address + " closed by the server");
}

TEST_F(TlsTest, AcknowledgedBatchesAreDurableOverTls) {
  durable::DataDirectoryOptions data_options;
  data_options.path = Path("data");
  uint64_t acknowledged = 0;
  {
    app::NodeOptions options = testing::LoopbackNodeOptions(data_options.path);
    options.server = TlsServerOptions();
    testing::RunningNode node(options);
    ASSERT_TRUE(node.Start().ok());
    {
      auto c = Connect(node.address(), ClientOptions(Path("ca.pem")));
      for (int batch = 0; c && batch < 30; ++batch) {
        v1::Request r = Ingest("s", {1, 2, 3}, {1, 2, 3});
        ASSERT_TRUE(c->Send(r).ok());
      }
      while (c && c->in_flight() > 0) {
        v1::Response ack;
        ASSERT_TRUE(c->Receive(&ack).ok());
        ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
        acknowledged += ack.ack().accepted();
      }
    }
    node.Stop();
  }
  EXPECT_EQ(acknowledged, 90u);
  durable::RecoveryReport report;
  ASSERT_TRUE(testing::RecoverDataDirectory(data_options, &report).ok());
  EXPECT_EQ(report.points, acknowledged);
}

}  // namespace
}  // namespace gradientd
