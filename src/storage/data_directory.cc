#include "storage/data_directory.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <utility>

#include "storage/snapshot.h"

namespace gradientd::storage {
namespace {

constexpr std::string_view kLockFile = "LOCK";

// The position in a file name "<prefix><20 digits><suffix>", if it is one.
std::optional<uint64_t> PositionIn(std::string_view name, std::string_view prefix,
                                   std::string_view suffix) {
  if (!name.starts_with(prefix) || !name.ends_with(suffix)) return std::nullopt;
  const std::string_view digits =
      name.substr(prefix.size(), name.size() - prefix.size() - suffix.size());
  uint64_t position = 0;
  const auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), position);
  if (ec != std::errc() || end != digits.data() + digits.size() || digits.size() != 20) {
    return std::nullopt;
  }
  return position;
}

struct DirectoryListing {
  std::map<uint64_t, std::string> journals;   // start position -> name
  std::map<uint64_t, std::string> snapshots;  // position -> name
};

Status List(FileSystem& fs, const std::string& dir, DirectoryListing* listing) {
  std::vector<std::string> names;
  if (Status s = fs.ListDir(dir, &names); !s.ok()) return s;
  for (const std::string& name : names) {
    if (auto p = PositionIn(name, "journal-", ".log")) listing->journals[*p] = name;
    if (auto p = PositionIn(name, "snapshot-", ".pb")) listing->snapshots[*p] = name;
    if (name.ends_with(".tmp")) (void)fs.Remove(dir + "/" + name);  // an interrupted snapshot
  }
  return Status::Ok();
}

}  // namespace

Status ParseFsyncMode(std::string_view text, FsyncMode* mode) {
  if (text == "always") {
    *mode = FsyncMode::kAlways;
  } else if (text == "interval") {
    *mode = FsyncMode::kInterval;
  } else if (text == "never") {
    *mode = FsyncMode::kNever;
  } else {
    return Status::InvalidArgument("'" + std::string(text) +
                                   "' is not an fsync mode (always, interval, never)");
  }
  return Status::Ok();
}

std::string RecoveryReport::ToString(const std::string& path) const {
  char timing[64];
  std::snprintf(timing, sizeof timing, "%.3f s", seconds);
  std::string line = "recovered " + std::to_string(series) + " series, " + std::to_string(points) +
                     " points from " + path + " in " + timing + " (" +
                     (snapshot ? "snapshot at record " + std::to_string(snapshot_position)
                               : std::string("no snapshot")) +
                     ", " + std::to_string(records_replayed) + " journal records replayed";
  if (torn_bytes > 0) {
    line += "; truncated a torn tail of " + std::to_string(torn_bytes) + " bytes from " +
            torn_file + ", never acknowledged";
  }
  line += ")";
  if (!checkpoint_error.empty()) {
    line += "; the snapshot after recovery failed (" + checkpoint_error +
            "), the journal keeps everything";
  }
  return line;
}

DataDirectory::DataDirectory(DataDirectoryOptions options, service::Service& service)
    : options_(std::move(options)),
      fs_(options_.fs != nullptr ? *options_.fs : PosixFileSystem()),
      service_(service) {}

DataDirectory::~DataDirectory() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
}

Status DataDirectory::Open(DataDirectoryOptions options, service::Service& service,
                           std::unique_ptr<DataDirectory>* directory, RecoveryReport* report) {
  std::unique_ptr<DataDirectory> d(new DataDirectory(std::move(options), service));
  const auto start = std::chrono::steady_clock::now();
  const std::string& path = d->options_.path;
  if (Status s = d->fs_.CreateDirs(path); !s.ok()) return s;
  if (Status s = d->fs_.Lock(path + "/" + std::string(kLockFile), &d->lock_); !s.ok()) return s;
  *report = RecoveryReport();
  if (Status s = d->Recover(report); !s.ok()) return s;
  report->seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  service.SetChangeLog(d->journal_.get());
  d->checkpointer_ = std::thread([raw = d.get()] { raw->CheckpointLoop(); });
  *directory = std::move(d);
  return Status::Ok();
}

