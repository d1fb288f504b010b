// gradientd's composition root: its command line (every option, defaults as
// --help prints them, each refusal's message) and the Node that main runs,
// started and stopped in-process.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "app/command_line.h"
#include "app/node.h"
#include "client/client.h"
#include "http_test_client.h"
#include "recording/recording.h"
#include "running_node.h"
#include "temp_dir.h"

namespace gradientd {
namespace {

Status Parse(std::vector<const char*> args, app::CommandLine* command_line) {
  args.insert(args.begin(), "gradientd");
  return app::ParseCommandLine(static_cast<int>(args.size()), args.data(), command_line);
}

std::string ParseError(std::vector<const char*> args) {
  app::CommandLine command_line;
  return Parse(std::move(args), &command_line).message();
}

// Every field the command line sets, one per line, to compare whole results.
std::string Describe(const app::CommandLine& c) {
  const app::NodeOptions& n = c.node;
  std::ostringstream out;
  out << c.help << c.version << "\n"
      << n.server.listen << " " << n.server.threads << " " << n.server.max_frame_bytes << " "
      << n.server.max_connections << " " << n.server.max_queued_bytes << " "
      << n.server.idle_timeout.count() << " " << n.server.request_timeout.count() << " "
      << n.server.write_timeout.count() << "\n"
      << n.server.tls.cert_file << "|" << n.server.tls.key_file << "|"
      << n.server.tls.client_ca_file << "\n"
      << n.limits.max_series << " " << n.limits.max_series_name_bytes << " "
      << n.limits.max_batch_points << " " << n.limits.max_producers << " "
      << n.limits.producer_expiry.count() << " " << n.limits.max_step_time.count() << " "
      << n.limits.max_future_skew.count() << " " << n.limits.producer_window << "\n"
      << n.in_memory << " " << n.data.path << " " << static_cast<int>(n.data.journal.fsync) << " "
      << n.data.journal.fsync_interval.count() << " " << n.data.checkpoint_interval.count() << " "
      << n.data.checkpoint_bytes << "\n"
      << n.record_path << "|" << n.auth_file << "\n"
      << n.http.listen << " " << n.http.max_connections << "\n";
  for (const std::string& url : n.cluster.streams.urls) out << url << ",";
  out << " " << n.cluster.streams.name << " " << n.cluster.streams.shards << " "
      << n.cluster.streams.replicas << " " << n.cluster.decide_timeout.count() << "\n";
  return out.str();
}

TEST(GradientdOptionsTest, EveryOptionIsParsedFromTheCommandLine) {
  app::CommandLine c;
  ASSERT_TRUE(Parse({"--listen",
                     "[::1]:9",
                     "--auth-file",
                     "auth.txt",
                     "--threads",
                     "3",
                     "--max-frame-bytes",
                     "1KiB",
                     "--data-dir",
                     "/tmp/d",
                     "--in-memory",
                     "--fsync",
                     "interval",
                     "--fsync-interval",
                     "1.5s",
                     "--checkpoint-interval",
                     "0",
                     "--checkpoint-bytes",
                     "2MiB",
                     "--max-series",
                     "7",
                     "--max-series-name-bytes",
                     "65536",
                     "--max-batch-points",
                     "8",
                     "--max-producers",
                     "9",
                     "--producer-expiry",
                     "2h",
                     "--producer-window",
                     "128",
                     "--max-step-time",
                     "250ms",
                     "--max-future-skew",
                     "90s",
                     "--max-connections",
                     "10",
                     "--max-queued-bytes",
                     "3KiB",
                     "--idle-timeout",
                     "1m",
                     "--request-timeout",
                     "2s",
                     "--write-timeout",
                     "3s",
                     "--record",
                     "rec.grdrec",
                     "--tls-cert",
                     "c.pem",
                     "--tls-key",
                     "k.pem",
                     "--tls-client-ca",
                     "ca.pem",
                     "--http-listen",
                     "off",
                     "--http-max-connections",
                     "5"},
                    &c)
                  .ok());
  EXPECT_EQ(Describe(c),
            "00\n"
            "[::1]:9 3 1024 10 3072 60000 2000 3000\n"
            "c.pem|k.pem|ca.pem\n"
            "7 65536 8 9 7200000000000 250000000 90000000000 128\n"
            "1 /tmp/d 1 1500 0 2097152\n"
            "rec.grdrec|auth.txt\n"
            "off 5\n"
            " gradientd 4 3 20000\n");
}

TEST(GradientdOptionsTest, ClusterOptionsAreParsedAndMakeANodeWithoutADataDirectory) {
  app::CommandLine c;
  ASSERT_TRUE(Parse({"--cluster", "nats://10.0.0.1:4222,nats://10.0.0.2:4222", "--cluster-name",
                     "prod-1", "--cluster-shards", "16", "--cluster-replicas", "5",
                     "--cluster-timeout", "45s", "--in-memory"},
                    &c)
                  .ok());
  EXPECT_EQ(c.node.cluster.streams.urls,
            (std::vector<std::string>{"nats://10.0.0.1:4222", "nats://10.0.0.2:4222"}));
  EXPECT_EQ(c.node.cluster.streams.name, "prod-1");
  EXPECT_EQ(c.node.cluster.streams.shards, 16u);
  EXPECT_EQ(c.node.cluster.streams.replicas, 5u);
  EXPECT_EQ(c.node.cluster.decide_timeout, std::chrono::seconds(45));
  EXPECT_TRUE(c.node.in_memory);
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-name", "a.b"}),
            "--cluster-name: the cluster name may hold only letters, digits, '_' and '-' (it "
            "names NATS streams and subjects), got 'a.b'");
}

// `text` in a file `name` of `dir`; its path.
std::string WriteFile(const testing::TestDirectory& dir, const std::string& name,
                      const std::string& text) {
  std::ofstream(dir.Path(name)) << text;
  return dir.Path(name);
}

TEST(GradientdOptionsTest, ClusterTlsAndCredentialFlagsFillTheStreamsSecurity) {
  const testing::TestDirectory dir("app_test");
  const std::string user = WriteFile(dir, "user", "node-1:pa:ss\r\nignored\n");
  app::CommandLine c;
  ASSERT_TRUE(Parse({"--cluster", "tls://10.0.0.1:4222", "--cluster-ca", "/etc/nats/ca.pem",
                     "--cluster-cert", "/etc/nats/node.pem", "--cluster-key", "/etc/nats/node.key",
                     "--cluster-user-file", user.c_str()},
                    &c)
                  .ok());
  const jetstream::NatsSecurity& security = c.node.cluster.streams.security;
  EXPECT_EQ(security.ca_file, "/etc/nats/ca.pem");
  EXPECT_EQ(security.cert_file, "/etc/nats/node.pem");
  EXPECT_EQ(security.key_file, "/etc/nats/node.key");
  EXPECT_EQ(security.user, "node-1");
  EXPECT_EQ(security.password, "pa:ss");
  EXPECT_EQ(security.token, "");
  const std::string token = WriteFile(dir, "token", "s3cret-token\n");
  app::CommandLine t;
  ASSERT_TRUE(Parse({"--cluster", "nats://a:1", "--cluster-token-file", token.c_str()}, &t).ok());
  EXPECT_EQ(t.node.cluster.streams.security.token, "s3cret-token");
  EXPECT_EQ(t.node.cluster.streams.security.user, "");
}

TEST(GradientdOptionsTest, ClusterTlsAndCredentialFlagsAreRefusedClearly) {
  for (const char* flag : {"--cluster-ca", "--cluster-cert", "--cluster-key", "--cluster-user-file",
                           "--cluster-token-file"}) {
    EXPECT_EQ(ParseError({flag, "/x"}), std::string(flag) + " needs --cluster");
  }
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-cert", "/c.pem"}),
            "--cluster-cert needs --cluster-key");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-key", "/c.key"}),
            "--cluster-key needs --cluster-cert");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-ca", ""}),
            "--cluster-ca needs a FILE");
  const testing::TestDirectory dir("app_test");
  const std::string user = WriteFile(dir, "user", "node:pw\n");
  const std::string token = WriteFile(dir, "token", "secret-token\n");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-user-file", user.c_str(),
                        "--cluster-token-file", token.c_str()}),
            "--cluster-user-file and --cluster-token-file: give one of them, not both");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-user-file", "/nonexistent/user"}),
            "--cluster-user-file: cannot read /nonexistent/user: No such file or directory");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-token-file", "/nonexistent/t"}),
            "--cluster-token-file: cannot read /nonexistent/t: No such file or directory");
  const std::string bad = WriteFile(dir, "bad-user", "only-a-secret-no-colon\n");
  const std::string no_colon =
      ParseError({"--cluster", "nats://a:1", "--cluster-user-file", bad.c_str()});
  EXPECT_EQ(no_colon, std::string("--cluster-user-file: the first line of ") + bad +
                          " must be USER:PASSWORD");
  const std::string empty = WriteFile(dir, "empty", "\r\nnode:pw\n");
  EXPECT_EQ(ParseError({"--cluster", "nats://a:1", "--cluster-token-file", empty.c_str()}),
            std::string("--cluster-token-file: the first line of ") + empty + " is empty");
}

