// Tests of protocol::Connection, the sans-I/O per-connection state machine,
// with a fake handler that records requests and echoes them.
#include "protocol/connection.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd::protocol {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr std::size_t kCap = 1 << 20;
// Anything near this would mean the connection trusted a declared size.
constexpr std::size_t kSmallBuffer = 256 * 1024;

// What the echo handler puts in its reply, from the request alone.
std::string EchoOf(const v1::Request& r) {
  return std::to_string(static_cast<int>(r.body_case())) + ":" + std::to_string(r.ByteSizeLong());
}

class EchoHandler : public RequestHandler {
 public:
  // Ingests wait on the change log: their token is their request count.
  uint64_t Handle(const v1::Request& request, v1::Response* response) override {
    EXPECT_EQ(response->ByteSizeLong(), 0u) << "the response must start empty";
    requests.push_back(request);
    response->mutable_ack()->set_series(EchoOf(request));
    response->mutable_ack()->set_total(requests.size());
    return request.has_ingest() ? requests.size() : 0;
  }
  std::vector<v1::Request> requests;
};

std::vector<v1::Request> PipelinedRequests() {
  std::vector<v1::Request> out;
  v1::Request r;
  r.set_id(10);
  auto* b = r.mutable_ingest();
  b->set_series("a");
  for (int i = 0; i < 20; ++i) {
    b->add_x(i);
    b->add_y(2.0 * i + 1);
  }
  out.push_back(r);
  r.Clear();
  r.set_id(11);
  r.mutable_gradient()->set_series("a");
  r.mutable_gradient()->set_m(0.5);
  out.push_back(r);
  r.Clear();
  r.set_id(12);
  r.mutable_step()->set_iterations(100);
  out.push_back(r);
  out.emplace_back();  // empty body, id 0
  r.Clear();
  r.set_id(uint64_t{1} << 40);
  r.mutable_fit()->set_series(std::string(200, 'f'));  // 2-byte header
  out.push_back(r);
  r.Clear();
  r.set_id(14);
  r.mutable_list();
  out.push_back(r);
  r.Clear();
  r.set_id(10);  // ids need not be unique; they are echoed as given
  r.mutable_reset()->set_series("a");
  out.push_back(r);
  return out;
}

std::string Frames(const std::vector<v1::Request>& requests) {
  std::string out;
  for (const auto& r : requests) AppendFrame(r, &out);
  return out;
}

std::string Frame(std::string_view body) {
  std::string out;
  uint64_t n = body.size();
  do {
    auto byte = static_cast<uint8_t>(n & 0x7f);
    n >>= 7;
    if (n != 0) byte |= 0x80;
    out.push_back(static_cast<char>(byte));
  } while (n != 0);
  out.append(body);
  return out;
}

// Feeds `bytes` to the connection as a transport would: into the space
// ReceiveBuffer offers, then Received and Process. Stops at the first
// Process that returns false, and returns false then.
bool Feed(Connection& c, std::string_view bytes, std::string* out) {
  do {
    const std::span<uint8_t> buf = c.ReceiveBuffer();
    EXPECT_GE(buf.size(), 1u);
    const std::size_t n = std::min(buf.size(), bytes.size());
    if (n > 0) std::memcpy(buf.data(), bytes.data(), n);
    c.Received(n);
    bytes.remove_prefix(n);
    if (!c.Process(out)) return false;
  } while (!bytes.empty());
  return true;
}

// Parses a stream of framed responses with protobuf's own delimited reader.
std::vector<v1::Response> ParseResponses(const std::string& out) {
  google::protobuf::io::ArrayInputStream input(out.data(), static_cast<int>(out.size()));
  std::vector<v1::Response> responses;
  while (true) {
    v1::Response r;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&r, &input, &clean_eof)) {
      EXPECT_TRUE(clean_eof) << "undecodable response " << responses.size();
      break;
    }
    responses.push_back(r);
  }
  return responses;
}

