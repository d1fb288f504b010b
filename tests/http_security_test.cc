// The HTTP listener's security over real sockets, in a RunningNode: HTTPS
// with the protocol's certificate, and --auth-file's bearer tokens (public
// probes, 401 with WWW-Authenticate, 403 without the query role), with no
// token ever in the node's log.
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/beast/http/field.hpp>
#include <filesystem>
#include <fstream>

#include "http_test_client.h"
#include "running_node.h"
#include "test_ca.h"

namespace gradientd {
namespace {
namespace beast_http = boost::beast::http;
using testing::HttpTestClient;

constexpr const char* kQueryToken = "query-8b7d6e5f4a3c2b1a";
constexpr const char* kProduceToken = "ingest-5f2c9a1d7e3b4c60";
constexpr const char* kWrongToken = "wrong-0000000000000000";

class HttpSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "http_security_test_" + std::to_string(::getpid());
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
    ca_.WriteCertificate(Path("ca.pem"));
    ca_.Issue("gradientd test server", "IP:127.0.0.1,DNS:localhost", Path("server.pem"),
              Path("server.key"));
    std::ofstream(Path("auth")) << "reader query " << kQueryToken << "\nwriter produce "
                                << kProduceToken << "\n";
    std::filesystem::permissions(
        Path("auth"), std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  }
  void TearDown() override {
    node_.reset();
    std::filesystem::remove_all(dir_);
  }
  std::string Path(const std::string& name) const { return dir_ + "/" + name; }

  void Start(bool tls, bool auth) {
    app::NodeOptions options = testing::LoopbackNodeOptions();
    if (tls) {
      options.server.tls.cert_file = Path("server.pem");
      options.server.tls.key_file = Path("server.key");
    }
    if (auth) options.auth_file = Path("auth");
    node_ = std::make_unique<testing::RunningNode>(std::move(options));
    const Status s = node_->Start();
    ASSERT_TRUE(s.ok()) << s.message();
    address_ = node_->http_address();
  }

  void ExpectNoTokenInTheLog() {
    node_->Stop();
    const std::string log = node_->log();
    for (const char* token : {kQueryToken, kProduceToken, kWrongToken}) {
      EXPECT_EQ(log.find(token), std::string::npos) << log;
    }
  }

  testing::TestCa ca_{"gradientd http test CA"};
  std::string dir_;
  std::unique_ptr<testing::RunningNode> node_;
  std::string address_;
};

TEST_F(HttpSecurityTest, HttpsUsesTheProtocolsCertificate) {
  Start(/*tls=*/true, /*auth=*/false);
  HttpTestClient client(address_, Path("ca.pem"));
  ASSERT_TRUE(client.connected()) << client.error().message();
  const auto health = client.Call("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->body(), "ok\n");
  const auto list = client.Call("/api/v1/series");  // keep-alive over TLS
  ASSERT_TRUE(list);
  EXPECT_EQ(list->result(), beast_http::status::ok) << list->body();

  HttpTestClient plaintext(address_);  // gets no HTTP answer from an HTTPS port
  ASSERT_TRUE(plaintext.connected());
  boost::system::error_code ec;
  plaintext.Write(HttpTestClient::Get("/healthz"));
  EXPECT_FALSE(plaintext.Read(&ec));
  EXPECT_NE(ec, boost::beast::error::timeout);
  const auto again = HttpTestClient(address_, Path("ca.pem")).Call("/healthz");
  ASSERT_TRUE(again);
  EXPECT_EQ(again->result(), beast_http::status::ok);
}

TEST_F(HttpSecurityTest, ProbesArePublicTheRestNeedsAQueryToken) {
  Start(/*tls=*/false, /*auth=*/true);
  HttpTestClient client(address_);
  ASSERT_TRUE(client.connected());
  for (const char* probe : {"/healthz", "/readyz"}) {
    const auto response = client.Call(probe);
    ASSERT_TRUE(response);
    EXPECT_EQ(response->result(), beast_http::status::ok) << probe;
  }
  for (const char* target : {"/api/v1/series", "/api/v1/series/x", "/metrics"}) {
    const auto none = client.Call(target);
    ASSERT_TRUE(none);
    EXPECT_EQ(none->result(), beast_http::status::unauthorized) << target;
    EXPECT_EQ((*none)[beast_http::field::www_authenticate], R"(Bearer realm="gradientd")");
    const auto wrong = client.Call(target, kWrongToken);
    ASSERT_TRUE(wrong);
    EXPECT_EQ(wrong->result(), beast_http::status::unauthorized) << target;
    const auto produce = client.Call(target, kProduceToken);
    ASSERT_TRUE(produce);
    EXPECT_EQ(produce->result(), beast_http::status::forbidden) << target;
  }
  const auto allowed = client.Call("/api/v1/series", kQueryToken);
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->result(), beast_http::status::ok) << allowed->body();
  const auto missing = client.Call("/api/v1/series/x", kQueryToken);
  ASSERT_TRUE(missing);
  EXPECT_EQ(missing->result(), beast_http::status::not_found);
  ExpectNoTokenInTheLog();
}

TEST_F(HttpSecurityTest, HttpsWithTokens) {
  Start(/*tls=*/true, /*auth=*/true);
  HttpTestClient client(address_, Path("ca.pem"));
  ASSERT_TRUE(client.connected()) << client.error().message();
  const auto none = client.Call("/api/v1/series");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->result(), beast_http::status::unauthorized);
  const auto allowed = client.Call("/api/v1/series", kQueryToken);
  ASSERT_TRUE(allowed);
  EXPECT_EQ(allowed->result(), beast_http::status::ok);
  ExpectNoTokenInTheLog();
}

}  // namespace
}  // namespace gradientd
