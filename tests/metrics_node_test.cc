// A Node's metrics: after a known sequence of requests the counters say
// exactly what was done; nodes in one process count separately; a scrape
// taken under load (producers, queries, a step, refusals, a data directory)
// passes `promtool check metrics`.
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "client/client.h"
#include "http_test_client.h"
#include "running_node.h"
#include "test_ca.h"

namespace gradientd {
namespace {

// The value of the sample `key` (name with its labels, as rendered), or -1
// if the text has no such line.
double SampleValue(const std::string& text, const std::string& key) {
  const std::string line_start = key + " ";
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    const std::string line = text.substr(at, end - at);
    if (line.starts_with(line_start)) return std::stod(line.substr(line_start.size()));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return -1;
}

std::unique_ptr<client::Client> Connect(testing::RunningNode& node) {
  return testing::ConnectClient(node.address());
}

v1::Response Call(client::Client& c, v1::Request request) {
  return testing::CallClient(c, std::move(request));
}

v1::Request Batch(const std::string& series, int points, const std::string& producer = "",
                  uint64_t sequence = 0) {
  v1::Request request;
  v1::PointBatch* batch = request.mutable_ingest();
  batch->set_series(series);
  for (int i = 0; i < points; ++i) {
    batch->add_x(i);
    batch->add_y(2.0 * i + 1);
  }
  batch->set_producer_id(producer);
  batch->set_sequence(sequence);
  return request;
}

v1::Request FitOf(const std::string& series) {
  v1::Request request;
  request.mutable_fit()->set_series(series);
  return request;
}

TEST(MetricsNodeTest, CountersSayExactlyWhatWasDone) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.limits.max_series = 3;
  options.limits.max_batch_points = 100;
  testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok());
  auto c = Connect(node);