void ExpectEchoed(const std::vector<v1::Request>& requests, const EchoHandler& handler,
                  const std::string& out) {
  ASSERT_EQ(handler.requests.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(handler.requests[i], requests[i]))
        << "request " << i << ": " << handler.requests[i].ShortDebugString();
  }
  const auto responses = ParseResponses(out);
  ASSERT_EQ(responses.size(), requests.size());
  for (std::size_t i = 0; i < requests.size(); ++i) {
    EXPECT_EQ(responses[i].id(), requests[i].id()) << "response " << i;
    ASSERT_EQ(responses[i].body_case(), v1::Response::kAck) << "response " << i;
    EXPECT_EQ(responses[i].ack().series(), EchoOf(requests[i])) << "response " << i;
    EXPECT_EQ(responses[i].ack().total(), i + 1) << "response " << i;
  }
}

// ---------------------------------------------------------------------------
// Pipelining.

TEST(ConnectionTest, PipelinedFramesSplitAtEveryOffsetAnswerInOrder) {
  const auto requests = PipelinedRequests();
  const std::string stream = Frames(requests);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    EchoHandler handler;
    Connection c(handler, kCap);
    std::string out;
    ASSERT_TRUE(Feed(c, std::string_view(stream).substr(0, cut), &out));
    ASSERT_TRUE(Feed(c, std::string_view(stream).substr(cut), &out));
    EXPECT_EQ(c.buffered(), 0u);
    ExpectEchoed(requests, handler, out);
  }
}

TEST(ConnectionTest, PipelinedFramesByteByByteAndInRandomChunks) {
  const auto requests = PipelinedRequests();
  const std::string stream = Frames(requests);
  {
    EchoHandler handler;
    Connection c(handler, kCap);
    std::string out;
    for (std::size_t i = 0; i < stream.size(); ++i) {
      ASSERT_TRUE(Feed(c, std::string_view(stream).substr(i, 1), &out));
    }
    ExpectEchoed(requests, handler, out);
  }
  std::mt19937_64 rng(3);
  for (int trial = 0; trial < 200; ++trial) {
    EchoHandler handler;
    Connection c(handler, kCap);
    std::string out;
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t len = std::uniform_int_distribution<std::size_t>(1, 40)(rng);
      ASSERT_TRUE(Feed(c, std::string_view(stream).substr(at, len), &out));
      at += len;
    }
    ExpectEchoed(requests, handler, out);
  }
}

// Ingest frames are decoded into the previous ingest's PointBatch; whatever
// the encoding, the handler must see exactly what protobuf's own parser sees.
TEST(ConnectionTest, IngestFramesOfEveryShapeDecodeLikeProtobuf) {
  std::vector<std::string> bodies;
  v1::Request r;
  r.set_id(7);
  for (int i = 0; i < 1000; ++i) {
    r.mutable_ingest()->add_x(i);
    r.mutable_ingest()->add_y(-i);
  }
  r.mutable_ingest()->set_series("big");
  r.mutable_ingest()->set_producer_id("p");
  r.mutable_ingest()->set_sequence(3);
  bodies.push_back(r.SerializeAsString());
  v1::Request small;
  small.set_id(8);
  small.mutable_ingest()->add_x(1.5);
  small.mutable_ingest()->add_y(2.5);
  bodies.push_back(small.SerializeAsString());  // shorter than the reused arrays
  v1::Request no_id;
  no_id.mutable_ingest()->set_series("s");
  bodies.push_back(no_id.SerializeAsString());
  bodies.push_back(std::string("\x12\x00", 2));  // an empty ingest
  const std::string small_ingest =
      "\x12" + std::string(1, static_cast<char>(small.ingest().ByteSizeLong())) +
      small.ingest().SerializeAsString();
  bodies.push_back(small_ingest);  // no id
  // The ingest field twice: protobuf merges them, concatenating x and y.
  bodies.push_back(small.SerializeAsString() + small.SerializeAsString());
  // The id twice (the last wins), the id after the ingest.
  bodies.push_back(std::string("\x08\x01", 2) + small.SerializeAsString());
  bodies.push_back(small_ingest + "\x08\x05");
  // Unpacked doubles (x as two separate fixed64 fields), and an unknown field.
  std::string unpacked = "\x11" + std::string(8, '\0') + "\x11" + std::string(8, '\0');
  bodies.push_back("\x12" + std::string(1, static_cast<char>(unpacked.size())) + unpacked);
  bodies.push_back(small.SerializeAsString() + "\xf8\x01\x01");  // field 31, varint 1
  v1::Request query;
  query.set_id(9);
  query.mutable_gradient()->set_series("big");
  bodies.push_back(query.SerializeAsString());
  bodies.push_back(r.SerializeAsString());  // after another kind of request

  EchoHandler handler;
  Connection connection(handler, kCap);
  std::string stream, out;
  std::vector<v1::Request> expected;
  for (const std::string& body : bodies) {
    stream += Frame(body);
    expected.emplace_back();
    ASSERT_TRUE(expected.back().ParseFromString(body)) << expected.size();
    expected.back().DiscardUnknownFields();  // ignored, and not kept
  }
  ASSERT_TRUE(Feed(connection, stream, &out));
  ASSERT_EQ(handler.requests.size(), expected.size());
  for (std::size_t i = 0; i < expected.size(); ++i) {
    EXPECT_EQ(handler.requests[i].SerializeAsString(), expected[i].SerializeAsString())
        << "frame " << i << ": " << handler.requests[i].ShortDebugString();
  }
  // An ingest whose points do not decode closes the connection like any
  // undecodable frame, even after ingests that reused the batch.
  std::string bad = small.SerializeAsString();
  bad.resize(bad.size() - 1);
  EXPECT_FALSE(Feed(connection, Frame(bad), &out));
}

