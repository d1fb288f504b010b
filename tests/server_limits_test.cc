// The server's bounds: connections, queued bytes, timeouts, slow clients,
// descriptors and the open-file limit.
#include <gtest/gtest.h>

#include "app/open_file_limit.h"
#include "http/listener.h"
#include "server_test_support.h"

namespace gradientd {
namespace {

class LimitedServerTest : public ServerTest {
 protected:
  void Configure(server::ServerOptions* options) override {
    options->max_connections = 3;
    options->max_queued_bytes = 64 * 1024;
    options->idle_timeout = std::chrono::milliseconds(300);
    options->request_timeout = std::chrono::milliseconds(300);
    options->write_timeout = std::chrono::milliseconds(300);
  }
};

TEST_F(LimitedServerTest, ConnectionsBeyondTheLimitGetAnErrorAndAreClosed) {
  auto a = Connect();
  auto b = Connect();
  auto c = Connect();
  ASSERT_TRUE(Fit(*a, "x").has_error());  // all three are being served
  ASSERT_TRUE(Fit(*c, "x").has_error());
  tcp::socket extra = RawConnect();
  v1::Response response;
  ASSERT_TRUE(ReadResponse(extra, &response));
  EXPECT_EQ(response.error().code(), v1::Error::RESOURCE_EXHAUSTED);
  EXPECT_NE(response.error().message().find("too many connections"), std::string::npos);
  EXPECT_TRUE(ClosedByServer(extra));
  EXPECT_TRUE(Fit(*b, "x").has_error());  // the others go on
}

TEST_F(LimitedServerTest, StalledPartialFrameAndIdleConnectionsAreClosed) {
  tcp::socket stalled = RawConnect();
  std::string frame;
  v1::Request r;
  r.mutable_fit()->set_series("s");
  protocol::AppendFrame(r, &frame);
  asio::write(stalled, asio::buffer(frame.data(), frame.size() - 1));
  tcp::socket idle = RawConnect();
  // Both are closed by the server (the reads return once it does).
  EXPECT_TRUE(ClosedByServer(stalled));
  EXPECT_TRUE(ClosedByServer(idle));
}

TEST_F(LimitedServerTest, ClientThatDoesNotReadStopsBeingReadAndOthersAreServed) {
  // A client pipelines requests and never reads a response.
  tcp::socket greedy = RawConnect();
  greedy.non_blocking(true);
  std::string frames;
  v1::Request list;
  list.mutable_list();
  for (int i = 0; i < 1000; ++i) protocol::AppendFrame(list, &frames);
  std::size_t sent = 0;
  for (int round = 0; round < 2000; ++round) {
    boost::system::error_code ec;
    const std::size_t n = greedy.write_some(asio::buffer(frames), ec);
    if (ec == asio::error::would_block) break;  // the server stopped reading
    ASSERT_FALSE(ec) << ec.message();
    sent += n;
  }
  // It filled the socket buffers and the server's bounded queue; it was
  // not read without bound (2000 rounds would be megabytes more).
  EXPECT_LT(sent, frames.size() * 2000);
  // Meanwhile a well-behaved producer is served, every point counted.
  auto c = Connect();
  for (int i = 0; i < 20; ++i) {
    v1::Request ingest;
    ingest.mutable_ingest()->set_series("good");
    ingest.mutable_ingest()->add_x(i);
    ingest.mutable_ingest()->add_y(i);
    ASSERT_TRUE(Call(*c, ingest).has_ack());
  }
  EXPECT_EQ(Fit(*c, "good").fit().n(), 20u);
}

TEST_F(LimitedServerTest, ClientThatNeverReadsIsClosedOnceAWriteTimesOut) {
  tcp::socket greedy = RawConnect();
  greedy.set_option(asio::socket_base::receive_buffer_size(4096));
  greedy.non_blocking(true);
  std::string frames;
  v1::Request list;
  list.mutable_list();
  for (int i = 0; i < 1000; ++i) protocol::AppendFrame(list, &frames);
  // It sends requests and never reads: the server's responses fill the
  // socket buffers, its write cannot finish, and after write_timeout it
  // gives up on the client and closes the connection, which this client
  // sees as a failing write. (The bound only keeps a broken server from
  // hanging the test.)
  boost::system::error_code ec;
  for (int attempt = 0; attempt < 20000; ++attempt) {
    greedy.write_some(asio::buffer(frames), ec);
    if (ec && ec != asio::error::would_block) break;
    if (ec) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_TRUE(ec == asio::error::connection_reset || ec == asio::error::broken_pipe)
      << ec.message();
  // Others are served.
  auto c = Connect();
  EXPECT_TRUE(Fit(*c, "x").has_error());
}

class SlowlorisTest : public ServerTest {
 protected:
  static constexpr auto kTimeout = std::chrono::milliseconds(400);
  void Configure(server::ServerOptions* options) override {
    options->request_timeout = kTimeout;
    options->idle_timeout = std::chrono::seconds(30);
  }
};

TEST_F(SlowlorisTest, TricklingOneByteAtATimeIsClosedWithinAboutTheRequestTimeout) {
  tcp::socket slow = RawConnect();
  v1::Request fit;
  fit.mutable_fit()->set_series(std::string(200, 's'));
  const std::string frame = Frame(fit);  // ~200 bytes: 20 s at a byte per 100 ms
  const auto start = SteadyClock::now();
  bool closed = false;
  for (std::size_t i = 0; i + 1 < frame.size() && !closed; ++i) {
    boost::system::error_code ec;
    asio::write(slow, asio::buffer(frame.data() + i, 1), ec);
    if (ec) break;  // reset by the server
    closed = ClosedWithin(slow, kTimeout / 4);
  }
  const auto elapsed = SteadyClock::now() - start;
  EXPECT_TRUE(closed) << "the frame stayed open while it trickled in";
  EXPECT_LT(elapsed, 3 * kTimeout + std::chrono::seconds(2));
}

TEST_F(SlowlorisTest, AFrameSentSlowlyButWithinTheRequestTimeoutIsServed) {
  tcp::socket slow = RawConnect();
  const std::string frame = Frame(FitRequest(11));
  // In three pieces, well within the timeout.
  const std::size_t third = frame.size() / 3;
  asio::write(slow, asio::buffer(frame.data(), third));
  std::this_thread::sleep_for(kTimeout / 8);
  asio::write(slow, asio::buffer(frame.data() + third, third));
  std::this_thread::sleep_for(kTimeout / 8);
  asio::write(slow, asio::buffer(frame.data() + 2 * third, frame.size() - 2 * third));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(slow, &response, kHangBound));
  EXPECT_EQ(response.id(), 11u);
}

// The highest open descriptor number.
int HighestDescriptor() {
  int highest = -1;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    highest = std::max(highest, std::stoi(entry.path().filename().string()));
  }
  return highest;
}

TEST(ServerAcceptTest, OutOfDescriptorsAcceptBacksOffKeepsServingAndRecovers) {
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler);
  tcp::socket existing = server.RawConnect();
  v1::Response response;
  asio::write(existing, asio::buffer(Frame(FitRequest(1))));
  ASSERT_TRUE(ReadResponseWithin(existing, &response, kHangBound));
  asio::io_context io;
  std::vector<tcp::socket> later;  // their descriptors exist before the limit drops
  for (int i = 0; i < 3; ++i) later.emplace_back(io).open(tcp::v4());
  // Fill the holes below the highest descriptor, then allow no new one: the
  // server's accept fails with EMFILE.
  std::vector<int> fillers;
  const int highest = HighestDescriptor();
  for (int i = 0; i < 4096; ++i) {
    const int fd = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (fd < 0) break;
    if (fd > highest) {
      ::close(fd);
      break;
    }
    fillers.push_back(fd);
  }
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit none = before;
  none.rlim_cur = static_cast<rlim_t>(HighestDescriptor() + 1);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &none), 0);
  for (auto& s : later) s.connect(server.endpoint());  // queued in the backlog
  // While accept fails, the connection already open is served.
  for (uint64_t id = 2; id < 6; ++id) {
    asio::write(existing, asio::buffer(Frame(FitRequest(id))));
    EXPECT_TRUE(ReadResponseWithin(existing, &response, kHangBound));
    EXPECT_EQ(response.id(), id);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a few failed accepts
  }
  ::setrlimit(RLIMIT_NOFILE, &before);
  for (int fd : fillers) ::close(fd);
  // Descriptors again: the queued connections are accepted and served.
  for (auto& s : later) {
    asio::write(s, asio::buffer(Frame(FitRequest(9))));
    ASSERT_TRUE(ReadResponseWithin(s, &response, kHangBound));
    EXPECT_EQ(response.id(), 9u);
  }
}