TEST(GradientdOptionsTest, DefaultsAreTheStructsDefaultsAndWhatHelpPrints) {
  app::CommandLine defaults;
  ASSERT_TRUE(Parse({}, &defaults).ok());
  app::CommandLine expected;
  expected.node.data.path = app::DefaultDataDir();
  EXPECT_EQ(Describe(defaults), Describe(expected));
  // Each "--NAME arg (=VALUE)" of --help, given on the command line,
  // changes nothing.
  const std::regex shown(R"(--([a-z-]+) arg \(=([^)]*)\))");
  int checked = 0;
  for (auto it = std::sregex_iterator(defaults.usage.begin(), defaults.usage.end(), shown);
       it != std::sregex_iterator(); ++it, ++checked) {
    const std::string flag = "--" + (*it)[1].str();
    const std::string value = (*it)[2].str();
    app::CommandLine given;
    if (flag.rfind("--cluster-", 0) == 0) {
      // Only with --cluster.
      app::CommandLine cluster;
      ASSERT_TRUE(Parse({"--cluster", "nats://127.0.0.1:4222"}, &cluster).ok());
      ASSERT_TRUE(
          Parse({"--cluster", "nats://127.0.0.1:4222", flag.c_str(), value.c_str()}, &given).ok())
          << flag << " " << value;
      EXPECT_EQ(Describe(given), Describe(cluster)) << flag << " " << value;
      continue;
    }
    ASSERT_TRUE(Parse({flag.c_str(), value.c_str()}, &given).ok()) << flag << " " << value;
    EXPECT_EQ(Describe(given), Describe(defaults)) << flag << " " << value;
  }
  EXPECT_EQ(checked, 27);  // --cluster-name, -shards, -replicas and -timeout made it 27
  EXPECT_NE(defaults.usage.find("--max-future-skew arg (=5m)"), std::string::npos);
  EXPECT_NE(defaults.usage.find("--max-window-memory arg (=1GiB)"), std::string::npos);
  EXPECT_NE(defaults.usage.find("--max-frame-bytes arg (=16MiB)"), std::string::npos);
  EXPECT_NE(defaults.usage.find("--idle-timeout arg (=5m)"), std::string::npos);
  EXPECT_NE(defaults.usage.find("--fsync arg (=always)"), std::string::npos);
}