TEST(ConnectionTest, ReadAheadGrowsForAClientThatFillsEveryRead) {
  EchoHandler handler;
  Connection connection(handler, kCap);
  v1::Request r;
  r.mutable_ingest()->set_series(std::string(1000, 's'));
  const std::string frame = Frames({r});
  std::string stream;
  while (stream.size() < 8 * Connection::kMaxReadAhead) stream += frame;
  std::string out;
  std::size_t offered = 0, largest = 0;
  std::string_view rest = stream;
  while (!rest.empty()) {
    const std::span<uint8_t> space = connection.ReceiveBuffer();
    offered = space.size();
    largest = std::max(largest, offered);
    EXPECT_LE(connection.buffered() + offered, 2 * frame.size() + Connection::kMaxReadAhead);
    const std::size_t n = std::min(offered, rest.size());
    std::memcpy(space.data(), rest.data(), n);
    connection.Received(n);
    rest.remove_prefix(n);
    ASSERT_TRUE(connection.Process(&out));
  }
  EXPECT_GE(largest, Connection::kMaxReadAhead);
  EXPECT_EQ(handler.requests.size(), stream.size() / frame.size());
  // A client that sends little at a time keeps the first, small read-ahead.
  Connection quiet(handler, kCap);
  for (int i = 0; i < 100; ++i) {
    const std::span<uint8_t> space = quiet.ReceiveBuffer();
    EXPECT_LE(space.size(), Connection::kMinReadAhead + 1);
    std::memcpy(space.data(), frame.data(), std::min(space.size(), frame.size()));
    quiet.Received(std::min(space.size(), frame.size()));
    ASSERT_TRUE(quiet.Process(&out));
  }
}

TEST(ConnectionTest, ResponsesComeOnlyForWholeFrames) {
  const auto requests = PipelinedRequests();
  std::string first;
  AppendFrame(requests[0], &first);
  EchoHandler handler;
  Connection c(handler, kCap);
  std::string out;
  ASSERT_TRUE(Feed(c, std::string_view(first).substr(0, first.size() - 1), &out));
  EXPECT_TRUE(out.empty());
  EXPECT_TRUE(handler.requests.empty());
  EXPECT_EQ(c.buffered(), first.size() - 1);
  ASSERT_TRUE(Feed(c, std::string_view(first).substr(first.size() - 1), &out));
  EXPECT_EQ(c.buffered(), 0u);
  ExpectEchoed({requests[0]}, handler, out);
}

