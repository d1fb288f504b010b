// RawConnection: the blocking TCP connection of bench's producers and
// probes. It writes raw bytes (pre-built frames, gather writes) and reads
// whole frames through a protocol::FrameReader. Not thread-safe: one thread
// at a time.
#pragma once

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <span>
#include <string>

#include "client/client.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "protocol/endpoint.h"
#include "protocol/frame_reader.h"

namespace gradientd::cli::bench {

class RawConnection {
 public:
  RawConnection();

  // Connects (with the options' congestion control); with the options'
  // token, authenticates with a Hello and waits for its reply.
  Status Connect(const protocol::Endpoint& endpoint, const client::ConnectOptions& options = {});

  // The socket's TCP congestion control.
  std::string congestion();

  template <typename ConstBufferSequence>
  Status Write(const ConstBufferSequence& buffers) {
    boost::system::error_code ec;
    boost::asio::write(socket_, buffers, ec);
    return ec ? Broken(ec) : Status::Ok();
  }

  // The next frame's body, reading until a whole frame is there. The body is
  // valid until the next call.
  Status WaitFrame(std::span<const uint8_t>* body);
  // The same without waiting: reads only what has already arrived; sets
  // *got = false when that holds no whole frame.
  Status PollFrame(std::span<const uint8_t>* body, bool* got);

  void Close();

 private:
  Status Open(const protocol::Endpoint& endpoint, const std::string& tcp_congestion);
  Status NextFrame(bool wait, std::span<const uint8_t>* body, bool* got);
  Status Broken(const boost::system::error_code& ec) const;

  boost::asio::io_context io_;
  boost::asio::ip::tcp::socket socket_{io_};
  std::string name_;
  protocol::FrameReader reader_;
};

// Decodes `body` into *response. The server's Error response as its Status
// (the server's code, "server error CODE: message"); a response of another
// kind than `expected` as an internal error.
Status CheckResponse(std::span<const uint8_t> body, v1::Response::BodyCase expected,
                     v1::Response* response);

}  // namespace gradientd::cli::bench
