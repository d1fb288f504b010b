#include "recording/recording.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <utility>

#include "protocol/frame_codec.h"

namespace gradientd::storage {
namespace {

constexpr std::size_t kReadChunk = 256 * 1024;

std::string ErrnoText(int error) { return std::strerror(error); }

Status OpenError(const std::string& path, int error) {
  return Status::InvalidArgument("cannot open " + path + ": " + ErrnoText(error));
}

// Writes all of `data`, retrying partial writes and EINTR. Returns 0 or errno.
int WriteAll(int fd, std::string_view data) {
  while (!data.empty()) {
    const ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno;
    }
    data.remove_prefix(static_cast<std::size_t>(n));
  }
  return 0;
}

// Reads up to `size` bytes, retrying EINTR. Returns the count, or -errno.
ssize_t ReadSome(int fd, uint8_t* data, std::size_t size) {
  while (true) {
    const ssize_t n = ::read(fd, data, size);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return -static_cast<ssize_t>(errno);
    return n;
  }
}

std::string Plural(uint64_t n, std::string_view noun) {
  std::string text = std::to_string(n) + " " + std::string(noun);
  if (n != 1) text += "s";
  return text;
}

// The header's bytes, printable.
std::string Printable(std::string_view bytes) {
  std::string text;
  for (const char c : bytes) {
    const auto u = static_cast<unsigned char>(c);
    if (u >= 0x20 && u < 0x7f) {
      text += c;
    } else {
      static constexpr char kHex[] = "0123456789abcdef";
      text += "\\x";
      text += kHex[u >> 4];
      text += kHex[u & 0xf];
    }
  }
  return text;
}

}  // namespace

bool LooksLikeRecording(std::string_view first_bytes) {
  if (first_bytes.empty()) return false;
  const std::size_t n = std::min(first_bytes.size(), kRecordingMagic.size());
  return first_bytes.substr(0, n) == kRecordingMagic.substr(0, n);
}

Status SniffRecording(const std::string& path, bool* is_recording) {
  *is_recording = false;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(path, errno);
  struct stat st {};
  if (::fstat(fd, &st) == 0 && S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("cannot read " + path + ": it is a directory");
  }
  uint8_t head[kRecordingHeaderBytes];
  std::size_t have = 0;
  while (have < sizeof head) {
    const ssize_t n = ReadSome(fd, head + have, sizeof head - have);
    if (n < 0) {
      const int error = static_cast<int>(-n);
      ::close(fd);
      return Status::InvalidArgument("cannot read " + path + ": " + ErrnoText(error));
    }
    if (n == 0) break;
    have += static_cast<std::size_t>(n);
  }
  ::close(fd);
  *is_recording = LooksLikeRecording(std::string_view(reinterpret_cast<const char*>(head), have));
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// RecordingWriter.

RecordingWriter::RecordingWriter(std::string path, int fd) : path_(std::move(path)), fd_(fd) {}

RecordingWriter::~RecordingWriter() { (void)Close(); }

Status RecordingWriter::Create(const std::string& path, std::unique_ptr<RecordingWriter>* writer) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    const int error = errno;
    return Status(error == ENOSPC || error == EDQUOT ? StatusCode::kResourceExhausted
                                                     : StatusCode::kInvalidArgument,
                  "cannot create recording " + path + ": " + ErrnoText(error));
  }
  std::unique_ptr<RecordingWriter> w(new RecordingWriter(path, fd));
  if (const int error = WriteAll(fd, kRecordingHeader); error != 0) {
    Status s = w->ErrnoStatus("write the header of", error);
    return s;
  }
  {
    util::MutexLock lock(w->mu_);
    w->bytes_ = kRecordingHeaderBytes;
  }
  *writer = std::move(w);
  return Status::Ok();
}

Status RecordingWriter::ErrnoStatus(const char* what, int error) const {
  return Status(
      error == ENOSPC || error == EDQUOT ? StatusCode::kResourceExhausted : StatusCode::kInternal,
      std::string("cannot ") + what + " recording " + path_ + ": " + ErrnoText(error));
}