TEST(ConnectionTest, ReceiveBufferHasRoomForTheWholeFrame) {
  v1::Request big;
  big.set_id(77);
  for (int i = 0; i < 40000; ++i) {
    big.mutable_ingest()->add_x(i);
    big.mutable_ingest()->add_y(-i);
  }
  std::string frame;
  AppendFrame(big, &frame);
  ASSERT_GT(frame.size(), 500'000u);
  ASSERT_LT(frame.size(), kCap);
  EchoHandler handler;
  Connection c(handler, kCap);
  std::string out;
  // Header and a little of the body: the buffer then offers at least the rest.
  ASSERT_TRUE(Feed(c, std::string_view(frame).substr(0, 10), &out));
  EXPECT_GE(c.ReceiveBuffer().size(), frame.size() - 10);
  ASSERT_TRUE(Feed(c, std::string_view(frame).substr(10), &out));
  ExpectEchoed({big}, handler, out);
}

// ---------------------------------------------------------------------------
// Fatal frames.

// A valid request, then `bad`, then another valid request that must never
// be handled.
void ExpectFatal(const std::string& bad, v1::Error::Code code, std::size_t cap) {
  v1::Request before, after;
  before.set_id(1);
  before.mutable_fit()->set_series("before");
  after.set_id(2);
  after.mutable_fit()->set_series("after");
  std::string stream;
  AppendFrame(before, &stream);
  const std::size_t bad_start = stream.size();
  stream += bad;
  AppendFrame(after, &stream);

  // Every split point, including inside the bad frame.
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    SCOPED_TRACE("cut at " + std::to_string(cut));
    EchoHandler handler;
    Connection c(handler, cap);
    std::string out;
    bool open = Feed(c, std::string_view(stream).substr(0, cut), &out);
    if (open) open = Feed(c, std::string_view(stream).substr(cut), &out);
    EXPECT_FALSE(open);
    // The request before is answered, the bad frame gets one error, and
    // nothing after it is looked at.
    ASSERT_EQ(handler.requests.size(), 1u);
    EXPECT_EQ(handler.requests[0].fit().series(), "before");
    const auto responses = ParseResponses(out);
    ASSERT_EQ(responses.size(), 2u);
    EXPECT_EQ(responses[0].id(), 1u);
    EXPECT_EQ(responses[0].body_case(), v1::Response::kAck);
    ASSERT_EQ(responses[1].body_case(), v1::Response::kError);
    EXPECT_EQ(responses[1].error().code(), code);
    EXPECT_FALSE(responses[1].error().message().empty());
    EXPECT_LE(c.ReceiveBuffer().size(), kSmallBuffer);
  }
  // Byte by byte: the connection stays open exactly until the bad frame is
  // decided.
  EchoHandler handler;
  Connection c(handler, cap);
  std::string out;
  std::size_t closed_at = stream.size();
  for (std::size_t i = 0; i < stream.size(); ++i) {
    if (!Feed(c, std::string_view(stream).substr(i, 1), &out)) {
      closed_at = i;
      break;
    }
    EXPECT_LE(c.ReceiveBuffer().size(), kSmallBuffer) << "after byte " << i;
  }
  EXPECT_GE(closed_at, bad_start);
  EXPECT_LT(closed_at, bad_start + bad.size());
  EXPECT_EQ(handler.requests.size(), 1u);
}

TEST(ConnectionTest, GarbageFrameGetsInvalidArgumentAndCloses) {
  const std::string body(4, '\xFF');
  ASSERT_FALSE(v1::Request().ParseFromString(body)) << "the body must not be a Request";
  ExpectFatal(Frame(body), v1::Error::INVALID_ARGUMENT, kCap);
}

TEST(ConnectionTest, TruncatedFieldInsideFrameGetsInvalidArgument) {
  // Field 2 (ingest), length 5, but only 1 byte of it inside the frame.
  const std::string body("\x12\x05\x0a", 3);
  ASSERT_FALSE(v1::Request().ParseFromString(body));
  ExpectFatal(Frame(body), v1::Error::INVALID_ARGUMENT, kCap);
}

