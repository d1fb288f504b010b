// TLS: the real Asio server on port 0 with certificates from a throw-away CA
// made at test time (test_ca.h), driven through the client library.
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

namespace gradientd {
namespace {
namespace asio = boost::asio;
using asio::ip::tcp;
using testing::TestCa;

bool Contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

v1::Request Ingest(const std::string& series, std::vector<double> x, std::vector<double> y) {
  v1::Request r;
  r.mutable_ingest()->set_series(series);
  for (double v : x) r.mutable_ingest()->add_x(v);
  for (double v : y) r.mutable_ingest()->add_y(v);
  return r;
}

v1::Request FitRequest(const std::string& series) {
  v1::Request r;
  r.mutable_fit()->set_series(series);
  return r;
}

class TlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "tls_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ca_.WriteCertificate(Path("ca.pem"));
    ca_.Issue("gradientd test server", "IP:127.0.0.1,DNS:localhost", Path("server.pem"),
              Path("server.key"));
    other_ca_.WriteCertificate(Path("other-ca.pem"));
  }

  void TearDown() override {
    for (auto& running : servers_) {
      running.server->Stop();
      running.runner.join();
    }
    std::filesystem::remove_all(dir_);
  }

  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  // Server options for TLS with the CA's server certificate.
  server::ServerOptions TlsServerOptions() const {
    server::ServerOptions options;
    options.listen = "127.0.0.1:0";
    options.threads = 2;
    options.tls.cert_file = Path("server.pem");
    options.tls.key_file = Path("server.key");
    return options;
  }

  // Starts a server; returns its HOST:PORT.
  std::string StartServer(const server::ServerOptions& options, service::ChangeLog* log = nullptr) {
    Running& running = servers_.emplace_back();
    running.server = std::make_unique<server::Server>(options, service_, log);
    const Status s = running.server->Start();
    EXPECT_TRUE(s.ok()) << s.message();
    if (!s.ok()) return "";
    running.runner = std::thread([server = running.server.get()] { server->Run(); });
    return server::FormatEndpoint(running.server->local_endpoint());
  }

  client::ConnectOptions ClientOptions(const std::string& ca, const std::string& cert = "",
                                       const std::string& key = "") {
    client::TlsOptions tls;
    tls.ca_file = ca;
    tls.cert_file = cert;
    tls.key_file = key;
    client::ConnectOptions options;
    const Status s = client::MakeClientTlsContext(tls, &options.tls);
    EXPECT_TRUE(s.ok()) << s.message();
    return options;
  }

  std::unique_ptr<client::Client> Connect(const std::string& address,
                                          const client::ConnectOptions& options) {
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address, options, &c);
    EXPECT_TRUE(s.ok()) << s.message();
    return c;
  }

  // The connection works: a list request gets its answer.
  void ExpectServed(client::Client& c) {
    v1::Request list;
    list.mutable_list();
    v1::Response response;
    const Status s = c.Call(list, &response);
    ASSERT_TRUE(s.ok()) << s.message();
    EXPECT_TRUE(response.has_series_list()) << response.DebugString();
  }

  struct Running {
    std::unique_ptr<server::Server> server;
    std::thread runner;
  };

  std::string dir_;
  TestCa ca_{"gradientd test CA"};
  TestCa other_ca_{"some other CA"};
  service::SeriesStore store_;
  service::Service service_{store_};
  std::vector<Running> servers_;
};

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

TEST_F(TlsTest, TlsClientOfAPlaintextServerGetsAClearError) {
  server::ServerOptions options = TlsServerOptions();
  options.tls = {};
  const std::string address = StartServer(options);
  std::unique_ptr<client::Client> c;
  const Status s = client::Client::Connect(address, ClientOptions(Path("ca.pem")), &c);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "TLS handshake with " + address + " failed")) << s.message();
}

TEST_F(TlsTest, ServerCertificateFromAnotherCaFailsVerification) {
  const std::string address = StartServer(TlsServerOptions());
  std::unique_ptr<client::Client> c;
  const Status s = client::Client::Connect(address, ClientOptions(Path("other-ca.pem")), &c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);  // retrying will not help
  EXPECT_TRUE(Contains(s.message(), "TLS handshake with " + address + " failed")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "certificate verify failed")) << s.message();
  // The server goes on.
  auto good = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(good);
  ExpectServed(*good);
}