Status DataDirectory::Recover(RecoveryReport* report) {
  const std::string& dir = options_.path;
  DirectoryListing listing;
  if (Status s = List(fs_, dir, &listing); !s.ok()) return s;

  // First decide, touching nothing: the newest snapshot, then the journal
  // from the file it names, file by file as each names the next.
  uint64_t position = 0;       // the next record expected
  uint64_t file_position = 0;  // the start of the journal file that holds it
  std::string source = "there is no snapshot, so the journal must start at record 0";
  if (!listing.snapshots.empty()) {
    const auto& [snapshot_position, name] = *listing.snapshots.rbegin();
    const std::string path = dir + "/" + name;
    // Restored a part at a time; a snapshot that turns out unreadable stops
    // startup, so what was restored of it is never served.
    v1::Snapshot header;
    bool first = true;
    const Status read = ReadSnapshot(fs_, path, [&](v1::Snapshot&& part) {
      if (first) {
        header.set_journal_position(part.journal_position());
        header.set_journal_file(part.journal_file());
        first = false;
      }
      service_.Restore(part);
    });
    if (!read.ok()) {
      return Status(read.code(), read.message() +
                                     "; refusing to start rather than lose its data (restore the "
                                     "file from a backup: the journal files it covers are gone)");
    }
    if (header.journal_position() != snapshot_position ||
        header.journal_file() > snapshot_position) {
      return Status::Internal("snapshot " + path + " says it is at record " +
                              std::to_string(header.journal_position()) + " in journal file " +
                              std::to_string(header.journal_file()) +
                              ", which its name does not allow");
    }
    position = snapshot_position;
    file_position = header.journal_file();
    source = "snapshot " + path + " goes on in it";
    report->snapshot = true;
    report->snapshot_position = snapshot_position;
    has_snapshot_ = true;
  }

  std::optional<JournalTail> tail;
  std::string last_path;
  uint64_t cut_to = 0;  // with torn_bytes: the length the last file keeps
  std::string last_damage;
  const bool fresh = listing.snapshots.empty() && listing.journals.empty();
  bool ended = fresh;
  for (std::size_t files = 0; !ended && files < listing.journals.size() + 1; ++files) {
    const std::string path = dir + "/" + JournalFileName(file_position);
    if (!listing.journals.contains(file_position)) {
      return Status::Internal("journal file " + path + " is missing (" + source +
                              "); refusing to start rather than lose the records it held");
    }
    JournalFileContents contents;
    if (Status s = ReadJournalFile(fs_, path, file_position, &contents); !s.ok()) return s;
    const bool last = !contents.next_file.has_value();
    if (contents.damaged_bytes > 0 && (!last || contents.valid_after)) {
      return Status::Internal(
          path + " is damaged at byte offset " + std::to_string(contents.valid_bytes) + " (" +
          contents.damage + ") with records after it" +
          (contents.valid_after ? ", at byte offset " + std::to_string(*contents.valid_after)
                                : std::string(" in the journal files that follow")) +
          "; refusing to start rather than drop them. Restore the file from a backup; nothing "
          "was changed");
    }
    const uint64_t end = file_position + contents.records.size();
    if (end < position) {
      return Status::Internal(path + " ends at record " + std::to_string(end) + ", before record " +
                              std::to_string(position) + " (" + source + "); refusing to start");
    }
    for (uint64_t i = position - file_position; i < contents.records.size(); ++i) {
      service_.Apply(contents.records[i]);
      ++report->records_replayed;
    }
    position = end;
    if (!last) {
      if (*contents.next_file <= file_position) {
        return Status::Internal(path + " names a journal file before itself; refusing to start");
      }
      source = path + " says so";
      file_position = *contents.next_file;
      continue;
    }
    ended = true;
    last_path = path;
    if (contents.damaged_bytes > 0) {
      report->torn_bytes = contents.damaged_bytes;
      report->torn_file = path;
      cut_to = contents.valid_bytes;
      last_damage = contents.damage;
    }
    if (!contents.salt.empty()) {
      tail = JournalTail{file_position, contents.salt, contents.valid_bytes};
    }
  }
  if (!ended)
    return Status::Internal("the journal files of " + dir + " do not end; refusing to start");
  // A journal file past the last one holds nothing that was acknowledged
  // only if it holds no record at all (a rotation that stopped halfway).
  std::vector<std::string> leftovers;
  for (const auto& [start, name] : listing.journals) {
    if (start <= file_position) continue;
    JournalFileContents contents;
    const std::string path = dir + "/" + name;
    if (Status s = ReadJournalFile(fs_, path, start, &contents); !s.ok()) return s;
    if (!contents.records.empty()) {
      return Status::Internal(
          path + " holds records, but the journal before it ends in " + last_path +
          (report->torn_bytes > 0
               ? " with damage at byte offset " + std::to_string(cut_to) + " (" + last_damage + ")"
               : " without naming it") +
          "; refusing to start rather than drop them. Restore the files from a backup; nothing "
          "was changed");
    }
    leftovers.push_back(path);
  }

  // Decided: now cut the torn tail, and go on writing where the journal ends.
  if (report->torn_bytes > 0 && tail) {
    if (Status s = fs_.Truncate(last_path, cut_to); !s.ok()) return s;
  }
  for (const std::string& path : leftovers) (void)fs_.Remove(path);
  if (Status s = Journal::Open(fs_, dir, position, tail, options_.journal, &journal_); !s.ok()) {
    return s;
  }
  last_snapshot_position_ = report->snapshot_position;
  // Start the next run from a snapshot of what was recovered. Not needed
  // for correctness (the journal has it all), so a failure only delays it.
  if (report->records_replayed > 0 || report->torn_bytes > 0) {
    std::lock_guard lock(checkpoint_mu_);
    if (Status s = WriteCheckpoint(); !s.ok()) report->checkpoint_error = s.message();
  }
  service_.Totals(&report->series, &report->points);
  return Status::Ok();
}

