// Tests of the sans-I/O framing (DecodeFrameHeader / AppendFrame), including
// byte-for-byte compatibility with protobuf's own length-delimited form.
#include "protocol/frame_codec.h"

#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <google/protobuf/util/delimited_message_util.h>
#include <google/protobuf/util/message_differencer.h>
#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <span>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::protocol {
namespace {

using google::protobuf::util::MessageDifferencer;

constexpr std::size_t kMax = 1 << 20;

std::span<const uint8_t> Bytes(std::string_view s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

std::string Raw(std::initializer_list<uint8_t> bytes) {
  return std::string(bytes.begin(), bytes.end());
}

// Real requests of every kind, including presence-only optionals set to 0,
// an empty request, and bodies whose size needs 1, 2 and 3 varint bytes.
std::vector<v1::Request> SampleRequests(bool with_big = true) {
  std::vector<v1::Request> out;
  {
    v1::Request r;
    r.set_id(1);
    auto* b = r.mutable_ingest();
    b->set_series("temps");
    for (double v : {1.0, -2.5, 1e150, 0.0}) b->add_x(v);
    for (double v : {52.0, 74.0, -1e-300, 3.0}) b->add_y(v);
    b->set_producer_id("producer-7");
    b->set_sequence(42);
    out.push_back(r);
  }
  {
    v1::Request r;
    r.set_id(2);
    r.mutable_gradient()->set_m(0);  // present, zero
    out.push_back(r);
  }
  {
    v1::Request r;
    r.set_id(3);
    r.mutable_fit()->set_series("default");
    out.push_back(r);
  }
  {
    v1::Request r;
    r.set_id((uint64_t{1} << 63) + 5);
    auto* s = r.mutable_step();
    s->set_series("s");
    s->set_iterations(1000);
    s->set_learning_rate(0.01);
    s->set_tolerance(1e-9);
    out.push_back(r);
  }
  {
    v1::Request r;
    r.set_id(5);
    auto* c = r.mutable_configure();
    c->set_learning_rate(0);
    c->set_steps_per_batch(0);
    c->set_b(-1);
    out.push_back(r);
  }
  out.emplace_back();  // empty: a zero-length frame
  {
    v1::Request r;
    r.set_id(7);
    r.mutable_reset()->set_series(std::string(150, 'r'));  // 2-byte header
    out.push_back(r);
  }
  {
    v1::Request r;
    r.set_id(8);
    r.mutable_list();
    out.push_back(r);
  }
  if (with_big) {
    v1::Request r;
    r.set_id(9);
    auto* b = r.mutable_ingest();
    for (int i = 0; i < 3000; ++i) {
      b->add_x(1.7e9 + i);
      b->add_y(0.5 * i);
    }
    out.push_back(r);  // ~48 KB: 3-byte header
  }
  return out;
}

std::string Frames(const std::vector<v1::Request>& requests) {
  std::string out;
  for (const auto& r : requests) AppendFrame(r, &out);
  return out;
}

// A stream decoder built only on DecodeFrameHeader, as a transport would
// use it; checks the header's invariants on every call.
class TestDecoder {
 public:
  explicit TestDecoder(std::size_t max = kMax) : max_(max) {}

  void Feed(std::string_view chunk) {
    buffer_.append(chunk);
    while (!error_) {
      const FrameHeader h = DecodeFrameHeader(Bytes(buffer_), max_);
      if (h.kind == FrameHeader::Kind::kNeedMore) {
        EXPECT_GE(h.missing, 1u);
        return;
      }
      if (h.kind == FrameHeader::Kind::kError) {
        error_ = true;
        return;
      }
      EXPECT_EQ(h.missing, 0u);
      EXPECT_GE(h.header_bytes, 1u);
      EXPECT_LE(h.header_bytes, kMaxHeaderBytes);
      EXPECT_LE(h.header_bytes + h.body_bytes, buffer_.size());
      v1::Request r;
      EXPECT_TRUE(
          r.ParseFromArray(buffer_.data() + h.header_bytes, static_cast<int>(h.body_bytes)));
      decoded_.push_back(r);
      buffer_.erase(0, h.header_bytes + h.body_bytes);
    }
  }

  const std::vector<v1::Request>& decoded() const { return decoded_; }
  std::size_t buffered() const { return buffer_.size(); }
  bool error() const { return error_; }

 private:
  std::size_t max_;
  std::string buffer_;
  std::vector<v1::Request> decoded_;
  bool error_ = false;
};

void ExpectSameRequests(const std::vector<v1::Request>& got, const std::vector<v1::Request>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < got.size(); ++i) {
    EXPECT_TRUE(MessageDifferencer::Equals(got[i], want[i]))
        << "request " << i << ":\n got " << got[i].ShortDebugString() << "\nwant "
        << want[i].ShortDebugString();
  }
}

// ---------------------------------------------------------------------------
// Round trips.

TEST(FrameCodecTest, RoundTripsRealRequests) {
  const auto requests = SampleRequests();
  std::string stream = "prefix";
  for (const auto& r : requests) AppendFrame(r, &stream);
  ASSERT_EQ(stream.substr(0, 6), "prefix") << "AppendFrame appends";
  std::string_view rest = std::string_view(stream).substr(6);
  for (const auto& want : requests) {
    const FrameHeader h = DecodeFrameHeader(Bytes(rest), kMax);
    ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
    EXPECT_EQ(h.body_bytes, want.ByteSizeLong());
    v1::Request got;
    ASSERT_TRUE(got.ParseFromArray(rest.data() + h.header_bytes, static_cast<int>(h.body_bytes)));
    EXPECT_TRUE(MessageDifferencer::Equals(got, want)) << got.ShortDebugString();
    // Presence of zero-valued optionals survives.
    if (want.has_gradient()) {
      EXPECT_TRUE(got.gradient().has_m());
    }
    if (want.has_configure()) {
      EXPECT_TRUE(got.configure().has_steps_per_batch());
    }
    rest.remove_prefix(h.header_bytes + h.body_bytes);
  }
  EXPECT_TRUE(rest.empty());
}

TEST(FrameCodecTest, HeaderIsTheShortestVarint) {
  // Bodies on both sides of the 1/2/3-byte varint boundaries (128, 16384).
  std::vector<std::size_t> names = {0, 1, 100, 100000};
  for (std::size_t n = 118; n < 130; ++n) names.push_back(n);
  for (std::size_t n = 16370; n < 16385; ++n) names.push_back(n);
  std::size_t seen_2 = 0, seen_3 = 0;
  for (const std::size_t n : names) {
    v1::Request r;
    r.mutable_fit()->set_series(std::string(n, 'n'));
    const std::size_t body = r.ByteSizeLong();
    const std::size_t header = body < 128 ? 1 : body < 16384 ? 2 : 3;
    seen_2 += header == 2;
    seen_3 += header == 3;
    std::string out;
    AppendFrame(r, &out);
    ASSERT_EQ(out.size(), header + body) << "body " << body;
    const FrameHeader h = DecodeFrameHeader(Bytes(out), kMax);
    ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
    EXPECT_EQ(h.header_bytes, header) << "body " << body;
    EXPECT_EQ(h.body_bytes, body);
  }
  EXPECT_GT(seen_2, 1u);
  EXPECT_GT(seen_3, 1u);
}

// ---------------------------------------------------------------------------
// Streams split anywhere.

TEST(FrameCodecTest, StreamSplitAtEveryOffsetDecodesTheSame) {
  const auto requests = SampleRequests(/*with_big=*/false);
  const std::string stream = Frames(requests);
  ASSERT_GT(stream.size(), 300u);
  for (std::size_t cut = 0; cut <= stream.size(); ++cut) {
    TestDecoder d;
    d.Feed(std::string_view(stream).substr(0, cut));
    d.Feed(std::string_view(stream).substr(cut));
    ASSERT_FALSE(d.error()) << "cut " << cut;
    EXPECT_EQ(d.buffered(), 0u);
    SCOPED_TRACE("cut at " + std::to_string(cut));
    ExpectSameRequests(d.decoded(), requests);
  }
}

TEST(FrameCodecTest, StreamFedByteByByteDecodesTheSame) {
  const auto requests = SampleRequests(/*with_big=*/true);
  const std::string stream = Frames(requests);
  TestDecoder d;
  for (char c : stream) d.Feed(std::string_view(&c, 1));
  ASSERT_FALSE(d.error());
  EXPECT_EQ(d.buffered(), 0u);
  ExpectSameRequests(d.decoded(), requests);
}

TEST(FrameCodecTest, StreamInRandomChunksDecodesTheSame) {
  const auto requests = SampleRequests(/*with_big=*/true);
  const std::string stream = Frames(requests);
  std::mt19937_64 rng(17);
  for (int trial = 0; trial < 50; ++trial) {
    TestDecoder d;
    std::size_t at = 0;
    while (at < stream.size()) {
      const std::size_t len =
          std::uniform_int_distribution<std::size_t>(0, 70000)(rng) >> (trial % 16);
      d.Feed(std::string_view(stream).substr(at, len));
      at += len;
    }
    ASSERT_FALSE(d.error());
    ExpectSameRequests(d.decoded(), requests);
  }
}

// ---------------------------------------------------------------------------
// kNeedMore and `missing`.

TEST(FrameCodecTest, NeedMoreReportsMissingBytes) {
  for (const auto& request : SampleRequests()) {
    std::string frame;
    AppendFrame(request, &frame);
    const std::size_t body = request.ByteSizeLong();
    const std::size_t header = frame.size() - body;
    // Every proper prefix needs more: at least 1, never more than the rest of
    // the frame, and exactly the rest once the header is complete.
    for (std::size_t p = 0; p < frame.size(); ++p) {
      const FrameHeader h = DecodeFrameHeader(Bytes(std::string_view(frame).substr(0, p)), kMax);
      ASSERT_EQ(h.kind, FrameHeader::Kind::kNeedMore) << "prefix " << p;
      EXPECT_GE(h.missing, 1u);
      EXPECT_LE(h.missing, frame.size() - p) << "prefix " << p;
      if (p >= header) {
        EXPECT_EQ(h.missing, frame.size() - p) << "prefix " << p;
        EXPECT_EQ(h.header_bytes, header);
        EXPECT_EQ(h.body_bytes, body);
      }
    }
    // The whole frame, alone or followed by part of the next.
    for (const std::string& tail : {std::string(), std::string("\x05\x08", 2)}) {
      const std::string buffer = frame + tail;
      const FrameHeader h = DecodeFrameHeader(Bytes(buffer), kMax);
      ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
      EXPECT_EQ(h.header_bytes, header);
      EXPECT_EQ(h.body_bytes, body);
      EXPECT_EQ(h.missing, 0u);
    }
  }
}

TEST(FrameCodecTest, EmptyBufferNeedsOneByte) {
  const FrameHeader h = DecodeFrameHeader({}, kMax);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kNeedMore);
  EXPECT_EQ(h.missing, 1u);
}

