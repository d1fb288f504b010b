// gradctl's exactly-once Producer against a scripted fake server (it loses
// the connection, rejects a batch, never comes back), and the helpers the
// produce/replay/inspect commands share.
#include "cli/produce/producer.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <filesystem>
#include <functional>
#include <map>
#include <sstream>
#include <thread>
#include <vector>

#include "cli/output.h"
#include "cli/replay/recording_summary.h"
#include "fake_server_support.h"
#include "protocol/frame_codec.h"
#include "recording/recording.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace gradientd::cli {
namespace {

namespace asio = boost::asio;
using asio::ip::tcp;
using std::chrono::milliseconds;
using std::chrono::nanoseconds;

// ---------------------------------------------------------------------------
// Helpers.

TEST(FormatTest, Durations) {
  EXPECT_EQ(FormatDuration(milliseconds(850)), "850 ms");
  EXPECT_EQ(FormatDuration(milliseconds(12345)), "12.3 s");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(60)), "1 min");
  EXPECT_EQ(FormatDuration(std::chrono::seconds(245)), "4 min 05 s");
  EXPECT_EQ(FormatDuration(std::chrono::minutes(123)), "2 h 03 min");
}

TEST(FormatTest, UtcIso8601) {
  EXPECT_EQ(FormatUtc(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatUtc(1'700'000'000'123'456'789), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatUtc(-1'000'000), "1969-12-31T23:59:59.999Z");
}

TEST(FormatTest, ProducerIds) {
  const std::string a = GenerateProducerId("gradctl");
  EXPECT_EQ(a.size(), std::string("gradctl-").size() + 16);
  EXPECT_EQ(a.rfind("gradctl-", 0), 0u);
  EXPECT_NE(a, GenerateProducerId("gradctl"));
}

// ---------------------------------------------------------------------------
// A fake gradientd: each connection is served by a script that sees every
// request and decides the reply (or to drop the connection).

struct Received {
  int connection = 0;
  v1::PointBatch batch;
};

class FakeServer {
 public:
  enum class Action { kAck, kDuplicate, kError, kClose, kSilent /* no reply */ };
  // (connection number from 1, request index within it from 1, batch) -> action
  using Script = std::function<Action(int, int, const v1::PointBatch&)>;

  FakeServer(Script script, int connections)
      : script_(std::move(script)),
        acceptor_(io_, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0)) {
    address_ = "127.0.0.1:" + std::to_string(acceptor_.local_endpoint().port());
    thread_ = std::thread([this, connections] { Serve(connections); });
  }
  ~FakeServer() { thread_.join(); }

  const std::string& address() const { return address_; }
  std::vector<Received> received() {
    util::MutexLock lock(mu_);
    return received_;
  }

 private:
  void Serve(int connections) {
    for (int c = 1; c <= connections; ++c) {
      tcp::socket socket(io_);
      boost::system::error_code ec;
      acceptor_.accept(socket, ec);
      if (ec) return;
      ServeConnection(c, socket);
    }
    acceptor_.close();  // later connections are refused
  }

  // Returns when the client closes the connection or the script drops it.
  void ServeConnection(int connection, tcp::socket& socket) {
    protocol::FrameReader reader(1 << 26);
    int index = 0;
    while (true) {
      v1::Request request;
      if (!testing::ReadRequest(socket, reader, &request)) return;
      ++index;
      v1::Response response;
      response.set_id(request.id());
      if (request.has_ingest()) {
        {
          util::MutexLock lock(mu_);
          received_.push_back({connection, request.ingest()});
        }
        const Action action = script_(connection, index, request.ingest());
        if (action == Action::kClose) {
          // Half-close, then drain: the replies already written reach the
          // client before the end of the stream (closing with unread input
          // would send a reset, which can discard them on the client).
          boost::system::error_code ec;
          socket.shutdown(tcp::socket::shutdown_send, ec);
          uint8_t drain[65536];
          while (!ec) socket.read_some(asio::buffer(drain), ec);
          socket.close(ec);
          return;
        }
        if (action == Action::kSilent) continue;
        if (action == Action::kError) {
          response.mutable_error()->set_code(v1::Error::INVALID_ARGUMENT);
          response.mutable_error()->set_message("no thanks");
        } else {
          v1::IngestAck* ack = response.mutable_ack();
          ack->set_series(request.ingest().series());
          ack->set_duplicate(action == Action::kDuplicate);
          ack->set_accepted(
              action == Action::kDuplicate ? 0 : static_cast<uint64_t>(request.ingest().x_size()));
        }
      } else {
        response.mutable_fit()->set_series("whatever");
      }
      std::string out;
      protocol::AppendFrame(response, &out);
      boost::system::error_code ec;
      asio::write(socket, asio::buffer(out), ec);
      if (ec) return;
    }
  }

  Script script_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::string address_;
  std::thread thread_;
  util::Mutex mu_;
  std::vector<Received> received_ GUARDED_BY(mu_);
};

