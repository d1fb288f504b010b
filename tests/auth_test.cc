// Tests of access control: the auth file parser, the reloadable token table,
// and the per-connection Session in front of a real Service.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "auth/session.h"
#include "auth/token_file.h"
#include "service/series_store.h"
#include "service/service.h"
#include "temp_dir.h"

namespace gradientd::auth {
namespace {

constexpr char kIngesterToken[] = "ingest-0123456789abcdef";
constexpr char kReaderToken[] = "reader-0123456789abcdef";
constexpr char kOpsToken[] = "ops-token-0123456789abcdef";

// A file with one token of each shape.
std::string GoodFile() {
  return std::string("# name    roles                token\n") + "ingester  produce              " +
         kIngesterToken + "\n" +
         "\n"
         "   # an indented comment\n"
         "reader\tquery\t" +
         kReaderToken + "\r\n" +                         // tabs, CRLF
         "ops       admin,query,produce  " + kOpsToken;  // no final newline
}

TokenTable Parse(const std::string& text) {
  TokenTable table;
  const Status s = ParseTokenFile(text, "tokens.conf", &table);
  EXPECT_TRUE(s.ok()) << s.message();
  return table;
}

// The error of parsing `text`, which must fail.
std::string ParseError(const std::string& text) {
  TokenTable table(std::vector<TokenEntry>{TokenEntry{"kept", RoleSet::All(), {}, 1}});
  const Status s = ParseTokenFile(text, "tokens.conf", &table);
  EXPECT_FALSE(s.ok()) << "accepted:\n" << text;
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // A failed parse leaves the table as it was.
  EXPECT_EQ(table.size(), 1u);
  if (table.size() == 1) {
    EXPECT_EQ(table.entries()[0].name, "kept");
  }
  return s.message();
}

// ---------------------------------------------------------------------------
// The auth file.

TEST(TokenFileTest, GoodFileGivesEveryTokenItsNameRolesAndLine) {
  const TokenTable table = Parse(GoodFile());
  ASSERT_EQ(table.size(), 3u);
  EXPECT_EQ(table.entries()[0].name, "ingester");
  EXPECT_EQ(table.entries()[0].roles, RoleSet().With(v1::PRODUCE));
  EXPECT_EQ(table.entries()[0].line, 2);
  EXPECT_EQ(table.entries()[1].name, "reader");
  EXPECT_EQ(table.entries()[1].roles, RoleSet().With(v1::QUERY));
  EXPECT_EQ(table.entries()[1].line, 5);
  EXPECT_EQ(table.entries()[2].name, "ops");
  EXPECT_EQ(table.entries()[2].roles, RoleSet::All());
  EXPECT_EQ(table.entries()[2].roles.ToString(), "produce,query,admin");
}

TEST(TokenFileTest, TokensAreFoundByDigestAndOnlyTheirOwn) {
  const TokenTable table = Parse(GoodFile());
  const TokenEntry* reader = table.Find(DigestOf(kReaderToken));
  ASSERT_NE(reader, nullptr);
  EXPECT_EQ(reader->name, "reader");
  EXPECT_EQ(table.Find(DigestOf(kOpsToken))->name, "ops");
  EXPECT_EQ(table.Find(DigestOf("reader-0123456789abcdeX")), nullptr);
  EXPECT_EQ(table.Find(DigestOf("reader-0123456789abcde")), nullptr);  // a prefix
  EXPECT_EQ(table.Find(DigestOf("")), nullptr);
  // The CRLF line's token does not include the '\r'.
  EXPECT_EQ(table.Find(DigestOf(std::string(kReaderToken) + "\r")), nullptr);
}

TEST(TokenFileTest, EmptyAndCommentOnlyFilesHaveNoTokens) {
  EXPECT_EQ(Parse("").size(), 0u);
  EXPECT_EQ(Parse("\n\n# nothing yet\n   \n\t\n").size(), 0u);
}

TEST(TokenFileTest, DigestsAreSha256) {
  // SHA-256("abc"), FIPS 180-2 appendix B.1.
  const Digest d = DigestOf("abc");
  EXPECT_EQ(d[0], 0xba);
  EXPECT_EQ(d[1], 0x78);
  EXPECT_EQ(d[31], 0xad);
  EXPECT_TRUE(SameDigest(DigestOf("abc"), d));
  EXPECT_FALSE(SameDigest(DigestOf("abd"), d));
}

struct Malformed {
  const char* what;
  std::string text;
  const char* expected;  // a substring of the error, after "tokens.conf:LINE: "
  int line;
};

TEST(TokenFileTest, EveryMalformedLineIsRefusedWithFileAndLine) {
  const std::string t = "abcdefghijklmnop-secret";  // a valid token
  const std::vector<Malformed> cases = {
      {"two fields", "a produce\n", "expected 3 fields (name roles token), found 2", 1},
      {"one field", "# c\n" + t + "\n", "expected 3 fields", 2},
      {"a trailing comment", "a produce " + t + " # mine\n",
       "found 5; a comment must be on a line of its own", 1},
      {"a name with a bad character", "a/b produce " + t + "\n", "the name must be 1 to 64", 1},
      {"a name too long", std::string(65, 'n') + " produce " + t + "\n", "the name must be", 1},
      {"a duplicate name", "a produce " + t + "\nb query x" + t + "\na admin y" + t + "\n",
       "the name 'a' is already used on line 1", 3},
      {"an unknown role", "a produce,write " + t + "\n",
       "'a': unknown role 'write' (roles are produce, query, admin)", 1},
      {"the token in the roles column", "a " + t + " produce\n",
       "an unknown role of 23 characters (is the token in the roles column?)", 1},
      {"an empty role", "a produce,,query " + t + "\n", "an empty role", 1},
      {"a trailing comma", "a produce, " + t + "\n", "an empty role", 1},
      {"a role twice", "a query,admin,query " + t + "\n", "role 'query' is listed twice", 1},
      {"role names are lower case", "a Admin " + t + "\n", "unknown role 'Admin'", 1},
      {"a token too short", "a produce 0123456789abcde\n",
       "the token of 'a' has 15 characters; it needs 16 to 1024", 1},
      {"a token too long", "a produce " + std::string(1025, 't') + "\n", "has 1025 characters", 1},
      {"a control character in the token",
       "a produce abc\x01"
       "defghijklmnopq\n",
       "the token of 'a' has a character that is not printable ASCII", 1},
      {"UTF-8 in the token", "a produce caf\xc3\xa9-0123456789abc\n", "not printable ASCII", 1},
      {"a duplicate token", "a produce " + t + "\n\nb query " + t + "\n",
       "'b' has the same token as 'a' (line 1)", 3},
  };
  for (const Malformed& c : cases) {
    SCOPED_TRACE(c.what);
    const std::string message = ParseError(c.text);
    EXPECT_NE(message.find("tokens.conf:" + std::to_string(c.line) + ": "), std::string::npos)
        << message;
    EXPECT_NE(message.find(c.expected), std::string::npos) << message;
    // Never a token in a message.
    EXPECT_EQ(message.find(t), std::string::npos) << message;
    EXPECT_EQ(message.find("secret"), std::string::npos) << message;
  }
}

TEST(TokenFileTest, LoadNamesAMissingFile) {
  TokenTable table;
  const Status s = LoadTokenFile("/nonexistent/gradientd-tokens", &table);
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("cannot open /nonexistent/gradientd-tokens"), std::string::npos)
      << s.message();
}

TEST(RoleSetTest, RolesAreIndependent) {
  const RoleSet admin = RoleSet().With(v1::ADMIN);
  EXPECT_TRUE(admin.Has(v1::ADMIN));
  EXPECT_FALSE(admin.Has(v1::QUERY));
  EXPECT_FALSE(admin.Has(v1::PRODUCE));
  EXPECT_EQ(RoleSet().ToString(), "none");
  EXPECT_EQ(RoleSet().With(v1::ADMIN).With(v1::PRODUCE).ToString(), "produce,admin");
}

// ---------------------------------------------------------------------------
// The role each request needs.

TEST(RequiredRoleTest, EveryRequestKindNeedsItsRole) {
  v1::Request r;
  r.mutable_ingest();
  EXPECT_EQ(RequiredRole(r), v1::PRODUCE);
  r.mutable_gradient();
  EXPECT_EQ(RequiredRole(r), v1::QUERY);
  r.mutable_fit();
  EXPECT_EQ(RequiredRole(r), v1::QUERY);
  r.mutable_list();
  EXPECT_EQ(RequiredRole(r), v1::QUERY);
  r.mutable_step();
  EXPECT_EQ(RequiredRole(r), v1::ADMIN);
  r.mutable_configure();
  EXPECT_EQ(RequiredRole(r), v1::ADMIN);
  r.mutable_reset();
  EXPECT_EQ(RequiredRole(r), v1::ADMIN);
  r.mutable_hello();
  EXPECT_EQ(RequiredRole(r), std::nullopt);
  r.clear_body();
  EXPECT_EQ(RequiredRole(r), std::nullopt);
}

// ---------------------------------------------------------------------------
// Session in front of a real Service.

// One request of every kind, on series "s".
std::vector<v1::Request> EveryOperation() {
  std::vector<v1::Request> all(7);
  v1::PointBatch* batch = all[0].mutable_ingest();
  batch->set_series("s");
  for (int i = 0; i < 4; ++i) {
    batch->add_x(i);
    batch->add_y(2 * i + 1);
  }
  all[1].mutable_gradient()->set_series("s");
  all[2].mutable_fit()->set_series("s");
  all[3].mutable_list();
  all[4].mutable_step()->set_series("s");
  all[4].mutable_step()->set_iterations(3);
  all[5].mutable_configure()->set_series("s");
  all[5].mutable_configure()->set_m(5);
  all[6].mutable_reset()->set_series("s");
  return all;
}

class SessionTest : public ::testing::Test {
 protected:
  SessionTest() : authenticator_(Parse(GoodFile())) {
    // One series with points and a model, so that every operation can succeed.
    v1::Request ingest = EveryOperation()[0];
    v1::Response response;
    service_.Handle(ingest, &response);
    EXPECT_TRUE(response.has_ack());
  }

