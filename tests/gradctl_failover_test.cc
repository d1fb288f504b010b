// gradctl --server A,B,...: failing over along the list. Queries and
// produce past a dead first address and past one that answers UNAVAILABLE;
// an exactly-once produce whose node stops mid-stream, finished on another
// node with every batch delivered; every address dead; a step that may have
// reached a server is not resent. In-process, against real nodes on
// loopback port 0 and scripted fakes; no timing assertion beyond generous
// bounds, every loop bounded.
#include <google/protobuf/struct.pb.h>
#include <google/protobuf/util/json_util.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cli/produce/producer.h"
#include "client/server_list.h"
#include "fake_server_support.h"
#include "gradctl_test_support.h"
#include "protocol/frame_codec.h"

namespace gradientd::cli {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using Clock = std::chrono::steady_clock;

// A loopback address where nothing listens (a port that was free a moment ago).
std::string DeadAddress() {
  asio::io_context io;
  tcp::acceptor acceptor(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
  return "127.0.0.1:" + std::to_string(acceptor.local_endpoint().port());
}

// A fake node that accepts connections and either answers every request
// with Error UNAVAILABLE, or closes each connection once a request has
// arrived, without a reply (the request may have been applied).
class FakeNode {
 public:
  enum class Mode { kUnavailable, kCloseAfterRequest };

  explicit FakeNode(Mode mode)
      : mode_(mode), acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    thread_ = std::thread([this] { Serve(); });
  }
  ~FakeNode() {
    stop_ = true;
    {  // wake the accept
      asio::io_context io;
      tcp::socket wake(io);
      boost::system::error_code ec;
      wake.connect(acceptor_.local_endpoint(), ec);
    }
    thread_.join();
  }

  const std::string& address() const { return address_; }
  int requests() const { return requests_; }

 private:
  void Serve() {
    while (!stop_) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec || stop_) return;
      ServeConnection(socket);
    }
  }

  void ServeConnection(tcp::socket& socket) {
    protocol::FrameReader reader(1 << 26);
    // Bounded: a connection ends when the client closes it.
    while (!stop_) {
      v1::Request request;
      if (!testing::ReadRequest(socket, reader, &request)) return;
      ++requests_;
      boost::system::error_code ec;
      if (mode_ == Mode::kCloseAfterRequest) {
        socket.close(ec);
        return;
      }
      v1::Response response;
      response.set_id(request.id());
      response.mutable_error()->set_code(v1::Error::UNAVAILABLE);
      response.mutable_error()->set_message("no leader for the series yet");
      std::string out;
      protocol::AppendFrame(response, &out);
      asio::write(socket, asio::buffer(out), ec);
      if (ec) return;
    }
  }

  const Mode mode_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::string address_;
  std::atomic<bool> stop_{false};
  std::atomic<int> requests_{0};
  std::thread thread_;
};

// The points a stopped (or idle) node holds, over every series.
uint64_t PointsOn(TestServer& node) {
  uint64_t series = 0;
  uint64_t points = 0;
  node.node().service().Totals(&series, &points);
  return points;
}

// "x,y" lines: n points on y = 2x + 1.
std::string Line(int n) {
  std::string csv;
  for (int i = 0; i < n; ++i) csv += std::to_string(i) + "," + std::to_string(2 * i + 1) + "\n";
  return csv;
}

// The "summary" object of produce --json (its last line).
google::protobuf::Struct JsonSummary(const std::string& out) {
  google::protobuf::Struct root;
  const std::size_t at = out.find("{\"summary\"");
  EXPECT_NE(at, std::string::npos) << out;
  if (at == std::string::npos) return root;
  EXPECT_TRUE(google::protobuf::util::JsonStringToMessage(out.substr(at), &root).ok()) << out;
  return root.fields().contains("summary") ? root.fields().at("summary").struct_value() : root;
}

double SummaryNumber(const google::protobuf::Struct& summary, const std::string& field) {
  const auto it = summary.fields().find(field);
  return it == summary.fields().end() ? -1 : it->second.number_value();
}

// ---------------------------------------------------------------------------
// A dead first address.

