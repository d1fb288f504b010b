// DataDirectory: gradientd's durable state in one directory: a lock file, the
// journal (storage/journal.h) and snapshots (storage/snapshot.h). The layer
// above storage and service: it drives recovery and checkpoints, feeding
// what storage reads into the Service and the Service's changes into the
// journal (durable/journal_change_log.h).
//
// Open locks the directory, rebuilds the Service's state from the newest
// snapshot plus the journal after it, writes a fresh snapshot if it replayed
// anything, and starts logging the Service's changes. A checkpointer thread
// then writes a snapshot every checkpoint_interval (or once the journal has
// grown by checkpoint_bytes) and deletes the journal files it covers. Close
// writes a final snapshot; call it once the server has stopped.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>

#include "durable/checkpoint_metrics.h"
#include "durable/journal_change_log.h"
#include "service/service.h"
#include "storage/file_system.h"
#include "storage/journal.h"
#include "util/mutex.h"

namespace gradientd::durable {

struct DataDirectoryOptions {
  std::string path;
  storage::JournalOptions journal;
  std::chrono::milliseconds checkpoint_interval{std::chrono::minutes(5)};
  uint64_t checkpoint_bytes = 64u << 20;
  storage::FileSystem* fs = nullptr;     // nullptr: storage::PosixFileSystem()
  CheckpointMetrics* metrics = nullptr;  // must outlive the directory; null: none
};

struct RecoveryReport {
  uint64_t series = 0;
  uint64_t points = 0;
  bool snapshot = false;  // recovery started from a snapshot
  uint64_t snapshot_position = 0;
  uint64_t records_replayed = 0;
  uint64_t torn_bytes = 0;  // cut from the journal's tail
  std::string torn_file;
  double seconds = 0;
  // Why the snapshot after recovery could not be written ("" if it was, or
  // none was needed); the journal still holds everything.
  std::string checkpoint_error;

  // One line for the log: "recovered 3 series, 120000 points from DIR in 0.02 s (...)".
  std::string ToString(const std::string& path) const;
};

class DataDirectory {
 public:
  // REQUIRES: `service` is empty and not serving yet; it must outlive the
  // DataDirectory. Errors name the file and what is wrong; nothing is
  // deleted or truncated when Open fails, except a torn journal tail.
  static Status Open(DataDirectoryOptions options, service::Service& service,
                     std::unique_ptr<DataDirectory>* directory, RecoveryReport* report);
  ~DataDirectory();

  // The journal the Service now logs to; responses wait on it. Valid until
  // Close.
  service::ChangeLog* change_log() { return change_log_.get(); }
  // Ok while the journal takes records, else why it stopped (for /readyz).
  // Thread-safe.
  Status journal_health() const { return journal_->health(); }

  // Writes a snapshot now and deletes what it makes obsolete. Thread-safe.
  Status Checkpoint() EXCLUDES(checkpoint_mu_);

  // Stops the checkpointer, writes a final snapshot and closes the journal.
  // REQUIRES: no more requests are handled.
  Status Close() EXCLUDES(checkpoint_mu_, stop_mu_);

 private:
  DataDirectory(DataDirectoryOptions options, service::Service& service);
  struct RecoveryPlan;
  // Recovery's phases: the first three decide, and change no file.
  Status Recover(RecoveryReport* report) EXCLUDES(checkpoint_mu_);
  Status RestoreNewestSnapshot(RecoveryPlan* plan, RecoveryReport* report) REQUIRES(checkpoint_mu_);
  Status ReplayJournal(RecoveryPlan* plan, RecoveryReport* report);
  Status FindLeftovers(RecoveryPlan* plan, const RecoveryReport* report);
  Status WriteSnapshotAndPrune(const v1::Snapshot& snapshot) REQUIRES(checkpoint_mu_);
  // Snapshots the state now.
  Status WriteCheckpoint() REQUIRES(checkpoint_mu_);
  // WriteCheckpoint without the metrics.
  Status WriteCheckpointUntimed() REQUIRES(checkpoint_mu_);
  void CheckpointLoop() EXCLUDES(checkpoint_mu_, stop_mu_);
  // Asks the checkpointer to stop and waits until it has.
  void StopCheckpointer() EXCLUDES(stop_mu_);

  const DataDirectoryOptions options_;
  storage::FileSystem& fs_;
  service::Service& service_;
  std::unique_ptr<storage::FileLock> lock_;

  // Set by Open before the checkpointer starts, reset by Close after it has
  // stopped; the Journal itself is thread-safe.
  std::unique_ptr<storage::Journal> journal_;
  std::unique_ptr<JournalChangeLog> change_log_;

  util::Mutex checkpoint_mu_;  // one checkpoint at a time
  bool has_snapshot_ GUARDED_BY(checkpoint_mu_) = false;

  util::Mutex stop_mu_;
  util::CondVar stop_cv_;
  bool stop_ GUARDED_BY(stop_mu_) = false;
  std::thread checkpointer_;
};

}  // namespace gradientd::durable
