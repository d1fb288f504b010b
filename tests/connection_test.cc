// Tests of protocol::Connection, the sans-I/O per-connection state machine:
// framing (pipelining at every split, read-ahead, bad and oversize frames).
#include <gtest/gtest.h>

#include "connection_test_support.h"

namespace gradientd::protocol {
namespace {

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

}  // namespace
}  // namespace gradientd::protocol