  for (int i = 0; i < 5; ++i) ASSERT_TRUE(Call(*c, Batch("a", 10)).has_ack());  // 50 points
  ASSERT_FALSE(Call(*c, Batch("b", 4, "producer-1", 1)).ack().duplicate());
  for (int i = 0; i < 2; ++i)
    ASSERT_TRUE(Call(*c, Batch("b", 4, "producer-1", 1)).ack().duplicate());
  ASSERT_TRUE(Call(*c, Batch("c", 7)).has_ack());
  // Refused: a fourth series, too many points, an event time an hour ahead.
  EXPECT_EQ(Call(*c, Batch("d", 1)).error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_EQ(Call(*c, Batch("a", 101)).error().code(), v1::Error::INVALID_ARGUMENT);
  v1::Request future = Batch("a", 3);
  future.mutable_ingest()->set_event_time_unix_nanos(
      std::chrono::duration_cast<std::chrono::nanoseconds>(
          (std::chrono::system_clock::now() + std::chrono::hours(1)).time_since_epoch())
          .count());
  EXPECT_EQ(Call(*c, future).error().code(), v1::Error::INVALID_ARGUMENT);
  EXPECT_EQ(Call(*c, FitOf("missing")).error().code(), v1::Error::NOT_FOUND);
  EXPECT_TRUE(Call(*c, FitOf("a")).has_fit());
  v1::Request step;
  step.mutable_step()->set_series("a");
  step.mutable_step()->set_iterations(3);
  EXPECT_TRUE(Call(*c, step).has_step());

  const std::string text = node.node().RenderMetrics();
  SCOPED_TRACE(text);
  const auto requests = [&](const std::string& op, const std::string& code) {
    return SampleValue(text,
                       "gradientd_requests_total{operation=\"" + op + "\",code=\"" + code + "\"}");
  };
  EXPECT_EQ(requests("ingest", "OK"), 9);  // 5 + 1 + 2 duplicates + 1
  EXPECT_EQ(requests("ingest", "RESOURCE_EXHAUSTED"), 1);
  EXPECT_EQ(requests("ingest", "INVALID_ARGUMENT"), 2);
  EXPECT_EQ(requests("fit", "NOT_FOUND"), 1);
  EXPECT_EQ(requests("fit", "OK"), 1);
  EXPECT_EQ(requests("step", "OK"), 1);
  EXPECT_EQ(requests("gradient", "OK"), 0);
  EXPECT_EQ(SampleValue(text, "gradientd_ingested_batches_total{outcome=\"applied\"}"), 7);
  EXPECT_EQ(SampleValue(text, "gradientd_ingested_batches_total{outcome=\"duplicate\"}"), 2);
  EXPECT_EQ(SampleValue(text, "gradientd_ingested_batches_total{outcome=\"refused\"}"), 3);
  EXPECT_EQ(SampleValue(text, "gradientd_ingested_points_total"), 50 + 4 + 7);
  EXPECT_EQ(SampleValue(text, "gradientd_refusals_total{limit=\"max_series\"}"), 1);
  EXPECT_EQ(SampleValue(text, "gradientd_refusals_total{limit=\"batch_points\"}"), 1);
  EXPECT_EQ(SampleValue(text, "gradientd_refusals_total{limit=\"future_skew\"}"), 1);
  EXPECT_EQ(SampleValue(text, "gradientd_refusals_total{limit=\"window_memory\"}"), 0);
  EXPECT_EQ(SampleValue(text, "gradientd_series"), 3);
  EXPECT_EQ(SampleValue(text, "gradientd_producers"), 1);
  EXPECT_EQ(SampleValue(text, "gradientd_connections{listener=\"protocol\",state=\"established\"}"),
            1);
  EXPECT_EQ(SampleValue(text, "gradientd_request_duration_seconds_count{operation=\"ingest\"}"),
            12);
  EXPECT_EQ(SampleValue(text,
                        "gradientd_request_duration_seconds_bucket{operation=\"ingest\","
                        "le=\"+Inf\"}"),
            12);
  EXPECT_EQ(SampleValue(text, "gradientd_queued_response_bytes"), 0);  // all read
  // No series name anywhere in the text.
  EXPECT_EQ(text.find("\"a\""), std::string::npos);
}

TEST(MetricsNodeTest, NodesInOneProcessCountSeparately) {
  testing::RunningNode busy(testing::LoopbackNodeOptions());
  testing::RunningNode idle(testing::LoopbackNodeOptions());
  ASSERT_TRUE(busy.Start().ok());
  ASSERT_TRUE(idle.Start().ok());
  auto c = Connect(busy);
  ASSERT_TRUE(Call(*c, Batch("s", 5)).has_ack());
  EXPECT_EQ(SampleValue(busy.node().RenderMetrics(), "gradientd_ingested_points_total"), 5);
  EXPECT_EQ(SampleValue(idle.node().RenderMetrics(), "gradientd_ingested_points_total"), 0);
}

TEST(MetricsNodeTest, MaxConnectionRefusalsAreCounted) {
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.server.max_connections = 1;
  testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok());
  auto served = Connect(node);
  ASSERT_TRUE(Call(*served, FitOf("x")).has_error());  // being served
  std::unique_ptr<client::Client> extra;
  ASSERT_TRUE(client::Client::Connect(node.address(), &extra).ok());
  v1::Response response;
  v1::Request fit = FitOf("x");
  (void)extra->Call(fit, &response);  // the refusal, or the closed socket
  EXPECT_EQ(SampleValue(node.node().RenderMetrics(),
                        "gradientd_refusals_total{limit=\"max_connections\"}"),
            1);
}

