// Tests of protocol::Connection: what it does with whole requests (empty
// bodies, responses waiting on the change log, deferred long work, the time
// budget, unknown fields).
#include <gtest/gtest.h>

#include "connection_test_support.h"

namespace gradientd::protocol {
namespace {

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