Status RecordingWriter::Append(const v1::RecordedBatch& batch) {
  // Serialise outside the lock: only the copy into the buffer is serialised.
  std::string frame;
  protocol::AppendFrame(batch, &frame);
  util::MutexLock lock(mu_);
  if (!error_.ok()) return error_;
  if (fd_ < 0) return Status::FailedPrecondition("recording " + path_ + " is closed");
  buffer_ += frame;
  ++records_;
  bytes_ += frame.size();
  if (buffer_.size() >= kBufferBytes) return FlushLocked();
  return Status::Ok();
}

Status RecordingWriter::FlushLocked() {
  if (!error_.ok()) return error_;
  if (fd_ < 0) {
    return buffer_.empty() ? Status::Ok()
                           : Status::FailedPrecondition("recording " + path_ + " is closed");
  }
  if (const int error = WriteAll(fd_, buffer_); error != 0) {
    error_ = ErrnoStatus("write to", error);
    buffer_.clear();
    return error_;
  }
  buffer_.clear();
  return Status::Ok();
}

Status RecordingWriter::Flush() {
  util::MutexLock lock(mu_);
  return FlushLocked();
}

Status RecordingWriter::Sync() {
  util::MutexLock lock(mu_);
  if (Status s = FlushLocked(); !s.ok()) return s;
  if (fd_ < 0) return Status::FailedPrecondition("recording " + path_ + " is closed");
  if (::fsync(fd_) != 0) {
    error_ = ErrnoStatus("fsync", errno);
    return error_;
  }
  return Status::Ok();
}

Status RecordingWriter::Close() {
  util::MutexLock lock(mu_);
  if (fd_ < 0) return error_;
  Status s = FlushLocked();
  if (::close(fd_) != 0 && s.ok()) {
    error_ = ErrnoStatus("close", errno);
    s = error_;
  }
  fd_ = -1;
  return s;
}

uint64_t RecordingWriter::records() const {
  util::MutexLock lock(mu_);
  return records_;
}

uint64_t RecordingWriter::bytes() const {
  util::MutexLock lock(mu_);
  return bytes_;
}

// ---------------------------------------------------------------------------
// RecordingReader.

RecordingReader::RecordingReader(std::string path, int fd, uint64_t file_size)
    : path_(std::move(path)), fd_(fd), file_size_(file_size) {}

RecordingReader::~RecordingReader() {
  if (fd_ >= 0) ::close(fd_);
}

Status RecordingReader::Open(const std::string& path, std::unique_ptr<RecordingReader>* reader) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return OpenError(path, errno);
  struct stat st {};
  if (::fstat(fd, &st) != 0) {
    const int error = errno;
    ::close(fd);
    return Status::InvalidArgument("cannot read " + path + ": " + ErrnoText(error));
  }
  if (S_ISDIR(st.st_mode)) {
    ::close(fd);
    return Status::InvalidArgument("cannot read " + path + ": it is a directory");
  }
  std::unique_ptr<RecordingReader> r(
      new RecordingReader(path, fd, static_cast<uint64_t>(std::max<off_t>(st.st_size, 0))));
  if (Status s = r->Fill(kRecordingHeaderBytes); !s.ok()) return s;
  const std::string_view head(reinterpret_cast<const char*>(r->buffer_.data()),
                              std::min(r->end_, kRecordingHeaderBytes));
  if (head.empty()) {
    return Status::InvalidArgument(path +
                                   " is not a gradientd recording: the file is empty (a "
                                   "recording starts with the 8-byte header \"GRDREC01\")");
  }
  if (!LooksLikeRecording(head)) {
    return Status::InvalidArgument(path + " is not a gradientd recording: it starts with \"" +
                                   Printable(head.substr(0, 8)) +
                                   "\", not the header \"GRDREC01\"");
  }
  if (head.size() < kRecordingHeaderBytes) {
    return Status::InvalidArgument(path + ": truncated recording header: " +
                                   Plural(head.size(), "byte") + " of the 8 of \"GRDREC01\"");
  }
  const std::string_view version = head.substr(kRecordingMagic.size(), 2);
  if (version != kRecordingVersion) {
    return Status::InvalidArgument(path + ": unsupported recording version '" + Printable(version) +
                                   "' (this program reads version " +
                                   std::string(kRecordingVersion) + ")");
  }
  r->begin_ = kRecordingHeaderBytes;
  *reader = std::move(r);
  return Status::Ok();
}