std::vector<double> Points(uint64_t sequence, std::size_t n) {
  std::vector<double> v;
  for (std::size_t i = 0; i < n; ++i) v.push_back(static_cast<double>(sequence * 1000 + i));
  return v;
}

ProducerOptions Options(const std::string& server) {
  ProducerOptions options;
  options.servers = {server};
  options.producer_id = "test-producer";
  options.window = 4;
  options.retry_for = std::chrono::seconds(30);
  options.initial_backoff = milliseconds(1);
  options.max_backoff = milliseconds(20);
  return options;
}

// ReconnectsAndResendsUnacknowledgedBatches, what the fake server received:
// the second connection got a contiguous run of sequences up to 10, each
// batch identical to the original; it starts after a batch acknowledged on
// the first connection (at most 3 were).
void ExpectContiguousResends(const std::vector<Received>& received, uint64_t applied_on_first,
                             const ProducerCounters& c, const ProducerOptions& options) {
  std::map<uint64_t, v1::PointBatch> first;
  std::vector<uint64_t> second;
  uint64_t duplicates = 0;
  for (const Received& r : received) {
    EXPECT_EQ(r.batch.producer_id(), "test-producer");
    const std::vector<double> expected = Points(r.batch.sequence(), r.batch.sequence());
    EXPECT_EQ(std::vector<double>(r.batch.x().begin(), r.batch.x().end()), expected);
    EXPECT_EQ(std::vector<double>(r.batch.y().begin(), r.batch.y().end()), expected);
    if (r.connection == 1) {
      first[r.batch.sequence()] = r.batch;
    } else {
      second.push_back(r.batch.sequence());
      if (r.batch.sequence() <= applied_on_first) ++duplicates;
    }
  }
  ASSERT_FALSE(second.empty());
  EXPECT_GE(second.front(), 1u);
  EXPECT_LE(second.front(), 4u);
  for (std::size_t i = 0; i < second.size(); ++i) EXPECT_EQ(second[i], second.front() + i);
  EXPECT_EQ(second.back(), 10u);
  EXPECT_EQ(c.duplicate_batches, duplicates);
  EXPECT_LE(c.batches_resent, options.window);  // only what the window held
  // Batches 4 and 5 were applied without an acknowledgement and 6 just before
  // the "crash": resent, they are duplicates.
  EXPECT_EQ(applied_on_first, 6u);
  EXPECT_GE(duplicates, 3u);
}

// The same test's --save: each batch recorded once, at its first send, in
// sequence order.
void ExpectRecordedOnceInOrder(const std::string& recording) {
  std::unique_ptr<storage::RecordingReader> reader;
  ASSERT_TRUE(storage::RecordingReader::Open(recording, &reader).ok());
  v1::RecordedBatch record;
  uint64_t next = 1;
  while (reader->Next(&record) == storage::RecordingReader::Result::kRecord) {
    EXPECT_EQ(record.sequence(), next++);
    EXPECT_EQ(record.producer_id(), "test-producer");
    EXPECT_EQ(record.series(), "series");
    EXPECT_EQ(record.x_size(), static_cast<int>(record.sequence()));
    EXPECT_GT(record.time_unix_nanos(), 0);
  }
  EXPECT_EQ(next, 11u);
}