TEST(GradientdOptionsTest, EachBadValueIsRefusedWithItsMessage) {
  const std::vector<std::pair<std::vector<const char*>, std::string>> cases = {
      {{"--bogus"}, "unrecognised option '--bogus'"},
      {{"--threads", "x"}, "the argument ('x') for option '--threads' is invalid"},
      {{"--threads", "1025"}, "--threads must be at most 1024"},
      {{"--max-frame-bytes", "0"}, "--max-frame-bytes must be between 1 and 1GiB, got 0"},
      {{"--max-frame-bytes", "2GiB"}, "--max-frame-bytes must be between 1 and 1GiB, got 2GiB"},
      {{"--max-queued-bytes", "0"}, "--max-queued-bytes: must be positive"},
      {{"--max-series-name-bytes", "0"},
       "--max-series-name-bytes and --max-batch-points must be positive"},
      {{"--max-batch-points", "0"},
       "--max-series-name-bytes and --max-batch-points must be positive"},
      {{"--max-series-name-bytes", "65537"},
       "--max-series-name-bytes must be at most 65536, got 65537"},
      {{"--max-producers", "0"}, "--max-producers must be positive"},
      {{"--producer-window", "100"},
       "--producer-window must be a multiple of 64 between 64 and 1048576, got 100"},
      {{"--producer-window", "0"},
       "--producer-window must be a multiple of 64 between 64 and 1048576, got 0"},
      {{"--producer-window", "1048640"},
       "--producer-window must be a multiple of 64 between 64 and 1048576, got 1048640"},
      {{"--producer-expiry", "999ms"},
       "--producer-expiry: must be between 1s and 8760h (365 days), got 999ms"},
      {{"--producer-expiry", "8761h"},
       "--producer-expiry: must be between 1s and 8760h (365 days), got 8761h"},
      {{"--max-step-time", "61s"}, "--max-step-time: must be between 1ms and 60s, got 61s"},
      {{"--max-step-time", "0"}, "--max-step-time: must be between 1ms and 60s, got 0"},
      {{"--max-future-skew", "8761h"},
       "--max-future-skew: must be at most 8760h (365 days), got 8761h"},
      {{"--max-connections", "0"}, "--max-connections must be positive"},
      {{"--idle-timeout", "0"}, "--idle-timeout: must be positive"},
      {{"--request-timeout", "0"}, "--request-timeout: must be positive"},
      {{"--write-timeout", "0"}, "--write-timeout: must be positive"},
      {{"--write-timeout", "250us"},
       "--write-timeout: bad duration '250us': not a whole number of milliseconds"},
      {{"--auth-file", ""}, "--auth-file needs a FILE"},
      {{"--data-dir", ""}, "--data-dir must not be empty"},
      {{"--fsync-interval", "0"}, "--fsync-interval must be positive"},
      {{"--tls-cert", "", "--tls-key", "k"},
       "--tls-cert, --tls-key and --tls-client-ca need a FILE"},
      {{"--cluster-shards", "8"}, "--cluster-shards needs --cluster"},
      {{"--cluster", ""}, "--cluster needs NATS URLS"},
      {{"--cluster", "nats://a:1,,nats://b:2"},
       "--cluster: 'nats://a:1,,nats://b:2' is not a comma-separated list of NATS URLs "
       "(nats://HOST:PORT,nats://HOST:PORT)"},
      {{"--cluster", "nats://a:1", "--cluster-shards", "0"},
       "--cluster-shards must be between 1 and 256, got 0"},
      {{"--cluster", "nats://a:1", "--cluster-replicas", "6"},
       "--cluster-replicas must be between 1 and 5, got 6"},
      {{"--cluster", "nats://a:1", "--data-dir", "/tmp/x"},
       "--data-dir is not for a cluster node: with --cluster the state lives in the cluster's "
       "streams (README, Cluster)"},
      {{"--cluster", "nats://a:1", "--record", "r.grdrec"},
       "--record is not for a cluster node yet: a node's recording would hold only the "
       "batches it received, not the cluster's (README, Cluster)"},
  };
  for (const auto& [args, message] : cases) {
    EXPECT_EQ(ParseError(args), message) << args[0];
  }
  // Parse errors of the size and duration grammars name the flag first.
  for (const char* flag : {"--max-frame-bytes", "--max-queued-bytes", "--checkpoint-bytes",
                           "--fsync-interval", "--checkpoint-interval", "--producer-expiry",
                           "--max-step-time", "--max-future-skew", "--idle-timeout", "--fsync"}) {
    EXPECT_EQ(ParseError({flag, "nonsense"}).rfind(std::string(flag) + ": ", 0), 0u)
        << ParseError({flag, "nonsense"});
  }
}

