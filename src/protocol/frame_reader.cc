#include "protocol/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace gradientd::protocol {

FrameHeader FrameReader::Next(std::span<const uint8_t>* body) {
  const std::span<const uint8_t> pending(buffer_.data() + begin_, end_ - begin_);
  FrameHeader h = DecodeFrameHeader(pending, max_body_bytes_);
  if (h.kind == FrameHeader::Kind::kFrame) {
    *body = pending.subspan(h.header_bytes, h.body_bytes);
    begin_ += h.header_bytes + h.body_bytes;
    missing_ = 1;
  } else if (h.kind == FrameHeader::Kind::kNeedMore) {
    missing_ = h.missing;
  }
  return h;
}

std::span<uint8_t> FrameReader::Space() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t want = end_ + std::max(missing_, kMinReadBytes);
  if (buffer_.size() < want) buffer_.resize(want);
  return {buffer_.data() + end_, buffer_.size() - end_};
}

void FrameReader::Commit(std::size_t n) { end_ = std::min(end_ + n, buffer_.size()); }

}  // namespace gradientd::protocol