TEST_F(TlsTest, CertificateForAnotherHostFailsVerification) {
  ca_.Issue("elsewhere", "DNS:elsewhere.test", Path("elsewhere.pem"), Path("elsewhere.key"));
  server::ServerOptions options = TlsServerOptions();
  options.tls.cert_file = Path("elsewhere.pem");
  options.tls.key_file = Path("elsewhere.key");
  const std::string address = StartServer(options);
  std::unique_ptr<client::Client> c;
  const Status s = client::Client::Connect(address, ClientOptions(Path("ca.pem")), &c);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition);
  EXPECT_TRUE(Contains(s.message(), "certificate verify failed")) << s.message();
  EXPECT_TRUE(Contains(s.message(), "mismatch")) << s.message();
}

TEST_F(TlsTest, ClientCertificateIsRequiredWithClientCa) {
  ca_.Issue("good client", "", Path("client.pem"), Path("client.key"));
  other_ca_.Issue("stranger", "", Path("stranger.pem"), Path("stranger.key"));
  server::ServerOptions options = TlsServerOptions();
  options.tls.client_ca_file = Path("ca.pem");
  const std::string address = StartServer(options);

  // Without a certificate: refused, at the handshake or (TLS 1.3) by the
  // alert that follows it, which the first call reads.
  const auto refused = [&](const client::ConnectOptions& tls) {
    std::unique_ptr<client::Client> c;
    Status s = client::Client::Connect(address, tls, &c);
    if (!s.ok()) return true;
    v1::Request fit = FitRequest("s");
    v1::Response response;
    s = c->Call(fit, &response);
    return !s.ok();
  };
  EXPECT_TRUE(refused(ClientOptions(Path("ca.pem"))));
  EXPECT_TRUE(refused(ClientOptions(Path("ca.pem"), Path("stranger.pem"), Path("stranger.key"))));

  auto c = Connect(address, ClientOptions(Path("ca.pem"), Path("client.pem"), Path("client.key")));
  ASSERT_TRUE(c);
  ExpectServed(*c);
}

TEST_F(TlsTest, MissingClientCertificateIsReportedAsATlsError) {
  server::ServerOptions options = TlsServerOptions();
  options.tls.client_ca_file = Path("ca.pem");
  const std::string address = StartServer(options);
  std::unique_ptr<client::Client> c;
  Status s = client::Client::Connect(address, ClientOptions(Path("ca.pem")), &c);
  if (s.ok()) {
    // TLS 1.3: the client's handshake is over before the server's verdict.
    // Read it without sending anything, so that it cannot be lost to a reset.
    v1::Response response;
    s = c->Receive(&response);
  }
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kFailedPrecondition) << s.message();
  EXPECT_TRUE(Contains(s.message(), "certificate required")) << s.message();
}

TEST_F(TlsTest, HandshakeThatNeverComesTimesOut) {
  server::ServerOptions options = TlsServerOptions();
  options.request_timeout = std::chrono::milliseconds(200);
  const std::string address = StartServer(options);
  asio::io_context io;
  tcp::socket silent(io);
  tcp::resolver resolver(io);
  const auto colon = address.rfind(':');
  asio::connect(silent, resolver.resolve(address.substr(0, colon), address.substr(colon + 1)));
  uint8_t byte;
  boost::system::error_code ec;
  asio::read(silent, asio::buffer(&byte, 1), ec);  // returns once the server closes it
  EXPECT_TRUE(ec == asio::error::eof || ec == asio::error::connection_reset) << ec.message();
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  ExpectServed(*c);
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
  service::SeriesStore store;
  service::Service service(store);
  std::unique_ptr<durable::DataDirectory> data;
  durable::RecoveryReport report;
  ASSERT_TRUE(durable::DataDirectory::Open(data_options, service, &data, &report).ok());
  EXPECT_EQ(report.points, acknowledged);
}

// --- Startup errors. ---------------------------------------------------------

TEST_F(TlsTest, MissingCertificateFileIsNamed) {
  server::ServerOptions options = TlsServerOptions();
  options.tls.cert_file = Path("nope.pem");
  server::Server server(options, service_);
  const Status s = server.Start();
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "--tls-cert " + Path("nope.pem"))) << s.message();
  EXPECT_TRUE(Contains(s.message(), "No such file")) << s.message();
}

TEST_F(TlsTest, FileThatIsNotACertificateIsNamed) {
  std::ofstream(Path("junk.pem")) << "not a certificate\n";
  server::TlsOptions tls{Path("junk.pem"), Path("server.key"), ""};
  std::unique_ptr<asio::ssl::context> context;
  const Status s = server::MakeServerTlsContext(tls, &context);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "--tls-cert " + Path("junk.pem") + ": cannot load"))
      << s.message();
}