TEST(ConnectionTest, MalformedHeaderGetsInvalidArgument) {
  ExpectFatal(std::string(11, '\x80'), v1::Error::INVALID_ARGUMENT, kCap);
}

TEST(ConnectionTest, OversizeFrameGetsResourceExhaustedWithoutAllocatingIt) {
  // 1 GiB declared (5-byte varint: 80 80 80 80 04), a 1 KiB cap, and some
  // body bytes that would follow.
  std::string bad("\x80\x80\x80\x80\x04", 5);
  bad += std::string(100, 'z');
  ExpectFatal(bad, v1::Error::RESOURCE_EXHAUSTED, 1024);
  // Just over the cap, declared in one byte.
  ExpectFatal(Frame(std::string(101, '\0')), v1::Error::RESOURCE_EXHAUSTED, 100);
}

TEST(ConnectionTest, FrameAtTheCapIsAccepted) {
  v1::Request r;
  r.set_id(4);
  r.mutable_fit()->set_series(std::string(90, 's'));
  const std::size_t cap = r.ByteSizeLong();
  std::string frame;
  AppendFrame(r, &frame);
  EchoHandler handler;
  Connection c(handler, cap);
  std::string out;
  ASSERT_TRUE(Feed(c, frame, &out));
  ExpectEchoed({r}, handler, out);
}

// ---------------------------------------------------------------------------
// Empty frames.

TEST(ConnectionTest, EmptyBodyCallsHandlerWithEmptyRequest) {
  EchoHandler handler;
  Connection c(handler, kCap);
  std::string out;
  ASSERT_TRUE(Feed(c, std::string(1, '\0'), &out));
  ASSERT_EQ(handler.requests.size(), 1u);
  EXPECT_EQ(handler.requests[0].body_case(), v1::Request::BODY_NOT_SET);
  EXPECT_EQ(handler.requests[0].id(), 0u);
  const auto responses = ParseResponses(out);
  ASSERT_EQ(responses.size(), 1u);
  EXPECT_EQ(responses[0].id(), 0u);
  // A request after a fuller one does not inherit its fields (the request
  // is cleared between frames).
  v1::Request full;
  full.set_id(9);
  full.mutable_step()->set_iterations(3);
  std::string stream;
  AppendFrame(full, &stream);
  stream.push_back('\0');
  ASSERT_TRUE(Feed(c, stream, &out));
  ASSERT_EQ(handler.requests.size(), 3u);
  EXPECT_EQ(handler.requests[1].id(), 9u);
  EXPECT_EQ(handler.requests[2].body_case(), v1::Request::BODY_NOT_SET);
  EXPECT_EQ(handler.requests[2].id(), 0u);
  const auto all = ParseResponses(out);
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[1].id(), 9u);
  EXPECT_EQ(all[2].id(), 0u);
}

TEST(ConnectionTest, ResponsesWaitingOnTheLogBecomeErrorsWhenItFails) {
  EchoHandler handler;
  Connection connection(handler, 1 << 20);
  std::string input;
  for (int i = 0; i < 4; ++i) {
    v1::Request r;
    r.set_id(static_cast<uint64_t>(i) + 1);
    if (i % 2 == 0) {
      r.mutable_ingest()->add_x(i);
      r.mutable_ingest()->add_y(i);
    } else {
      r.mutable_fit();
    }
    AppendFrame(r, &input);
  }
  const std::span<uint8_t> space = connection.ReceiveBuffer();
  ASSERT_GE(space.size(), input.size());
  std::memcpy(space.data(), input.data(), input.size());
  connection.Received(input.size());
  std::string out;
  ASSERT_TRUE(connection.Process(&out));
  EXPECT_EQ(connection.durability_token(), 3u);  // the second ingest was request 3

  Connection::FailUndurable([](uint64_t) { return Status::ResourceExhausted("disk full"); },
                            connection.TakeWaiting(), &out);
  std::vector<v1::Response> responses;
  std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  while (!rest.empty()) {
    const FrameHeader h = DecodeFrameHeader(rest, 1 << 20);
    ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
    ASSERT_TRUE(responses.emplace_back().ParseFromArray(rest.data() + h.header_bytes,
                                                        static_cast<int>(h.body_bytes)));
    rest = rest.subspan(h.header_bytes + h.body_bytes);
  }
  ASSERT_EQ(responses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(responses[i].id(), i + 1);
    if (i % 2 == 0) {
      EXPECT_EQ(responses[i].error().code(), v1::Error::RESOURCE_EXHAUSTED);
      EXPECT_EQ(responses[i].error().message(), "disk full");
    } else {
      EXPECT_TRUE(responses[i].has_ack()) << "a query's response stays as it was";
    }
  }

  // A cycle without changes waits for nothing.
  v1::Request fit;
  fit.mutable_fit();
  std::string more;
  AppendFrame(fit, &more);
  const std::span<uint8_t> again = connection.ReceiveBuffer();
  std::memcpy(again.data(), more.data(), more.size());
  connection.Received(more.size());
  out.clear();
  ASSERT_TRUE(connection.Process(&out));
  EXPECT_EQ(connection.durability_token(), 0u);
}