// The connection is dropped after the 6th request: the producer reconnects and
// resends every unacknowledged batch with its sequence and content; batches
// the first connection had applied come back as duplicates and count as
// delivered.
TEST(ProducerTest, ReconnectsAndResendsUnacknowledgedBatches) {
  util::Mutex mu;
  uint64_t applied = 0;  // the highest sequence "applied" on the first connection
  FakeServer server(
      [&](int connection, int index, const v1::PointBatch& b) {
        util::MutexLock lock(mu);
        if (connection == 1) {
          applied = std::max(applied, b.sequence());
          // Acknowledge 3, apply 2 more without acknowledging, apply the
          // 6th and "crash".
          return index <= 3  ? FakeServer::Action::kAck
                 : index < 6 ? FakeServer::Action::kSilent
                             : FakeServer::Action::kClose;
        }
        return b.sequence() <= applied ? FakeServer::Action::kDuplicate : FakeServer::Action::kAck;
      },
      2);
  const std::string recording =
      (std::filesystem::temp_directory_path() / ("producer_test." + std::to_string(::getpid())))
          .string();
  std::unique_ptr<storage::RecordingWriter> save;
  ASSERT_TRUE(storage::RecordingWriter::Create(recording, &save).ok());
  ProducerOptions options = Options(server.address());
  options.first_sequence = 1;
  options.save = save.get();
  std::ostringstream log;
  Producer producer(options, log);
  ASSERT_TRUE(producer.Start().ok());
  for (uint64_t s = 1; s <= 10; ++s) {
    const std::vector<double> x = Points(s, s);
    const Status st = producer.Send("series", x, x);
    ASSERT_TRUE(st.ok()) << st.message();
  }
  const Status st = producer.Finish();
  ASSERT_TRUE(st.ok()) << st.message() << "\n" << log.str();
  ASSERT_TRUE(save->Close().ok());

  const ProducerCounters& c = producer.counters();
  EXPECT_EQ(c.batches_sent, 10u);
  EXPECT_EQ(c.batches_acked, 10u);
  EXPECT_EQ(c.points_acked, 55u);
  EXPECT_EQ(c.reconnects, 1u);
  EXPECT_GE(c.batches_resent, 1u);
  EXPECT_EQ(producer.unacknowledged(), 0u);
  EXPECT_NE(log.str().find("reconnected to " + server.address()), std::string::npos) << log.str();

  const uint64_t applied_on_first = [&] {
    util::MutexLock lock(mu);
    return applied;
  }();
  ASSERT_NO_FATAL_FAILURE(ExpectContiguousResends(server.received(), applied_on_first, c, options));
  ASSERT_NO_FATAL_FAILURE(ExpectRecordedOnceInOrder(recording));
  std::filesystem::remove(recording);
}

// A rejected batch stops the producer; the replies in flight are still
// collected.
TEST(ProducerTest, RejectedBatchStops) {
  FakeServer server(
      [](int, int, const v1::PointBatch& b) {
        return b.sequence() == 102 ? FakeServer::Action::kError : FakeServer::Action::kAck;
      },
      1);
  std::ostringstream log;
  ProducerOptions options = Options(server.address());
  options.first_sequence = 100;
  Producer producer(options, log);
  ASSERT_TRUE(producer.Start().ok());
  Status st;
  uint64_t sent = 0;
  for (int i = 0; i < 50 && st.ok(); ++i) {
    const std::vector<double> x = Points(static_cast<uint64_t>(i), 2);
    st = producer.Send("s", x, x);
    if (st.ok()) ++sent;
  }
  if (st.ok()) st = producer.Finish();
  ASSERT_FALSE(st.ok());
  ASSERT_TRUE(producer.rejection().has_value());
  EXPECT_EQ(producer.rejection()->error().message(), "no thanks");
  EXPECT_EQ(producer.rejected_sequence(), 102u);  // the third batch, from --first-sequence 100
  EXPECT_EQ(producer.counters().batches_acked + 1, producer.counters().batches_sent);
  EXPECT_EQ(producer.counters().reconnects, 0u);
  // Final: later calls fail the same way.
  const std::vector<double> x = {1.0};
  EXPECT_FALSE(producer.Send("s", x, x).ok());
}

// The server goes away for good: the producer gives up after retry_for and
// says which batches were not acknowledged.
TEST(ProducerTest, GivesUpAfterRetryFor) {
  FakeServer server(
      [](int, int index, const v1::PointBatch&) {
        return index <= 2 ? FakeServer::Action::kAck : FakeServer::Action::kClose;
      },
      1);
  std::ostringstream log;
  ProducerOptions options = Options(server.address());
  options.retry_for = milliseconds(200);
  Producer producer(options, log);
  ASSERT_TRUE(producer.Start().ok());
  Status st;
  for (int i = 0; i < 20 && st.ok(); ++i) {
    const std::vector<double> x = Points(static_cast<uint64_t>(i), 1);
    st = producer.Send("s", x, x);
  }
  if (st.ok()) st = producer.Finish();
  ASSERT_FALSE(st.ok());
  EXPECT_EQ(st.code(), StatusCode::kUnavailable);
  EXPECT_NE(st.message().find("could not reconnect within 200 ms"), std::string::npos)
      << st.message();
  EXPECT_GT(producer.unacknowledged(), 0u);
  EXPECT_GE(producer.first_unacknowledged(), 3u);  // 1 and 2 were acknowledged
  EXPECT_FALSE(producer.rejection().has_value());
}

