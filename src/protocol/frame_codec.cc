#include "protocol/frame_codec.h"

#include <google/protobuf/io/coded_stream.h>

namespace gradientd::protocol {

FrameHeader DecodeFrameHeader(std::span<const uint8_t> buffer, std::size_t max_body_bytes) {
  FrameHeader h;
  uint64_t size = 0;
  for (std::size_t i = 0; i < kMaxHeaderBytes; ++i) {
    if (i == buffer.size()) {
      h.kind = FrameHeader::Kind::kNeedMore;
      h.missing = 1;
      return h;
    }
    const uint8_t byte = buffer[i];
    const uint64_t bits = byte & 0x7f;
    if (i == kMaxHeaderBytes - 1 && bits > 1) break;  // beyond 64 bits
    size |= bits << (7 * i);
    if (size > max_body_bytes) {
      h.kind = FrameHeader::Kind::kError;
      h.oversize = true;
      h.error =
          "frame declares more than the limit of " + std::to_string(max_body_bytes) + " bytes";
      return h;
    }
    if ((byte & 0x80) == 0) {
      h.header_bytes = i + 1;
      h.body_bytes = static_cast<std::size_t>(size);
      const std::size_t have = buffer.size() - h.header_bytes;
      if (have >= h.body_bytes) {
        h.kind = FrameHeader::Kind::kFrame;
        h.missing = 0;
      } else {
        h.kind = FrameHeader::Kind::kNeedMore;
        h.missing = h.body_bytes - have;
      }
      return h;
    }
  }
  h.kind = FrameHeader::Kind::kError;
  h.error = "malformed frame header: varint longer than 64 bits";
  return h;
}

void AppendFrame(const google::protobuf::MessageLite& message, std::string* out) {
  const std::size_t body = message.ByteSizeLong();
  const std::size_t header = google::protobuf::io::CodedOutputStream::VarintSize64(body);
  const std::size_t start = out->size();
  out->resize(start + header + body);
  auto* p = reinterpret_cast<uint8_t*>(out->data() + start);
  p = google::protobuf::io::CodedOutputStream::WriteVarint64ToArray(body, p);
  message.SerializeWithCachedSizesToArray(p);
}

}  // namespace gradientd::protocol
