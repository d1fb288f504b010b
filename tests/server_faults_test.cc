// The server against a fake handler and change log: each change answered
// by its own fate, a bounded Stop, long work off the query thread, and
// exceptions out of the handler.
#include <gtest/gtest.h>

#include "server_test_support.h"

namespace gradientd {
namespace {

TEST(ServerDurabilityTest, AfterALogFailureEachChangeIsAnsweredByItsOwnFate) {
  // Records 1-3 were made durable before the log failed; 4-6 were not.
  FakeChangeLog log(3, Status::Unavailable("journal write failed: no space left on device"));
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler, &log);
  tcp::socket socket = server.RawConnect();
  std::string frames;
  for (uint64_t id = 1; id <= 6; ++id) frames += Frame(IngestRequest(id, static_cast<double>(id)));
  asio::write(socket, asio::buffer(frames));  // one write: most likely one chunk waiting on 6
  for (uint64_t id = 1; id <= 6; ++id) {
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "response " << id;
    EXPECT_EQ(response.id(), id);
    if (id <= 3) {
      EXPECT_TRUE(response.has_ack()) << "durable before the failure: " << response.DebugString();
    } else {
      EXPECT_TRUE(response.has_error()) << response.DebugString();
      EXPECT_NE(response.error().message().find("no space left"), std::string::npos);
    }
  }
}

TEST(ServerDurabilityTest, QueriesStillWorkAfterErrorsLongerThanTheAcksTheyReplace) {
  // Every change fails with an Error much longer than the ack it replaces:
  // the connection's count of queued bytes must not go wrong (it once
  // underflowed and the connection stopped being read).
  FakeChangeLog log(0, Status::Unavailable("journal failed: " + std::string(2000, 'x')));
  FakeHandler handler;
  FakeServer server(FakeServerOptions(), handler, &log);
  tcp::socket socket = server.RawConnect();
  std::string frames;
  for (uint64_t id = 1; id <= 20; ++id) frames += Frame(IngestRequest(id, 1.0));
  asio::write(socket, asio::buffer(frames));
  for (uint64_t id = 1; id <= 20; ++id) {
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "response " << id;
    EXPECT_TRUE(response.has_error());
  }
  for (uint64_t id = 100; id < 105; ++id) {
    asio::write(socket, asio::buffer(Frame(FitRequest(id))));
    v1::Response response;
    ASSERT_TRUE(ReadResponseWithin(socket, &response, kHangBound)) << "query " << id;
    EXPECT_EQ(response.id(), id);
    EXPECT_TRUE(response.has_fit());
  }
}

TEST(ServerStopTest, StopFinishesWithinTheGracePeriodWhateverConnectionsAreDoing) {
  // The log never answers: a producer's writer waits on durability forever.
  FakeChangeLog log(0, Status::Unavailable("journal stalled"), /*hold=*/true);
  FakeHandler handler;
  handler.slow_step = std::chrono::milliseconds(50);
  server::ServerOptions options = FakeServerOptions();
  options.max_queued_bytes = 16 * 1024;
  auto server = std::make_unique<FakeServer>(options, handler, &log);
  tcp::socket producer = server->RawConnect();
  asio::write(producer, asio::buffer(Frame(IngestRequest(1, 1.0))));
  // A client that pipelines and never reads: its reader parks on
  // back-pressure once its socket buffers are full.
  tcp::socket greedy = server->RawConnect();
  greedy.set_option(asio::socket_base::receive_buffer_size(4096));
  greedy.non_blocking(true);
  std::string fits;
  for (int i = 0; i < 1000; ++i) fits += Frame(FitRequest(static_cast<uint64_t>(i)));
  for (int round = 0; round < 200; ++round) {
    boost::system::error_code ec;
    greedy.write_some(asio::buffer(fits), ec);
    if (ec) break;
  }
  // A long pipeline: 1000 steps of 50 ms, 50 s of work.
  tcp::socket stepper = server->RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  std::string steps;
  for (int i = 0; i < 1000; ++i) steps += Frame(step);
  asio::write(stepper, asio::buffer(steps));
  // A partial frame.
  tcp::socket partial = server->RawConnect();
  const std::string fit = Frame(FitRequest(7));
  asio::write(partial, asio::buffer(fit.data(), fit.size() - 1));
  for (int i = 0; i < 2000 && (log.held() == 0 || handler.steps_started == 0); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(log.held(), 0u);
  ASSERT_GT(handler.steps_started.load(), 0);
  // The grace period is 2 s; 10 s of slack for a loaded machine, far less
  // than the 50 s the pipeline would take.
  EXPECT_TRUE(server->StopsWithin(std::chrono::seconds(12)));
  EXPECT_LT(handler.steps_done.load(), 1000);
  log.Release();  // late answers to abandoned waits touch nothing
  server.reset();
}

TEST(ServerStepTest, LongWorkDoesNotRunOnTheThreadThatAnswersQueries) {
  FakeHandler handler;
  handler.slow_step = std::chrono::seconds(3);  // one step at the Service's time limit, and more
  FakeServer server(FakeServerOptions(), handler);
  tcp::socket stepper = server.RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  asio::write(stepper, asio::buffer(Frame(step)));
  for (int i = 0; i < 2000 && handler.steps_started == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_GT(handler.steps_started.load(), 0);
  // A query on a fresh connection is answered while the step still runs.
  tcp::socket querier = server.RawConnect();
  asio::write(querier, asio::buffer(Frame(FitRequest(5))));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(querier, &response, kHangBound));
  EXPECT_TRUE(response.has_fit());
  EXPECT_EQ(handler.steps_done.load(), 0) << "the query waited behind the step";
}

TEST(ServerStepTest, OneConnectionsLongPipelineDoesNotStarveAnotherOnTheSameThread) {
  FakeHandler handler;
  handler.slow_step = std::chrono::milliseconds(50);
  FakeServer server(FakeServerOptions(), handler);  // one ingest thread: both land on it
  tcp::socket pipeline = server.RawConnect();
  v1::Request step;
  step.mutable_step()->set_series("s");
  std::string steps;
  constexpr int kSteps = 60;
  for (int i = 0; i < kSteps; ++i) steps += Frame(step);
  asio::write(pipeline, asio::buffer(steps));
  for (int i = 0; i < 2000 && handler.steps_started < 2; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  tcp::socket other = server.RawConnect();
  step.set_id(99);
  asio::write(other, asio::buffer(Frame(step)));
  v1::Response response;
  ASSERT_TRUE(ReadResponseWithin(other, &response, kHangBound));
  EXPECT_EQ(response.id(), 99u);
  EXPECT_LT(handler.steps_done.load(), kSteps) << "it waited for the other's whole pipeline";
}

// Whether a new connection is served (a fit answered) rather than refused,
// retrying a refusal for a while: a closed connection's slot is freed just
// after its socket is closed, maybe on another thread.
bool ServedOnceTheSlotIsFree(FakeServer& server) {
  for (int attempt = 0; attempt < 200; ++attempt) {
    tcp::socket next = server.RawConnect();
    asio::write(next, asio::buffer(Frame(FitRequest(3))));
    v1::Response response;
    if (!ReadResponseWithin(next, &response, kHangBound)) return false;
    if (response.has_fit()) return true;
    if (response.error().code() != v1::Error::RESOURCE_EXHAUSTED) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return false;
}

TEST(ServerFaultTest, AnExceptionFromTheHandlerClosesOnlyThatConnectionAndFreesItsSlot) {
  FakeHandler handler;
  handler.throw_on_list = true;
  server::ServerOptions options = FakeServerOptions();
  options.max_connections = 1;
  auto server = std::make_unique<FakeServer>(options, handler);
  tcp::socket doomed = server->RawConnect();
  v1::Request list;
  list.mutable_list();
  asio::write(doomed, asio::buffer(Frame(list)));
  ASSERT_TRUE(ClosedWithin(doomed, kHangBound));
  // Its one slot is free again: the next connection is served, not refused.
  EXPECT_TRUE(ServedOnceTheSlotIsFree(*server));
  EXPECT_TRUE(server->StopsWithin(kHangBound));
}

TEST(ServerFaultTest, AnExceptionWhileAChangeWaitsOnAStalledLogStillClosesTheConnection) {
  FakeChangeLog log(1, Status::Unavailable("journal stalled"), /*hold=*/true);
  FakeHandler handler;
  handler.throw_on_list = true;
  server::ServerOptions options = FakeServerOptions();
  options.max_connections = 1;
  auto server = std::make_unique<FakeServer>(options, handler, &log);
  tcp::socket doomed = server->RawConnect();
  v1::Response response;
  asio::write(doomed, asio::buffer(Frame(IngestRequest(1, 1.0))));  // durable: answered
  ASSERT_TRUE(ReadResponseWithin(doomed, &response, kHangBound));
  asio::write(doomed, asio::buffer(Frame(IngestRequest(2, 1.0))));  // waits on the log
  for (int i = 0; i < 2000 && log.held() == 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_EQ(log.held(), 1u);
  v1::Request list;
  list.mutable_list();
  asio::write(doomed, asio::buffer(Frame(list)));  // throws
  ASSERT_TRUE(ClosedWithin(doomed, kHangBound));
  EXPECT_TRUE(ServedOnceTheSlotIsFree(*server));
  EXPECT_TRUE(server->StopsWithin(kHangBound));
  log.Release();  // the late answer to the cancelled wait touches nothing
  server.reset();
}

}  // namespace
}  // namespace gradientd
