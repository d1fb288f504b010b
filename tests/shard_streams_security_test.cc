// ShardStreams against a real nats-server (JetStream, one server, one
// replica) that requires TLS, a client certificate, a user and password, or
// a token: the right settings publish and read; the wrong ones are refused
// at Open with a message naming the servers and what failed, never a secret.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "jetstream/shard_streams.h"
#include "nats_cluster.h"
#include "temp_dir.h"
#include "test_ca.h"

namespace gradientd::jetstream {
namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

ClusterOptions Options(const testing::NatsCluster& nats, NatsSecurity security) {
  ClusterOptions options;
  options.urls = nats.Urls();
  options.security = std::move(security);
  options.name = "secure";
  options.shards = 1;
  options.replicas = 1;
  options.timeout = 2000ms;
  return options;
}

// Opens once the server answers (bounded): the first Opens may find it not
// listening yet.
Status OpenWhenListening(testing::NatsCluster& nats, const ClusterOptions& options,
                         std::unique_ptr<ShardStreams>* streams) {
  const auto deadline = Clock::now() + 30s;
  Status last;
  while (Clock::now() < deadline) {
    if (const std::string problem = nats.Problem(); !problem.empty()) {
      return Status::Internal(problem);
    }
    last = ShardStreams::Open(options, streams);
    if (last.code() != StatusCode::kUnavailable) return last;
    std::this_thread::sleep_for(100ms);
  }
  return last;
}

// Opens with `options`, publishes one message and reads it back.
void ExpectPublishAndRead(testing::NatsCluster& nats, const ClusterOptions& options) {
  std::unique_ptr<ShardStreams> streams;
  const Status opened = OpenWhenListening(nats, options, &streams);
  ASSERT_TRUE(opened.ok()) << opened.message() << "\n" << nats.Log(0);
  PublishResult result;
  const Status published = streams->Publish(0, "hello", "id-1", &result);
  ASSERT_TRUE(published.ok()) << published.message();
  std::unique_ptr<ShardStreams::Reader> reader;
  ASSERT_TRUE(streams->OpenReader(0, 1, &reader).ok());
  StreamMessage message;
  const auto deadline = Clock::now() + 10s;
  while (message.sequence == 0 && Clock::now() < deadline) {
    ASSERT_TRUE(reader->Next(200ms, &message).ok());
  }
  EXPECT_EQ(message.sequence, result.sequence);
  EXPECT_EQ(message.data, "hello");
}

// The error of an Open with `options` against a server that answers.
Status RefusedOpen(testing::NatsCluster& nats, const ClusterOptions& options) {
  std::unique_ptr<ShardStreams> streams;
  const Status s = OpenWhenListening(nats, options, &streams);
  EXPECT_FALSE(s.ok());
  return s;
}

// Expects the message to name the servers and `failed`.
void ExpectNames(const Status& s, const testing::NatsCluster& nats, const std::string& failed) {
  EXPECT_NE(s.message().find("cannot connect to NATS at " + nats.Url(0)), std::string::npos)
      << s.message();
  EXPECT_NE(s.message().find(failed), std::string::npos) << s.message();
}

class TlsTest : public ::testing::Test {
 protected:
  TlsTest() : dir_("gradientd-nats-tls"), ca_("nats test ca"), other_ca_("another ca") {
    ca_.WriteCertificate(dir_.Path("ca.pem"));
    other_ca_.WriteCertificate(dir_.Path("other-ca.pem"));
    ca_.Issue("nats", "IP:127.0.0.1,DNS:localhost", dir_.Path("server.pem"),
              dir_.Path("server.key"));
    ca_.Issue("gradientd", "", dir_.Path("client.pem"), dir_.Path("client.key"));
    other_ca_.Issue("stranger", "", dir_.Path("stranger.pem"), dir_.Path("stranger.key"));
  }
  std::string TlsConfig(bool verify) const {
    return "tls {\n  cert_file: \"" + dir_.Path("server.pem") + "\"\n  key_file: \"" +
           dir_.Path("server.key") + "\"\n  ca_file: \"" + dir_.Path("ca.pem") +
           "\"\n  verify: " + (verify ? "true" : "false") + "\n}";
  }
  NatsSecurity WithCa(const std::string& ca) const {
    NatsSecurity security;
    security.ca_file = dir_.Path(ca);
    return security;
  }

