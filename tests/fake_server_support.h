// What the scripted fake servers of the client tests share: reading the
// next request from a blocking socket, through the protocol's FrameReader.
#pragma once

#include <gtest/gtest.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/frame_reader.h"

namespace gradientd::testing {

// The next request on `socket` into *request; false once the client has
// closed the connection (or the read failed), or sent a frame that is not
// one (a bad header, or over the reader's cap).
inline bool ReadRequest(boost::asio::ip::tcp::socket& socket, protocol::FrameReader& reader,
                        v1::Request* request) {
  // Bounded: each round either returns or reads at least one byte.
  for (int round = 0; round < 1'000'000; ++round) {
    std::span<const uint8_t> body;
    const protocol::FrameHeader h = reader.Next(&body);
    if (h.kind == protocol::FrameHeader::Kind::kError) return false;
    if (h.kind == protocol::FrameHeader::Kind::kFrame) {
      EXPECT_TRUE(request->ParseFromArray(body.data(), static_cast<int>(body.size())));
      return true;
    }
    const std::span<uint8_t> space = reader.Space();
    boost::system::error_code ec;
    const std::size_t n = socket.read_some(boost::asio::buffer(space.data(), space.size()), ec);
    if (ec) return false;
    reader.Commit(n);
  }
  return false;
}

}  // namespace gradientd::testing