// ---------------------------------------------------------------------------
// Oversize and malformed headers.

TEST(FrameCodecTest, OversizeRejectedFromTheHeaderAlone) {
  // One header byte declaring 101 bytes, limit 100: no body needed.
  FrameHeader h = DecodeFrameHeader(Bytes(Raw({101})), 100);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_TRUE(h.oversize);
  EXPECT_FALSE(h.error.empty());
  // Exactly the limit is fine.
  h = DecodeFrameHeader(Bytes(Raw({100})), 100);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kNeedMore);
  EXPECT_EQ(h.missing, 100u);
  EXPECT_FALSE(h.oversize);
  // A limit of 0 allows only empty frames.
  EXPECT_EQ(DecodeFrameHeader(Bytes(Raw({0})), 0).kind, FrameHeader::Kind::kFrame);
  EXPECT_TRUE(DecodeFrameHeader(Bytes(Raw({1})), 0).oversize);
}

TEST(FrameCodecTest, OversizeRejectedAsSoonAsTheVarintShowsIt) {
  // 1,000,000 = varint C0 84 3D; after two bytes the value is already at
  // least 64 + 4*128 = 576 (later bytes only add).
  const std::string header = Raw({0xC0, 0x84, 0x3D});
  // Limit 500: known to be too big after two bytes.
  EXPECT_EQ(DecodeFrameHeader(Bytes(header.substr(0, 1)), 500).kind, FrameHeader::Kind::kNeedMore);
  FrameHeader h = DecodeFrameHeader(Bytes(header.substr(0, 2)), 500);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_TRUE(h.oversize);
  // Limit 1000: only after the third.
  EXPECT_EQ(DecodeFrameHeader(Bytes(header.substr(0, 2)), 1000).kind, FrameHeader::Kind::kNeedMore);
  h = DecodeFrameHeader(Bytes(header), 1000);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_TRUE(h.oversize);
  // Limit 1,000,000: fine, and waits for exactly the body.
  h = DecodeFrameHeader(Bytes(header), 1'000'000);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kNeedMore);
  EXPECT_EQ(h.header_bytes, 3u);
  EXPECT_EQ(h.missing, 1'000'000u);
}