TEST(MetricsNodeTest, AuthFailuresAreCountedByReason) {
  const std::filesystem::path auth = std::filesystem::temp_directory_path() /
                                     ("gradientd_metrics_auth_" + std::to_string(getpid()));
  std::ofstream(auth) << "reader query 0123456789abcdef-reader\n";
  std::filesystem::permissions(
      auth, std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.auth_file = auth.string();
  testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok()) << node.log();
  auto c = Connect(node);
  EXPECT_EQ(Call(*c, FitOf("s")).error().code(), v1::Error::UNAUTHENTICATED);  // no Hello
  EXPECT_FALSE(c->Hello("not-a-token-of-this-server").ok());
  EXPECT_FALSE(c->Hello("").ok());
  ASSERT_TRUE(c->Hello("0123456789abcdef-reader").ok());
  EXPECT_EQ(Call(*c, Batch("s", 1)).error().code(), v1::Error::PERMISSION_DENIED);
  EXPECT_EQ(Call(*c, Batch("s", 1)).error().code(), v1::Error::PERMISSION_DENIED);
  const std::string text = node.node().RenderMetrics();
  SCOPED_TRACE(text);
  const auto failures = [&](const std::string& reason) {
    return SampleValue(text, "gradientd_auth_failures_total{reason=\"" + reason + "\"}");
  };
  EXPECT_EQ(failures("not_authenticated"), 1);
  EXPECT_EQ(failures("invalid_token"), 1);
  EXPECT_EQ(failures("no_token"), 1);
  EXPECT_EQ(failures("permission_denied"), 2);
  EXPECT_EQ(failures("token_revoked"), 0);
  // Refused requests never reached the service.
  EXPECT_EQ(SampleValue(text, "gradientd_requests_total{operation=\"ingest\",code=\"OK\"}"), 0);
  std::filesystem::remove(auth);
}

TEST(MetricsNodeTest, FailedTlsHandshakesAreCounted) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("gradientd_metrics_tls_" + std::to_string(getpid()));
  std::filesystem::create_directories(dir);
  testing::TestCa ca("metrics test CA");
  ca.Issue("localhost", "IP:127.0.0.1", (dir / "server.pem").string(),
           (dir / "server.key").string());
  app::NodeOptions options = testing::LoopbackNodeOptions();
  options.server.tls = {(dir / "server.pem").string(), (dir / "server.key").string(), ""};
  testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok()) << node.log();
  // A plaintext client: its request is no ClientHello, and the server
  // closes the connection once it has counted the failure.
  for (int i = 0; i < 2; ++i) {
    std::unique_ptr<client::Client> plain;
    ASSERT_TRUE(client::Client::Connect(node.address(), &plain).ok());
    v1::Response response;
    v1::Request fit = FitOf("s");
    EXPECT_FALSE(plain->Call(fit, &response).ok());
  }
  const std::string text = node.node().RenderMetrics();
  EXPECT_EQ(SampleValue(text, "gradientd_tls_handshake_failures_total"), 2) << text;
  EXPECT_EQ(SampleValue(text, "gradientd_connections{listener=\"protocol\",state=\"handshaking\"}"),
            0)
      << text;
  std::filesystem::remove_all(dir);
}

// Runs `promtool check metrics` on `text`; its output, and whether it
// exited 0.
bool PromtoolAccepts(const std::string& text, std::string* output) {
  char path[] = "/tmp/gradientd_metrics_XXXXXX";
  const int fd = mkstemp(path);
  if (fd < 0) return false;
  close(fd);
  std::ofstream(path) << text;
  const std::string command = std::string("promtool check metrics < ") + path + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) return false;
  char buffer[4096];
  for (std::size_t n; (n = fread(buffer, 1, sizeof buffer, pipe)) > 0;) output->append(buffer, n);
  const int status = pclose(pipe);
  std::filesystem::remove(path);
  return status == 0;
}

TEST(MetricsNodeTest, PromtoolComplainsAboutALintProblem) {
  // The check below can fail: a counter without _total is refused.
  std::string complaints;
  EXPECT_FALSE(PromtoolAccepts("# HELP foo x\n# TYPE foo counter\nfoo 1\n", &complaints));
  EXPECT_NE(complaints.find("_total"), std::string::npos) << complaints;
}

