// gradctl bench in-process: its helpers (Percentile, ParseProcessStats,
// the report's fields), and RunBench against a real server on port 0.
#include "cli/bench/bench.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/bench/raw_connection.h"
#include "cli/bench/report_fields.h"
#include "cli/bench/scraper.h"
#include "cli/exit_codes.h"
#include "client/client.h"
#include "running_node.h"

namespace gradientd::cli {
namespace {

using google::protobuf::Struct;
using google::protobuf::Value;

// --- Percentile: nearest rank, ceil(q * n), at least the first. ------------

TEST(PercentileTest, EmptyIsZero) {
  EXPECT_EQ(Percentile({}, 0.0), 0);
  EXPECT_EQ(Percentile({}, 0.5), 0);
  EXPECT_EQ(Percentile({}, 1.0), 0);
}

TEST(PercentileTest, OneElementIsEveryQuantile) {
  for (const double q : {0.0, 0.001, 0.5, 0.999, 1.0}) EXPECT_EQ(Percentile({42}, q), 42) << q;
}

TEST(PercentileTest, ZeroIsTheMinimumAndOneTheMaximum) {
  const std::vector<int64_t> sorted = {3, 5, 8, 13, 21};
  EXPECT_EQ(Percentile(sorted, 0.0), 3);
  EXPECT_EQ(Percentile(sorted, 1.0), 21);
}

TEST(PercentileTest, NearestRankDoesNotInterpolate) {
  const std::vector<int64_t> sorted = {10, 20, 30, 40};
  EXPECT_EQ(Percentile(sorted, 0.25), 10);  // rank 1
  EXPECT_EQ(Percentile(sorted, 0.5), 20);   // rank 2
  EXPECT_EQ(Percentile(sorted, 0.51), 30);  // rank ceil(2.04) = 3
  EXPECT_EQ(Percentile(sorted, 0.75), 30);
  EXPECT_EQ(Percentile(sorted, 0.76), 40);
}

TEST(PercentileTest, P99AndP999OfAThousand) {
  std::vector<int64_t> sorted;
  for (int64_t i = 1; i <= 1000; ++i) sorted.push_back(i);
  EXPECT_EQ(Percentile(sorted, 0.5), 500);
  EXPECT_EQ(Percentile(sorted, 0.99), 990);
  EXPECT_EQ(Percentile(sorted, 0.999), 999);
}

// --- ParseProcessStats. ----------------------------------------------------

TEST(ParseProcessStatsTest, CommWithSpacesAndParentheses) {
  const std::string stat =
      "1234 (grad (x) d) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 3 0 99 1 2";
  const std::string status = "Name:\tgradientd\nVmHWM:\t  2048 kB\nVmRSS:\t  1024 kB\n";
  ProcessStats stats;
  ASSERT_TRUE(ParseProcessStats(stat, status, 100, &stats).ok());
  EXPECT_DOUBLE_EQ(stats.cpu_seconds, 3.0);
  EXPECT_EQ(stats.rss_bytes, 1024u * 1024);
  EXPECT_EQ(stats.peak_rss_bytes, 2048u * 1024);
}

TEST(ParseProcessStatsTest, MissingFieldsAreErrors) {
  ProcessStats stats;
  EXPECT_FALSE(ParseProcessStats("1234 (x) S 1 2", "VmRSS: 1 kB\nVmHWM: 1 kB\n", 100, &stats).ok());
  EXPECT_FALSE(
      ParseProcessStats("1 (x) S 1 1 1 0 -1 0 0 0 0 0 1 1", "VmRSS: 1 kB\n", 100, &stats).ok());
}

// --- The report's fields: one list, two renderings. -----------------------

Struct ParseJson(const std::string& text) {
  Struct json;
  const auto status = google::protobuf::util::JsonStringToMessage(text, &json);
  EXPECT_TRUE(status.ok()) << text;
  return json;
}

TEST(ReportFieldsTest, JsonKeepsIntegersExactAndDoublesToTenDigits) {
  using namespace bench;
  const std::vector<Row> rows = {
      Row{.kind = Row::Kind::kJsonOnly,
          .fields = {JsonOnly("integer", uint64_t{9007199254740992}),
                     JsonOnly("double", 1.23456789012345), JsonOnly("nan", std::nan("")),
                     JsonOnly("text", std::string("a \"b\"")), JsonOnly("null", JsonNull{}),
                     JsonOnly("flag", true), JsonOnly("object", JsonEmptyObject{})}},
      Row{.label = "nested", .object = {"object", "1000"}, .fields = {JsonOnly("n", uint64_t{7})}},
      Row{.label = "readable only", .fields = {Literal("x")}}};
  std::ostringstream out;
  PrintJson(rows, out);
  ASSERT_EQ(out.str().back(), '\n');
  EXPECT_EQ(out.str().find('\n'), out.str().size() - 1) << "one line";
  const Struct json = ParseJson(out.str());
  EXPECT_EQ(json.fields_size(), 7);
  EXPECT_EQ(json.fields().at("integer").number_value(), 9007199254740992.0);
  EXPECT_EQ(json.fields().at("double").number_value(), 1.234567890);
  EXPECT_EQ(json.fields().at("nan").kind_case(), Value::kNullValue);
  EXPECT_EQ(json.fields().at("null").kind_case(), Value::kNullValue);
  EXPECT_EQ(json.fields().at("text").string_value(), "a \"b\"");
  EXPECT_TRUE(json.fields().at("flag").bool_value());
  EXPECT_EQ(json.fields()
                .at("object")
                .struct_value()
                .fields()
                .at("1000")
                .struct_value()
                .fields()
                .at("n")
                .number_value(),
            7);
}

TEST(ReportFieldsTest, ReadablePrintsHeadingsThenAnAlignedBlock) {
  using namespace bench;
  using Style = Format::Style;
  const std::vector<Row> rows = {
      Row{.kind = Row::Kind::kHeading,
          .fields = {Shown("server", std::string("h:1"),
                           {.style = Style::kText, .before = "at "})}},
      Row{.label = "rate",
          .fields = {Shown(
                         "pps", 1234567.0,
                         {.style = Style::kFixed, .after = " M/s", .divisor = 1e6, .decimals = 2}),
                     JsonOnly("hidden", 5.0),
                     Shown("n", uint64_t{1234567}, {.style = Style::kGrouped, .before = ", "})}},
      Row{.kind = Row::Kind::kJsonOnly, .label = "never", .fields = {Literal("never")}},
      Row{.label = "  longer label", .fields = {Shown("x", 0.5, {.style = Style::kNumber})}}};
  std::ostringstream out;
  PrintReadable(rows, out);
  EXPECT_EQ(out.str(),
            "at h:1\n"
            "\n"
            "rate:           1.23 M/s, 1,234,567\n"
            "  longer label: 0.5\n");
}

// --- RunBench against a real server on port 0. -----------------------------

class BenchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(node_.Start().ok());
    address_ = node_.address();
  }

