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
  return line + ")";
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

  uint64_t position = 0;  // the next record expected
  if (!listing.snapshots.empty()) {
    const auto& [snapshot_position, name] = *listing.snapshots.rbegin();
    v1::Snapshot snapshot;
    if (Status s = ReadSnapshot(fs_, dir + "/" + name, &snapshot); !s.ok()) {
      return Status(s.code(), s.message() +
                                  "; refusing to start rather than lose its data (restore it, "
                                  "or move it away to recover from older files)");
    }
    if (snapshot.journal_position() != snapshot_position) {
      return Status::Internal("snapshot " + dir + "/" + name + " says it is at record " +
                              std::to_string(snapshot.journal_position()) +
                              ", not the record its name says");
    }
    service_.Restore(snapshot);
    position = snapshot_position;
    report->snapshot = true;
    report->snapshot_position = snapshot_position;
    last_snapshot_position_ = snapshot_position;
    has_snapshot_ = true;
  }

  for (const auto& [start, name] : listing.journals) {
    const std::string file = dir + "/" + name;
    JournalFileContents contents;
    if (Status s = ReadJournalFile(fs_, file, &contents); !s.ok()) return s;
    const uint64_t end = start + contents.records.size();
    if (end <= position && contents.torn_bytes == 0) continue;  // covered by the snapshot
    if (start > position) {
      return Status::Internal("journal records " + std::to_string(position) + " to " +
                              std::to_string(start - 1) + " are missing before " + file +
                              "; refusing to start rather than skip them");
    }
    for (uint64_t i = position - start; i < contents.records.size(); ++i) {
      service_.Apply(contents.records[i]);
      ++report->records_replayed;
    }
    position = std::max(position, end);
    if (contents.torn_bytes > 0) {
      if (Status s =
              fs_.Truncate(file, std::max<uint64_t>(contents.valid_bytes, kJournalMagic.size()));
          !s.ok()) {
        return s;
      }
      report->torn_bytes += contents.torn_bytes;
      report->torn_file = file;
    }
  }

  if (Status s = Journal::Open(fs_, dir, position, options_.journal, &journal_); !s.ok()) {
    return s;
  }
  // Start the next run from a snapshot of what was recovered.
  if (report->records_replayed > 0 || report->torn_bytes > 0) {
    v1::Snapshot snapshot;
    service_.Checkpoint([position] { return position; }, &snapshot);
    if (Status s = WriteSnapshotAndPrune(snapshot); !s.ok()) return s;
  }
  service_.Totals(&report->series, &report->points);
  return Status::Ok();
}

Status DataDirectory::WriteSnapshotAndPrune(const v1::Snapshot& snapshot) {
  const std::string& dir = options_.path;
  if (Status s = WriteSnapshot(fs_, dir, snapshot); !s.ok()) return s;
  last_snapshot_position_ = snapshot.journal_position();
  has_snapshot_ = true;
  // The snapshot is durable: older snapshots and the journal files wholly
  // before it are no longer needed.
  DirectoryListing listing;
  if (Status s = List(fs_, dir, &listing); !s.ok()) return s;
  for (const auto& [position, name] : listing.snapshots) {
    if (position < snapshot.journal_position()) (void)fs_.Remove(dir + "/" + name);
  }
  for (auto it = listing.journals.begin(); it != listing.journals.end(); ++it) {
    const auto next = std::next(it);
    const bool covered =
        next != listing.journals.end() && next->first <= snapshot.journal_position();
    if (covered) (void)fs_.Remove(dir + "/" + it->second);
  }
  return fs_.SyncDir(dir);
}

Status DataDirectory::Checkpoint() {
  std::lock_guard lock(checkpoint_mu_);
  if (journal_ == nullptr) return Status::FailedPrecondition("the data directory is closed");
  if (has_snapshot_ && journal_->bytes_since_rotate() == 0) return Status::Ok();  // no change
  v1::Snapshot snapshot;
  service_.Checkpoint([&] { return journal_->Rotate(); }, &snapshot);
  // Everything in the snapshot must be durable in the journal first: a
  // snapshot must never hold a change whose acknowledgement failed.
  if (Status s = journal_->Sync(); !s.ok()) return s;
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