TEST(FrameCodecTest, HugeTenByteVarintIsOversize) {
  // UINT64_MAX: FF x 9, 01. Over a 1 MiB limit after 3 bytes (2^21 - 1).
  std::string max_u64(9, '\xFF');
  max_u64 += '\x01';
  for (std::size_t p = 1; p <= max_u64.size(); ++p) {
    const FrameHeader h = DecodeFrameHeader(Bytes(max_u64.substr(0, p)), kMax);
    if (p < 3) {
      EXPECT_EQ(h.kind, FrameHeader::Kind::kNeedMore) << p;
    } else {
      EXPECT_EQ(h.kind, FrameHeader::Kind::kError) << p;
      EXPECT_TRUE(h.oversize) << p;
    }
  }
  // 2^63: 80 x 9, 01. Nothing shows the size until the tenth byte.
  std::string two_63(9, '\x80');
  two_63 += '\x01';
  for (std::size_t p = 1; p < two_63.size(); ++p) {
    EXPECT_EQ(DecodeFrameHeader(Bytes(two_63.substr(0, p)), kMax).kind,
              FrameHeader::Kind::kNeedMore)
        << p;
  }
  const FrameHeader h = DecodeFrameHeader(Bytes(two_63), kMax);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_TRUE(h.oversize);
  // With an unlimited cap, the largest 64-bit varint is a (huge) need-more,
  // not an error: the decoder does not overflow.
  const FrameHeader u = DecodeFrameHeader(Bytes(max_u64), std::numeric_limits<std::size_t>::max());
  EXPECT_EQ(u.kind, FrameHeader::Kind::kNeedMore);
  EXPECT_EQ(u.header_bytes, 10u);
  EXPECT_EQ(u.body_bytes, std::numeric_limits<uint64_t>::max());
}