  // A tiny run: a fraction of a second, small batches.
  BenchConfig TinyRun() const {
    BenchConfig config;
    config.server = address_;
    config.series = "bench-test";
    config.producers = 2;
    config.batch = 100;
    config.window = 2;
    config.seconds = 0.3;
    config.idle_seconds = 0.1;
    config.query_rate = 200;
    config.json = true;
    return config;
  }

  uint64_t SeriesPoints(const std::string& series) {
    std::unique_ptr<client::Client> c;
    EXPECT_TRUE(client::Client::Connect(address_, &c).ok());
    v1::Request request;
    request.mutable_fit()->set_series(series);
    v1::Response response;
    EXPECT_TRUE(c->Call(request, &response).ok());
    return response.fit().n();
  }

  gradientd::testing::RunningNode node_{gradientd::testing::LoopbackNodeOptions("", 2)};
  std::string address_;
};

std::set<std::string> Keys(const Struct& json) {
  std::set<std::string> keys;
  for (const auto& [key, value] : json.fields()) keys.insert(key);
  return keys;
}

// The keys of a run against --server without baselines.
const std::set<std::string> kServerRunKeys = {"server",
                                              "server_spawned",
                                              "series",
                                              "producers",
                                              "batch_points",
                                              "window",
                                              "seconds",
                                              "idle_seconds",
                                              "query_rate",
                                              "payload_bytes_per_point",
                                              "tcp_congestion",
                                              "ingest_seconds",
                                              "points_acknowledged",
                                              "batches_acknowledged",
                                              "points_per_second",
                                              "payload_bytes_per_second",
                                              "wire_bytes_per_second",
                                              "batches_per_second",
                                              "client_cpu_seconds_ingest",
                                              "ingest_window_seconds",
                                              "ingest_windows",
                                              "ingest_window_min_points_per_second",
                                              "ingest_window_p10_points_per_second",
                                              "ingest_window_p50_points_per_second",
                                              "ingest_window_p90_points_per_second",
                                              "ingest_window_max_points_per_second",
                                              "query_count",
                                              "query_p50_us",
                                              "query_p99_us",
                                              "query_p999_us",
                                              "query_max_us",
                                              "query_late_sends",
                                              "idle_query_count",
                                              "idle_query_p50_us",
                                              "idle_query_p99_us",
                                              "idle_query_p999_us",
                                              "idle_query_max_us",
                                              "baseline",
                                              "baseline_discard_bytes_per_second",
                                              "ingest_fraction_of_discard",
                                              "baseline_echo_p50_us",
                                              "baseline_echo_p99_us",
                                              "query_p50_over_echo_p50",
                                              "server_cpu_seconds",
                                              "server_peak_rss_bytes",
                                              "scrape_interval_seconds",
                                              "scrape_address",
                                              "scrapes",
                                              "scrapes_failed",
                                              "scrape_p50_us",
                                              "scrape_p99_us",
                                              "scrape_bytes_per_scrape",
                                              "scrape_first_error"};

