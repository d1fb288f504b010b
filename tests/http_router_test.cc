// The HTTP side without sockets: percent-decoding and query strings, the
// Router's methods, 404 and auth outcomes, and the JSON API against the
// protobuf replies of the same queries sent straight to a Service.
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <boost/beast/http/field.hpp>
#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "http/api_routes.h"
#include "http/health_routes.h"
#include "http/query_string.h"
#include "http/router.h"
#include "service/series_store.h"
#include "service/service.h"
#include "service_test_support.h"

namespace gradientd::http {
namespace {
namespace beast_http = boost::beast::http;

TEST(HttpPercentDecodeTest, DecodesEscapesOfEitherCaseAndKeepsPlusInPaths) {
  std::string out;
  ASSERT_TRUE(PercentDecode("a%2Fb%20c%2fd+e", false, &out).ok());
  EXPECT_EQ(out, "a/b c/d+e");
  ASSERT_TRUE(PercentDecode("a+b%2B", true, &out).ok());
  EXPECT_EQ(out, "a b+");
  ASSERT_TRUE(PercentDecode("%C3%A9", false, &out).ok());
  EXPECT_EQ(out, "\xC3\xA9");
}

TEST(HttpPercentDecodeTest, BadEscapesAreErrorsNamingThem) {
  for (const char* bad : {"%", "a%2", "%zz", "%2g", "x%%41"}) {
    std::string out = "unchanged";
    const Status s = PercentDecode(bad, false, &out);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(s.message().find("bad percent-escape"), std::string::npos) << s.message();
    EXPECT_EQ(out, "unchanged") << bad;
  }
}

TEST(HttpQueryTest, ParsesPairsAndRefusesRepeatsAndBareNames) {
  std::map<std::string, std::string> parameters;
  ASSERT_TRUE(ParseQuery("a=1&b=x%20y&&c=", &parameters).ok());
  EXPECT_EQ(parameters, (std::map<std::string, std::string>{{"a", "1"}, {"b", "x y"}, {"c", ""}}));
  EXPECT_NE(ParseQuery("a=1&a=2", &parameters).message().find("'a' is given twice"),
            std::string::npos);
  EXPECT_NE(ParseQuery("view", &parameters).message().find("'view' has no value"),
            std::string::npos);
  EXPECT_EQ(PathOf("/p/q?x=1?2"), "/p/q");
  EXPECT_EQ(QueryOf("/p/q?x=1?2"), "x=1?2");
  EXPECT_EQ(QueryOf("/p/q"), "");
}

Request Get(std::string target, std::string token = "") {
  Request request(beast_http::verb::get, target, 11);
  if (!token.empty()) request.set(beast_http::field::authorization, "Bearer " + token);
  return request;
}

// The Router over a Service, open or with an auth file's tokens.
class HttpRouterTest : public ::testing::Test {
 protected:
  static constexpr const char* kQueryToken = "0123456789abcdef-query";
  static constexpr const char* kProduceToken = "0123456789abcdef-produce";

  explicit HttpRouterTest(bool with_auth = false) {
    if (with_auth) {
      auth::TokenTable table;
      const std::string file =
          std::string("reader query ") + kQueryToken + "\nwriter produce " + kProduceToken + "\n";
      EXPECT_TRUE(auth::ParseTokenFile(file, "test", &table).ok());
      authenticator_ = std::make_unique<auth::Authenticator>(std::move(table));
    }
    router_ = std::make_unique<Router>(authenticator_.get());
    router_->Add(std::make_shared<HealthRoutes>(
        HealthChecks{[this] { return ready_; }, [] { return std::string("up 1\n"); }}));
    router_->Add(std::make_shared<ApiRoutes>(service_));
  }

  void Ingest(const std::string& series, std::vector<double> x, std::vector<double> y) {
    v1::Response response;
    service_.Handle(service::IngestRequest(series, std::move(x), std::move(y)), &response);
    ASSERT_TRUE(response.has_ack()) << response.DebugString();
  }

