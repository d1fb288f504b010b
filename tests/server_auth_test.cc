// The server with an auth file: Hello, roles, reloads.
#include <gtest/gtest.h>

#include "server_test_support.h"
#include "temp_dir.h"

namespace gradientd {
namespace {

// A server with an auth file: an ingester (produce), a reader (query) and
// ops (every role).
class AuthServerTest : public ServerTest {
 protected:
  static constexpr char kIngester[] = "ingester-token-0123456789";
  static constexpr char kReader[] = "reader-token-0123456789";
  static constexpr char kOps[] = "ops-token-0123456789";

  void Configure(server::ServerOptions*) override {
    WriteTokens(std::string("# name roles token\n") + "ingester produce " + kIngester + "\n" +
                "reader query " + kReader + "\n" + "ops produce,query,admin " + kOps + "\n");
    const Status s = auth::Authenticator::Load(path_.string(), &authenticator_);
    ASSERT_TRUE(s.ok()) << s.message();
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

  const gradientd::testing::TestDirectory temp_{"server_auth_test"};
  const std::filesystem::path path_ = temp_.path() / "tokens";
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

TEST(ServerWithoutHelloTest, ClientSaysTheHelloWasNotAcceptedNotThatTheTokenIsWrong) {
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

}  // namespace
}  // namespace gradientd
