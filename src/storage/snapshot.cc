#include "storage/snapshot.h"

#include <cinttypes>
#include <cstdio>

#include "storage/record_format.h"

namespace gradientd::storage {

std::string SnapshotFileName(uint64_t position) {
  char name[64];
  std::snprintf(name, sizeof name, "snapshot-%020" PRIu64 ".pb", position);
  return name;
}

Status WriteSnapshot(FileSystem& fs, const std::string& dir, const v1::Snapshot& snapshot) {
  std::string data(kSnapshotMagic);
  AppendRecord(snapshot.SerializeAsString(), &data);
  const std::string path = dir + "/" + SnapshotFileName(snapshot.journal_position());
  const std::string temporary = path + ".tmp";
  std::unique_ptr<WritableFile> file;
  Status s = fs.NewWritableFile(temporary, &file);
  if (s.ok()) s = file->Append(data);
  if (s.ok()) s = file->Sync();
  if (s.ok()) s = file->Close();
  if (s.ok()) s = fs.Rename(temporary, path);
  if (s.ok()) s = fs.SyncDir(dir);
  if (!s.ok()) (void)fs.Remove(temporary);
  return s;
}

Status ReadSnapshot(FileSystem& fs, const std::string& path, v1::Snapshot* snapshot) {
  std::string data;
  if (Status s = fs.ReadFile(path, &data); !s.ok()) return s;
  const std::string_view view = data;
  if (view.substr(0, kSnapshotMagic.size()) != kSnapshotMagic) {
    return Status::Internal("snapshot " + path + " is unreadable: bad header");
  }
  const RecordRead r = ReadRecord(view, kSnapshotMagic.size());
  if (r.kind != RecordRead::Kind::kRecord) {
    return Status::Internal(
        "snapshot " + path + " is unreadable: " +
        (r.kind == RecordRead::Kind::kBadChecksum ? "checksum mismatch" : "truncated"));
  }
  if (r.next != view.size()) {
    return Status::Internal("snapshot " + path + " is unreadable: " +
                            std::to_string(view.size() - r.next) + " unexpected trailing bytes");
  }
  if (!snapshot->ParseFromArray(r.payload.data(), static_cast<int>(r.payload.size()))) {
    return Status::Internal("snapshot " + path + " is unreadable: its record does not parse");
  }
  return Status::Ok();
}

}  // namespace gradientd::storage