  // The JSON the API should print for `reply`: protobuf's own, with the
  // options the API documents.
  static std::string Json(const google::protobuf::Message& reply) {
    google::protobuf::util::JsonPrintOptions options;
    options.preserve_proto_field_names = true;
    options.always_print_primitive_fields = true;
    std::string json;
    EXPECT_TRUE(google::protobuf::util::MessageToJsonString(reply, &json, options).ok());
    return json;
  }

  v1::Response Direct(const v1::Request& request) {
    v1::Response response;
    service_.Handle(request, &response);
    return response;
  }

  service::SeriesStore store_;
  service::Service service_{store_};
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<Router> router_;
  Status ready_ = Status::Ok();
};

TEST_F(HttpRouterTest, HealthAndReadinessSayAWord) {
  Response healthy = router_->Handle(Get("/healthz"));
  EXPECT_EQ(healthy.result(), beast_http::status::ok);
  EXPECT_EQ(healthy.body(), "ok\n");
  EXPECT_EQ(router_->Handle(Get("/readyz")).body(), "ready\n");
  ready_ = Status::Internal("the journal has failed: disk full");
  Response not_ready = router_->Handle(Get("/readyz"));
  EXPECT_EQ(not_ready.result(), beast_http::status::service_unavailable);
  EXPECT_EQ(not_ready.body(), "not ready: the journal has failed: disk full\n");
  Response metrics = router_->Handle(Get("/metrics"));
  EXPECT_EQ(metrics.body(), "up 1\n");
  EXPECT_EQ(metrics[beast_http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
}

TEST_F(HttpRouterTest, OnlyGetAndHeadAreAllowedAndHeadHasNoBody) {
  Request post = Get("/healthz");
  post.method(beast_http::verb::post);
  Response refused = router_->Handle(post);
  EXPECT_EQ(refused.result(), beast_http::status::method_not_allowed);
  EXPECT_EQ(refused[beast_http::field::allow], "GET, HEAD");
  EXPECT_NE(refused.body().find("POST is not allowed"), std::string::npos) << refused.body();

  Ingest("s", {1, 2}, {3, 5});
  Request head = Get("/api/v1/series/s");
  head.method(beast_http::verb::head);
  const Response got = router_->Handle(Get("/api/v1/series/s"));
  const Response headed = router_->Handle(head);
  EXPECT_EQ(headed.result(), beast_http::status::ok);
  EXPECT_TRUE(headed.body().empty());
  EXPECT_EQ(headed[beast_http::field::content_length], std::to_string(got.body().size()));
}

TEST_F(HttpRouterTest, AnUnknownPathIsAJsonNotFound) {
  const Response response = router_->Handle(Get("/nothing/here?x=1"));
  EXPECT_EQ(response.result(), beast_http::status::not_found);
  EXPECT_EQ(response.body(),
            R"({"error":{"code":"NOT_FOUND","message":"no such path: /nothing/here"}})");
  EXPECT_EQ(response[beast_http::field::content_type], "application/json");
  EXPECT_EQ(router_->Handle(Get("/api/v2/x")).result(), beast_http::status::not_found);
  EXPECT_EQ(router_->Handle(Get("/api/v1/series/s/loss")).result(), beast_http::status::not_found);
}

TEST_F(HttpRouterTest, TheFitIsTheProtocolsReplyAsJsonForAnEncodedName) {
  const std::string name = "lab/room 1+\xC3\xA9";
  Ingest(name, {1, 2, 3}, {2, 4, 7});
  v1::Request fit;
  fit.mutable_fit()->set_series(name);
  const v1::Response direct = Direct(fit);
  ASSERT_TRUE(direct.has_fit());
  const Response response = router_->Handle(Get("/api/v1/series/lab%2Froom%201+%C3%A9?view=all"));
  EXPECT_EQ(response.result(), beast_http::status::ok) << response.body();
  EXPECT_EQ(response.body(), Json(direct.fit()));
  EXPECT_NE(response.body().find(R"("series":"lab/room 1+é")"), std::string::npos);
  EXPECT_NE(response.body().find(R"("window_nanos":"0")"), std::string::npos)
      << "zeros are printed";
}

TEST_F(HttpRouterTest, TheGradientTakesMAndB) {
  Ingest("g", {1, 2, 3}, {2, 4, 7});
  v1::Request gradient;
  gradient.mutable_gradient()->set_series("g");
  gradient.mutable_gradient()->set_m(1.5);
  gradient.mutable_gradient()->set_b(-0.25);
  const v1::Response direct = Direct(gradient);
  ASSERT_TRUE(direct.has_gradient());
  const Response response = router_->Handle(Get("/api/v1/series/g/gradient?m=1.5&b=-0.25"));
  EXPECT_EQ(response.result(), beast_http::status::ok) << response.body();
  EXPECT_EQ(response.body(), Json(direct.gradient()));
  EXPECT_NE(response.body().find(R"("m":1.5)"), std::string::npos) << response.body();
}

TEST_F(HttpRouterTest, TheListPagesLikeListSeries) {
  for (const char* name : {"a1", "a2", "a3", "b1"}) Ingest(name, {1}, {2});
  const Response first = router_->Handle(Get("/api/v1/series?page_size=2&prefix=a"));
  ASSERT_EQ(first.result(), beast_http::status::ok) << first.body();
  v1::Request list;
  list.mutable_list()->set_page_size(2);
  list.mutable_list()->set_prefix("a");
  const v1::Response page = Direct(list);
  ASSERT_TRUE(page.has_series_list());
  EXPECT_EQ(first.body(), Json(page.series_list()));
  ASSERT_FALSE(page.series_list().next_page_token().empty());
  std::string encoded;  // the token, percent-encoded whole
  for (const char byte : page.series_list().next_page_token()) {
    const auto c = static_cast<unsigned char>(byte);
    static const char* kHex = "0123456789ABCDEF";
    encoded += {'%', kHex[c >> 4], kHex[c & 15]};
  }
  const Response second =
      router_->Handle(Get("/api/v1/series?page_size=2&prefix=a&page_token=" + encoded));
  list.mutable_list()->set_page_token(page.series_list().next_page_token());
  const v1::Response next = Direct(list);
  ASSERT_TRUE(next.has_series_list());
  EXPECT_EQ(second.body(), Json(next.series_list()));
  EXPECT_NE(second.body().find(R"("series":"a3")"), std::string::npos) << second.body();
  EXPECT_EQ(second.body().find(R"("series":"b1")"), std::string::npos) << second.body();
}

// A bad request gets a 400 (or the code's status) naming what is wrong,
// and the store is as it was.
TEST_F(HttpRouterTest, BadQueriesAreErrorsNamingTheParameter) {
  Ingest("s", {1, 2}, {3, 5});
  Ingest("empty", {}, {});
  struct Case {
    const char* target;
    beast_http::status status;
    const char* code;
    const char* says;
  };
  const Case cases[] = {
      {"/api/v1/series?limit=3", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "unknown query parameter 'limit'"},
      {"/api/v1/series?page_size=-1", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "page_size must be a whole number"},
      {"/api/v1/series?page_size=4294967296", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "page_size"},
      {"/api/v1/series?view=windowed", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "view must be all, window or decayed, got 'windowed'"},
      {"/api/v1/series/s?m=1", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "unknown query parameter 'm'"},
      {"/api/v1/series/s/gradient?m=1x", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "m must be a finite number, got '1x'"},
      {"/api/v1/series/s/gradient?b=inf", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "b must be a finite number"},
      {"/api/v1/series/s/gradient?m=", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "m must be a finite number"},
      {"/api/v1/series/s%zz", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "series name: bad percent-escape '%zz'"},
      {"/api/v1/series/s?view=%", beast_http::status::bad_request, "INVALID_ARGUMENT",
       "bad percent-escape"},
      {"/api/v1/series/nope", beast_http::status::not_found, "NOT_FOUND", "nope"},
      {"/api/v1/series/empty/gradient", beast_http::status::conflict, "FAILED_PRECONDITION",
       "has no points yet"},
      {"/api/v1/series/s?view=window", beast_http::status::conflict, "FAILED_PRECONDITION",
       "has no window view"},
  };
  const std::string before = Json(Direct([] {
                                    v1::Request r;
                                    r.mutable_list();
                                    return r;
                                  }())
                                      .series_list());
  for (const Case& c : cases) {
    const Response response = router_->Handle(Get(c.target));
    EXPECT_EQ(response.result(), c.status) << c.target << " " << response.body();
    EXPECT_NE(response.body().find(std::string(R"({"error":{"code":")") + c.code + "\""),
              std::string::npos)
        << c.target << " " << response.body();
    EXPECT_NE(response.body().find(c.says), std::string::npos)
        << c.target << " " << response.body();
  }
  v1::Request list;
  list.mutable_list();
  EXPECT_EQ(Json(Direct(list).series_list()), before);
}

class HttpRouterAuthTest : public HttpRouterTest {
 protected:
  HttpRouterAuthTest() : HttpRouterTest(true) {}
};

TEST_F(HttpRouterAuthTest, ProbesArePublicEverythingElseNeedsTheQueryRole) {
  Ingest("s", {1, 2}, {3, 5});
  EXPECT_EQ(router_->Handle(Get("/healthz")).result(), beast_http::status::ok);
  EXPECT_EQ(router_->Handle(Get("/readyz")).result(), beast_http::status::ok);
  for (const char* target : {"/metrics", "/api/v1/series", "/api/v1/series/s", "/nothing"}) {
    const Response none = router_->Handle(Get(target));
    EXPECT_EQ(none.result(), beast_http::status::unauthorized) << target;
    EXPECT_EQ(none[beast_http::field::www_authenticate], R"(Bearer realm="gradientd")");
    EXPECT_NE(none.body().find("UNAUTHENTICATED"), std::string::npos);

    const Response bad = router_->Handle(Get(target, "0123456789abcdef-wrong"));
    EXPECT_EQ(bad.result(), beast_http::status::unauthorized) << target;
    EXPECT_EQ(bad.body().find("wrong"), std::string::npos) << "the token is not echoed";

    const Response produce_only = router_->Handle(Get(target, kProduceToken));
    EXPECT_EQ(produce_only.result(), beast_http::status::forbidden) << target;
    EXPECT_NE(produce_only.body().find("PERMISSION_DENIED"), std::string::npos);
    EXPECT_NE(produce_only.body().find("'writer' lacks the query role"), std::string::npos);
  }
  Request basic = Get("/api/v1/series");
  basic.set(beast_http::field::authorization, "Basic cmVhZGVyOng=");
  EXPECT_EQ(router_->Handle(basic).result(), beast_http::status::unauthorized);
  EXPECT_EQ(router_->Handle(Get("/api/v1/series/s", kQueryToken)).result(), beast_http::status::ok);
  Request lower = Get("/metrics");
  lower.set(beast_http::field::authorization, std::string("bearer ") + kQueryToken);
  EXPECT_EQ(router_->Handle(lower).body(), "up 1\n");
  EXPECT_EQ(router_->Handle(Get("/nothing", kQueryToken)).result(), beast_http::status::not_found);
}

TEST(HttpHealthRoutesTest, WithoutAMetricsFunctionMetricsIsNotFound) {
  Router router;
  router.Add(std::make_shared<HealthRoutes>(HealthChecks{}));
  EXPECT_EQ(router.Handle(Get("/metrics")).result(), beast_http::status::not_found);
  EXPECT_EQ(router.Handle(Get("/readyz")).result(), beast_http::status::ok);
}

}  // namespace
}  // namespace gradientd::http
