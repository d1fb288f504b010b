// Sans-I/O framing: protobuf's length-delimited form, a base-128 varint byte
// count followed by the message. Works on bytes handed to it; never touches a
// socket.
#pragma once

#include <google/protobuf/message_lite.h>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

namespace gradientd::protocol {

// The longest varint a frame header may use (a 64-bit count).
inline constexpr std::size_t kMaxHeaderBytes = 10;

struct FrameHeader {
  enum class Kind {
    kNeedMore,  // the buffer ends before the frame does; see `missing`
    kFrame,     // a whole frame is buffered at [header_bytes, header_bytes + body_bytes)
    kError,     // malformed or oversize header; see `error`
  };
  Kind kind = Kind::kNeedMore;
  std::size_t header_bytes = 0;
  std::size_t body_bytes = 0;
  // With kNeedMore: how many more bytes are needed at least (exact once the
  // header is complete).
  std::size_t missing = 1;
  bool oversize = false;  // with kError: the declared size is over the cap
  std::string error;
};

// Decodes the frame at the start of `buffer`. A declared size above
// `max_body_bytes` is an error as soon as the varint shows it, before any of
// the body is awaited or allocated.
FrameHeader DecodeFrameHeader(std::span<const uint8_t> buffer, std::size_t max_body_bytes);

// Appends `message` framed (varint size, then the bytes) to `out`.
void AppendFrame(const google::protobuf::MessageLite& message, std::string* out);

}  // namespace gradientd::protocol
