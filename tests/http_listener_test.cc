// The HTTP listener over real sockets, in a RunningNode (the wiring
// gradientd's main uses): port 0 beside the protocol's, keep-alive and
// pipelining, each limit exceeded by a client while another is served
// (a 1 MiB header, a trickler, an idler, a connection over the limit),
// Stop closing idle connections, and --http-listen off.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/beast/http/field.hpp>
#include <filesystem>
#include <thread>

#include "http_test_client.h"
#include "running_node.h"
#include "service_test_support.h"

namespace gradientd {
namespace {
namespace beast_http = boost::beast::http;
using testing::HttpTestClient;

// The connection ended from the server's side (not the client's patience).
void ExpectClosedByServer(const boost::system::error_code& ec) {
  EXPECT_TRUE(ec) << "still open";
  EXPECT_NE(ec, boost::beast::error::timeout) << "the server did not close it";
}

class HttpListenerTest : public ::testing::Test {
 protected:
  void Start(app::NodeOptions options = testing::LoopbackNodeOptions()) {
    node_ = std::make_unique<testing::RunningNode>(std::move(options));
    const Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
    address_ = node_->http_address();
  }

  void Ingest(const std::string& series) {
    v1::Response response;
    node_->node().service().Handle(service::IngestRequest(series, {1, 2, 3}, {2, 4, 7}), &response);
    ASSERT_TRUE(response.has_ack());
  }

  // A fresh client gets /healthz: the server serves others meanwhile.
  void ExpectServesOthers() {
    HttpTestClient other(address_);
    ASSERT_TRUE(other.connected()) << other.error().message();
    const auto response = other.Call("/healthz");
    ASSERT_TRUE(response);
    EXPECT_EQ(response->result(), beast_http::status::ok);
    EXPECT_EQ(response->body(), "ok\n");
  }

  std::unique_ptr<testing::RunningNode> node_;
  std::string address_;
};

TEST_F(HttpListenerTest, PortZeroBesideTheProtocolsPortZeroServesHealth) {
  Start();
  EXPECT_NE(address_, node_->address());
  EXPECT_EQ(address_.rfind("127.0.0.1:", 0), 0u) << address_;
  EXPECT_NE(address_, "127.0.0.1:0");
  ExpectServesOthers();
}

TEST_F(HttpListenerTest, AKeepAliveClientsPipelinedRequestsAreAnsweredInOrder) {
  Start();
  Ingest("s");
  HttpTestClient client(address_);
  ASSERT_TRUE(client.connected());
  std::string pipeline;
  for (const char* target : {"/healthz", "/api/v1/series/s", "/api/v1/series/missing", "/readyz"}) {
    pipeline += std::string("GET ") + target + " HTTP/1.1\r\nHost: x\r\n\r\n";
  }
  ASSERT_FALSE(client.WriteRaw(pipeline));
  const auto health = client.Read();
  const auto fit = client.Read();
  const auto missing = client.Read();
  const auto ready = client.Read();
  ASSERT_TRUE(health && fit && missing && ready);
  EXPECT_EQ(health->body(), "ok\n");
  EXPECT_NE(fit->body().find(R"("series":"s")"), std::string::npos) << fit->body();
  EXPECT_EQ(missing->result(), beast_http::status::not_found);
  EXPECT_EQ(ready->body(), "ready\n");
  EXPECT_TRUE(ready->keep_alive());
  // Still open: one more on the same connection.
  const auto again = client.Call("/healthz");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result(), beast_http::status::ok);
}

TEST_F(HttpListenerTest, HeadCarriesTheLengthOfGetWithoutTheBody) {
  Start();
  Ingest("s");
  HttpTestClient get(address_);
  const auto full = get.Call("/api/v1/series/s");
  ASSERT_TRUE(full);
  HttpTestClient head(address_);
  ASSERT_FALSE(
      head.WriteRaw("HEAD /api/v1/series/s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"));
  std::string bytes;
  ExpectClosedByServer(head.AwaitClose(&bytes));
  EXPECT_EQ(bytes.rfind("HTTP/1.1 200 OK\r\n", 0), 0u) << bytes;
  EXPECT_NE(bytes.find("Content-Length: " + std::to_string(full->body().size()) + "\r\n"),
            std::string::npos)
      << bytes;
  EXPECT_EQ(bytes.substr(bytes.size() - 4), "\r\n\r\n") << "no body after the header";
}

TEST_F(HttpListenerTest, ConnectionCloseIsHonoured) {
  Start();
  HttpTestClient client(address_);
  auto request = HttpTestClient::Get("/healthz");
  request.keep_alive(false);
  const auto response = client.Call(request);
  ASSERT_TRUE(response);
  EXPECT_FALSE(response->keep_alive());
  ExpectClosedByServer(client.AwaitClose());
}

TEST_F(HttpListenerTest, AHeaderOfOneMebibyteIsRefusedAndOthersAreServed) {
  Start();
  HttpTestClient client(address_);
  ASSERT_TRUE(client.connected());
  const std::string huge =
      "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(1 << 20, 'a') + "\r\n\r\n";
  // The server may close before taking all of it: then the write fails.
  const auto written = client.WriteRaw(huge);
  boost::system::error_code ec;
  const auto response = client.Read(&ec);
  if (response) {
    EXPECT_EQ(response->result(), beast_http::status::request_header_fields_too_large);
    EXPECT_FALSE(response->keep_alive());
  } else {
    ExpectClosedByServer(ec);
    EXPECT_TRUE(written) << "a 1 MiB header was taken without an answer";
  }
  ExpectServesOthers();
}

TEST_F(HttpListenerTest, ABodyIsRefusedAndAPostIsNotAllowed) {
  Start();
  HttpTestClient big(address_);
  const auto written =
      big.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" +
                   std::string(100000, 'b'));
  boost::system::error_code ec;
  const auto refused = big.Read(&ec);
  if (refused) {
    EXPECT_EQ(refused->result(), beast_http::status::payload_too_large);
  } else {
    ExpectClosedByServer(ec);
    EXPECT_TRUE(written);
  }
  HttpTestClient post(address_);
  auto request = HttpTestClient::Get("/api/v1/series");
  request.method(beast_http::verb::post);
  request.body() = "{}";
  const auto not_allowed = post.Call(request);
  ASSERT_TRUE(not_allowed);
  EXPECT_EQ(not_allowed->result(), beast_http::status::method_not_allowed);
  HttpTestClient garbage(address_);
  ASSERT_FALSE(garbage.WriteRaw("NOT HTTP AT ALL\r\n\r\n"));
  const auto bad = garbage.Read(&ec);
  ASSERT_TRUE(bad) << ec.message();
  EXPECT_EQ(bad->result(), beast_http::status::bad_request);
  ExpectServesOthers();
}