  testing::TestDirectory dir_;
  testing::TestCa ca_;
  testing::TestCa other_ca_;
};

TEST_F(TlsTest, WithTheRightCaPublishesAndReads) {
  testing::NatsCluster nats(1, TlsConfig(false));
  ExpectPublishAndRead(nats, Options(nats, WithCa("ca.pem")));
}

TEST_F(TlsTest, ATlsUrlWithTheCaPublishesAndReads) {
  testing::NatsCluster nats(1, TlsConfig(false));
  ClusterOptions options = Options(nats, WithCa("ca.pem"));
  options.urls = {"tls://127.0.0.1:" + nats.Url(0).substr(nats.Url(0).rfind(':') + 1)};
  ExpectPublishAndRead(nats, options);
}

TEST_F(TlsTest, WithoutTheCaOrWithAnotherCaIsRefused) {
  testing::NatsCluster nats(1, TlsConfig(false));
  // libnats follows the server to TLS, and then has no CA to trust.
  const Status without = RefusedOpen(nats, Options(nats, {}));
  ExpectNames(without, nats, "SSL handshake error");
  ExpectNames(without, nats, "unable to get local issuer certificate");
  const Status other = RefusedOpen(nats, Options(nats, WithCa("other-ca.pem")));
  ExpectNames(other, nats, "SSL handshake error");
  ExpectNames(other, nats, "unable to get local issuer certificate");
  EXPECT_EQ(other.code(), StatusCode::kFailedPrecondition);
}

TEST_F(TlsTest, AMissingCaFileIsNamed) {
  testing::NatsCluster nats(1, TlsConfig(false));
  const Status s = RefusedOpen(nats, Options(nats, WithCa("missing.pem")));
  EXPECT_NE(
      s.message().find("cannot load the CA certificates for NATS from " + dir_.Path("missing.pem")),
      std::string::npos)
      << s.message();
}

TEST_F(TlsTest, MutualTlsWorksWithTheClientCertificateAndIsRefusedWithout) {
  testing::NatsCluster nats(1, TlsConfig(true));
  NatsSecurity security = WithCa("ca.pem");
  security.cert_file = dir_.Path("client.pem");
  security.key_file = dir_.Path("client.key");
  ExpectPublishAndRead(nats, Options(nats, security));
  const char* refused =
      "the servers closed the TLS connection; if they verify client certificates, this node's is "
      "missing or not trusted";
  ExpectNames(RefusedOpen(nats, Options(nats, WithCa("ca.pem"))), nats, refused);
  security.cert_file = dir_.Path("stranger.pem");
  security.key_file = dir_.Path("stranger.key");
  ExpectNames(RefusedOpen(nats, Options(nats, security)), nats, refused);
}

TEST(NatsCredentialsTest, TheRightUserAndPasswordWorkAndAWrongPasswordIsRefused) {
  testing::NatsCluster nats(1, "authorization {\n  user: node\n  password: \"s3cret-pw\"\n}");
  NatsSecurity security;
  security.user = "node";
  security.password = "s3cret-pw";
  ExpectPublishAndRead(nats, Options(nats, security));
  security.password = "wrong-pw";
  const Status wrong = RefusedOpen(nats, Options(nats, security));
  ExpectNames(wrong, nats, "Authorization Violation");
  EXPECT_EQ(wrong.code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.message().find("wrong-pw"), std::string::npos) << wrong.message();
  const Status none = RefusedOpen(nats, Options(nats, {}));
  ExpectNames(none, nats, "Authorization Violation");
}

TEST(NatsCredentialsTest, TheRightTokenWorksAndAWrongOneIsRefused) {
  testing::NatsCluster nats(1, "authorization {\n  token: \"t0ken-right\"\n}");
  NatsSecurity security;
  security.token = "t0ken-right";
  ExpectPublishAndRead(nats, Options(nats, security));
  security.token = "t0ken-wrong";
  const Status wrong = RefusedOpen(nats, Options(nats, security));
  ExpectNames(wrong, nats, "Authorization Violation");
  EXPECT_EQ(wrong.message().find("t0ken"), std::string::npos) << wrong.message();
}

TEST(NatsCredentialsTest, ConflictingSettingsAreRefusedBeforeConnecting) {
  ClusterOptions options;
  options.urls = {"nats://127.0.0.1:1"};
  options.security.cert_file = "client.pem";
  std::unique_ptr<ShardStreams> streams;
  EXPECT_EQ(ShardStreams::Open(options, &streams).code(), StatusCode::kInvalidArgument);
  options.security = {};
  options.security.user = "u";
  options.security.token = "t";
  EXPECT_EQ(ShardStreams::Open(options, &streams).code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace gradientd::jetstream