TEST(GradientdOptionsTest, HelpAndVersionAreSwitches) {
  app::CommandLine c;
  ASSERT_TRUE(Parse({"--help"}, &c).ok());
  EXPECT_TRUE(c.help);
  EXPECT_FALSE(c.version);
  EXPECT_EQ(c.usage.rfind("Usage: gradientd [OPTIONS]\n", 0), 0u);
  app::CommandLine short_help;
  ASSERT_TRUE(Parse({"-h"}, &short_help).ok());
  EXPECT_TRUE(short_help.help);
  app::CommandLine v;
  ASSERT_TRUE(Parse({"--version"}, &v).ok());
  EXPECT_TRUE(v.version);
  EXPECT_FALSE(v.help);
}

TEST(TlsFlagsTest, CertificateAndKeyGoTogether) {
  const auto parse = [](std::vector<const char*> args) {
    args.insert(args.begin(), "gradientd");
    app::CommandLine command_line;
    return app::ParseCommandLine(static_cast<int>(args.size()), args.data(), &command_line);
  };
  EXPECT_EQ(parse({"--tls-cert", "c.pem"}).message(), "--tls-cert needs --tls-key");
  EXPECT_EQ(parse({"--tls-key", "k.pem"}).message(), "--tls-key needs --tls-cert");
  EXPECT_EQ(parse({"--tls-client-ca", "ca.pem"}).message(),
            "--tls-client-ca needs --tls-cert and --tls-key");
  app::CommandLine command_line;
  const char* args[] = {"gradientd", "--tls-cert",      "c.pem", "--tls-key",
                        "k.pem",     "--tls-client-ca", "ca.pem"};
  ASSERT_TRUE(app::ParseCommandLine(7, args, &command_line).ok());
  EXPECT_EQ(command_line.node.server.tls.cert_file, "c.pem");
  EXPECT_EQ(command_line.node.server.tls.key_file, "k.pem");
  EXPECT_EQ(command_line.node.server.tls.client_ca_file, "ca.pem");
}

// --- Node. ------------------------------------------------------------------

class NodeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = ::testing::TempDir() + "node_test_" + std::to_string(::getpid()) + "_" +
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  static uint64_t IngestAndCount(const std::string& address, int batches) {
    std::unique_ptr<client::Client> c;
    EXPECT_TRUE(client::Client::Connect(address, &c).ok());
    if (!c) return 0;
    for (int i = 0; i < batches; ++i) {
      v1::Request r;
      r.mutable_ingest()->set_series("s");
      r.mutable_ingest()->add_x(i);
      r.mutable_ingest()->add_y(2.0 * i);
      v1::Response ack;
      EXPECT_TRUE(c->Call(r, &ack).ok());
      EXPECT_TRUE(ack.has_ack()) << ack.DebugString();
    }
    v1::Request fit;
    fit.mutable_fit()->set_series("s");
    v1::Response reply;
    EXPECT_TRUE(c->Call(fit, &reply).ok());
    return reply.fit().n();
  }

  std::string dir_;
};

TEST_F(NodeTest, InMemoryNodeServesAndStops) {
  testing::RunningNode node(testing::LoopbackNodeOptions());
  ASSERT_TRUE(node.Start().ok());
  EXPECT_EQ(IngestAndCount(node.address(), 3), 3u);
  EXPECT_TRUE(node.Finish().ok());
  EXPECT_EQ(node.log(), "");
}