Status RecordingReader::Fill(std::size_t at_least) {
  if (begin_ > 0) {  // compact
    std::copy(buffer_.begin() + static_cast<std::ptrdiff_t>(begin_),
              buffer_.begin() + static_cast<std::ptrdiff_t>(end_), buffer_.begin());
    end_ -= begin_;
    begin_ = 0;
  }
  const std::size_t want = end_ + std::max(at_least, kReadChunk);
  if (buffer_.size() < want) buffer_.resize(want);
  std::size_t got = 0;
  while (got < at_least && !eof_) {
    const ssize_t n = ReadSome(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (n < 0) {
      return Status::Internal("cannot read " + path_ + ": " + ErrnoText(static_cast<int>(-n)));
    }
    if (n == 0) {
      eof_ = true;
      break;
    }
    end_ += static_cast<std::size_t>(n);
    got += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

RecordingReader::Result RecordingReader::Next(v1::RecordedBatch* batch) {
  if (final_ != Result::kRecord) return final_;
  while (true) {
    const std::span<const uint8_t> pending(buffer_.data() + begin_, end_ - begin_);
    const protocol::FrameHeader h = protocol::DecodeFrameHeader(pending, kMaxRecordBytes);
    const std::string where = path_ + ": record " + std::to_string(records_ + 1) +
                              " at byte offset " + std::to_string(offset_);
    switch (h.kind) {
      case protocol::FrameHeader::Kind::kError:
        error_ =
            Status::InvalidArgument(where + " is corrupt: " +
                                    (h.oversize ? "it declares a size over the limit of " +
                                                      std::to_string(kMaxRecordBytes) + " bytes"
                                                : h.error));
        return final_ = Result::kError;
      case protocol::FrameHeader::Kind::kFrame: {
        batch->Clear();
        if (!batch->ParseFromArray(pending.data() + h.header_bytes,
                                   static_cast<int>(h.body_bytes))) {
          error_ = Status::InvalidArgument(where + " (" + Plural(h.body_bytes, "byte") +
                                           ") is corrupt: it is not a RecordedBatch");
          return final_ = Result::kError;
        }
        begin_ += h.header_bytes + h.body_bytes;
        offset_ += h.header_bytes + h.body_bytes;
        ++records_;
        return Result::kRecord;
      }
      case protocol::FrameHeader::Kind::kNeedMore:
        if (eof_) {
          truncated_bytes_ = pending.size();
          return final_ = pending.empty() ? Result::kEnd : Result::kTruncated;
        }
        if (Status s = Fill(h.missing); !s.ok()) {
          error_ = s;
          return final_ = Result::kError;
        }
        break;
    }
  }
}

std::string RecordingReader::TruncationMessage() const {
  return path_ + ": truncated at byte offset " + std::to_string(offset_) + " after " +
         Plural(records_, "whole record") + " (the last " + Plural(truncated_bytes_, "byte") +
         (truncated_bytes_ == 1 ? " is" : " are") + " an incomplete record)";
}

v1::RecordedBatch RecordAcceptedBatch(const std::string& series, const v1::PointBatch& batch,
                                      int64_t received_unix_nanos, int64_t event_time_unix_nanos) {
  v1::RecordedBatch record;
  record.set_series(series);
  *record.mutable_x() = batch.x();
  *record.mutable_y() = batch.y();
  record.set_producer_id(batch.producer_id());
  record.set_sequence(batch.sequence());
  record.set_time_unix_nanos(received_unix_nanos);
  record.set_event_time_unix_nanos(event_time_unix_nanos);
  return record;
}

}  // namespace gradientd::storage
