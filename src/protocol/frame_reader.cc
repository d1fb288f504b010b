#include "protocol/frame_reader.h"

#include <algorithm>
#include <cstring>

namespace gradientd::protocol {

FrameHeader FrameReader::Next(std::span<const uint8_t>* body) {
  const std::span<const uint8_t> pending = Pending();
  FrameHeader h = DecodeFrameHeader(pending, max_body_bytes_);
  if (h.kind == FrameHeader::Kind::kFrame) {
    *body = pending.subspan(h.header_bytes, h.body_bytes);
    last_frame_begin_ = begin_;
    begin_ += h.header_bytes + h.body_bytes;
    missing_ = 1;
  } else if (h.kind == FrameHeader::Kind::kNeedMore) {
    missing_ = h.missing;
  }
  return h;
}

bool FrameReader::HasFrame() const {
  return DecodeFrameHeader(Pending(), max_body_bytes_).kind != FrameHeader::Kind::kNeedMore;
}

std::span<uint8_t> FrameReader::Space() {
  if (begin_ > 0) {
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t want = end_ + std::max(missing_, read_ahead_);
  if (buffer_.size() < want) buffer_.resize(want);
  offered_ = buffer_.size() - end_;
  return {buffer_.data() + end_, offered_};
}

void FrameReader::Commit(std::size_t n) {
  end_ = std::min(end_ + n, buffer_.size());
  // A read that filled all the space offered: the peer sends faster than
  // we read, so read more at a time (fewer system calls).
  if (n >= offered_ && read_ahead_ < max_read_ahead_) {
    read_ahead_ = std::min(2 * read_ahead_, max_read_ahead_);
  }
}

}  // namespace gradientd::protocol
