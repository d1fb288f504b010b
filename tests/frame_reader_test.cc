// Tests of FrameReader, the sans-I/O receive buffer of the blocking client
// and of gradctl bench: bytes in through Space/Commit, whole frames out.
#include "protocol/frame_reader.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <limits>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_codec.h"

namespace gradientd::protocol {
namespace {

using Kind = FrameHeader::Kind;

constexpr std::size_t kMax = 1 << 20;

// Copies `bytes` into the reader as one read (asserting the room is there).
void Feed(FrameReader* reader, std::string_view bytes) {
  const std::span<uint8_t> space = reader->Space();
  ASSERT_GE(space.size(), bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  reader->Commit(bytes.size());
}

std::string Framed(uint64_t id, std::size_t series_bytes) {
  v1::Request request;
  request.set_id(id);
  request.mutable_gradient()->set_series(std::string(series_bytes, 's'));
  std::string frame;
  AppendFrame(request, &frame);
  return frame;
}

uint64_t IdOf(std::span<const uint8_t> body) {
  v1::Request request;
  EXPECT_TRUE(request.ParseFromArray(body.data(), static_cast<int>(body.size())));
  return request.id();
}

TEST(FrameReaderTest, EmptyReaderNeedsOneByte) {
  FrameReader reader(kMax);
  std::span<const uint8_t> body;
  const FrameHeader h = reader.Next(&body);
  EXPECT_EQ(h.kind, Kind::kNeedMore);
  EXPECT_EQ(h.missing, 1u);
  EXPECT_GE(reader.Space().size(), FrameReader::kMinReadBytes);
}

TEST(FrameReaderTest, WholeFrameInOneRead) {
  FrameReader reader(kMax);
  const std::string frame = Framed(7, 10);
  Feed(&reader, frame);
  std::span<const uint8_t> body;
  ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
  EXPECT_EQ(body.size(), frame.size() - 1);
  EXPECT_EQ(IdOf(body), 7u);
  EXPECT_EQ(reader.buffered(), 0u);
  EXPECT_EQ(reader.Next(&body).kind, Kind::kNeedMore);
}

TEST(FrameReaderTest, ByteByByteSaysExactlyWhatIsMissingOnceTheHeaderIsIn) {
  FrameReader reader(kMax);
  const std::string frame = Framed(3, 200);  // a two-byte header
  std::span<const uint8_t> body;
  for (std::size_t i = 0; i < frame.size(); ++i) {
    const FrameHeader h = reader.Next(&body);
    ASSERT_EQ(h.kind, Kind::kNeedMore) << "at byte " << i;
    if (i >= 2) {
      EXPECT_EQ(h.missing, frame.size() - i);
    }
    Feed(&reader, std::string_view(frame).substr(i, 1));
  }
  ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
  EXPECT_EQ(IdOf(body), 3u);
}

TEST(FrameReaderTest, SeveralFramesInOneReadComeOutInOrder) {
  FrameReader reader(kMax);
  std::string bytes;
  for (uint64_t id = 1; id <= 5; ++id) bytes += Framed(id, id * 30);
  const std::string partial = Framed(6, 40);
  bytes += partial.substr(0, 10);
  Feed(&reader, bytes);
  std::span<const uint8_t> body;
  for (uint64_t id = 1; id <= 5; ++id) {
    ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
    EXPECT_EQ(IdOf(body), id);
  }
  const FrameHeader h = reader.Next(&body);
  ASSERT_EQ(h.kind, Kind::kNeedMore);
  EXPECT_EQ(h.missing, partial.size() - 10);
  EXPECT_EQ(reader.buffered(), 10u);
  // The rest, after the consumed frames were compacted away.
  Feed(&reader, std::string_view(partial).substr(10));
  ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
  EXPECT_EQ(IdOf(body), 6u);
}

TEST(FrameReaderTest, SpaceHoldsAFrameLargerThanOneRead) {
  FrameReader reader(kMax);
  const std::string frame = Framed(9, 3 * FrameReader::kMinReadBytes);
  Feed(&reader, std::string_view(frame).substr(0, 100));
  std::span<const uint8_t> body;
  const FrameHeader h = reader.Next(&body);
  ASSERT_EQ(h.kind, Kind::kNeedMore);
  EXPECT_EQ(reader.Space().size(), std::max(h.missing, FrameReader::kMinReadBytes));
  Feed(&reader, std::string_view(frame).substr(100));
  ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
  EXPECT_EQ(IdOf(body), 9u);
}

TEST(FrameReaderTest, OversizeIsAnErrorBeforeTheBodyArrives) {
  FrameReader reader(100);
  Feed(&reader, Framed(1, 200).substr(0, 2));  // the header only
  std::span<const uint8_t> body;
  const FrameHeader h = reader.Next(&body);
  EXPECT_EQ(h.kind, Kind::kError);
  EXPECT_TRUE(h.oversize);
  EXPECT_NE(h.error.find("limit of 100 bytes"), std::string::npos) << h.error;
}

TEST(FrameReaderTest, FrameAtTheCapIsAccepted) {
  const std::string frame = Framed(1, 100);  // a one-byte header
  ASSERT_LT(frame.size(), 128u);
  FrameReader reader(frame.size() - 1);  // the body's exact size
  Feed(&reader, frame);
  std::span<const uint8_t> body;
  EXPECT_EQ(reader.Next(&body).kind, Kind::kFrame);
}

TEST(FrameReaderTest, MalformedHeaderIsAnError) {
  FrameReader reader(std::numeric_limits<std::size_t>::max());
  Feed(&reader, std::string(10, '\xff'));  // a varint longer than 64 bits
  std::span<const uint8_t> body;
  const FrameHeader h = reader.Next(&body);
  EXPECT_EQ(h.kind, Kind::kError);
  EXPECT_FALSE(h.oversize);
}

TEST(FrameReaderTest, EmptyBodyIsAFrame) {
  FrameReader reader(kMax);
  Feed(&reader, std::string(1, '\0'));
  std::span<const uint8_t> body;
  ASSERT_EQ(reader.Next(&body).kind, Kind::kFrame);
  EXPECT_TRUE(body.empty());
  EXPECT_EQ(reader.buffered(), 0u);
}

}  // namespace
}  // namespace gradientd::protocol
