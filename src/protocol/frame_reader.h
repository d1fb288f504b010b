// FrameReader: the receive buffer of a connection, sans-I/O, for the blocking
// clients and the server's Connection alike. The caller reads bytes from its
// socket into Space(),
// Commit()s how many arrived, and asks Next() for whole frames. The size cap
// is checked as soon as a frame's header shows it (see DecodeFrameHeader),
// before its body is awaited or room for it is made.
//
// Not thread-safe: one reader per connection, used by one thread at a time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <vector>

#include "protocol/frame_codec.h"

namespace gradientd::protocol {

class FrameReader {
 public:
  // Room offered per read at least, so that small frames cost one read.
  static constexpr std::size_t kMinReadBytes = 64 * 1024;

  // Space() offers read-ahead beyond what the next frame needs: at first
  // kMinReadBytes; each read that fills all of it doubles it, up to
  // `max_read_ahead`. So the buffer holds at most two frames plus that.
  explicit FrameReader(std::size_t max_body_bytes, std::size_t max_read_ahead = kMinReadBytes)
      : max_body_bytes_(max_body_bytes), max_read_ahead_(max_read_ahead) {}

  // The frame at the front of the received bytes. kFrame: *body is its body,
  // valid until the next call of Space(); the frame is consumed. kNeedMore:
  // `missing` says how many more bytes are needed at least. kError: the
  // header is malformed or declares more than the cap; nothing is consumed.
  FrameHeader Next(std::span<const uint8_t>* body);

  // Whether Next() would return a frame or an error, not kNeedMore.
  bool HasFrame() const;
  // Gives back the frame the last Next() returned, to be returned again.
  // REQUIRES: no Space() since that Next().
  void PutBack() { begin_ = last_frame_begin_; }
  // Drops every received byte (after an error: nothing more is read).
  void DiscardAll() { begin_ = end_; }

  // Where the next read goes: at least max(missing, read-ahead) bytes,
  // after moving the unconsumed bytes to the front. `missing` is the last
  // kNeedMore's (1 before any).
  std::span<uint8_t> Space();
  // `n` bytes were read into the start of the last Space().
  void Commit(std::size_t n);

  // Received bytes not yet handed out as frames.
  std::size_t buffered() const { return end_ - begin_; }

 private:
  std::span<const uint8_t> Pending() const { return {buffer_.data() + begin_, end_ - begin_}; }

  const std::size_t max_body_bytes_;
  const std::size_t max_read_ahead_;
  std::size_t read_ahead_ = kMinReadBytes;
  std::size_t offered_ = 0;  // the size of the last Space()
  std::size_t last_frame_begin_ = 0;
  std::size_t missing_ = 1;
  std::vector<uint8_t> buffer_;
  std::size_t begin_ = 0, end_ = 0;  // the unconsumed bytes
};

}  // namespace gradientd::protocol