TEST_F(HttpListenerTest, ATricklerIsClosedAfterTheRequestTimeout) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.server.request_timeout = std::chrono::milliseconds(300);
  Start(options);
  HttpTestClient trickler(address_);
  ASSERT_TRUE(trickler.connected());
  ASSERT_FALSE(trickler.WriteRaw("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: "));
  // One byte every 20 ms, never finishing the header, until a write fails
  // because the server closed (bounded: 3000 bytes is a minute). On this
  // thread only: the test client is not thread-safe.
  boost::system::error_code write_error;
  for (int i = 0; i < 3000 && !write_error; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    write_error = trickler.WriteRaw("a");
    if (i == 2) ExpectServesOthers();  // while the trickler trickles
  }
  EXPECT_TRUE(write_error) << "the server kept taking a request that never ends";
  boost::system::error_code ec;
  const auto response = trickler.Read(&ec);
  EXPECT_FALSE(response) << "answered a request that never ended";
  ExpectClosedByServer(ec);
  ExpectServesOthers();
}

TEST_F(HttpListenerTest, AnIdlerIsClosedAfterTheIdleTimeoutBeforeOrBetweenRequests) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.server.idle_timeout = std::chrono::milliseconds(300);
  Start(options);
  HttpTestClient silent(address_);
  ASSERT_TRUE(silent.connected());
  HttpTestClient kept_alive(address_);
  ASSERT_TRUE(kept_alive.Call("/healthz"));
  ExpectClosedByServer(silent.AwaitClose());
  ExpectClosedByServer(kept_alive.AwaitClose());
  ExpectServesOthers();
}

