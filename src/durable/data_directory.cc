#include "durable/data_directory.h"

#include <algorithm>
#include <charconv>
#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <utility>

#include "storage/snapshot.h"

namespace gradientd::durable {

using storage::FileSystem;
using storage::JournalFileContents;
using storage::JournalFileName;
using storage::JournalTail;
using storage::ReadJournalFile;

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

}  // namespace

// The journal files and snapshots of a directory, by position.
struct DirectoryListing {
  std::map<uint64_t, std::string> journals;   // start position -> name
  std::map<uint64_t, std::string> snapshots;  // position -> name
};

static Status List(FileSystem& fs, const std::string& dir, DirectoryListing* listing) {
  std::vector<std::string> names;
  if (Status s = fs.ListDir(dir, &names); !s.ok()) return s;
  for (const std::string& name : names) {
    if (auto p = PositionIn(name, "journal-", ".log")) listing->journals[*p] = name;
    if (auto p = PositionIn(name, "snapshot-", ".pb")) listing->snapshots[*p] = name;
    if (name.ends_with(".tmp")) (void)fs.Remove(dir + "/" + name);  // an interrupted snapshot
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
      fs_(options_.fs != nullptr ? *options_.fs : storage::PosixFileSystem()),
      service_(service) {}

DataDirectory::~DataDirectory() { StopCheckpointer(); }

void DataDirectory::StopCheckpointer() {
  {
    util::MutexLock lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.SignalAll();
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
  d->change_log_ = std::make_unique<JournalChangeLog>(*d->journal_);
  service.SetChangeLog(d->change_log_.get());
  d->checkpointer_ = std::thread([raw = d.get()] { raw->CheckpointLoop(); });
  *directory = std::move(d);
  return Status::Ok();
}

// What recovery has found before it changes anything.
struct DataDirectory::RecoveryPlan {
  DirectoryListing listing;
  uint64_t position = 0;       // the next record expected
  uint64_t file_position = 0;  // the start of the journal file that holds it
  std::string source = "there is no snapshot, so the journal must start at record 0";
  std::string last_path;               // the journal's last file
  std::optional<JournalTail> tail;     // where the journal goes on; none: a new file
  std::string last_damage;             // with report.torn_bytes: what was torn
  std::vector<std::string> leftovers;  // empty journal files past the last one
};

Status DataDirectory::Recover(RecoveryReport* report) {
  // Alone here (no checkpointer yet); held for has_snapshot_ and WriteCheckpoint.
  util::MutexLock lock(checkpoint_mu_);
  RecoveryPlan plan;
  if (Status s = List(fs_, options_.path, &plan.listing); !s.ok()) return s;
  // First decide, touching no file: the newest snapshot, then the journal
  // from the file it names, file by file as each names the next.
  if (Status s = RestoreNewestSnapshot(&plan, report); !s.ok()) return s;
  if (Status s = ReplayJournal(&plan, report); !s.ok()) return s;
  if (Status s = FindLeftovers(&plan, report); !s.ok()) return s;

  // Decided: now cut the torn tail, and go on writing where the journal ends.
  if (report->torn_bytes > 0 && plan.tail) {
    if (Status s = fs_.Truncate(plan.last_path, plan.tail->size); !s.ok()) return s;
  }
  for (const std::string& path : plan.leftovers) (void)fs_.Remove(path);
  if (Status s = storage::Journal::Open(fs_, options_.path, plan.position, plan.tail,
                                        options_.journal, &journal_);
      !s.ok()) {
    return s;
  }
  // Start the next run from a snapshot of what was recovered. Not needed
  // for correctness (the journal has it all), so a failure only delays it.
  if (report->records_replayed > 0 || report->torn_bytes > 0) {
    if (Status s = WriteCheckpoint(); !s.ok()) report->checkpoint_error = s.message();
  }
  service_.Totals(&report->series, &report->points);
  return Status::Ok();
}

Status DataDirectory::RestoreNewestSnapshot(RecoveryPlan* plan, RecoveryReport* report) {
  if (plan->listing.snapshots.empty()) return Status::Ok();
  const auto& [snapshot_position, name] = *plan->listing.snapshots.rbegin();
  const std::string path = options_.path + "/" + name;
  // Restored a part at a time; a snapshot that turns out unreadable stops
  // startup, so what was restored of it is never served.
  v1::Snapshot header;
  bool first = true;
  const Status read = storage::ReadSnapshot(fs_, path, [&](v1::Snapshot&& part) {
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
  if (header.journal_position() != snapshot_position || header.journal_file() > snapshot_position) {
    return Status::Internal("snapshot " + path + " says it is at record " +
                            std::to_string(header.journal_position()) + " in journal file " +
                            std::to_string(header.journal_file()) +
                            ", which its name does not allow");
  }
  plan->position = snapshot_position;
  plan->file_position = header.journal_file();
  plan->source = "snapshot " + path + " goes on in it";
  report->snapshot = true;
  report->snapshot_position = snapshot_position;
  has_snapshot_ = true;
  return Status::Ok();
}

Status DataDirectory::ReplayJournal(RecoveryPlan* plan, RecoveryReport* report) {
  const DirectoryListing& listing = plan->listing;
  if (listing.snapshots.empty() && listing.journals.empty()) return Status::Ok();  // a new one
  // Each file names a later one, so the chain has at most as many links.
  for (std::size_t files = 0; files < listing.journals.size(); ++files) {
    const std::string path = options_.path + "/" + JournalFileName(plan->file_position);
    if (!listing.journals.contains(plan->file_position)) {
      return Status::Internal("journal file " + path + " is missing (" + plan->source +
                              "); refusing to start rather than lose the records it held");
    }
    JournalFileContents contents;
    if (Status s = ReadJournalFile(fs_, path, plan->file_position, &contents); !s.ok()) return s;
    const bool last = !contents.next_file.has_value();
    // Only the end of the last file may be torn.
    if (contents.damaged_bytes > 0 && (!last || contents.valid_after)) {
      return Status::Internal(
          path + " is damaged at byte offset " + std::to_string(contents.valid_bytes) + " (" +
          contents.damage + ") with records after it" +
          (contents.valid_after ? ", at byte offset " + std::to_string(*contents.valid_after)
                                : std::string(" in the journal files that follow")) +
          "; refusing to start rather than drop them. Restore the file from a backup; nothing "
          "was changed");
    }
    const uint64_t end = plan->file_position + contents.records.size();
    if (end < plan->position) {
      return Status::Internal(path + " ends at record " + std::to_string(end) + ", before record " +
                              std::to_string(plan->position) + " (" + plan->source +
                              "); refusing to start");
    }
    for (uint64_t i = plan->position - plan->file_position; i < contents.records.size(); ++i) {
      service_.Apply(contents.records[i]);
      ++report->records_replayed;
      if (options_.metrics != nullptr) options_.metrics->records_replayed.Add();
    }
    plan->position = end;
    if (last) {
      plan->last_path = path;
      if (contents.damaged_bytes > 0) {
        report->torn_bytes = contents.damaged_bytes;
        report->torn_file = path;
        plan->last_damage = contents.damage;
      }
      if (!contents.salt.empty()) {
        plan->tail = JournalTail{plan->file_position, contents.salt, contents.valid_bytes};
      }
      return Status::Ok();
    }
    if (*contents.next_file <= plan->file_position) {
      return Status::Internal(path + " names a journal file before itself; refusing to start");
    }
    plan->source = path + " says so";
    plan->file_position = *contents.next_file;
  }
  return Status::Internal("journal file " + options_.path + "/" +
                          JournalFileName(plan->file_position) + " is missing (" + plan->source +
                          "); refusing to start rather than lose the records it held");
}

Status DataDirectory::FindLeftovers(RecoveryPlan* plan, const RecoveryReport* report) {
  // A journal file past the last one holds nothing that was acknowledged
  // only if it holds no record at all (a rotation that stopped halfway).
  for (const auto& [start, name] : plan->listing.journals) {
    if (start <= plan->file_position) continue;
    JournalFileContents contents;
    const std::string path = options_.path + "/" + name;
    if (Status s = ReadJournalFile(fs_, path, start, &contents); !s.ok()) return s;
    if (!contents.records.empty()) {
      return Status::Internal(
          path + " holds records, but the journal before it ends in " + plan->last_path +
          (report->torn_bytes > 0 ? " with damage at byte offset " +
                                        std::to_string(plan->tail ? plan->tail->size : 0) + " (" +
                                        plan->last_damage + ")"
                                  : " without naming it") +
          "; refusing to start rather than drop them. Restore the files from a backup; nothing "
          "was changed");
    }
    plan->leftovers.push_back(path);
  }
  return Status::Ok();
}

Status DataDirectory::WriteSnapshotAndPrune(const v1::Snapshot& snapshot) {
  const std::string& dir = options_.path;
  if (Status s = storage::WriteSnapshot(fs_, dir, snapshot); !s.ok()) return s;
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
  util::MutexLock lock(checkpoint_mu_);
  if (journal_ == nullptr) return Status::FailedPrecondition("the data directory is closed");
  if (has_snapshot_ && journal_->bytes_since_rotate() == 0) return Status::Ok();  // no change
  return WriteCheckpoint();
}

Status DataDirectory::WriteCheckpoint() {
  CheckpointMetrics* metrics = options_.metrics;
  if (metrics == nullptr) return WriteCheckpointUntimed();
  const auto start = std::chrono::steady_clock::now();
  const Status s = WriteCheckpointUntimed();
  metrics->seconds.Observe(
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  if (!s.ok()) {
    metrics->failures.Add();
  } else {
    metrics->last_success.Set(
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count());
  }
  return s;
}

Status DataDirectory::WriteCheckpointUntimed() {
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
  util::MutexLock lock(stop_mu_);
  while (!stop_) {
    const auto wake = std::chrono::steady_clock::now() + std::chrono::seconds(1);
    while (!stop_ && stop_cv_.WaitUntil(stop_mu_, wake)) {
    }
    if (stop_) break;
    const bool due = std::chrono::steady_clock::now() - last >= options_.checkpoint_interval ||
                     journal_->bytes_since_rotate() >= options_.checkpoint_bytes;
    if (!due) continue;
    lock.Unlock();
    if (Status s = Checkpoint(); !s.ok()) {
      std::cerr << "gradientd: checkpoint failed (the journal still has everything): "
                << s.message() << "\n";
    }
    last = std::chrono::steady_clock::now();
    lock.Lock();
  }
}

Status DataDirectory::Close() {
  StopCheckpointer();
  Status status = Checkpoint();
  if (Status s = journal_->Sync(); status.ok()) status = s;
  service_.SetChangeLog(nullptr);
  change_log_.reset();
  journal_.reset();
  lock_.reset();
  return status;
}

}  // namespace gradientd::durable