TEST(FrameCodecTest, MalformedVarintIsAnError) {
  constexpr std::size_t kUnlimited = std::numeric_limits<std::size_t>::max();
  // 11 continuation bytes: no 64-bit varint is that long.
  const std::string eleven(11, '\x80');
  for (const std::size_t cap : {kMax, kUnlimited}) {
    FrameHeader h = DecodeFrameHeader(Bytes(eleven), cap);
    EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
    EXPECT_FALSE(h.oversize);
    EXPECT_FALSE(h.error.empty());
    // Ten continuation bytes already prove it.
    h = DecodeFrameHeader(Bytes(eleven.substr(0, 10)), cap);
    EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
    EXPECT_FALSE(h.oversize);
    // Nine could still end well.
    EXPECT_EQ(DecodeFrameHeader(Bytes(eleven.substr(0, 9)), cap).kind,
              FrameHeader::Kind::kNeedMore);
  }
  // A tenth byte carrying bits beyond 64: 2^64 and up.
  std::string beyond(9, '\xFF');
  beyond += '\x02';
  FrameHeader h = DecodeFrameHeader(Bytes(beyond), kUnlimited);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_FALSE(h.oversize);
}

TEST(FrameCodecTest, TenthByteWithBit63AndContinuationIsOversizeUnderACap) {
  // 80 x 9, 81: bit 63 is set and the varint claims to go on. The bits seen
  // already exceed any cap, so it is oversize (found by frame_decoder_fuzz);
  // without a cap, the eleventh byte it asks for makes it malformed.
  std::string header(9, '\x80');
  header += '\x81';
  FrameHeader h = DecodeFrameHeader(Bytes(header), kMax);
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_TRUE(h.oversize);
  h = DecodeFrameHeader(Bytes(header), std::numeric_limits<std::size_t>::max());
  EXPECT_EQ(h.kind, FrameHeader::Kind::kError);
  EXPECT_FALSE(h.oversize);
}