// Feeds `requests` framed into `connection` at once.
void Feed(Connection& connection, const std::vector<v1::Request>& requests) {
  std::string input;
  for (const auto& r : requests) AppendFrame(r, &input);
  const std::span<uint8_t> space = connection.ReceiveBuffer();
  ASSERT_GE(space.size(), input.size());
  std::memcpy(space.data(), input.data(), input.size());
  connection.Received(input.size());
}

std::vector<v1::Response> Responses(const std::string& out) {
  std::vector<v1::Response> responses;
  std::span<const uint8_t> rest(reinterpret_cast<const uint8_t*>(out.data()), out.size());
  while (!rest.empty()) {
    const FrameHeader h = DecodeFrameHeader(rest, 1 << 20);
    if (h.kind != FrameHeader::Kind::kFrame) break;
    responses.emplace_back().ParseFromArray(rest.data() + h.header_bytes,
                                            static_cast<int>(h.body_bytes));
    rest = rest.subspan(h.header_bytes + h.body_bytes);
  }
  return responses;
}

TEST(ConnectionTest, EachWaitingResponseIsAnsweredByItsOwnTokensOutcome) {
  EchoHandler handler;
  Connection connection(handler, 1 << 20);
  std::vector<v1::Request> requests;
  for (uint64_t id = 1; id <= 4; ++id) {
    v1::Request r;
    r.set_id(id);
    r.mutable_ingest()->add_x(1);
    r.mutable_ingest()->add_y(1);
    requests.push_back(r);
  }
  Feed(connection, requests);
  std::string out;
  ASSERT_TRUE(connection.Process(&out));
  std::vector<Connection::Waiting> waiting = connection.TakeWaiting();
  ASSERT_EQ(waiting.size(), 4u);
  EXPECT_EQ(waiting[2].token, 3u);
  // Tokens 1 and 2 were made durable before the log failed.
  Connection::FailUndurable(
      [](uint64_t token) {
        return token <= 2 ? Status::Ok() : Status::Unavailable("journal failed: disk full");
      },
      waiting, &out);
  const std::vector<v1::Response> responses = Responses(out);
  ASSERT_EQ(responses.size(), 4u);
  for (std::size_t i = 0; i < 4; ++i) {
    EXPECT_EQ(responses[i].id(), i + 1);
    EXPECT_EQ(responses[i].has_ack(), i < 2) << responses[i].DebugString();
    EXPECT_EQ(responses[i].has_error(), i >= 2) << responses[i].DebugString();
  }
}