TEST_F(BenchTest, EveryAcknowledgedPointReachesTheSeries) {
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(TinyRun(), out, err), kExitOk) << err.str();
  EXPECT_EQ(err.str(), "");
  const Struct json = ParseJson(out.str());
  EXPECT_EQ(Keys(json), kServerRunKeys);
  const auto& f = json.fields();
  EXPECT_EQ(f.at("server").string_value(), address_);
  EXPECT_EQ(f.at("series").string_value(), "bench-test");
  EXPECT_FALSE(f.at("server_spawned").bool_value());
  EXPECT_FALSE(f.at("baseline").bool_value());
  EXPECT_EQ(f.at("server_cpu_seconds").kind_case(), Value::kNullValue);
  const double acked = f.at("points_acknowledged").number_value();
  EXPECT_GT(acked, 0);
  EXPECT_EQ(std::fmod(acked, 100), 0) << "whole batches";
  EXPECT_EQ(f.at("batches_acknowledged").number_value() * 100, acked);
  EXPECT_GT(f.at("points_per_second").number_value(), 0);
  EXPECT_GT(f.at("query_count").number_value(), 0);
  EXPECT_GT(f.at("idle_query_count").number_value(), 0);
  // The series was empty: one setup batch, then every acknowledged batch.
  EXPECT_EQ(static_cast<double>(SeriesPoints("bench-test")), acked + 100);
}

TEST_F(BenchTest, ReadableReportNamesEachPhase) {
  BenchConfig config = TinyRun();
  config.json = false;
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(config, out, err), kExitOk) << err.str();
  const std::string text = out.str();
  EXPECT_EQ(text.rfind("gradctl bench: gradientd at " + address_ +
                           "\n2 producers x 100-point "
                           "batches, window 2, 0.3 s",
                       0),
            0u)
      << text;
  EXPECT_NE(text.find("; gradient queries at 200/s; series 'bench-test'\n\n"), std::string::npos);
  for (const char* line : {"\ningest:  ", "\n  acknowledged:  ", "\n  on the wire:  ",
                           "\nquery, idle:  ", "\nquery, under ingest: p50 ", "\nclient CPU:  "}) {
    EXPECT_NE(text.find(line), std::string::npos) << line << " in\n" << text;
  }
  EXPECT_EQ(text.find("server CPU"), std::string::npos);
  EXPECT_EQ(text.find("discard baseline"), std::string::npos);
}