  v1::Response Call(Session& session, const v1::Request& request) {
    v1::Response response;
    session.Handle(request, &response);
    return response;
  }
  v1::Response Hello(Session& session, const std::string& token) {
    v1::Request request;
    request.mutable_hello()->set_token(token);
    return Call(session, request);
  }

  // Everything a client can observe: every series' model and statistics.
  std::string State() {
    v1::Request list;
    list.mutable_list();
    v1::Response response;
    service_.Handle(list, &response);
    return response.SerializeAsString();
  }

  service::SeriesStore store_;
  service::Service service_{store_};
  Authenticator authenticator_;
};

TEST_F(SessionTest, EveryOperationBeforeHelloIsUnauthenticatedAndChangesNothing) {
  Session session(service_, authenticator_);
  const std::string before = State();
  for (const v1::Request& request : EveryOperation()) {
    SCOPED_TRACE(OperationName(request));
    const v1::Response response = Call(session, request);
    ASSERT_TRUE(response.has_error());
    EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
    EXPECT_NE(response.error().message().find("Hello"), std::string::npos);
  }
  EXPECT_EQ(State(), before);
}

TEST_F(SessionTest, WrongOrEmptyTokenIsUnauthenticatedAndNeverEchoed) {
  Session session(service_, authenticator_);
  for (const std::string& token :
       {std::string("not-a-token-at-all-1234"), std::string(""), std::string(kReaderToken) + " ",
        std::string(kReaderToken).substr(1)}) {
    const v1::Response response = Hello(session, token);
    ASSERT_TRUE(response.has_error());
    EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
    if (!token.empty()) {
      EXPECT_EQ(response.error().message().find(token), std::string::npos);
    }
  }
  EXPECT_TRUE(session.name().empty());
  v1::Request fit;
  fit.mutable_fit()->set_series("s");
  EXPECT_EQ(Call(session, fit).error().code(), v1::Error::UNAUTHENTICATED);
}

TEST_F(SessionTest, HelloReplyNamesTheTokenAndItsRoles) {
  Session session(service_, authenticator_);
  const v1::Response response = Hello(session, kOpsToken);
  ASSERT_TRUE(response.has_hello()) << response.DebugString();
  EXPECT_EQ(response.hello().name(), "ops");
  EXPECT_FALSE(response.hello().open());
  ASSERT_EQ(response.hello().roles_size(), 3);
  EXPECT_EQ(response.hello().roles(0), v1::PRODUCE);
  EXPECT_EQ(response.hello().roles(1), v1::QUERY);
  EXPECT_EQ(response.hello().roles(2), v1::ADMIN);
  // The token itself is nowhere in the reply.
  EXPECT_EQ(response.SerializeAsString().find(kOpsToken), std::string::npos);
}

// For each token, each operation: allowed exactly when the token has the
// operation's role; refused ones get PERMISSION_DENIED and change nothing.
TEST_F(SessionTest, EachRoleAllowsExactlyItsOperations) {
  struct Case {
    const char* token;
    RoleSet roles;
  };
  for (const Case& c :
       {Case{kIngesterToken, RoleSet().With(v1::PRODUCE)},
        Case{kReaderToken, RoleSet().With(v1::QUERY)}, Case{kOpsToken, RoleSet::All()}}) {
    Session session(service_, authenticator_);
    ASSERT_TRUE(Hello(session, c.token).has_hello());
    for (const v1::Request& request : EveryOperation()) {
      SCOPED_TRACE(std::string(c.token) + " " + std::string(OperationName(request)));
      const std::string before = State();
      const v1::Response response = Call(session, request);
      const bool allowed = c.roles.Has(*RequiredRole(request));
      if (allowed) {
        EXPECT_FALSE(response.has_error()) << response.DebugString();
      } else {
        ASSERT_TRUE(response.has_error());
        EXPECT_EQ(response.error().code(), v1::Error::PERMISSION_DENIED);
        EXPECT_NE(response.error().message().find(std::string("needs the ") +
                                                  std::string(RoleName(*RequiredRole(request))) +
                                                  " role"),
                  std::string::npos)
            << response.error().message();
        EXPECT_EQ(State(), before);
      }
    }
    // Reset emptied "s": put its points back for the next token.
    v1::Response refill;
    service_.Handle(EveryOperation()[0], &refill);
  }
}

TEST_F(SessionTest, AdminDoesNotImplyQuery) {
  Authenticator admin_only(Parse("root admin 0123456789abcdef-root\n"));
  Session session(service_, admin_only);
  ASSERT_TRUE(Hello(session, "0123456789abcdef-root").has_hello());
  v1::Request fit;
  fit.mutable_fit()->set_series("s");
  const v1::Response response = Call(session, fit);
  ASSERT_TRUE(response.has_error());
  EXPECT_EQ(response.error().code(), v1::Error::PERMISSION_DENIED);
  EXPECT_EQ(response.error().message(),
            "'root' (roles: admin) may not fit: it needs the query role");
}

TEST_F(SessionTest, ASecondHelloReplacesTheIdentityAndABadOneKeepsIt) {
  Session session(service_, authenticator_);
  ASSERT_TRUE(Hello(session, kReaderToken).has_hello());
  EXPECT_EQ(session.name(), "reader");
  ASSERT_TRUE(Hello(session, kIngesterToken).has_hello());
  EXPECT_EQ(session.name(), "ingester");
  EXPECT_EQ(session.roles(), RoleSet().With(v1::PRODUCE));
  EXPECT_EQ(Hello(session, "bogus-bogus-bogus-bogus").error().code(), v1::Error::UNAUTHENTICATED);
  EXPECT_EQ(session.name(), "ingester");
  EXPECT_TRUE(Call(session, EveryOperation()[0]).has_ack());
}

TEST_F(SessionTest, EmptyRequestAfterHelloIsTheServicesInvalidArgument) {
  Session session(service_, authenticator_);
  ASSERT_TRUE(Hello(session, kReaderToken).has_hello());
  EXPECT_EQ(Call(session, v1::Request()).error().code(), v1::Error::INVALID_ARGUMENT);
}

TEST_F(SessionTest, ServiceAloneAnswersHelloAsAnOpenServer) {
  v1::Request hello;
  hello.mutable_hello()->set_token("anything");
  v1::Response response;
  service_.Handle(hello, &response);
  ASSERT_TRUE(response.has_hello());
  EXPECT_TRUE(response.hello().open());
  EXPECT_EQ(response.hello().roles_size(), 3);
}

// ---------------------------------------------------------------------------
// Reloading the file.

class ReloadTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Write(GoodFile());
    ASSERT_TRUE(Authenticator::Load(path_.string(), &authenticator_).ok());
  }

  void Write(const std::string& text) {
    std::ofstream out(path_, std::ios::trunc);
    out << text;
  }

  const gradientd::testing::TestDirectory temp_{"auth_test"};
  const std::filesystem::path path_ = temp_.path() / "tokens";
  std::unique_ptr<Authenticator> authenticator_;
};

