// TLS handshakes: certificate verification both ways, handshakes that never
// come or are cut at Stop, descriptors held by handshake-less connections,
// and the startup errors of bad certificate files (tls_test_support.h).
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
#include "client/tls.h"
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