TEST_F(BenchTest, BaselinesWithoutSpawnedServer) {
  BenchConfig config = TinyRun();
  config.baseline = true;
  config.producers = 1;
  config.idle_seconds = 0;
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(config, out, err), kExitOk) << err.str();
  const Struct json = ParseJson(out.str());
  const auto& f = json.fields();
  EXPECT_TRUE(f.at("baseline").bool_value());
  EXPECT_GT(f.at("baseline_discard_bytes_per_second").number_value(), 0);
  EXPECT_GT(f.at("baseline_echo_count").number_value(), 0);
  EXPECT_GT(f.at("baseline_echo_under_ingest_count").number_value(), 0);
  EXPECT_EQ(f.at("idle_query_count").kind_case(), Value::kNullValue);
  EXPECT_EQ(f.at("idle_query_p50_over_echo_p50").kind_case(), Value::kNullValue);
}

TEST_F(BenchTest, SeriesWithPointsGetsNoSetupBatch) {
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(TinyRun(), out, err), kExitOk) << err.str();
  const uint64_t before = SeriesPoints("bench-test");
  std::ostringstream again;
  ASSERT_EQ(RunBench(TinyRun(), again, err), kExitOk) << err.str();
  const double acked = ParseJson(again.str()).fields().at("points_acknowledged").number_value();
  EXPECT_EQ(static_cast<double>(SeriesPoints("bench-test")), static_cast<double>(before) + acked);
}

// A port that was free a moment ago and is closed now.
uint16_t ClosedPort() {
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::address_v4::loopback(), 0));
  const auto port = acceptor.local_endpoint().port();
  acceptor.close();
  return port;
}

// --- --scrape-interval. -----------------------------------------------------

TEST_F(BenchTest, ScrapesTheMetricsWhileItMeasures) {
  BenchConfig config = TinyRun();
  config.scrape_interval = std::chrono::milliseconds(100);
  config.scrape_address = node_.http_address();
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(config, out, err), kExitOk) << err.str();
  EXPECT_EQ(err.str(), "");
  const Struct json = ParseJson(out.str());
  EXPECT_EQ(Keys(json), kServerRunKeys);
  const auto& f = json.fields();
  EXPECT_EQ(f.at("scrape_interval_seconds").number_value(), 0.1);
  EXPECT_EQ(f.at("scrape_address").string_value(), node_.http_address());
  // The first scrape is at once and the phases last 0.4 s at least.
  EXPECT_GE(f.at("scrapes").number_value(), 1);
  EXPECT_EQ(f.at("scrapes_failed").number_value(), 0);
  EXPECT_EQ(f.at("scrape_first_error").kind_case(), Value::kNullValue);
  EXPECT_GT(f.at("scrape_p50_us").number_value(), 0);
  EXPECT_LE(f.at("scrape_p50_us").number_value(), f.at("scrape_p99_us").number_value());
  // A scrape's body is the node's rendering of its metrics; the counters'
  // digits change a little between them.
  const double rendered = static_cast<double>(node_.node().RenderMetrics().size());
  EXPECT_GT(f.at("scrape_bytes_per_scrape").number_value(), rendered / 2);
  EXPECT_LT(f.at("scrape_bytes_per_scrape").number_value(), rendered * 2);
}

TEST_F(BenchTest, ReadableReportShowsTheScrapes) {
  BenchConfig config = TinyRun();
  config.json = false;
  config.scrape_interval = std::chrono::milliseconds(100);
  config.scrape_address = node_.http_address();
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(config, out, err), kExitOk) << err.str();
  const std::string text = out.str();
  EXPECT_NE(text.find("metrics scrapes: "), std::string::npos) << text;
  EXPECT_NE(text.find(node_.http_address() + "/metrics every 100 ms, 0 failed"), std::string::npos)
      << text;
  const std::size_t duration = text.find("\n  scrape duration: ");
  ASSERT_NE(duration, std::string::npos) << text;
  EXPECT_NE(text.find(" bytes a scrape\n", duration), std::string::npos) << text;
  EXPECT_EQ(text.find("first failure"), std::string::npos) << text;
}

