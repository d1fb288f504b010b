// A Node's startup as an operator's probes see it: HTTP answers while the
// data directory is being recovered (/healthz 200, /readyz 503 saying
// "recovering", the API and the dashboard 503, /metrics 200), the protocol's
// port refuses connections until recovery is done, and afterwards everything
// answers from the recovered state. Recovery is held in the middle by a file
// system that blocks the journal's read until the test lets it go, so what is
// checked does not depend on timing. Also: a busy port fails before
// recovery; a failed recovery with HTTP up ends cleanly; HTTP connections
// count in gradientd_connections.
#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <string>
#include <thread>

#include "client/client.h"
#include "http_test_client.h"
#include "running_node.h"
#include "storage/file_system.h"
#include "temp_dir.h"
#include "util/mutex.h"

namespace gradientd {
namespace {

using testing::HttpTestClient;

// Passes everything to the real file system, but the first read of a
// journal file waits, once held, until Release.
class HoldingFileSystem : public storage::FaultInjectingFileSystem {
 public:
  HoldingFileSystem() : FaultInjectingFileSystem(storage::PosixFileSystem()) {}

  Status ReadFile(const std::string& path, std::string* contents) override {
    if (std::filesystem::path(path).filename().string().starts_with("journal-")) Hold();
    return FaultInjectingFileSystem::ReadFile(path, contents);
  }

  // Blocks until recovery is waiting on the journal (bounded: false if it
  // never comes).
  bool AwaitHeld() {
    util::MutexLock lock(mu_);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!held_ && cv_.WaitUntil(mu_, deadline)) {
    }
    return held_;
  }
  void Release() {
    util::MutexLock lock(mu_);
    released_ = true;
    cv_.SignalAll();
  }

 private:
  void Hold() {
    util::MutexLock lock(mu_);
    if (held_) return;
    held_ = true;
    cv_.SignalAll();
    // Bounded, so a failing test ends.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
    while (!released_ && cv_.WaitUntil(mu_, deadline)) {
    }
  }