TEST_F(ReloadTest, ReloadAddsNewTokensAndDropsRemovedOnes) {
  EXPECT_EQ(authenticator_->size(), 3u);
  const uint64_t generation = authenticator_->generation();
  Write("newcomer query 0123456789abcdef-new\nreader query " + std::string(kReaderToken) + "\n");
  ASSERT_TRUE(authenticator_->Reload().ok());
  EXPECT_NE(authenticator_->generation(), generation);
  EXPECT_EQ(authenticator_->size(), 2u);
  EXPECT_EQ(authenticator_->Authenticate(DigestOf("0123456789abcdef-new"))->name, "newcomer");
  EXPECT_FALSE(authenticator_->Authenticate(DigestOf(kOpsToken)).has_value());
  EXPECT_TRUE(authenticator_->Authenticate(DigestOf(kReaderToken)).has_value());
}

TEST_F(ReloadTest, AFailedReloadKeepsThePreviousTokens) {
  const uint64_t generation = authenticator_->generation();
  Write("newcomer query,delete 0123456789abcdef-new\n");
  const Status s = authenticator_->Reload();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(path_.string() + ":1: 'newcomer': unknown role 'delete'"),
            std::string::npos)
      << s.message();
  EXPECT_EQ(authenticator_->generation(), generation);
  EXPECT_EQ(authenticator_->size(), 3u);
  EXPECT_TRUE(authenticator_->Authenticate(DigestOf(kOpsToken)).has_value());
  EXPECT_FALSE(authenticator_->Authenticate(DigestOf("0123456789abcdef-new")).has_value());

  std::filesystem::remove(path_);
  EXPECT_FALSE(authenticator_->Reload().ok());
  EXPECT_EQ(authenticator_->size(), 3u);
}

