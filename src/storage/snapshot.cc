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
// Recovery restores this many series at a time.
constexpr int kSeriesPerPart = 1024;

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
    uint64_t position = 0;
    int series = 0, producers = 0;
    bool first = true;
    s = ReadSnapshot(fs, temporary, [&](v1::Snapshot&& part) {
      if (first) position = part.journal_position();
      first = false;
      series += part.series_size();
      producers += part.producers_size();
    });
    if (s.ok() && (series != snapshot.series_size() || producers != snapshot.producers_size() ||
                   position != snapshot.journal_position())) {
      s = Status::Internal("snapshot " + temporary + " does not read back as written");
    }
  }
  if (s.ok()) s = fs.Rename(temporary, path);
  if (s.ok()) s = fs.SyncDir(dir);
  if (!s.ok()) (void)fs.Remove(temporary);
  return s;
}

Status ReadSnapshot(FileSystem& fs, const std::string& path,
                    const std::function<void(v1::Snapshot&& part)>& consume) {
  std::unique_ptr<SequentialFile> file;
  if (Status s = fs.NewSequentialFile(path, &file); !s.ok()) return s;
  uint64_t offset = 0;  // of the record being read
  auto unreadable = [&](const std::string& what) {
    return Status::Internal("snapshot " + path + " is unreadable at byte offset " +
                            std::to_string(offset) + ": " + what);
  };
  std::string buffer;
  const std::size_t header_bytes = kSnapshotMagic.size() + kSaltBytes;
  if (Status s = file->Read(header_bytes, &buffer); !s.ok()) return s;
  if (buffer.size() < header_bytes || !buffer.starts_with(kSnapshotMagic)) {
    return unreadable(buffer.starts_with("GRDSNP01") ? "format 01, written by an older gradientd"
                                                     : "bad header");
  }
  const std::string salt = buffer.substr(kSnapshotMagic.size());
  offset = header_bytes;
  v1::Snapshot part;  // handed on every kSeriesPerPart series and at each producer chunk
  uint64_t series = 0, producers = 0;
  for (uint64_t index = 0;; ++index) {
    buffer.clear();
    if (Status s = file->Read(kRecordHeaderBytes, &buffer); !s.ok()) return s;
    if (buffer.empty()) return unreadable("it ends before its last record");
    if (buffer.size() == kRecordHeaderBytes) {
      std::size_t length = 0;
      for (std::size_t i = 0; i < 4; ++i) {
        length |= static_cast<std::size_t>(static_cast<unsigned char>(buffer[i])) << (8 * i);
      }
      if (length > kMaxSnapshotRecordBytes) return unreadable("an impossible record length");
      if (Status s = file->Read(length, &buffer); !s.ok()) return s;
    }
    const RecordRead r = ReadRecord(buffer, 0, salt, kMaxSnapshotRecordBytes);
    if (r.kind != RecordRead::Kind::kRecord) {
      return unreadable(r.kind == RecordRead::Kind::kBadChecksum ? "checksum mismatch"
                                                                 : "truncated record");
    }
    if (r.index != index || (index == 0) != (r.type == kHeaderRecord)) {
      return unreadable("records out of order");
    }
    const int size = static_cast<int>(r.payload.size());
    bool parsed = false;
    switch (r.type) {
      case kHeaderRecord: {
        v1::SnapshotHeader header;
        parsed = header.ParseFromArray(r.payload.data(), size);
        part.set_journal_position(header.journal_position());
        part.set_journal_file(header.journal_file());
        part.set_time_unix_nanos(header.time_unix_nanos());
        break;
      }
      case kSeriesRecord:
        parsed = part.add_series()->ParseFromArray(r.payload.data(), size);
        ++series;
        break;
      case kProducersRecord: {
        v1::ProducerChunk chunk;
        parsed = chunk.ParseFromArray(r.payload.data(), size);
        producers += static_cast<uint64_t>(chunk.producers_size());
        part.mutable_producers()->Swap(chunk.mutable_producers());
        break;
      }
      case kEndRecord: {
        v1::SnapshotEnd end;
        if (!end.ParseFromArray(r.payload.data(), size)) break;
        if (end.series() != series || end.producers() != producers) {
          return unreadable("its end record counts other series or producers than it holds");
        }
        offset += buffer.size();
        buffer.clear();
        if (Status s = file->Read(1, &buffer); !s.ok()) return s;
        if (!buffer.empty()) return unreadable("unexpected bytes after its last record");
        consume(std::move(part));
        return Status::Ok();
      }
      default:
        return unreadable("a record of unknown kind " + std::to_string(r.type));
    }
    if (!parsed) return unreadable("a record does not parse");
    offset += buffer.size();
    if (part.series_size() >= kSeriesPerPart || part.producers_size() > 0) {
      consume(std::move(part));
      part.Clear();
    }
  }
}

Status ReadSnapshot(FileSystem& fs, const std::string& path, v1::Snapshot* snapshot) {
  snapshot->Clear();
  bool first = true;
  return ReadSnapshot(fs, path, [&](v1::Snapshot&& part) {
    if (first) {
      snapshot->set_journal_position(part.journal_position());
      snapshot->set_journal_file(part.journal_file());
      snapshot->set_time_unix_nanos(part.time_unix_nanos());
      first = false;
    }
    for (v1::SeriesState& s : *part.mutable_series()) *snapshot->add_series() = std::move(s);
    for (v1::ProducerState& p : *part.mutable_producers()) {
      *snapshot->add_producers() = std::move(p);
    }
  });
}

}  // namespace gradientd::storage