  util::Mutex mu_;
  util::CondVar cv_;
  bool held_ GUARDED_BY(mu_) = false;
  bool released_ GUARDED_BY(mu_) = false;
};

// Journals `batches` one-point batches to series "s" in `dir` and leaves
// them to recovery (no final checkpoint).
void Journal(const std::string& dir, int batches) {
  testing::RunningNode node(testing::LoopbackNodeOptions(dir));
  ASSERT_TRUE(node.Start().ok());
  std::unique_ptr<client::Client> c;
  ASSERT_TRUE(client::Client::Connect(node.address(), &c).ok());
  for (int i = 0; i < batches; ++i) {
    v1::Request r;
    r.mutable_ingest()->set_series("s");
    r.mutable_ingest()->add_x(i);
    r.mutable_ingest()->add_y(2.0 * i + 1);
    v1::Response ack;
    ASSERT_TRUE(c->Call(r, &ack).ok());
    ASSERT_TRUE(ack.has_ack()) << ack.DebugString();
  }
  node.Stop();
}

// The status and body of GET `target` on a new connection; 0 if none came.
std::pair<unsigned, std::string> Get(const std::string& address, const std::string& target) {
  HttpTestClient http(address);
  if (!http.connected()) return {0, http.error().message()};
  const auto response = http.Call(target);
  if (!response) return {0, "no response"};
  return {response->result_int(), response->body()};
}

// Whether a TCP connection to `endpoint` is refused.
bool Refused(const boost::asio::ip::tcp::endpoint& endpoint) {
  boost::asio::io_context io;
  boost::asio::ip::tcp::socket socket(io);
  boost::system::error_code ec;
  socket.connect(endpoint, ec);
  return ec == boost::asio::error::connection_refused;
}

class NodeStartupTest : public ::testing::Test {
 protected:
  testing::TestDirectory dir_{"node_startup_test"};
};

TEST_F(NodeStartupTest, HealthAnswersDuringRecoveryAndTheRestWaitsForIt) {
  const std::string data = dir_.Path("data");
  Journal(data, 5);
  HoldingFileSystem fs;
  app::NodeOptions options = testing::LoopbackNodeOptions(data);
  options.data.fs = &fs;
  std::ostringstream log;
  app::Node node(options, log);
  ASSERT_TRUE(node.Open().ok());
  const std::string http = server::FormatEndpoint(*node.http_endpoint());
  const boost::asio::ip::tcp::endpoint protocol = node.endpoint();
  Status started = Status::Internal("not yet");
  std::thread starting([&] { started = node.Start(); });
  ASSERT_TRUE(fs.AwaitHeld());

  EXPECT_EQ(Get(http, "/healthz"), std::make_pair(200u, std::string("ok\n")));
  const auto [ready_status, ready_body] = Get(http, "/readyz");
  EXPECT_EQ(ready_status, 503u);
  // Held before the journal's first record.
  EXPECT_EQ(ready_body,
            "not ready: recovering the data directory (0 journal records replayed, 0 series so "
            "far)\n");
  for (const char* waits : {"/api/v1/series", "/api/v1/series/s", "/", "/series/s"}) {
    HttpTestClient client(http);
    const auto response = client.Call(waits);
    ASSERT_TRUE(response) << waits;
    EXPECT_EQ(response->result_int(), 503u) << waits;
    EXPECT_EQ((*response)[boost::beast::http::field::retry_after], "1") << waits;
    EXPECT_NE(response->body().find(R"("code":"UNAVAILABLE")"), std::string::npos)
        << waits << ": " << response->body();
  }
  const auto [metrics_status, metrics] = Get(http, "/metrics");
  EXPECT_EQ(metrics_status, 200u);
  EXPECT_NE(metrics.find("gradientd_series "), std::string::npos);
  EXPECT_TRUE(Refused(protocol)) << "the protocol port accepted before recovery was done";

  fs.Release();
  starting.join();
  ASSERT_TRUE(started.ok()) << started.message();
  std::thread running([&] { node.Run(); });
  EXPECT_EQ(Get(http, "/readyz"), std::make_pair(200u, std::string("ready\n")));
  const auto [fit_status, fit] = Get(http, "/api/v1/series/s");
  EXPECT_EQ(fit_status, 200u);
  EXPECT_NE(fit.find(R"("n":"5")"), std::string::npos) << fit;
  EXPECT_NE(
      Get(http, "/metrics").second.find("gradientd_recovery_journal_records_replayed_total 5\n"),
      std::string::npos);
  std::unique_ptr<client::Client> c;
  EXPECT_TRUE(client::Client::Connect(server::FormatEndpoint(protocol), &c).ok());
  node.Stop();
  running.join();
  EXPECT_TRUE(node.Finish().ok());
  EXPECT_NE(log.str().find("recovered 1 series, 5 points"), std::string::npos) << log.str();
}

TEST_F(NodeStartupTest, ABusyPortFailsBeforeRecoveryTouchesTheDataDirectory) {
  testing::RunningNode holder(testing::LoopbackNodeOptions());
  ASSERT_TRUE(holder.Start().ok());
  const std::string data = dir_.Path("data");
  app::NodeOptions busy = testing::LoopbackNodeOptions(data);
  busy.server.listen = holder.address();
  std::ostringstream log;
  app::Node node(busy, log);
  const Status s = node.Start();
  EXPECT_EQ(s.message().rfind("cannot listen on " + holder.address(), 0), 0u) << s.message();
  EXPECT_FALSE(std::filesystem::exists(data)) << "recovery ran before the port was taken";

  app::NodeOptions busy_http = testing::LoopbackNodeOptions(data);
  busy_http.http.listen = holder.http_address();
  app::Node http_node(busy_http, log);
  const Status h = http_node.Start();
  EXPECT_NE(h.message().find("--http-listen"), std::string::npos) << h.message();
  EXPECT_FALSE(std::filesystem::exists(data)) << "recovery ran before the HTTP port was taken";
}

TEST_F(NodeStartupTest, AFailedRecoveryWithHttpUpEndsCleanly) {
  const std::string data = dir_.Path("data");
  Journal(data, 3);
  // Garbage in the middle of the journal, with records after it: recovery
  // refuses to start.
  std::string journal;
  for (const auto& entry : std::filesystem::directory_iterator(data)) {
    if (entry.path().filename().string().starts_with("journal-")) journal = entry.path();
  }
  ASSERT_FALSE(journal.empty());
  {
    std::fstream file(journal, std::ios::in | std::ios::out | std::ios::binary);
    file.seekp(static_cast<std::streamoff>(std::filesystem::file_size(journal) / 3));
    file.write("\xff\xff\xff\xff\xff\xff\xff\xff", 8);
  }
  std::ostringstream log;
  app::Node node(testing::LoopbackNodeOptions(data), log);
  ASSERT_TRUE(node.Open().ok());
  const Status s = node.Start();
  EXPECT_EQ(s.message().rfind("cannot use data directory " + data, 0), 0u) << s.message();
}

TEST_F(NodeStartupTest, HttpConnectionsCountInTheConnectionsGauge) {
  testing::RunningNode node(testing::LoopbackNodeOptions());
  ASSERT_TRUE(node.Start().ok());
  HttpTestClient first(node.http_address());
  ASSERT_TRUE(first.connected());
  HttpTestClient second(node.http_address());
  const auto metrics = second.Call("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_NE(
      metrics->body().find("gradientd_connections{listener=\"http\",state=\"established\"} 2\n"),
      std::string::npos)
      << metrics->body();
  EXPECT_NE(metrics->body().find(
                "gradientd_connections{listener=\"protocol\",state=\"established\"} 0\n"),
            std::string::npos)
      << metrics->body();
}

}  // namespace
}  // namespace gradientd
