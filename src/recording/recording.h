// Recording files: batches as they were sent (gradctl produce --save) or
// received (gradientd --record), for replay and inspection.
//
// Format (proto/gradientd/v1/recording.proto): the 8-byte header "GRDREC01"
// (magic "GRDREC", format version "01"), then any number of RecordedBatch
// messages, each framed like the wire protocol: a base-128 varint byte count,
// then the serialized message. There is no footer and no index, so a file cut
// short by a crash is readable up to its last whole record.
//
// Errors are Status values whose message names the file (and, for content
// errors, the byte offset) and the OS error.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "gradientd/v1/recording.pb.h"
#include "util/mutex.h"

namespace gradientd::storage {

// The header: magic and version.
inline constexpr std::string_view kRecordingMagic = "GRDREC";
inline constexpr std::string_view kRecordingVersion = "01";
inline constexpr std::string_view kRecordingHeader = "GRDREC01";
inline constexpr std::size_t kRecordingHeaderBytes = 8;
// The largest record a reader accepts: a declared size above it is
// corruption, not a record (a batch of 10^6 points is about 16 MiB).
inline constexpr std::size_t kMaxRecordBytes = std::size_t{1} << 30;

// Whether `first_bytes` (the first bytes of a file, up to 8) look like the
// start of a recording: they begin with the magic "GRDREC" (any version), or
// are a non-empty prefix of it. Used to tell recordings from CSV files.
bool LooksLikeRecording(std::string_view first_bytes);

// Reads up to the first 8 bytes of `path` and applies LooksLikeRecording.
// Fails if the file cannot be opened or read ("cannot open FILE: ...").
Status SniffRecording(const std::string& path, bool* is_recording);

// Appends records to a new file. Thread-safe: Append, Flush and Sync may be
// called from several threads; each record is written whole and records keep
// the order in which Append calls took the lock. Records are buffered in
// memory (up to kBufferBytes) and written with write(2) when the buffer is
// full or on Flush; Sync also fsyncs. A write error is sticky: every later
// call returns it.
class RecordingWriter {
 public:
  static constexpr std::size_t kBufferBytes = std::size_t{1} << 20;

  // Creates `path`, or truncates it, and writes the header (unbuffered, so
  // that even an empty recording is recognisable).
  static Status Create(const std::string& path, std::unique_ptr<RecordingWriter>* writer);

  // Flushes and closes, ignoring errors: call Close to see them.
  ~RecordingWriter();
  RecordingWriter(const RecordingWriter&) = delete;
  RecordingWriter& operator=(const RecordingWriter&) = delete;

  Status Append(const v1::RecordedBatch& batch);
  // Writes the buffered records to the file (the OS's page cache).
  Status Flush();
  // Flush, then fsync: the records reach stable storage.
  Status Sync();
  // Flush, then close the file. Later calls fail.
  Status Close();

  const std::string& path() const { return path_; }
  // Records appended so far, and the file's size once they are all written.
  uint64_t records() const;
  uint64_t bytes() const;

 private:
  RecordingWriter(std::string path, int fd);
  Status FlushLocked() REQUIRES(mu_);
  Status ErrnoStatus(const char* what, int error) const;

  const std::string path_;
  mutable util::Mutex mu_;
  int fd_ GUARDED_BY(mu_) = -1;
  std::string buffer_ GUARDED_BY(mu_);
  uint64_t records_ GUARDED_BY(mu_) = 0;
  uint64_t bytes_ GUARDED_BY(mu_) = 0;
  Status error_ GUARDED_BY(mu_);  // sticky
};

// The record of `batch`, received by the server for `series` at
// `received_unix_nanos` and applied at event time `event_time_unix_nanos`
// (gradientd --record): the recording keeps the event time as applied.
v1::RecordedBatch RecordAcceptedBatch(const std::string& series, const v1::PointBatch& batch,
                                      int64_t received_unix_nanos, int64_t event_time_unix_nanos);

// Reads a recording record by record, in bounded memory (one record and a
// read buffer). Not thread-safe.
class RecordingReader {
 public:
  enum class Result {
    kRecord,     // *batch holds the next record
    kEnd,        // the file ends after its last record
    kTruncated,  // the file ends inside a record: see TruncationMessage()
    kError,      // a record that does not parse, or a read error: see error()
  };

  // Opens `path` and checks its header. Errors: "cannot open FILE: ...",
  // "FILE is not a gradientd recording (...)", "FILE: unsupported recording
  // version 'NN' (...)", "FILE: truncated recording header (...)".
  static Status Open(const std::string& path, std::unique_ptr<RecordingReader>* reader);

  ~RecordingReader();
  RecordingReader(const RecordingReader&) = delete;
  RecordingReader& operator=(const RecordingReader&) = delete;

  // Reads the next record. kEnd, kTruncated and kError are final: later calls
  // return the same result.
  Result Next(v1::RecordedBatch* batch);

  // With kError: what is wrong, naming the file and the record's offset.
  const Status& error() const { return error_; }

  const std::string& path() const { return path_; }
  // Whole records returned so far.
  uint64_t records() const { return records_; }
  // The byte offset just past the last whole record returned (8 before any).
  // With kTruncated: where the incomplete record starts.
  uint64_t offset() const { return offset_; }
  // The file's size when it was opened.
  uint64_t file_size() const { return file_size_; }
  // With kTruncated: how many bytes of an incomplete record follow offset().
  uint64_t truncated_bytes() const { return truncated_bytes_; }
  // With kTruncated: "FILE: truncated at byte offset N after K whole records
  // (the last B bytes are an incomplete record)".
  std::string TruncationMessage() const;

 private:
  RecordingReader(std::string path, int fd, uint64_t file_size);
  // Reads more bytes into the buffer; sets eof_ at the end of the file.
  Status Fill(std::size_t at_least);

  const std::string path_;
  int fd_ = -1;
  uint64_t file_size_ = 0;
  std::vector<uint8_t> buffer_;
  std::size_t begin_ = 0;  // unread bytes are [begin_, end_)
  std::size_t end_ = 0;
  bool eof_ = false;
  uint64_t records_ = 0;
  uint64_t offset_ = kRecordingHeaderBytes;
  uint64_t truncated_bytes_ = 0;
  Result final_ = Result::kRecord;  // kRecord while not finished
  Status error_;
};

}  // namespace gradientd::storage
