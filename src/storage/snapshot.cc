#include "storage/snapshot.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "storage/record_format.h"

namespace gradientd::storage {
namespace {

constexpr uint8_t kHeaderRecord = 16;
constexpr uint8_t kSeriesRecord = 17;
constexpr uint8_t kProducersRecord = 18;
constexpr uint8_t kEndRecord = 19;

constexpr int kProducersPerRecord = 1024;
constexpr std::size_t kWriteBytes = 1u << 20;  // what is buffered before each write
// No record of a snapshot comes near this (a series name is at most a few
// KiB, a producer chunk 1024 ids).
constexpr std::size_t kMaxSnapshotRecordBytes = 64u << 20;

// Appends numbered records to a file, a buffer at a time.
class RecordWriter {
 public:
  RecordWriter(WritableFile& file, std::string salt) : file_(file), salt_(std::move(salt)) {
    buffer_ = FileHeader(kSnapshotMagic, salt_);
  }
  Status Add(uint8_t kind, const google::protobuf::MessageLite& message) {
    std::string payload;
    if (!message.SerializeToString(&payload)) {
      return Status::Internal("cannot serialise a snapshot record of " +
                              std::to_string(message.ByteSizeLong()) + " bytes");
    }
    AppendRecord(salt_, index_++, kind, payload, &buffer_);
    return buffer_.size() >= kWriteBytes ? Flush() : Status::Ok();
  }
  Status Flush() {
    Status s = file_.Append(buffer_);
    buffer_.clear();
    return s;
  }

 private:
  WritableFile& file_;
  const std::string salt_;
  std::string buffer_;
  uint64_t index_ = 0;
};

Status WriteRecords(WritableFile& file, const v1::Snapshot& snapshot) {
  RecordWriter writer(file, NewSalt());
  v1::SnapshotHeader header;
  header.set_journal_position(snapshot.journal_position());
  header.set_journal_file(snapshot.journal_file());
  header.set_time_unix_nanos(snapshot.time_unix_nanos());
  if (Status s = writer.Add(kHeaderRecord, header); !s.ok()) return s;
  for (const v1::SeriesState& series : snapshot.series()) {
    if (Status s = writer.Add(kSeriesRecord, series); !s.ok()) return s;
  }
  for (int i = 0; i < snapshot.producers_size(); i += kProducersPerRecord) {
    v1::ProducerChunk chunk;
    for (int j = i; j < std::min(snapshot.producers_size(), i + kProducersPerRecord); ++j) {
      *chunk.add_producers() = snapshot.producers(j);
    }
    if (Status s = writer.Add(kProducersRecord, chunk); !s.ok()) return s;
  }
  v1::SnapshotEnd end;
  end.set_series(static_cast<uint64_t>(snapshot.series_size()));
  end.set_producers(static_cast<uint64_t>(snapshot.producers_size()));
  if (Status s = writer.Add(kEndRecord, end); !s.ok()) return s;
  return writer.Flush();
}

}  // namespace

std::string SnapshotFileName(uint64_t position) {
  char name[64];
  std::snprintf(name, sizeof name, "snapshot-%020" PRIu64 ".pb", position);
  return name;
}

Status WriteSnapshot(FileSystem& fs, const std::string& dir, const v1::Snapshot& snapshot) {
  const std::string path = dir + "/" + SnapshotFileName(snapshot.journal_position());
  const std::string temporary = path + ".tmp";
  std::unique_ptr<WritableFile> file;
  Status s = fs.NewWritableFile(temporary, &file);
  if (s.ok()) s = WriteRecords(*file, snapshot);
  if (s.ok()) s = file->Sync();
  if (file) {
    if (Status c = file->Close(); s.ok()) s = c;
  }
  // Read back what was written before anything relies on it.
  if (s.ok()) {
    v1::Snapshot check;
    s = ReadSnapshot(fs, temporary, &check);
    if (s.ok() && (check.series_size() != snapshot.series_size() ||
                   check.producers_size() != snapshot.producers_size() ||
                   check.journal_position() != snapshot.journal_position())) {
      s = Status::Internal("snapshot " + temporary + " does not read back as written");
    }
  }
  if (s.ok()) s = fs.Rename(temporary, path);
  if (s.ok()) s = fs.SyncDir(dir);
  if (!s.ok()) (void)fs.Remove(temporary);
  return s;
}

Status ReadSnapshot(FileSystem& fs, const std::string& path, v1::Snapshot* snapshot) {
  std::string data;
  if (Status s = fs.ReadFile(path, &data); !s.ok()) return s;
  const std::string_view view = data;
  auto unreadable = [&](uint64_t offset, const std::string& what) {
    return Status::Internal("snapshot " + path + " is unreadable at byte offset " +
                            std::to_string(offset) + ": " + what);
  };
  const std::size_t header_bytes = kSnapshotMagic.size() + kSaltBytes;
  if (view.size() < header_bytes || view.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return unreadable(0, view.starts_with("GRDSNP01") ? "format 01, written by an older gradientd"
                                                      : "bad header");
  }
  const std::string_view salt = view.substr(kSnapshotMagic.size(), kSaltBytes);
  snapshot->Clear();
  std::size_t offset = header_bytes;
  for (uint64_t index = 0;; ++index) {
    const RecordRead r = ReadRecord(view, offset, salt, kMaxSnapshotRecordBytes);
    if (r.kind == RecordRead::Kind::kEnd)
      return unreadable(offset, "it ends before its last record");
    if (r.kind != RecordRead::Kind::kRecord) {
      return unreadable(offset, r.kind == RecordRead::Kind::kBadChecksum ? "checksum mismatch"
                                                                         : "truncated record");
    }
    if (r.index != index || (index == 0) != (r.type == kHeaderRecord)) {
      return unreadable(offset, "records out of order");
    }
    const int size = static_cast<int>(r.payload.size());
    bool parsed = false;
    switch (r.type) {
      case kHeaderRecord: {
        v1::SnapshotHeader header;
        parsed = header.ParseFromArray(r.payload.data(), size);
        snapshot->set_journal_position(header.journal_position());
        snapshot->set_journal_file(header.journal_file());
        snapshot->set_time_unix_nanos(header.time_unix_nanos());
        break;
      }
      case kSeriesRecord:
        parsed = snapshot->add_series()->ParseFromArray(r.payload.data(), size);
        break;
      case kProducersRecord: {
        v1::ProducerChunk chunk;
        parsed = chunk.ParseFromArray(r.payload.data(), size);
        for (v1::ProducerState& p : *chunk.mutable_producers()) {
          *snapshot->add_producers() = std::move(p);
        }
        break;
      }
      case kEndRecord: {
        v1::SnapshotEnd end;
        if (!end.ParseFromArray(r.payload.data(), size)) break;
        if (end.series() != static_cast<uint64_t>(snapshot->series_size()) ||
            end.producers() != static_cast<uint64_t>(snapshot->producers_size())) {
          return unreadable(offset,
                            "its end record counts other series or producers than it holds");
        }
        if (r.next != view.size()) {
          return unreadable(r.next, std::to_string(view.size() - r.next) +
                                        " unexpected bytes after its last record");
        }
        return Status::Ok();
      }
      default:
        return unreadable(offset, "a record of unknown kind " + std::to_string(r.type));
    }
    if (!parsed) return unreadable(offset, "a record does not parse");
    offset = r.next;
  }
}

}  // namespace gradientd::storage