TEST(GradctlFailoverTest, AQueryPastADeadFirstAddressIsAnsweredByTheNext) {
  TestServer live;
  ASSERT_EQ(
      Gradctl({"--series", "s", "produce", "--producer-id", "q-1"}, live.address(), Line(5)).code,
      0);
  const Result direct = Gradctl({"--series", "s", "fit"}, live.address());
  ASSERT_EQ(direct.code, 0) << direct.err;
  const std::string dead = DeadAddress();
  const Result r = Gradctl({"--server", dead + "," + live.address(), "--series", "s", "fit"}, "");
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_EQ(r.out, direct.out);
  EXPECT_NE(r.err.find("gradctl: " + dead + " failed (cannot connect to " + dead),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("trying " + live.address()), std::string::npos) << r.err;
  // list and gradient too; a step past a connect failure is safe to send on.
  EXPECT_EQ(Gradctl({"--server", dead + "," + live.address(), "list"}, "").code, 0);
  EXPECT_EQ(
      Gradctl({"--server", dead + "," + live.address(), "--series", "s", "gradient"}, "").code, 0);
  const Result step =
      Gradctl({"--server", dead + "," + live.address(), "--series", "s", "step"}, "");
  EXPECT_EQ(step.code, 0) << step.err;
  EXPECT_NE(step.out.find("iterations:"), std::string::npos) << step.out;
}