TEST(ConnectionTest, LongWorkIsLeftBufferedWhileDeferred) {
  EchoHandler handler;
  Connection connection(handler, 1 << 20);
  connection.DeferLongWork(true);
  v1::Request fit, step;
  fit.set_id(1);
  fit.mutable_fit();
  step.set_id(2);
  step.mutable_step()->set_series("s");
  Feed(connection, {fit, step, fit});
  std::string out;
  ASSERT_TRUE(connection.Process(&out));
  EXPECT_EQ(Responses(out).size(), 1u);  // the fit, not the step after it
  EXPECT_TRUE(connection.wants_worker());
  EXPECT_TRUE(connection.HasFrame());
  EXPECT_EQ(handler.requests.size(), 1u);
  connection.DeferLongWork(false);  // on a worker now
  out.clear();
  ASSERT_TRUE(connection.Process(&out));
  const std::vector<v1::Response> rest = Responses(out);
  ASSERT_EQ(rest.size(), 2u);
  EXPECT_EQ(rest[0].id(), 2u);
  EXPECT_EQ(rest[1].id(), 1u);
  EXPECT_EQ(connection.frames(), 3u);
}

TEST(ConnectionTest, ProcessStopsAfterARequestOnceItsDeadlineHasPassed) {
  EchoHandler handler;
  Connection connection(handler, 1 << 20);
  v1::Request fit;
  fit.mutable_fit();
  Feed(connection, {fit, fit, fit});
  std::string out;
  // A deadline already past: one request (progress), then the rest stay.
  ASSERT_TRUE(connection.Process(&out, std::numeric_limits<std::size_t>::max(),
                                 Connection::Clock::now() - std::chrono::seconds(1)));
  EXPECT_EQ(Responses(out).size(), 1u);
  EXPECT_TRUE(connection.HasFrame());
  out.clear();
  ASSERT_TRUE(connection.Process(&out));
  EXPECT_EQ(Responses(out).size(), 2u);
}

// ---------------------------------------------------------------------------
// Issue 11, point 15: unknown fields.