TEST_F(TlsTest, KeyOfAnotherCertificateIsAMismatch) {
  ca_.Issue("another", "DNS:another.test", Path("another.pem"), Path("another.key"));
  server::TlsOptions tls{Path("server.pem"), Path("another.key"), ""};
  std::unique_ptr<asio::ssl::context> context;
  const Status s = server::MakeServerTlsContext(tls, &context);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.message(), "--tls-key " + Path("another.key") +
                             ": does not match the certificate in --tls-cert " +
                             Path("server.pem"));
}

TEST_F(TlsTest, UnreadableClientCaIsNamed) {
  server::TlsOptions tls{Path("server.pem"), Path("server.key"), Path("missing-ca.pem")};
  std::unique_ptr<asio::ssl::context> context;
  const Status s = server::MakeServerTlsContext(tls, &context);
  ASSERT_FALSE(s.ok());
  EXPECT_TRUE(Contains(s.message(), "--tls-client-ca " + Path("missing-ca.pem"))) << s.message();
  client::TlsOptions client_tls;
  client_tls.ca_file = Path("missing-ca.pem");
  std::shared_ptr<asio::ssl::context> client_context;
  const Status c = client::MakeClientTlsContext(client_tls, &client_context);
  ASSERT_FALSE(c.ok());
  EXPECT_TRUE(Contains(c.message(), "--tls-ca " + Path("missing-ca.pem"))) << c.message();
}

int OpenDescriptors() {
  int n = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    ++n;
  }
  return n;
}

TEST_F(TlsTest, HandshakelessConnectionsOverTheLimitHoldBoundedDescriptors) {
  server::ServerOptions options = TlsServerOptions();
  options.max_connections = 4;
  options.request_timeout = std::chrono::seconds(60);  // the handshakes would wait this long
  const std::string address = StartServer(options);
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto colon = address.rfind(':');
  const auto where = resolver.resolve(address.substr(0, colon), address.substr(colon + 1));
  const int before = OpenDescriptors();
  constexpr int kSilent = 100;  // never start a handshake
  std::vector<tcp::socket> silent;
  for (int i = 0; i < kSilent; ++i) {
    asio::connect(silent.emplace_back(io), where);
  }
  // The server closes, at once and without a reply, those beyond its
  // connections and its few refusals in progress.
  const int bound = static_cast<int>(options.max_connections + server::Server::kRefusalAllowance);
  constexpr int kSlack = 4;  // the directory listing's own descriptor, a socket being closed
  int closed = 0;
  int held = 0;
  for (int round = 0; round < 400; ++round) {  // bounded: 20 s at most
    closed = 0;
    for (auto& s : silent) {
      pollfd p{s.native_handle(), POLLIN, 0};
      if (::poll(&p, 1, 0) == 1) ++closed;
    }
    held = OpenDescriptors() - before - kSilent;  // the server's side of them
    if (closed >= kSilent - bound && held <= bound + kSlack) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_GE(closed, kSilent - bound);
  EXPECT_LE(held, bound + kSlack);
  // A well-behaved client still gets a clear answer (the refusal) rather than a hang.
  silent.clear();  // frees the places
  for (int round = 0; round < 400; ++round) {
    if (OpenDescriptors() - before <= kSlack) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto c = Connect(address, ClientOptions(Path("ca.pem")));
  ASSERT_TRUE(c);
  ExpectServed(*c);
}

TEST_F(TlsTest, StopCutsHandshakesInProgressWithinTheGracePeriod) {
  server::ServerOptions options = TlsServerOptions();
  options.max_connections = 2;
  options.request_timeout = std::chrono::seconds(60);
  const std::string address = StartServer(options);
  asio::io_context io;
  tcp::resolver resolver(io);
  const auto colon = address.rfind(':');
  const auto where = resolver.resolve(address.substr(0, colon), address.substr(colon + 1));
  std::vector<tcp::socket> silent;  // handshakes, and refusals, waiting for a ClientHello
  for (int i = 0; i < 6; ++i) asio::connect(silent.emplace_back(io), where);
  // A trickled ClientHello: one byte.
  const uint8_t first = 0x16;
  asio::write(silent.front(), asio::buffer(&first, 1));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // let the server accept them
  Running& running = servers_.front();
  std::atomic<bool> finished{false};
  running.server->Stop();
  std::thread waiter([&] {
    running.runner.join();
    finished = true;
  });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (!finished && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(finished) << "Run did not return within the grace period plus slack";
  silent.clear();  // ends the handshakes if Stop did not
  waiter.join();
  servers_.clear();
}

}  // namespace
}  // namespace gradientd