Status DataDirectory::WriteSnapshotAndPrune(const v1::Snapshot& snapshot) {
  const std::string& dir = options_.path;
  if (Status s = WriteSnapshot(fs_, dir, snapshot); !s.ok()) return s;
  last_snapshot_position_ = snapshot.journal_position();
  has_snapshot_ = true;
  // The snapshot is durable and verified: older snapshots and the journal
  // files before the one it goes on in are no longer needed.
  DirectoryListing listing;
  if (Status s = List(fs_, dir, &listing); !s.ok()) return s;
  for (const auto& [position, name] : listing.snapshots) {
    if (position < snapshot.journal_position()) (void)fs_.Remove(dir + "/" + name);
  }
  for (const auto& [start, name] : listing.journals) {
    if (start < snapshot.journal_file()) (void)fs_.Remove(dir + "/" + name);
  }
  return fs_.SyncDir(dir);
}

Status DataDirectory::Checkpoint() {
  std::lock_guard lock(checkpoint_mu_);
  if (journal_ == nullptr) return Status::FailedPrecondition("the data directory is closed");
  if (has_snapshot_ && journal_->bytes_since_rotate() == 0) return Status::Ok();  // no change
  return WriteCheckpoint();
}

Status DataDirectory::WriteCheckpoint() {
  v1::Snapshot snapshot;
  service_.Checkpoint([&] { return journal_->Rotate(); }, &snapshot);
  // Everything in the snapshot must be durable in the journal first: a
  // snapshot must never hold a change whose acknowledgement failed.
  if (Status s = journal_->Sync(); !s.ok()) return s;
  snapshot.set_journal_file(journal_->file_start());
  if (const std::string error = journal_->rotation_error(); !error.empty()) {
    std::cerr << "gradientd: checkpoint: the journal stays in its current file (" << error
              << "); the next checkpoint tries again\n";
  }
  return WriteSnapshotAndPrune(snapshot);
}

void DataDirectory::CheckpointLoop() {
  auto last = std::chrono::steady_clock::now();
  std::unique_lock lock(stop_mu_);
  while (!stop_) {
    stop_cv_.wait_for(lock, std::chrono::seconds(1), [&] { return stop_; });
    if (stop_) break;
    const bool due = std::chrono::steady_clock::now() - last >= options_.checkpoint_interval ||
                     journal_->bytes_since_rotate() >= options_.checkpoint_bytes;
    if (!due) continue;
    lock.unlock();
    if (Status s = Checkpoint(); !s.ok()) {
      std::cerr << "gradientd: checkpoint failed (the journal still has everything): "
                << s.message() << "\n";
    }
    last = std::chrono::steady_clock::now();
    lock.lock();
  }
}

Status DataDirectory::Close() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (checkpointer_.joinable()) checkpointer_.join();
  Status status = Checkpoint();
  if (Status s = journal_->Sync(); status.ok()) status = s;
  service_.SetChangeLog(nullptr);
  journal_.reset();
  lock_.reset();
  return status;
}

}  // namespace gradientd::storage