void AppendVarintForTest(uint64_t v, std::string* out) {
  while (v >= 0x80) {
    out->push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out->push_back(static_cast<char>(v));
}

// A frame body of `bytes` bytes of tiny unknown fields (field 1000+,
// varint 0: 3 bytes each), the worst ratio of protobuf's memory to wire.
std::string UnknownVarints(std::size_t bytes) {
  std::string body;
  const std::string field = {'\xc0', '\x3e', '\x00'};  // tag (1000 << 3 | 0), value 0
  while (body.size() + field.size() <= bytes) body += field;
  return body;
}

std::string Frame(uint64_t id, const std::string& body) {
  std::string out;
  v1::Request head;
  head.set_id(id);
  std::string payload = head.SerializeAsString() + body;
  AppendVarintForTest(payload.size(), &out);
  return out + payload;
}

TEST(ConnectionTest, FramesOfUnknownFieldsAreIgnoredAndNotKeptAcrossRequests) {
  constexpr std::size_t kMaxFrame = 4 << 20;
  EchoHandler handler;
  Connection c(handler, kMaxFrame);
  // Nested: an ingest whose PointBatch has unknown fields among its own.
  v1::Request ingest;
  ingest.mutable_ingest()->set_series("s");
  ingest.mutable_ingest()->add_x(1);
  ingest.mutable_ingest()->add_y(2);
  const std::string batch = ingest.ingest().SerializeAsString() + UnknownVarints(kMaxFrame / 2);
  std::string nested_body;
  nested_body.push_back('\x12');  // field 2 (ingest), length-delimited
  AppendVarintForTest(batch.size(), &nested_body);
  nested_body += batch;
  std::size_t most = 0;
  for (uint64_t round = 0; round < 8; ++round) {
    SCOPED_TRACE(round);
    std::string out;
    handler.requests.clear();
    ASSERT_TRUE(Feed(c, Frame(2 * round + 1, UnknownVarints(kMaxFrame - 16)), &out));
    ASSERT_TRUE(Feed(c, Frame(2 * round + 2, nested_body), &out));
    ASSERT_EQ(handler.requests.size(), 2u);
    // All unknown: a request without a body (which the Service refuses).
    EXPECT_EQ(handler.requests[0].body_case(), v1::Request::BODY_NOT_SET);
    EXPECT_EQ(handler.requests[0].id(), 2 * round + 1);
    EXPECT_EQ(
        handler.requests[0].GetReflection()->GetUnknownFields(handler.requests[0]).field_count(),
        0);
    // The known fields of the nested message are kept, the unknown ones not.
    ASSERT_TRUE(handler.requests[1].has_ingest());
    EXPECT_EQ(handler.requests[1].ingest().series(), "s");
    EXPECT_EQ(handler.requests[1].ingest().x_size(), 1);
    EXPECT_EQ(handler.requests[1].ingest().ByteSizeLong(), ingest.ingest().ByteSizeLong());
    EXPECT_EQ(ParseResponses(out).size(), 2u);
    most = std::max(most, c.RequestSpaceUsedForTesting());
  }
  // Protobuf would hold ~16 bytes per 3-byte field: ~20 MiB here.
  EXPECT_LT(most, std::size_t{64} << 10);
}

// Skipping unknown fields must accept exactly what protobuf's parser
// accepts: a frame protobuf refuses is refused (and closes the connection),
// one it takes is the same request without its unknown fields.
TEST(ConnectionTest, UnknownFieldsAreSkippedExactlyAsProtobufParsesThem) {
  const auto groups = [](int depth, bool matched) {
    std::string body;
    for (int i = 0; i < depth; ++i) body += "\xa3\x3e";  // field 1000, start group
    for (int i = 0; i < depth; ++i) body += matched ? "\xa4\x3e" : "\xac\x3e";
    return body;
  };
  const std::vector<std::pair<const char*, std::string>> bodies = {
      {"a plain unknown varint", std::string("\x08\x01\xc0\x3e\x05", 5)},
      {"an overlong tag (6 bytes)", std::string("\xc0\xbe\x80\x80\x80\x00\x05", 7)},
      {"a tag of 5 bytes", std::string("\xc0\xbe\x80\x80\x00\x05", 6)},
      {"field number 0", std::string("\x02\x00", 2)},
      {"wire type 6", std::string("\xc6\x3e\x00", 3)},
      {"wire type 7", std::string("\xc7\x3e\x00", 3)},
      {"an end group out of place", std::string("\xc4\x3e", 2)},
      {"a varint of 11 bytes",
       std::string("\xc0\x3e\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x00", 13)},
      {"a varint of 10 bytes", std::string("\xc0\x3e\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 12)},
      {"a size of 6 bytes", std::string("\xc2\x3e\x80\x80\x80\x80\x80\x00", 8)},
      {"a size over 2 GiB", std::string("\xc2\x3e\xff\xff\xff\xff\x0f", 7)},
      {"a truncated fixed64", std::string("\xc1\x3e\x01\x02", 4)},
      {"an unknown group", groups(1, true)},
      {"an unknown group, wrong end", groups(1, false)},
      {"groups 100 deep", groups(100, true)},
      {"groups 101 deep", groups(101, true)},
      {"an unterminated group", std::string("\xa3\x3e\x08\x01", 4)},
      {"a known field with a wrong wire type", std::string("\x10\x01\x08\x02", 4)},
      {"unknown fields inside an ingest, bad UTF-8 series",
       std::string("\x12\x06\x0a\x01\xff\xc0\x3e\x01", 8)},
      {"unknown fields inside an ingest", std::string("\x12\x06\x0a\x01s\xc0\x3e\x01", 8)},
      {"an ingest shorter than its size", std::string("\x12\x09\x0a\x01s\xc0\x3e\x01", 8)},
  };
  for (const auto& [what, body] : bodies) {
    SCOPED_TRACE(what);
    v1::Request expected;
    const bool parses = expected.ParseFromString(body);
    expected.DiscardUnknownFields();
    EchoHandler handler;
    Connection c(handler, kCap);
    std::string out;
    std::string frame;
    AppendVarintForTest(body.size(), &frame);
    EXPECT_EQ(Feed(c, frame + body, &out), parses);
    ASSERT_EQ(handler.requests.size(), parses ? 1u : 0u);
    if (parses) {
      EXPECT_EQ(handler.requests[0].SerializeAsString(), expected.SerializeAsString());
    }
  }
}

}  // namespace
}  // namespace gradientd::protocol
