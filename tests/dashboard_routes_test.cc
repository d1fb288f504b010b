// DashboardRoutes, sans-I/O: requests in, responses out, against a real
// Service. The pages and assets are public and compiled in (Chart.js
// byte for byte as Debian ships it); the sample and history say what the
// service says, in JSON; bad requests get clear errors and change nothing.
#include "http/dashboard_routes.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <boost/json/src.hpp>
#include <cmath>
#include <fstream>
#include <sstream>

#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::http {
namespace {

namespace beast_http = boost::beast::http;
constexpr int64_t kSecond = 1'000'000'000;
const std::vector<double> kMonths = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12};
const std::vector<double> kRevenue = {52, 74, 79, 95, 115, 110, 129, 126, 147, 146, 156, 184};

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

class DashboardRoutesTest : public ::testing::Test {
 protected:
  DashboardRoutesTest() : service_(store_), routes_(service_, points_, [this] { return now_; }) {
    service_.SetBatchObserver([this](const std::string& series, const v1::PointBatch& batch,
                                     int64_t, int64_t) { points_.Observe(series, batch); });
    // As app::Node wires it.
    service_.SetResetObserver([this](const std::string& series) { points_.Forget(series); });
  }

  void Ingest(const std::string& series, const std::vector<double>& x,
              const std::vector<double>& y) {
    v1::Request request;
    request.mutable_ingest()->set_series(series);
    for (double v : x) request.mutable_ingest()->add_x(v);
    for (double v : y) request.mutable_ingest()->add_y(v);
    v1::Response response;
    service_.Handle(request, &response);
    ASSERT_TRUE(response.has_ack()) << response.DebugString();
  }

  v1::FitReply Fit(const std::string& series) {
    v1::Request request;
    request.mutable_fit()->set_series(series);
    v1::Response response;
    service_.Handle(request, &response);
    return response.fit();
  }

  // Handles GET `target` (or `method`); nullopt when no route took it.
  std::optional<Response> Get(const std::string& target,
                              beast_http::verb method = beast_http::verb::get) {
    Request request{method, target, 11};
    Response response;
    if (!routes_.Handle(request, &response)) return std::nullopt;
    return response;
  }

  boost::json::object GetJson(const std::string& target, beast_http::status expected) {
    const std::optional<Response> response = Get(target);
    EXPECT_TRUE(response);
    if (!response) return {};
    EXPECT_EQ(response->result(), expected) << response->body();
    EXPECT_EQ((*response)[beast_http::field::content_type], "application/json");
    return boost::json::parse(response->body()).as_object();
  }

  service::SeriesStore store_;
  service::Service service_;
  LivePoints points_{LivePointsLimits{}, 1};
  int64_t now_ = 1'700'000'000 * kSecond;
  DashboardRoutes routes_;
};

TEST_F(DashboardRoutesTest, PagesAndAssetsArePublicTheDataIsNot) {
  for (const char* path :
       {"/", "/series/revenue", "/series/a%20b", "/assets/dashboard.js", "/assets/dashboard.css",
        "/assets/chart.js", "/assets/chart.js.LICENSE"}) {
    EXPECT_TRUE(routes_.IsPublic(path)) << path;
  }
  for (const char* path : {"/api/v1/series/revenue/sample", "/api/v1/series/revenue/history",
                           "/series/", "/assets/other.js", "/index.html"}) {
    EXPECT_FALSE(routes_.IsPublic(path)) << path;
  }
}

TEST_F(DashboardRoutesTest, ServesDebiansChartJsByteForByteAndItsLicense) {
  const std::optional<Response> chart = Get("/assets/chart.js");
  ASSERT_TRUE(chart);
  EXPECT_EQ(chart->result(), beast_http::status::ok);
  EXPECT_EQ((*chart)[beast_http::field::content_type], "text/javascript; charset=utf-8");
  const std::string expected = ReadFile(GRADIENTD_CHART_JS);
  ASSERT_GT(expected.size(), 100'000u);
  EXPECT_TRUE(chart->body() == expected);
  const std::optional<Response> license = Get("/assets/chart.js.LICENSE");
  ASSERT_TRUE(license);
  EXPECT_EQ(license->body(), ReadFile(GRADIENTD_CHART_JS_LICENSE));
  EXPECT_NE(license->body().find("MIT"), std::string::npos);
}

TEST_F(DashboardRoutesTest, SeriesPagesShareOneShellThatLoadsOnlyItsOwnFiles) {
  const std::optional<Response> page = Get("/series/revenue?view=window");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->result(), beast_http::status::ok);
  EXPECT_EQ(page->body(), Get("/series/other")->body());
  EXPECT_NE(page->body().find("/assets/chart.js"), std::string::npos);
  EXPECT_EQ(page->body().find("http"), std::string::npos) << "no external URL";
  EXPECT_EQ((*page)["Content-Security-Policy"].substr(0, 20), "default-src 'self'; ");
  EXPECT_NE(Get("/")->body(), page->body());
}