TEST_F(ReloadTest, AuthenticatedConnectionsSeeTheReloadAtTheirNextRequest) {
  service::SeriesStore store;
  service::Service service(store);
  Session ops(service, *authenticator_);
  Session reader(service, *authenticator_);
  for (auto [session, token] : {std::pair{&ops, kOpsToken}, std::pair{&reader, kReaderToken}}) {
    v1::Request hello;
    hello.mutable_hello()->set_token(token);
    v1::Response response;
    session->Handle(hello, &response);
    ASSERT_TRUE(response.has_hello());
  }
  // ops is removed; reader gains admin.
  Write("reader query,admin " + std::string(kReaderToken) + "\n");
  ASSERT_TRUE(authenticator_->Reload().ok());

  v1::Request configure;
  configure.mutable_configure()->set_series("t");
  v1::Response response;
  ops.Handle(configure, &response);
  ASSERT_TRUE(response.has_error());
  EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
  EXPECT_NE(response.error().message().find("'ops' is no longer valid"), std::string::npos);
  EXPECT_TRUE(ops.name().empty());
  v1::Request list;
  list.mutable_list();
  response.Clear();
  ops.Handle(list, &response);
  EXPECT_EQ(response.error().code(), v1::Error::UNAUTHENTICATED);
  EXPECT_EQ(store.size(), 0u);  // the refused configure created nothing

  response.Clear();
  reader.Handle(configure, &response);
  EXPECT_TRUE(response.has_fit()) << response.DebugString();
  EXPECT_EQ(reader.roles(), RoleSet().With(v1::QUERY).With(v1::ADMIN));
}