TEST_F(HttpListenerTest, AConnectionOverTheLimitGets503AndTheOthersGoOn) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.http.max_connections = 2;
  Start(options);
  HttpTestClient first(address_);
  HttpTestClient second(address_);
  ASSERT_TRUE(first.Call("/healthz"));  // both admitted and served
  ASSERT_TRUE(second.Call("/healthz"));
  HttpTestClient third(address_);
  const auto refused = third.Call("/healthz");
  ASSERT_TRUE(refused);
  EXPECT_EQ(refused->result(), beast_http::status::service_unavailable);
  EXPECT_NE(refused->body().find("too many HTTP connections (the limit is 2)"), std::string::npos)
      << refused->body();
  EXPECT_FALSE(refused->keep_alive());
  ExpectClosedByServer(third.AwaitClose());
  const auto still = first.Call("/healthz");  // the admitted ones are unaffected
  ASSERT_TRUE(still);
  EXPECT_EQ(still->result(), beast_http::status::ok);
  // Once one leaves, a newcomer is served (after the server sees it leave).
  second.Close();
  bool served = false;
  for (int attempt = 0; attempt < 600 && !served; ++attempt) {
    HttpTestClient newcomer(address_);
    const auto response = newcomer.Call("/healthz");
    served = response && response->result() == beast_http::status::ok;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_TRUE(served);
}

TEST_F(HttpListenerTest, StopClosesIdleKeepAliveConnectionsPromptly) {
  Start();  // idle timeout: the default five minutes
  HttpTestClient idle(address_);
  ASSERT_TRUE(idle.Call("/healthz"));
  HttpTestClient silent(address_);
  ASSERT_TRUE(silent.connected());
  node_->Stop();  // returns only once Run has, which waits for HTTP's connections
  ExpectClosedByServer(idle.AwaitClose());
  ExpectClosedByServer(silent.AwaitClose());
}

TEST_F(HttpListenerTest, ADurableNodeIsReadyOnceRecovered) {
  const std::string dir = ::testing::TempDir() + "http_listener_test_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  Start(testing::LoopbackNodeOptions(dir));
  HttpTestClient client(address_);
  const auto ready = client.Call("/readyz");
  ASSERT_TRUE(ready);
  EXPECT_EQ(ready->result(), beast_http::status::ok);
  EXPECT_EQ(ready->body(), "ready\n");
  node_.reset();
  std::filesystem::remove_all(dir);
}

TEST_F(HttpListenerTest, HttpListenOffOpensNoPort) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.http.listen = "off";
  node_ = std::make_unique<testing::RunningNode>(std::move(options));
  ASSERT_TRUE(node_->Start().ok());
  EXPECT_FALSE(node_->node().http_endpoint().has_value());
}

TEST_F(HttpListenerTest, ABusyHttpPortIsAStartupErrorNamingTheFlag) {
  Start();
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.http.listen = address_;
  testing::RunningNode second(std::move(options));
  const Status s = second.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find("--http-listen " + address_ + ": cannot listen"), std::string::npos)
      << s.message();
  ExpectServesOthers();
}

TEST(HttpListenAddressTest, TheDefaultIsBesideTheProtocolsPort) {
  std::string resolved;
  ASSERT_TRUE(app::ResolveHttpListen("", "127.0.0.1:7878", &resolved).ok());
  EXPECT_EQ(resolved, "127.0.0.1:7879");
  ASSERT_TRUE(app::ResolveHttpListen("", "[::1]:9000", &resolved).ok());
  EXPECT_EQ(resolved, "[::1]:9001");
  ASSERT_TRUE(app::ResolveHttpListen("", "127.0.0.1:0", &resolved).ok());
  EXPECT_EQ(resolved, "127.0.0.1:0");
  ASSERT_TRUE(app::ResolveHttpListen("off", "127.0.0.1:7878", &resolved).ok());
  EXPECT_EQ(resolved, "");
  ASSERT_TRUE(app::ResolveHttpListen("0.0.0.0:80", "127.0.0.1:7878", &resolved).ok());
  EXPECT_EQ(resolved, "0.0.0.0:80");
  const Status top = app::ResolveHttpListen("", "127.0.0.1:65535", &resolved);
  EXPECT_NE(top.message().find("--http-listen"), std::string::npos) << top.message();
  const Status bad = app::ResolveHttpListen("no-port-here:x", "127.0.0.1:7878", &resolved);
  EXPECT_EQ(bad.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.message().rfind("--http-listen: ", 0), 0u) << bad.message();
}

}  // namespace
}  // namespace gradientd