TEST(FrameCodecTest, ZeroLengthFrameIsAValidEmptyFrame) {
  std::string out;
  AppendFrame(v1::Request(), &out);
  EXPECT_EQ(out, std::string(1, '\0'));
  const FrameHeader h = DecodeFrameHeader(Bytes(out), kMax);
  ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
  EXPECT_EQ(h.header_bytes, 1u);
  EXPECT_EQ(h.body_bytes, 0u);
  v1::Request r;
  r.set_id(3);
  ASSERT_TRUE(r.ParseFromArray(out.data() + 1, 0));
  EXPECT_EQ(r.id(), 0u);
  EXPECT_EQ(r.body_case(), v1::Request::BODY_NOT_SET);
  // Even with a limit of 0, and several in a row.
  TestDecoder d(0);
  d.Feed(std::string(3, '\0'));
  EXPECT_FALSE(d.error());
  EXPECT_EQ(d.decoded().size(), 3u);
}

// ---------------------------------------------------------------------------
// Wire compatibility with protobuf's delimited form.

TEST(FrameCodecTest, MatchesProtobufSerializeDelimited) {
  const auto requests = SampleRequests();
  std::ostringstream theirs;
  for (const auto& r : requests) {
    std::ostringstream one;
    ASSERT_TRUE(google::protobuf::util::SerializeDelimitedToOstream(r, &one));
    std::string ours;
    AppendFrame(r, &ours);
    EXPECT_EQ(ours, one.str()) << r.ShortDebugString().substr(0, 200);
    ASSERT_TRUE(google::protobuf::util::SerializeDelimitedToOstream(r, &theirs));
  }
  // Protobuf's stream decodes with ours ...
  TestDecoder d;
  d.Feed(theirs.str());
  ASSERT_FALSE(d.error());
  ExpectSameRequests(d.decoded(), requests);
  // ... and ours with protobuf's ParseDelimitedFromZeroCopyStream.
  const std::string stream = Frames(requests);
  google::protobuf::io::ArrayInputStream input(stream.data(), static_cast<int>(stream.size()));
  std::vector<v1::Request> parsed;
  while (true) {
    v1::Request r;
    bool clean_eof = false;
    if (!google::protobuf::util::ParseDelimitedFromZeroCopyStream(&r, &input, &clean_eof)) {
      EXPECT_TRUE(clean_eof) << "protobuf failed to parse frame " << parsed.size();
      break;
    }
    parsed.push_back(r);
  }
  ExpectSameRequests(parsed, requests);
}

TEST(FrameCodecTest, AcceptsNonCanonicalVarintLikeProtobuf) {
  // A 2-byte body (id = 5) behind an overlong, non-canonical header:
  // 0x82 0x80 0x00 is the varint 2 in three bytes.
  v1::Request want;
  want.set_id(5);
  ASSERT_EQ(want.ByteSizeLong(), 2u);
  const std::string stream = Raw({0x82, 0x80, 0x00}) + want.SerializeAsString();
  const FrameHeader h = DecodeFrameHeader(Bytes(stream), kMax);
  ASSERT_EQ(h.kind, FrameHeader::Kind::kFrame);
  EXPECT_EQ(h.header_bytes, 3u);
  EXPECT_EQ(h.body_bytes, 2u);
  google::protobuf::io::ArrayInputStream input(stream.data(), static_cast<int>(stream.size()));
  v1::Request theirs;
  bool clean_eof = false;
  ASSERT_TRUE(
      google::protobuf::util::ParseDelimitedFromZeroCopyStream(&theirs, &input, &clean_eof));
  EXPECT_TRUE(MessageDifferencer::Equals(theirs, want));
}

}  // namespace
}  // namespace gradientd::protocol