TEST_F(DashboardRoutesTest, SampleHasTheServicesFitAndEveryPointOfASmallSeries) {
  Ingest("revenue", kMonths, kRevenue);
  const v1::FitReply fit = Fit("revenue");
  const boost::json::object body = GetJson("/api/v1/series/revenue/sample", beast_http::status::ok);
  EXPECT_EQ(body.at("series").as_string(), "revenue");
  EXPECT_EQ(body.at("n").as_int64(), 12);
  // The lesson's least-squares line, from its closed form.
  double sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    sx += kMonths[i], sy += kRevenue[i];
    sxx += kMonths[i] * kMonths[i], sxy += kMonths[i] * kRevenue[i];
  }
  const double slope = (12 * sxy - sx * sy) / (12 * sxx - sx * sx);
  const double intercept = (sy - slope * sx) / 12;
  const boost::json::object& least_squares = body.at("least_squares").as_object();
  EXPECT_NEAR(least_squares.at("m").to_number<double>(), slope, 1e-12);
  EXPECT_NEAR(least_squares.at("b").to_number<double>(), intercept, 1e-10);
  // The descent line as the service has it (printed with 17 digits).
  const boost::json::object& descent = body.at("descent").as_object();
  EXPECT_DOUBLE_EQ(descent.at("m").to_number<double>(), fit.descent().m());
  EXPECT_DOUBLE_EQ(descent.at("b").to_number<double>(), fit.descent().b());
  // Boost.JSON 1.81 parses doubles to within a few ULP, not always exactly.
  EXPECT_DOUBLE_EQ(body.at("r_squared").to_number<double>(), fit.r_squared());
  EXPECT_TRUE(body.at("sampled").as_bool());
  EXPECT_EQ(body.at("seen").as_int64(), 12);
  const boost::json::array& points = body.at("points").as_array();
  ASSERT_EQ(points.size(), 12u);
  for (std::size_t i = 0; i < 12; ++i) {
    EXPECT_EQ(points[i].as_array()[0].to_number<double>(), kMonths[i]);
    EXPECT_EQ(points[i].as_array()[1].to_number<double>(), kRevenue[i]);
  }
}

TEST_F(DashboardRoutesTest, AResetSeriesDrawsNoneOfItsOldPoints) {
  Ingest("revenue", kMonths, kRevenue);
  now_ += kSecond;
  ASSERT_TRUE(Get("/api/v1/series/revenue/history"));
  ASSERT_EQ(points_.History("revenue").size(), 1u);
  v1::Request reset;
  reset.mutable_reset()->set_series("revenue");
  v1::Response response;
  service_.Handle(reset, &response);
  ASSERT_TRUE(response.has_fit()) << response.DebugString();
  EXPECT_TRUE(points_.History("revenue").empty());
  boost::json::object body = GetJson("/api/v1/series/revenue/sample", beast_http::status::ok);
  EXPECT_EQ(body.at("n").as_int64(), 0);
  EXPECT_EQ(body.at("seen").as_int64(), 0);
  EXPECT_TRUE(body.at("points").as_array().empty()) << body;
  Ingest("revenue", {100, 200}, {1, 2});
  body = GetJson("/api/v1/series/revenue/sample", beast_http::status::ok);
  const boost::json::array& points = body.at("points").as_array();
  ASSERT_EQ(points.size(), 2u) << body;
  EXPECT_EQ(points[0].as_array()[0].to_number<double>(), 100);
  EXPECT_EQ(points[1].as_array()[0].to_number<double>(), 200);
}