// Issue 11, point 16: a 64-hex token is a valid name, and a line's fields
// may be in any order, so no error of the parser (at start or on SIGHUP) may
// quote any field that could be a token, whichever column it is in.
TEST(TokenFileTest, NoErrorQuotesASecretWrittenInAnyColumn) {
  const std::string secret = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
  const std::string other = "fedcba9876543210fedcba9876543210";  // another valid token
  ASSERT_EQ(secret.size(), 64u);
  // Every error path, each with the secret in the name, roles or token
  // column (or in a neighbouring line's columns).
  const std::vector<std::pair<const char*, std::string>> cases = {
      {"two fields, secret first", secret + " produce\n"},
      {"two fields, secret second", "a " + secret + "\n"},
      {"four fields", secret + " produce " + other + " " + secret + "\n"},
      {"secret as a name with a bad character", secret + "/ produce " + other + "\n"},
      {"secret as a name too long", secret + "0 produce " + other + "\n"},
      {"secret as a duplicate name",
       secret + " produce " + other + "\n" + secret + " query x" + other + "\n"},
      {"secret in the roles column", "a " + secret + " " + other + "\n"},
      {"secret as one of the roles", "a produce," + secret + " " + other + "\n"},
      {"secret in the roles column of a secret name", secret + " " + secret + " " + other + "\n"},
      {"secret as a name, token too short", secret + " produce short\n"},
      {"secret as a name, token too long", secret + " produce " + std::string(1025, 't') + "\n"},
      {"secret as a name, token with a control character",
       secret + " produce abc\x01" + "defghijklmnopq\n"},
      {"secret as a name, empty role", secret + " produce,,query " + other + "\n"},
      {"secret as a name, role twice", secret + " query,query " + other + "\n"},
      {"secret as a name, unknown role", secret + " write " + other + "\n"},
      {"secret as a name and a duplicate token",
       secret + " produce " + other + "\nb query " + other + "\n"},
      {"secret as a name with a duplicate token",
       "b produce " + other + "\n" + secret + " query " + other + "\n"},
      {"secret as a duplicate token", "a produce " + secret + "\nb query " + secret + "\n"},
      {"secret as a token, then a bad line", "a produce " + secret + "\nb produce\n"},
  };
  for (const auto& [what, text] : cases) {
    SCOPED_TRACE(what);
    const std::string message = ParseError(text);
    EXPECT_NE(message.find("tokens.conf:"), std::string::npos) << message;
    EXPECT_EQ(message.find(secret.substr(0, kMinTokenBytes)), std::string::npos) << message;
    EXPECT_EQ(message.find(other.substr(0, kMinTokenBytes)), std::string::npos) << message;
  }
  // The same through the file (what start and SIGHUP's reload read).
  const std::string path =
      ::testing::TempDir() + "/gradientd-secret-tokens-" + std::to_string(::getpid());
  { std::ofstream(path) << secret << " produce short\n"; }
  TokenTable table;
  const Status s = LoadTokenFile(path, &table);
  std::filesystem::remove(path);
  EXPECT_FALSE(s.ok());
  EXPECT_EQ(s.message().find(secret.substr(0, kMinTokenBytes)), std::string::npos) << s.message();
}

}  // namespace
}  // namespace gradientd::auth