TEST(ProducerTest, NoServerAtTheStart) {
  // A port that was just free: bind, note it, close.
  std::string address;
  {
    asio::io_context io;
    tcp::acceptor a(io, tcp::endpoint(asio::ip::make_address("127.0.0.1"), 0));
    address = "127.0.0.1:" + std::to_string(a.local_endpoint().port());
  }
  std::ostringstream log;
  ProducerOptions options = Options(address);
  options.retry_for = nanoseconds(0);
  Producer producer(options, log);
  const Status st = producer.Start();
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("cannot connect to " + address), std::string::npos) << st.message();

  options.servers = {"not an address:x"};
  Producer bad(options, log);
  EXPECT_EQ(bad.Start().code(), StatusCode::kInvalidArgument);
}

// ---------------------------------------------------------------------------
// SummarizeRecording (what inspect prints).

TEST(SummarizeTest, CountsSeriesProducersTimesAndTruncation) {
  const std::string path =
      (std::filesystem::temp_directory_path() / ("summarize_test." + std::to_string(::getpid())))
          .string();
  std::unique_ptr<storage::RecordingWriter> writer;
  ASSERT_TRUE(storage::RecordingWriter::Create(path, &writer).ok());
  const auto add = [&](const std::string& series, int n, const std::string& producer,
                       uint64_t sequence, int64_t time) {
    v1::RecordedBatch b;
    b.set_series(series);
    for (int i = 0; i < n; ++i) {
      b.add_x(i);
      b.add_y(i);
    }
    b.set_producer_id(producer);
    b.set_sequence(sequence);
    b.set_time_unix_nanos(time);
    ASSERT_TRUE(writer->Append(b).ok());
  };
  add("a", 3, "p", 5, 2'000'000'000);
  add("b", 4, "p", 6, 1'000'000'000);
  add("a", 1, "q", 1, 3'500'000'000);
  add("", 2, "", 0, 0);  // no time: not in the range
  ASSERT_TRUE(writer->Close().ok());

  RecordingSummary s;
  ASSERT_TRUE(SummarizeRecording(path, &s).ok());
  EXPECT_EQ(s.batches, 4u);
  EXPECT_EQ(s.points, 10u);
  ASSERT_EQ(s.series.size(), 3u);
  EXPECT_EQ(s.series["a"].points, 4u);
  EXPECT_EQ(s.series["a"].batches, 2u);
  EXPECT_EQ(s.series[""].points, 2u);
  ASSERT_EQ(s.producers.size(), 3u);
  EXPECT_EQ(s.producers["p"].batches, 2u);
  EXPECT_EQ(s.producers["p"].first_sequence, 5u);
  EXPECT_EQ(s.producers["p"].last_sequence, 6u);
  EXPECT_TRUE(s.has_time);
  EXPECT_EQ(s.first_time, 1'000'000'000);
  EXPECT_EQ(s.last_time, 3'500'000'000);
  EXPECT_FALSE(s.truncated);

  // Cut 3 bytes off: the last record is incomplete.
  std::filesystem::resize_file(path, std::filesystem::file_size(path) - 3);
  ASSERT_TRUE(SummarizeRecording(path, &s).ok());
  EXPECT_TRUE(s.truncated);
  EXPECT_EQ(s.batches, 3u);
  EXPECT_EQ(s.points, 8u);
  EXPECT_NE(s.truncation_message.find("after 3 whole records"), std::string::npos);

  // A record whose x and y differ in length is refused.
  ASSERT_TRUE(storage::RecordingWriter::Create(path, &writer).ok());
  v1::RecordedBatch b;
  b.add_x(1);
  ASSERT_TRUE(writer->Append(b).ok());
  ASSERT_TRUE(writer->Close().ok());
  const Status st = SummarizeRecording(path, &s);
  EXPECT_FALSE(st.ok());
  EXPECT_NE(st.message().find("x has 1 values but y has 0"), std::string::npos) << st.message();
  std::filesystem::remove(path);
}

}  // namespace
}  // namespace gradientd::cli