TEST(GradctlFailoverTest, ProducePastADeadFirstAddressDeliversEverything) {
  TestServer live;
  const std::string dead = DeadAddress();
  const Result r = Gradctl({"--server", dead + "," + live.address(), "--series", "p", "produce",
                            "--batch", "3", "--producer-id", "p-1"},
                           "", Line(10));
  EXPECT_EQ(r.code, 0) << r.err;
  EXPECT_NE(r.out.find("points sent:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("failovers:"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("connected to " + live.address()), std::string::npos) << r.err;
  const Result fit = Gradctl({"--series", "p", "fit"}, live.address());
  EXPECT_NE(fit.out.find("n:                  10\n"), std::string::npos) << fit.out;
}

// ---------------------------------------------------------------------------
// A node that answers UNAVAILABLE (a cluster without a leader for the series).

TEST(GradctlFailoverTest, AnUnavailableReplyMovesQueriesAndBatchesToTheNextAddress) {
  TestServer live;
  FakeNode unavailable(FakeNode::Mode::kUnavailable);
  const std::string list = unavailable.address() + "," + live.address();
  const Result produce = Gradctl(
      {"--server", list, "--series", "u", "produce", "--batch", "4", "--producer-id", "u-1"}, "",
      Line(20));
  EXPECT_EQ(produce.code, 0) << produce.err;
  EXPECT_NE(produce.err.find(unavailable.address() + " failed (" + unavailable.address() +
                             " answered UNAVAILABLE: no leader for the series yet): resending"),
            std::string::npos)
      << produce.err;
  EXPECT_NE(produce.err.find("to " + live.address()), std::string::npos) << produce.err;
  const Result fit = Gradctl({"--server", list, "--series", "u", "fit"}, "");
  EXPECT_EQ(fit.code, 0) << fit.err;
  EXPECT_NE(fit.out.find("n:                  20\n"), std::string::npos) << fit.out;
  EXPECT_GE(unavailable.requests(), 2);

  // Alone, the UNAVAILABLE node's reply is printed as any Error (exit 1).
  const Result alone = Gradctl({"--series", "u", "fit"}, unavailable.address());
  EXPECT_EQ(alone.code, 1);
  EXPECT_NE(alone.err.find("UNAVAILABLE: no leader for the series yet"), std::string::npos)
      << alone.err;
}

// ---------------------------------------------------------------------------
// A node stopped mid-stream.

// The Producer against node A, stopped from another thread after a third
// of the batches were acknowledged, finishes on node B. The nodes share no
// state: every sequence is acknowledged once, by A or by B, and the points
// on A and on B add up to the input's, plus at most the batches A applied
// without its acknowledgement reaching us (B applied them again): at most
// the window.
TEST(GradctlFailoverTest, AnExactlyOnceProducerWhoseNodeStopsFinishesOnTheNext) {
  TestServer a;
  TestServer b;
  const std::string a_address = a.address();  // not once a is stopped
  constexpr uint64_t kBatches = 300;
  constexpr std::size_t kPoints = 10;
  ProducerOptions options;
  options.servers = {a_address, b.address()};
  options.producer_id = "failover-1";
  options.window = 8;
  options.retry_for = std::chrono::seconds(60);
  options.initial_backoff = std::chrono::milliseconds(5);
  options.max_backoff = std::chrono::milliseconds(200);
  std::ostringstream log;
  Producer producer(options, log);

  std::map<uint64_t, int> acks;  // sequence -> acknowledgements
  std::map<std::string, uint64_t> acked_by;
  // A stops while the producer is held in its third's acknowledgement, so
  // the stream cannot finish first (300 batches take a few milliseconds).
  producer.set_on_ack([&](const v1::IngestAck&, uint64_t sequence, std::size_t) {
    ++acks[sequence];
    ++acked_by[producer.server()];
    if (acks.size() == kBatches / 3) a.Stop();
  });

  ASSERT_TRUE(producer.Start().ok());
  const std::vector<double> x(kPoints, 1.0);
  Status s;
  for (uint64_t i = 0; i < kBatches && s.ok(); ++i) s = producer.Send("s", x, x);
  if (s.ok()) s = producer.Finish();
  ASSERT_TRUE(s.ok()) << s.message() << "\n" << log.str();

  ASSERT_EQ(acks.size(), kBatches);
  for (uint64_t q = 1; q <= kBatches; ++q) EXPECT_EQ(acks[q], 1) << "sequence " << q;
  EXPECT_GE(acked_by[a_address], kBatches / 3);
  EXPECT_GT(acked_by[b.address()], 0u) << log.str();
  EXPECT_EQ(acked_by[a_address] + acked_by[b.address()], kBatches);
  EXPECT_EQ(producer.counters().failovers, 1u) << log.str();
  EXPECT_NE(log.str().find(a_address + " failed ("), std::string::npos) << log.str();
  EXPECT_NE(log.str().find(" to " + b.address()), std::string::npos) << log.str();

  const uint64_t total = kBatches * kPoints;
  const uint64_t sum = PointsOn(a) + PointsOn(b);
  EXPECT_GE(sum, total);
  EXPECT_LE(sum, total + options.window * kPoints);
  // B applied what A did not acknowledge, A that and what it did not get
  // to acknowledge.
  EXPECT_EQ(PointsOn(b), acked_by[b.address()] * kPoints);
  EXPECT_EQ(PointsOn(a), acked_by[a_address] * kPoints + (sum - total));
}

// The same through gradctl produce: node A stopped (from another thread)
// once it holds a fifth of the points; the summary counts each batch once.
TEST(GradctlFailoverTest, ProduceWhoseNodeStopsMidStreamDeliversEveryBatch) {
  TestServer a;
  TestServer b;
  const std::string a_address = a.address();  // not once a is stopped
  constexpr int kCount = 100000;
  constexpr int kBatch = 100;
  constexpr int kWindow = 16;
  std::atomic<bool> done{false};
  std::thread stopper([&] {
    std::unique_ptr<client::Client> c;
    if (client::Client::Connect(a_address, &c).ok()) {
      v1::Request fit;
      fit.mutable_fit()->set_series("m");
      for (int i = 0; i < 60000 && !done; ++i) {  // at most about a minute
        v1::Response response;
        if (!c->Call(fit, &response).ok()) break;
        if (response.has_fit() && response.fit().n() >= kCount / 5) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
      }
    }
    a.Stop();
  });
  const Result r =
      Gradctl({"--server", a_address + "," + b.address(), "--series", "m", "produce", "--synthetic",
               "--count", std::to_string(kCount), "--batch", std::to_string(kBatch), "--window",
               std::to_string(kWindow), "--producer-id", "m-1", "--json"},
              "");
  done = true;
  stopper.join();
  ASSERT_EQ(r.code, 0) << r.err;
  const google::protobuf::Struct summary = JsonSummary(r.out);
  EXPECT_EQ(SummaryNumber(summary, "points_sent"), kCount) << r.out;
  EXPECT_EQ(SummaryNumber(summary, "batches"), kCount / kBatch) << r.out;
  const uint64_t sum = PointsOn(a) + PointsOn(b);
  EXPECT_GE(sum, uint64_t{kCount});
  EXPECT_LE(sum, uint64_t{kCount} + uint64_t{kWindow} * kBatch);
  if (PointsOn(a) < uint64_t{kCount}) {  // A stopped before the end: a failover
    EXPECT_NE(r.err.find(a_address + " failed ("), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("unacknowledged batch"), std::string::npos) << r.err;
    EXPECT_EQ(SummaryNumber(summary, "failovers"), 1) << r.out;
  }
}

// ---------------------------------------------------------------------------
// Every address dead.

TEST(GradctlFailoverTest, EveryAddressDeadIsAClearFailureWithinTheTimeout) {
  const std::string one = DeadAddress();
  const std::string two = DeadAddress();
  const std::string list = one + "," + two;
  const auto start = Clock::now();
  const Result fit = Gradctl({"--server", list, "fit"}, "");
  EXPECT_EQ(fit.code, 1);
  EXPECT_NE(fit.err.find("no server of " + one + ", " + two + " answered (4 attempts)"),
            std::string::npos)
      << fit.err;
  EXPECT_NE(fit.err.find("cannot connect to " + one), std::string::npos) << fit.err;
  EXPECT_NE(fit.err.find("cannot connect to " + two), std::string::npos) << fit.err;
  const Result produce =
      Gradctl({"--server", list, "--failover-timeout", "1s", "produce"}, "", Line(3));
  EXPECT_EQ(produce.code, 1);
  EXPECT_NE(produce.err.find("gave up after "), std::string::npos) << produce.err;
  EXPECT_NE(produce.err.find("cannot connect to " + one), std::string::npos) << produce.err;
  EXPECT_NE(produce.err.find("cannot connect to " + two), std::string::npos) << produce.err;
  EXPECT_LT(Clock::now() - start, std::chrono::seconds(60));  // generous: about 1.5 s

  // A bad list is a usage error.
  const Result bad = Gradctl({"--server", one + ",", "fit"}, "");
  EXPECT_EQ(bad.code, 2);
  EXPECT_NE(bad.err.find("an empty address in the list"), std::string::npos) << bad.err;
  EXPECT_EQ(Gradctl({"--server", list, "bench"}, "").code, 2);
  EXPECT_EQ(Gradctl({"--failover-timeout", "soon", "fit"}, one).code, 2);
}

// ---------------------------------------------------------------------------
// Requests that are not idempotent.

TEST(GradctlFailoverTest, AStepThatMayHaveReachedAServerIsNotResent) {
  TestServer live;
  ASSERT_EQ(
      Gradctl({"--series", "s", "produce", "--producer-id", "s-1"}, live.address(), Line(5)).code,
      0);
  FakeNode closing(FakeNode::Mode::kCloseAfterRequest);
  const std::string list = closing.address() + "," + live.address();
  for (const std::vector<std::string>& command :
       {std::vector<std::string>{"step", "--iterations", "3"},
        std::vector<std::string>{"configure", "--m", "7"}, std::vector<std::string>{"reset"}}) {
    std::vector<std::string> args = {"--server", list, "--series", "s"};
    args.insert(args.end(), command.begin(), command.end());
    const Result r = Gradctl(args, "");
    EXPECT_EQ(r.code, 1) << command[0];
    EXPECT_NE(r.err.find("outcome is unknown"), std::string::npos) << r.err;
    EXPECT_NE(r.err.find("not resent to another server"), std::string::npos) << r.err;
  }
  EXPECT_EQ(closing.requests(), 3);
  // The live node saw none of them: one descent step (from produce), n 5.
  const Result fit = Gradctl({"--series", "s", "fit"}, live.address());
  EXPECT_NE(fit.out.find("n:                  5\n"), std::string::npos) << fit.out;
  EXPECT_NE(fit.out.find("descent steps:      1\n"), std::string::npos) << fit.out;
  // A query on the same list is resent, and answered.
  const Result query = Gradctl({"--server", list, "--series", "s", "fit"}, "");
  EXPECT_EQ(query.code, 0) << query.err;
}

TEST(ServerListTest, ParsesEveryAddressAndRefusesBadOnes) {
  std::vector<std::string> servers;
  ASSERT_TRUE(client::ParseServerList("127.0.0.1:1,[::1]:2,host", &servers).ok());
  EXPECT_EQ(servers, (std::vector<std::string>{"127.0.0.1:1", "[::1]:2", "host"}));
  EXPECT_FALSE(client::ParseServerList("a:1,,b:2", &servers).ok());
  EXPECT_TRUE(servers.empty());
  EXPECT_FALSE(client::ParseServerList("", &servers).ok());
  const Status s = client::ParseServerList("a:1,b:99999", &servers);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'b:99999'"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace gradientd::cli
