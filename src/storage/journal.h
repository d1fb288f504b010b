// Journal: the write-ahead log of the data directory, with group commit.
//
// Records are appended to an in-memory buffer by any thread; one committer
// thread writes what has accumulated in a single write and, per the fsync
// mode, one fdatasync, then completes every OnDurable waiting on it. So many
// acknowledgements share one fsync.
//
// Files: DIR/journal-<position>.log, where position is the index of its first
// record since the data directory was created; each starts with "GRDJNL01"
// and holds checksummed records (storage/record_format.h) of
// v1::JournalRecord. Rotate starts a new file so that the ones before a
// snapshot can be deleted.
//
// After a failed write or fsync the journal stops: every waiter and every
// later Append gets the error.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "service/change_log.h"
#include "storage/file_system.h"

namespace gradientd::storage {

inline constexpr std::string_view kJournalMagic = "GRDJNL01";

enum class FsyncMode {
  kAlways,    // acknowledge after the fdatasync that covers the record
  kInterval,  // acknowledge after write(); fdatasync every interval
  kNever,     // acknowledge after write(); the OS flushes when it likes
};

struct JournalOptions {
  FsyncMode fsync = FsyncMode::kAlways;
  std::chrono::milliseconds fsync_interval{100};
};

std::string JournalFileName(uint64_t position);

// The records of one journal file, read for recovery.
struct JournalFileContents {
  std::vector<v1::JournalRecord> records;
  uint64_t valid_bytes = 0;  // the file's length up to the last whole record
  uint64_t torn_bytes = 0;   // bytes after it: a write cut short by a crash
};

// Reads a journal file. An incomplete or corrupt record with nothing valid
// after it is a torn tail (reported in torn_bytes, not an error); a corrupt
// record followed by valid ones is corruption in the middle: an error naming
// the file and the offset.
Status ReadJournalFile(FileSystem& fs, const std::string& path, JournalFileContents* contents);

class Journal : public service::ChangeLog {
 public:
  // Starts a new journal file at `position` in `dir`.
  static Status Open(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options,
                     std::unique_ptr<Journal>* journal);
  // Writes and syncs what is pending, then stops the committer.
  ~Journal() override;

  Status Append(const v1::JournalRecord& record, uint64_t* token) override;
  void OnDurable(uint64_t token, std::function<void(const Status&)> done) override;
  Status Outcome(uint64_t token) override;

  // Records appended from now on go to a new file; returns its position (the
  // number of records appended so far). Call while no Append runs, to get a
  // position that matches a consistent state.
  uint64_t Rotate();

  // Waits until every record appended so far is written and synced (whatever
  // the mode). Returns the journal's error, if it has failed.
  Status Sync();

  // Bytes appended since the last Rotate (for checkpoint scheduling).
  uint64_t bytes_since_rotate() const;

 private:
  Journal(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options);
  void CommitLoop();
  Status StartFile(uint64_t position);

  FileSystem& fs_;
  const std::string dir_;
  const JournalOptions options_;

  mutable std::mutex mu_;
  std::condition_variable wake_;      // the committer: work or stop
  std::condition_variable progress_;  // Sync(): written
  std::string pending_;               // encoded records not yet written
  uint64_t next_ = 0;                 // position of the next record appended
  uint64_t written_ = 0;              // records written to the OS (and synced, per mode)
  uint64_t synced_ = 0;               // records known to be fdatasync'ed
  bool sync_requested_ = false;
  // A rotation waiting for the committer: pending_ bytes before
  // rotate_offset_ go to the old file.
  bool rotate_ = false;
  std::size_t rotate_offset_ = 0;
  uint64_t rotate_position_ = 0;
  uint64_t bytes_since_rotate_ = 0;
  Status failed_;
  bool stop_ = false;
  std::multimap<uint64_t, std::function<void(const Status&)>> waiters_;

  std::unique_ptr<WritableFile> file_;  // the committer's
  std::thread committer_;
};

}  // namespace gradientd::storage