TEST(MetricsNodeTest, AScrapeUnderLoadPassesPromtool) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() /
                                    ("gradientd_metrics_node_" + std::to_string(getpid()));
  std::filesystem::remove_all(dir);
  app::NodeOptions options = testing::LoopbackNodeOptions(dir.string(), 2);
  options.limits.max_series = 6;
  options.data.checkpoint_interval = std::chrono::milliseconds(20);
  testing::RunningNode node(options);
  ASSERT_TRUE(node.Start().ok()) << node.log();

  constexpr int kProducers = 4, kBatches = 150;
  auto q = Connect(node);
  // The producers' series exist before the extras below fill the rest.
  for (int p = 0; p < kProducers; ++p) {
    ASSERT_TRUE(Call(*q, Batch("load-" + std::to_string(p), 1)).has_ack());
  }
  std::atomic<int> done{0};
  std::vector<std::thread> producers;
  for (int p = 0; p < kProducers; ++p) {
    producers.emplace_back([&, p] {
      auto c = Connect(node);
      for (int i = 1; i <= kBatches; ++i) {
        const v1::Response r =
            Call(*c, Batch("load-" + std::to_string(p), 50, "producer-" + std::to_string(p),
                           static_cast<uint64_t>(i)));
        EXPECT_TRUE(r.has_ack());
        ++done;
      }
    });
  }
  // Queries, a step and refusals while the producers run.
  for (int i = 0; i < 20; ++i) (void)Call(*q, FitOf("load-0"));
  v1::Request step;
  step.mutable_step()->set_series("load-1");
  step.mutable_step()->set_iterations(10);
  (void)Call(*q, step);
  for (int i = 0; i < 3; ++i) (void)Call(*q, Batch("extra-" + std::to_string(i), 2));
  // Past max_series: at least one of these is refused.
  for (int i = 3; i < 6; ++i) (void)Call(*q, Batch("extra-" + std::to_string(i), 2));
  // A scrape while they still ingest (bounded wait for half the batches).
  for (int wait = 0; wait < 6000 && done < kProducers * kBatches / 2; ++wait) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  // Over HTTP, as Prometheus scrapes.
  testing::HttpTestClient http(node.http_address());
  const auto scraped = http.Call("/metrics");
  ASSERT_TRUE(scraped.has_value());
  EXPECT_EQ(scraped->result_int(), 200);
  EXPECT_NE(std::string(scraped->at(boost::beast::http::field::content_type)).find("0.0.4"),
            std::string::npos);
  const std::string under_load = scraped->body();
  for (auto& t : producers) t.join();
  q.reset();
  ASSERT_TRUE(node.Finish().ok());
  const std::string after = node.node().RenderMetrics();

  for (const std::string* text : {&under_load, &after}) {
    std::string complaints;
    EXPECT_TRUE(PromtoolAccepts(*text, &complaints)) << complaints << "\n" << *text;
    EXPECT_EQ(complaints, "");
  }
  EXPECT_EQ(SampleValue(after, "gradientd_ingested_batches_total{outcome=\"applied\"}"),
            kProducers + kProducers * kBatches + 2);  // two extras make six series
  EXPECT_EQ(SampleValue(after, "gradientd_refusals_total{limit=\"max_series\"}"), 4);
  EXPECT_GT(SampleValue(after, "gradientd_journal_written_bytes_total"), 0);
  EXPECT_GT(SampleValue(after, "gradientd_journal_fsync_duration_seconds_count"), 0);
  EXPECT_GE(SampleValue(after, "gradientd_journal_group_commit_records_sum"),
            kProducers * kBatches + 2);
  EXPECT_GE(SampleValue(after, "gradientd_snapshot_duration_seconds_count"), 1);  // the final one
  EXPECT_GT(SampleValue(after, "gradientd_snapshot_last_success_timestamp_seconds"), 1.6e9);
  EXPECT_NE(after.find("gradientd_build_info{version=\""), std::string::npos);
  EXPECT_GT(SampleValue(after, "process_resident_memory_bytes"), 0);
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradientd
