// gradctl in-process: RunGradctl against a real server on port 0 (an
// in-memory service), with the lesson's revenue data; its options; replay
// and inspect of a recording made by produce --save; ParseEndpoint.
#include "cli/gradctl.h"

#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/replay/replay.h"
#include "gradctl_test_support.h"
#include "protocol/endpoint.h"
#include "temp_dir.h"

namespace gradientd::cli {
namespace {

// The lines that depend on the clock, elapsed and throughput, as "...".
std::string WithoutTimings(const std::string& text) {
  static const std::regex timing(R"(^(elapsed|throughput):( +).*$)", std::regex::multiline);
  return std::regex_replace(text, timing, "$1:$2...");
}

// A fixed event time, so that the replies' coverage does not depend on the clock.
const std::vector<std::string> kProduceRevenue = {
    "--series",           "revenue", "produce",       "--x-column", "month",
    "--y-column",         "revenue", "--producer-id", "test-1",     "--event-time",
    "1700000000000000000"};

// The revenue series' fit after one produce of the 12 points (one batch,
// one descent step at the auto learning rate: since issue 13 the
// standardized step, which lands on the least-squares line).
constexpr const char* kRevenueFit =
    "series:             revenue\n"
    "n:                  12\n"
    "descent m:          10.3881118881\n"
    "descent b:          50.2272727273\n"
    "descent loss:       49.3924825175\n"
    "descent steps:      1\n"
    "learning rate:      0.5 (auto)\n"
    "steps per batch:    1\n"
    "least-squares m:    10.3881118881\n"
    "least-squares b:    50.2272727273\n"
    "least-squares loss: 49.3924825175\n"
    "R²:                 0.963011698506\n"
    "mean x:             6.5\n"
    "mean y:             117.75\n"
    "view:               all: 12 points, 2023-11-14T22:13:20.000Z to 2023-11-14T22:13:20.000Z\n"
    "descent mode:       auto (the next step: standardized)\n"
    "descent view:       all\n"
    "window:             none\n"
    "half-life:          none\n";
// What fit adds after it: every view.
constexpr const char* kRevenueViews =
    "\nview all\n"
    "  covers:             12 points, 2023-11-14T22:13:20.000Z to 2023-11-14T22:13:20.000Z\n"
    "  descent loss:       49.3924825175\n"
    "  least-squares m:    10.3881118881\n"
    "  least-squares b:    50.2272727273\n"
    "  least-squares loss: 49.3924825175\n"
    "  R²:                 0.963011698506\n"
    "  mean x:             6.5\n"
    "  mean y:             117.75\n";

// The same fit as JSON.
constexpr const char* kRevenueFitJson =
    R"({"series":"revenue","n":"12",)"
    R"("descent":{"m":10.388111888111888,"b":50.22727272727272,"loss_error":"","loss":49.)"
    R"(392482517482449},"least_squares":{"m":10.388111888111888,"b":50.227272727272727,"l)"
    R"(oss_error":"","loss":49.392482517482449},"steps":"1","learning_rate":0.5,"learning)"
    R"(_rate_auto":true,"steps_per_batch":1,"mean_x":6.5,"mean_y":117.75,"coverage":{"vie)"
    R"(w":"VIEW_ALL","n":"12","weight":12,"effective_n":12,"start_unix_nanos":"1700000000)"
    R"(000000000","end_unix_nanos":"1700000000000000001"},"views":[{"coverage":{"view":"V)"
    R"(IEW_ALL","n":"12","weight":12,"effective_n":12,"start_unix_nanos":"170000000000000)"
    R"(0000","end_unix_nanos":"1700000000000000001"},"descent":{"m":10.388111888111888,"b)"
    R"(":50.22727272727272,"loss_error":"","loss":49.392482517482449},"least_squares":{"m)"
    R"(":10.388111888111888,"b":50.227272727272727,"loss_error":"","loss":49.392482517482)"
    R"(449},"mean_x":6.5,"mean_y":117.75,"r_squared":0.9630116985063395}],"descent_mode":)"
    R"("DESCENT_MODE_UNSPECIFIED","effective_descent_mode":"DESCENT_MODE_STANDARDIZED","d)"
    R"(escent_view":"VIEW_ALL","window_nanos":"0","window_buckets":0,"half_life_nanos":"0)"
    R"(","r_squared":0.9630116985063395})";

class GradctlTest : public ::testing::Test {
 protected:
  Result Run(const std::vector<std::string>& args, const std::string& input = "") {
    return Gradctl(args, server_.address(), input);
  }
  Result ProduceRevenue() { return Run(kProduceRevenue, RevenueCsv()); }
  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  TestServer server_;
  const gradientd::testing::TestDirectory temp_{"gradctl_test"};
  const std::filesystem::path dir_ = temp_.path();
};

TEST_F(GradctlTest, ProduceFromStdinPrintsTheSummaryWithTheFit) {
  const Result r = ProduceRevenue();
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(WithoutTimings(r.out),
            "source:             <stdin>\n"
            "producer id:        test-1\n"
            "sequences:          1\n"
            "points sent:        12\n"
            "batches:            1\n"
            "duplicates:         0 batches (0 points) applied before\n"
            "reconnects:         0\n"
            "series total:       12\n"
            "elapsed:            ...\n"
            "throughput:         ...\n" +
                std::string(kRevenueFit));
}

TEST_F(GradctlTest, GradientFitAndStepOfTheRevenueSeries) {
  ASSERT_EQ(ProduceRevenue().code, 0);
  Result r = Run({"--series", "revenue", "gradient", "--m", "0", "--b", "0"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "series: revenue\nn:      12\nm:      0\nb:      0\ndL/db:  -235.5\ndL/dm:  "
            "-1778.33333333\nloss:   15200.4166667\n");
  r = Run({"gradient", "--series", "revenue", "--m", "0", "--b", "0", "--json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(
      r.out,
      "{\"id\":\"1\",\"gradient\":{\"series\":\"revenue\",\"n\":\"12\",\"m\":0,\"b\":0,\"intercept_"
      "gradient\":-235.5,\"slope_gradient\":-1778.3333333333333,\"loss\":15200.416666666666,"
      "\"coverage\":{\"view\":\"VIEW_ALL\",\"n\":\"12\",\"weight\":12,\"effective_n\":12,\"start_"
      "unix_nanos\":\"1700000000000000000\",\"end_unix_nanos\":\"1700000000000000001\"}}}\n");
  r = Run({"--series", "revenue", "fit"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string(kRevenueFit) + kRevenueViews);
  r = Run({"--series", "revenue", "fit", "--json"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("{\"id\":\"1\",\"fit\":") + kRevenueFitJson + "}\n");
  r = Run({"--series", "revenue", "step", "--iterations", "1"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "series:               revenue\niterations:           1\nconverged:            "
            "no\nlearning rate:        0.5\nn:                    12\nm:                    "
            "10.3881118881\nb:                    50.2272727273\ndL/db:                "
            "1.42108547152e-14\ndL/dm:                1.20792265079e-13\nloss:                 "
            "49.3924825175\nview:                 all: 12 points, 2023-11-14T22:13:20.000Z to "
            "2023-11-14T22:13:20.000Z\nmode:                 standardized\ncondition number:     "
            "1\nrelative excess loss: 1.7834590055e-30\nestimated steps:      0\n");
  EXPECT_EQ(r.err, "");
}

TEST_F(GradctlTest, ConfigureAndResetKeepTheConfiguration) {
  ASSERT_EQ(ProduceRevenue().code, 0);
  Result r = Run(
      {"--series", "revenue", "configure", "--learning-rate", "0.01", "--steps-per-batch", "0"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\nlearning rate:      0.01\n"), std::string::npos) << r.out;
  r = Run({"--series", "revenue", "reset"});
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("\nn:               0\n"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("\nlearning rate:   0.01\n"), std::string::npos) << r.out;
}

TEST_F(GradctlTest, ListReadableAndJson) {
  ASSERT_EQ(ProduceRevenue().code, 0);
  Result r = Run({"list"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out,
            "SERIES    N      DESCENT M      DESCENT B  LEAST-SQUARES M  LEAST-SQUARES B           "
            "   R\xC2\xB2\nrevenue  12  10.3881118881  50.2272727273    10.3881118881    "
            "50.2272727273  0.963011698506\n");
  r = Run({"list", "--json", "--page-size", "1"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, std::string("{\"id\":\"0\",\"series_list\":{\"series\":[") + kRevenueFitJson +
                       "],\"next_page_token\":\"\"}}\n");
  r = Run({"list", "--prefix", "nothing-"});
  EXPECT_EQ(r.code, 0);
  EXPECT_EQ(r.out, "no series\n");
}

TEST_F(GradctlTest, ServerErrorsExitOne) {
  Result r = Run({"--series", "no-such-series", "fit"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "gradctl: NOT_FOUND: no series named 'no-such-series'\n");
  r = Run({"--series", "no-such-series", "fit", "--json"});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out,
            "{\"id\":\"1\",\"error\":{\"code\":\"NOT_FOUND\",\"message\":\"no series named "
            "'no-such-series'\"}}\n");
}

TEST_F(GradctlTest, UsageErrorsExitTwoWithTheMessage) {
  Result r = Run({"frobnicate"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "gradctl: unknown command 'frobnicate'\nTry 'gradctl --help'.\n");
  r = Run({"fit", "--bogus"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "gradctl fit: unrecognised option '--bogus'\nTry 'gradctl fit --help'.\n");
  r = Run({"produce", "--retry-for", "5 parsecs"}, RevenueCsv());
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "gradctl produce: --retry-for: bad duration '5 parsecs': unknown unit ' parsecs' (use "
            "ns, us, ms, s, m or h)\nTry 'gradctl produce --help'.\n");
  r = Run({"list", "--page-size", "0"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "gradctl list: --page-size must be between 1 and 4096\nTry 'gradctl list --help'.\n");
  r = Run({"fit", "extra"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "gradctl fit: unexpected operand (fit takes none)\nTry 'gradctl fit --help'.\n");
  r = Run({});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err.rfind("gradctl: no command given\n\nUsage: gradctl ", 0), 0u) << r.err;
  r = Run({"--server", "host:99999", "fit"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err,
            "gradctl: --server host:99999: bad port '99999' in 'host:99999': expected 0..65535\n");
}

TEST_F(GradctlTest, ProduceStopsAtABadCsvLine) {
  const Result r = Run({"produce", "--producer-id", "bad-1"}, "1,2\n2,4\noops,6\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(
      r.err,
      "gradctl: <stdin>:3: column 0 (x) is not a number: \"oops\"\ngradctl: stopped at that line: "
      "2 points in 1 batch were sent and acknowledged before it (series 'default' has 2 points)\n");
}

TEST(GradctlNoServerTest, AServerThatIsNotThereExitsOne) {
  // A port that was free a moment ago.
  boost::asio::io_context io;
  boost::asio::ip::tcp::acceptor acceptor(
      io, boost::asio::ip::tcp::endpoint(boost::asio::ip::make_address("127.0.0.1"), 0));
  const std::string address = "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
  acceptor.close();
  Result r = Gradctl({"fit"}, address);
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err.rfind("gradctl: ", 0), 0u) << r.err;
  EXPECT_NE(r.err.find(address), std::string::npos) << r.err;
  r = Gradctl({"produce", "--retry-for", "0"}, address, "1,2\n");
  EXPECT_EQ(r.code, 1);
  EXPECT_NE(r.err.find(address), std::string::npos) << r.err;
}

// ---------------------------------------------------------------------------
// produce --save, replay, inspect.

TEST_F(GradctlTest, ReplayOfASavedProduceReproducesTheFit) {
  const std::string recording = Path("revenue.rec");
  std::vector<std::string> args = kProduceRevenue;
  args.insert(args.end(), {"--save", recording, "--batch", "5"});
  Result r = Run(args, RevenueCsv());
  ASSERT_EQ(r.code, 0) << r.err;
  const Result original = Run({"--series", "revenue", "fit", "--json"});
  ASSERT_EQ(original.code, 0);

  TestServer fresh;
  r = Gradctl({"replay", recording, "--max", "--progress", "none", "--producer-id", "replay-1"},
              fresh.address());
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(WithoutTimings(r.out), "files:       " + recording +
                                       " (recording)\n"
                                       "producer id: replay-1\n"
                                       "sequences:   1..3\n"
                                       "points sent: 12\n"
                                       "batches:     3\n"
                                       "duplicates:  0 batches (0 points) applied before\n"
                                       "reconnects:  0\n"
                                       "timing:      as fast as possible (--max)\n"
                                       "event times: as recorded\n"
                                       "elapsed:     ...\n"
                                       "throughput:  ...\n"
                                       "\n"
                                       "SERIES   POINTS SENT  SERIES TOTAL\n"
                                       "revenue           12            12\n");
  const Result replayed = Gradctl({"--series", "revenue", "fit", "--json"}, fresh.address());
  EXPECT_EQ(replayed.out, original.out);
}

// RunReplay itself, with a config as gradctl's flags would make it: the
// recording's batches at their recorded pace (sped up), into a fresh server.
TEST_F(GradctlTest, RunReplayKeepsTheRecordedBatchesAndTiming) {
  const std::string recording = Path("revenue.rec");
  std::vector<std::string> args = kProduceRevenue;
  args.insert(args.end(), {"--save", recording, "--batch", "4"});
  ASSERT_EQ(Run(args, RevenueCsv()).code, 0);
  const Result original = Run({"--series", "revenue", "fit"});

  TestServer fresh;
  ReplayConfig config;
  config.server = fresh.address();
  config.series = "default";
  config.files = {recording};
  config.speed = 1000;
  config.progress = ProgressMode::kNone;
  config.exactly_once.producer_id = "run-replay";
  std::ostringstream out;
  std::ostringstream err;
  EXPECT_EQ(RunReplay(config, out, err), 0) << err.str();
  EXPECT_EQ(err.str(), "");
  EXPECT_NE(out.str().find("\nsequences:   1..3\n"), std::string::npos) << out.str();
  EXPECT_NE(out.str().find("\ntiming:      recorded, x1000\n"), std::string::npos) << out.str();
  EXPECT_EQ(Gradctl({"--series", "revenue", "fit"}, fresh.address()).out, original.out);
  // Again with the same producer id: every batch is a duplicate.
  out.str("");
  err.str("");
  EXPECT_EQ(RunReplay(config, out, err), 0);
  EXPECT_NE(err.str().find("3 batches (12 points) were acknowledged as duplicates"),
            std::string::npos)
      << err.str();
  EXPECT_EQ(Gradctl({"--series", "revenue", "fit"}, fresh.address()).out, original.out);
}

TEST_F(GradctlTest, ReplayJsonSummaryAndCsvFiles) {
  const std::string csv = Path("revenue.csv");
  std::ofstream(csv) << RevenueCsv();
  const Result r =
      Run({"--series", "csv", "--json", "replay", csv, "--progress", "none", "--producer-id",
           "replay-2", "--x-column", "month", "--y-column", "revenue"});
  EXPECT_EQ(r.code, 0) << r.err;
  // The summary is a JSON object whose key order is not fixed: compare it as
  // a Struct, the timings aside.
  google::protobuf::Struct summary;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(r.out, &summary).ok()) << r.out;
  auto& fields = *summary.mutable_fields()->at("summary").mutable_struct_value()->mutable_fields();
  EXPECT_GE(fields.at("elapsed_seconds").number_value(), 0);
  EXPECT_GE(fields.at("points_per_second").number_value(), 0);
  fields.erase("elapsed_seconds");
  fields.erase("points_per_second");
  google::protobuf::Struct expected;
  ASSERT_TRUE(google::protobuf::util::JsonStringToMessage(
                  R"({"summary":{"reconnects":0,"first_sequence":1,"truncated":[],)"
                  R"("points_sent":12,"producer_id":"replay-2","files":[{"file":")" +
                      csv +
                      R"(","kind":"csv"}],"series":[{"series_total":12,"points_sent":12,)"
                      R"("name":"csv"}],"duplicate_points":0,"batches":1,)"
                      R"("duplicate_batches":0,"below_window_batches":0,"batches_resent":0,)"
                  R"("last_sequence":1}})",
                  &expected)
                  .ok());
  EXPECT_TRUE(google::protobuf::util::MessageDifferencer::Equals(summary, expected))
      << summary.DebugString();
  EXPECT_EQ(r.out.back(), '\n');
  EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), 1);
}

TEST_F(GradctlTest, InspectSummarisesTheRecording) {
  const std::string recording = Path("revenue.rec");
  std::vector<std::string> args = kProduceRevenue;
  args.insert(args.end(), {"--save", recording, "--batch", "5"});
  ASSERT_EQ(Run(args, RevenueCsv()).code, 0);
  Result r = Run({"inspect", recording});
  EXPECT_EQ(r.code, 0) << r.err;
  static const std::regex times(R"(^(first batch|last batch|duration):( +).*$)",
                                std::regex::multiline);
  EXPECT_EQ(std::regex_replace(r.out, times, "$1:$2..."), "file:        " + recording +
                                                              "\n"
                                                              "size:        332 bytes\n"
                                                              "batches:     3\n"
                                                              "points:      12\n"
                                                              "series:      1\n"
                                                              "first batch: ...\n"
                                                              "last batch:  ...\n"
                                                              "duration:    ...\n"
                                                              "event times: 3 batches of 3, "
                                                              "2023-11-14T22:13:20.000Z to "
                                                              "2023-11-14T22:13:20.000Z\n"
                                                              "producers:   1\n"
                                                              "truncated:   no\n"
                                                              "\n"
                                                              "SERIES   POINTS  BATCHES\n"
                                                              "revenue      12        3\n"
                                                              "\n"
                                                              "PRODUCER  BATCHES  SEQUENCES\n"
                                                              "test-1          3  1..3\n");
  EXPECT_EQ(r.err, "");
  r = Run({"inspect", Path("missing.rec")});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.err, "gradctl: cannot open " + Path("missing.rec") + ": No such file or directory\n");
  r = Run({"inspect"});
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(r.err, "gradctl inspect: no FILE given\nTry 'gradctl inspect --help'.\n");
}

// ---------------------------------------------------------------------------
// Options.

TEST(GradctlOptionsTest, GlobalOptionsAreAcceptedAnywhereOnTheLine) {
  TestServer server;
  ASSERT_EQ(Gradctl({"configure", "--series", "s", "--m", "1"}, server.address()).code, 0);
  const std::string expected = Gradctl({"--series", "s", "fit"}, server.address()).out;
  EXPECT_NE(expected.find("series:"), std::string::npos);
  EXPECT_EQ(Gradctl({"fit", "--series", "s"}, server.address()).out, expected);
  EXPECT_EQ(Gradctl({"fit", "--series=s"}, server.address()).out, expected);
  // --server overrides the default (the environment's, in the binary).
  EXPECT_EQ(Gradctl({"fit", "--series", "s", "--server", server.address()}, "127.0.0.1:1").out,
            expected);
  EXPECT_EQ(Gradctl({"--server", server.address(), "--series", "s", "fit"}, "bad:port:x").out,
            expected);
}

TEST(GradctlOptionsTest, DefaultsComeFromTheExplicitDefaultArguments) {
  Result r = Gradctl({"--help"}, "example.org:1234", "", "secret-token");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("example.org:1234"), std::string::npos) << r.out;
  // The token is never shown, only where it came from.
  EXPECT_NE(r.out.find("$GRADIENTD_TOKEN"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("secret-token"), std::string::npos) << r.out;
  r = Gradctl({"--help"}, "127.0.0.1:7878");
  EXPECT_EQ(r.out.find("$GRADIENTD_TOKEN\""), std::string::npos) << r.out;
}

TEST(GradctlOptionsTest, HelpOfEveryCommandExitsZero) {
  for (const char* command : {"produce", "gradient", "fit", "step", "configure", "reset", "list",
                              "watch", "bench", "replay", "inspect"}) {
    SCOPED_TRACE(command);
    Result r = Gradctl({command, "--help"}, "127.0.0.1:1");
    EXPECT_EQ(r.code, 0);
    EXPECT_EQ(r.out.rfind("Usage: gradctl [GLOBAL OPTIONS] " + std::string(command), 0), 0u)
        << r.out;
    EXPECT_EQ(r.err, "");
    EXPECT_EQ(Gradctl({"help", command}, "127.0.0.1:1").out, r.out);
    EXPECT_EQ(Gradctl({"-h", command}, "127.0.0.1:1").out, r.out);
  }
  const Result usage = Gradctl({"--help"}, "127.0.0.1:1");
  EXPECT_EQ(usage.code, 0);
  EXPECT_EQ(Gradctl({"help"}, "127.0.0.1:1").out, usage.out);
}

// ---------------------------------------------------------------------------
// ParseEndpoint.

TEST(ParseEndpointTest, HostAndPort) {
  protocol::Endpoint e;
  ASSERT_TRUE(protocol::ParseEndpoint("example.org:1234", &e).ok());
  EXPECT_EQ(e.host, "example.org");
  EXPECT_EQ(e.port, 1234);
  ASSERT_TRUE(protocol::ParseEndpoint("127.0.0.1:0", &e).ok());
  EXPECT_EQ(e.host, "127.0.0.1");
  EXPECT_EQ(e.port, 0);
  ASSERT_TRUE(protocol::ParseEndpoint("h:65535", &e).ok());
  EXPECT_EQ(e.port, 65535);
}

TEST(ParseEndpointTest, HostAloneGetsTheDefaultPort) {
  protocol::Endpoint e;
  ASSERT_TRUE(protocol::ParseEndpoint("localhost", &e).ok());
  EXPECT_EQ(e.host, "localhost");
  EXPECT_EQ(e.port, protocol::kDefaultPort);
  ASSERT_TRUE(protocol::ParseEndpoint("[::1]", &e).ok());
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, protocol::kDefaultPort);
}

TEST(ParseEndpointTest, Ipv6InBrackets) {
  protocol::Endpoint e;
  ASSERT_TRUE(protocol::ParseEndpoint("[::1]:7000", &e).ok());
  EXPECT_EQ(e.host, "::1");
  EXPECT_EQ(e.port, 7000);
  EXPECT_EQ(protocol::FormatEndpoint(e.host, e.port), "[::1]:7000");
  EXPECT_EQ(protocol::FormatEndpoint("h", 1), "h:1");
}

TEST(ParseEndpointTest, BadPortsAndAddressesSayWhatIsWrong) {
  protocol::Endpoint e;
  const auto message = [&](std::string_view text) {
    const Status s = protocol::ParseEndpoint(text, &e);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << text;
    return s.message();
  };
  EXPECT_EQ(message("h:65536"), "bad port '65536' in 'h:65536': expected 0..65535");
  EXPECT_EQ(message("h:-1"), "bad port '-1' in 'h:-1': expected 0..65535");
  EXPECT_EQ(message("h:port"), "bad port 'port' in 'h:port': expected 0..65535");
  EXPECT_EQ(message("h:"), "bad port '' in 'h:': expected 0..65535");
  EXPECT_EQ(message("h:12x"), "bad port '12x' in 'h:12x': expected 0..65535");
  EXPECT_EQ(message(""), "bad address '': no host");
  EXPECT_EQ(message(":7878"), "bad address ':7878': no host");
  EXPECT_EQ(message("::1:7878"), "bad address '::1:7878': write IPv6 addresses as [ADDR]:PORT");
  EXPECT_EQ(message("[::1"), "bad address '[::1': missing ']'");
  EXPECT_EQ(message("[::1]7878"), "bad address '[::1]7878': expected ':' after ']'");
}

}  // namespace
}  // namespace gradientd::cli