TEST(FileLimitTest, MaxConnectionsBeyondTheOpenFileLimitIsRefusedNamingBothNumbers) {
  const Status s = app::CheckOpenFileLimit(1024, 0, 1024);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--max-connections 1024"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("1024 open files"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("ulimit -n"), std::string::npos) << s.message();
  const uint64_t protocol_only =
      1024 + app::kReservedDescriptors + server::Server::kRefusalAllowance;
  EXPECT_TRUE(app::CheckOpenFileLimit(1024, 0, protocol_only).ok());
}

TEST(FileLimitTest, HttpConnectionsAndTheirRefusalsCountInTheBudget) {
  const uint64_t protocol_only =
      1024 + app::kReservedDescriptors + server::Server::kRefusalAllowance;
  const uint64_t with_http = protocol_only + 64 + http::Listener::kRefusalAllowance;
  const Status s = app::CheckOpenFileLimit(1024, 64, with_http - 1);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("--http-max-connections 64"), std::string::npos) << s.message();
  EXPECT_NE(s.message().find("lower --max-connections to at most 1023"), std::string::npos)
      << s.message();
  EXPECT_TRUE(app::CheckOpenFileLimit(1024, 64, with_http).ok());
}

TEST(FileLimitTest, TheSoftOpenFileLimitIsRaisedToTheHardLimit) {
  rlimit before{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &before), 0);
  rlimit lowered = before;
  lowered.rlim_cur = std::min<rlim_t>(before.rlim_max, 256);
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &lowered), 0);
  uint64_t limit = 0;
  ASSERT_TRUE(app::RaiseOpenFileLimit(&limit).ok());
  rlimit after{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &after), 0);
  EXPECT_EQ(after.rlim_cur, before.rlim_max);
  EXPECT_EQ(limit, after.rlim_cur);
  ::setrlimit(RLIMIT_NOFILE, &before);
}

}  // namespace
}  // namespace gradientd
