// The protocol side of one connection, without I/O: the transport hands it
// received bytes, it decodes every whole frame, asks the handler for the
// response to each request, and hands back framed responses to send.
//
// Not synchronised: one connection is driven by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::protocol {

// Answers one request. Implementations must be safe to call from the
// threads that drive connections.
class RequestHandler {
 public:
  virtual ~RequestHandler() = default;
  // REQUIRES: response is empty.
  virtual void Handle(const v1::Request& request, v1::Response* response) = 0;
};

class Connection {
 public:
  Connection(RequestHandler& handler, std::size_t max_frame_bytes);

  // Writable space for at least the bytes the next frame still needs (and
  // at least some read-ahead); fill a prefix and call Received.
  std::span<uint8_t> ReceiveBuffer();
  void Received(std::size_t bytes);

  // Handles every whole frame received so far, appending one framed
  // response per request to `out`. Returns false when the connection must
  // be closed once `out` has been sent (a frame could not be decoded, or was
  // over the size limit); bytes after such a frame are never looked at.
  bool Process(std::string* out);

  // Bytes received that do not yet form a whole frame.
  std::size_t buffered() const { return end_ - begin_; }

 private:
  RequestHandler& handler_;
  const std::size_t max_frame_bytes_;
  std::vector<uint8_t> buffer_;
  std::size_t begin_ = 0;    // first unconsumed byte
  std::size_t end_ = 0;      // one past the last received byte
  std::size_t missing_ = 1;  // bytes the next frame still needs, at least
  v1::Request request_;      // reused across frames
  v1::Response response_;
};

}  // namespace gradientd::protocol