TEST_F(NodeTest, RecoversWhatItJournaledAndRecordsEveryAcceptedBatch) {
  app::NodeOptions options = testing::LoopbackNodeOptions(dir_ + "/data");
  options.record_path = dir_ + "/batches.grdrec";
  {
    testing::RunningNode node(options);
    ASSERT_TRUE(node.Start().ok());
    EXPECT_EQ(IngestAndCount(node.address(), 4), 4u);
    ASSERT_TRUE(node.Finish().ok());
    EXPECT_NE(node.log().find("gradientd: recovered 0 series"), std::string::npos) << node.log();
  }
  std::unique_ptr<storage::RecordingReader> reader;
  ASSERT_TRUE(storage::RecordingReader::Open(options.record_path, &reader).ok());
  v1::RecordedBatch batch;
  int records = 0;
  while (reader->Next(&batch) == storage::RecordingReader::Result::kRecord) {
    EXPECT_EQ(batch.series(), "s");
    EXPECT_EQ(batch.x_size(), 1);
    EXPECT_GT(batch.time_unix_nanos(), 0);
    // Sent without an event time: stamped with the receive time, which the
    // recording keeps as applied.
    ASSERT_TRUE(batch.has_event_time_unix_nanos());
    EXPECT_EQ(batch.event_time_unix_nanos(), batch.time_unix_nanos());
    ++records;
  }
  EXPECT_EQ(records, 4);
  options.record_path.clear();
  testing::RunningNode restarted(options);
  ASSERT_TRUE(restarted.Start().ok());
  EXPECT_EQ(IngestAndCount(restarted.address(), 1), 5u);
}

TEST_F(NodeTest, AResetEmptiesTheDashboardsSample) {
  testing::RunningNode node(testing::LoopbackNodeOptions());
  ASSERT_TRUE(node.Start().ok());
  EXPECT_EQ(IngestAndCount(node.address(), 3), 3u);
  testing::HttpTestClient http(node.http_address());
  auto sample = http.Call("/api/v1/series/s/sample");
  ASSERT_TRUE(sample);
  EXPECT_NE(sample->body().find(R"("seen":3)"), std::string::npos) << sample->body();
  std::unique_ptr<client::Client> c;
  ASSERT_TRUE(client::Client::Connect(node.address(), &c).ok());
  v1::Request reset;
  reset.mutable_reset()->set_series("s");
  v1::Response reply;
  ASSERT_TRUE(c->Call(reset, &reply).ok());
  ASSERT_TRUE(reply.has_fit()) << reply.DebugString();
  sample = http.Call("/api/v1/series/s/sample");
  ASSERT_TRUE(sample);
  EXPECT_NE(sample->body().find(R"("seen":0)"), std::string::npos) << sample->body();
  EXPECT_NE(sample->body().find(R"("points":[])"), std::string::npos) << sample->body();
}

TEST_F(NodeTest, StartErrorsNameWhatFailed) {
  app::NodeOptions auth = testing::LoopbackNodeOptions();
  auth.auth_file = dir_ + "/missing-auth";
  app::Node with_auth(auth, std::cerr);
  EXPECT_EQ(with_auth.Start().message().rfind("--auth-file: ", 0), 0u);

  app::NodeOptions record = testing::LoopbackNodeOptions();
  record.record_path = dir_ + "/no/such/dir/rec";
  app::Node with_record(record, std::cerr);
  EXPECT_EQ(with_record.Start().message().rfind("--record: ", 0), 0u);

  app::NodeOptions listen = testing::LoopbackNodeOptions();
  listen.server.listen = "127.0.0.1:99999";
  app::Node with_listen(listen, std::cerr);
  EXPECT_EQ(with_listen.Start().message().rfind("--listen: ", 0), 0u);
}

}  // namespace
}  // namespace gradientd