TEST_F(DashboardRoutesTest, ALargeSeriesIsSampledWithinTheBound) {
  std::vector<double> x(50'000), y(50'000);
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = double(i), y[i] = 3 * double(i) + 1;
  Ingest("big", x, y);
  Ingest("big", x, y);
  const boost::json::object body = GetJson("/api/v1/series/big/sample", beast_http::status::ok);
  EXPECT_EQ(body.at("n").as_int64(), 100'000);
  EXPECT_EQ(body.at("seen").as_int64(), 100'000);
  EXPECT_EQ(body.at("points").as_array().size(), LivePointsLimits{}.sample_points);
}

TEST_F(DashboardRoutesTest, HistoryTakesTheLossAndGradientNormAtMostOnceASecond) {
  Ingest("revenue", kMonths, kRevenue);
  const v1::FitReply fit = Fit("revenue");
  double loss = 0, dm = 0, db = 0;
  for (std::size_t i = 0; i < 12; ++i) {
    const double residual = kRevenue[i] - (fit.descent().m() * kMonths[i] + fit.descent().b());
    loss += residual * residual / 12;
    dm += -2.0 / 12 * kMonths[i] * residual;
    db += -2.0 / 12 * residual;
  }
  for (int poll = 0; poll < 5; ++poll) {  // at 0, 0.5, 1, 1.5 and 2 s
    GetJson("/api/v1/series/revenue/history", beast_http::status::ok);
    now_ += kSecond / 2;
  }
  const boost::json::object body =
      GetJson("/api/v1/series/revenue/history", beast_http::status::ok);  // 2.5 s: too soon
  const boost::json::array& history = body.at("history").as_array();
  ASSERT_EQ(history.size(), 3u);
  const boost::json::object& first = history[0].as_object();
  EXPECT_NEAR(first.at("loss").to_number<double>(), loss, 1e-9 * loss);
  EXPECT_NEAR(first.at("gradient_norm").to_number<double>(), std::hypot(dm, db),
              1e-7 * std::hypot(dm, db) + 1e-9);
  EXPECT_EQ(history[1].as_object().at("t").to_number<double>() - first.at("t").to_number<double>(),
            1.0);
}

TEST_F(DashboardRoutesTest, PercentEncodedNamesReachTheirSeries) {
  Ingest("a b/c", kMonths, kRevenue);
  const boost::json::object body =
      GetJson("/api/v1/series/a%20b%2Fc/sample", beast_http::status::ok);
  EXPECT_EQ(body.at("series").as_string(), "a b/c");
  EXPECT_EQ(body.at("n").as_int64(), 12);
}

TEST_F(DashboardRoutesTest, BadRequestsGetClearErrorsAndChangeNothing) {
  Ingest("revenue", kMonths, kRevenue);
  const std::size_t tracked = points_.tracked();
  boost::json::object body = GetJson("/api/v1/series/nosuch/sample", beast_http::status::not_found);
  EXPECT_EQ(body.at("error").as_object().at("code").as_string(), "NOT_FOUND");
  body = GetJson("/api/v1/series/nosuch/history", beast_http::status::not_found);
  body = GetJson("/api/v1/series/revenue/sample?view=sideways", beast_http::status::bad_request);
  EXPECT_EQ(body.at("error").as_object().at("message").as_string(),
            "view must be all, window or decayed");
  // A window view of a series without a window is the service's refusal.
  const std::optional<Response> window = Get("/api/v1/series/revenue/sample?view=window");
  ASSERT_TRUE(window);
  EXPECT_NE(window->result(), beast_http::status::ok);
  EXPECT_EQ(points_.tracked(), tracked);
  EXPECT_TRUE(points_.History("revenue").empty());

  const std::optional<Response> post = Get("/api/v1/series/revenue/sample", beast_http::verb::post);
  ASSERT_TRUE(post);
  EXPECT_EQ(post->result(), beast_http::status::method_not_allowed);
  EXPECT_EQ((*post)[beast_http::field::allow], "GET, HEAD");
}

TEST_F(DashboardRoutesTest, OtherPathsAreLeftToTheOtherRoutes) {
  for (const char* target :
       {"/api/v1/series", "/api/v1/series/revenue", "/api/v1/series/revenue/gradient",
        "/api/v1/series//sample", "/api/v1/series/bad%zzname/sample", "/healthz", "/metrics"}) {
    EXPECT_FALSE(Get(target)) << target;
  }
}

}  // namespace
}  // namespace gradientd::http