TEST_F(BenchTest, FailedScrapesAreCountedAndSaid) {
  BenchConfig config = TinyRun();
  config.scrape_interval = std::chrono::milliseconds(100);
  const std::string nowhere = "127.0.0.1:" + std::to_string(ClosedPort());
  config.scrape_address = nowhere;
  std::ostringstream out, err;
  ASSERT_EQ(RunBench(config, out, err), kExitOk) << err.str();
  const Struct json = ParseJson(out.str());
  const auto& f = json.fields();
  EXPECT_GE(f.at("scrapes").number_value(), 1);
  EXPECT_EQ(f.at("scrapes_failed").number_value(), f.at("scrapes").number_value());
  EXPECT_EQ(f.at("scrape_p50_us").kind_case(), Value::kNullValue);
  EXPECT_EQ(f.at("scrape_bytes_per_scrape").kind_case(), Value::kNullValue);
  EXPECT_EQ(f.at("scrape_first_error").string_value(),
            "scrape: cannot connect to " + nowhere + ": Connection refused");
  EXPECT_NE(err.str().find("scrapes of " + nowhere + " failed; the first: scrape: cannot connect"),
            std::string::npos)
      << err.str();
}

TEST(ScrapeOnceTest, AnAuthenticatedServerNeedsTheToken) {
  const std::filesystem::path auth = std::filesystem::temp_directory_path() /
                                     ("gradientd_bench_scrape_auth_" + std::to_string(getpid()));
  std::ofstream(auth) << "reader query 0123456789abcdef-reader\n";
  std::filesystem::permissions(
      auth, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  app::NodeOptions options = gradientd::testing::LoopbackNodeOptions();
  options.auth_file = auth.string();
  gradientd::testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok()) << node.log();
  bench::ScrapePlan plan;
  ASSERT_TRUE(protocol::ParseEndpoint(node.http_address(), &plan.endpoint).ok());
  uint64_t bytes = 0;
  const Status refused = bench::ScrapeOnce(plan, bench::kScrapeTimeout, &bytes);
  EXPECT_EQ(refused.message(), "scrape: HTTP 401 Unauthorized");
  EXPECT_EQ(bytes, 0u);
  plan.token = "0123456789abcdef-reader";
  ASSERT_TRUE(bench::ScrapeOnce(plan, bench::kScrapeTimeout, &bytes).ok());
  EXPECT_GT(bytes, 0u);
  std::filesystem::remove(auth);
}

TEST(BenchFailureTest, NoServerIsExitOneWithCannotConnect) {
  const auto port = ClosedPort();
  BenchConfig config;
  config.server = "127.0.0.1:" + std::to_string(port);
  config.seconds = 0.1;
  std::ostringstream out, err;
  EXPECT_EQ(RunBench(config, out, err), kExitFailure);
  EXPECT_EQ(out.str(), "");
  EXPECT_EQ(err.str(), "gradctl bench: cannot connect to 127.0.0.1:" + std::to_string(port) +
                           ": Connection refused\n");
}

TEST(BenchFailureTest, BadServerAddressIsNamed) {
  BenchConfig config;
  config.server = "127.0.0.1:notaport";
  std::ostringstream out, err;
  EXPECT_EQ(RunBench(config, out, err), kExitFailure);
  EXPECT_EQ(err.str().rfind("gradctl bench: --server 127.0.0.1:notaport: ", 0), 0u) << err.str();
}

TEST(CheckResponseTest, ServerErrorKeepsTheServersCode) {
  v1::Response response;
  response.mutable_error()->set_code(v1::Error::NOT_FOUND);
  response.mutable_error()->set_message("no series 'x'");
  const std::string bytes = response.SerializeAsString();
  v1::Response parsed;
  const Status s = bench::CheckResponse(
      {reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()}, v1::Response::kAck, &parsed);
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_EQ(s.message(), "server error NOT_FOUND: no series 'x'");
}

}  // namespace
}  // namespace gradientd::cli
