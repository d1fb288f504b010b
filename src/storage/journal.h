// Journal: the write-ahead log of the data directory, with group commit.
//
// Records are appended to an in-memory queue by any thread; one committer
// thread writes what has accumulated in a single write and, per the fsync
// mode, one fdatasync, then completes every OnDurable waiting on it. So many
// acknowledgements share one fsync.
//
// Files: DIR/journal-<position>.log, where position is the index of its
// first record since the data directory was created. Each starts with
// "GRDJNL02" and a salt, then holds numbered, checksummed records
// (storage/record_format.h): one per change (a v1::JournalRecord, numbered
// by its position) and, when Rotate has moved on to a new file, a last
// record that names it. So recovery knows every file the journal must have.
//
// After a failed write or fsync the file is cut back to its last durable
// record, so that no change answered with an error can come back after a
// restart; then the journal stops: every later Append gets the error. A new
// file that cannot be opened at a rotation is not a failure: the journal
// stays in its current file and the next Rotate tries again.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "core/status.h"
#include "gradientd/v1/journal.pb.h"
#include "storage/file_system.h"
#include "storage/journal_metrics.h"
#include "util/mutex.h"

namespace gradientd::storage {

inline constexpr std::string_view kJournalMagic = "GRDJNL02";
// The largest record the journal writes or accepts when reading.
inline constexpr std::size_t kMaxJournalRecordBytes = 1u << 20;

enum class FsyncMode {
  kAlways,    // acknowledge after the fdatasync that covers the record
  kInterval,  // acknowledge after write(); fdatasync every interval
  kNever,     // acknowledge after write(); the OS flushes when it likes
};

// Parses "always", "interval" or "never".
Status ParseFsyncMode(std::string_view text, FsyncMode* mode);

struct JournalOptions {
  FsyncMode fsync = FsyncMode::kAlways;
  std::chrono::milliseconds fsync_interval{100};
  JournalMetrics* metrics = nullptr;  // must outlive the journal; null: none
};

std::string JournalFileName(uint64_t position);

// One journal file as found on disk, for recovery. Reading decides nothing:
// whether damage is a torn tail (allowed only at the end of the last file)
// is the caller's decision.
struct JournalFileContents {
  std::string salt;                        // empty: the file's header is incomplete
  std::vector<v1::JournalRecord> records;  // the changes, in order
  uint64_t first_index = 0;                // the position of records[0]
  std::optional<uint64_t> next_file;       // the journal goes on in journal-<next_file>
  uint64_t valid_bytes = 0;                // up to the end of the last whole record
  uint64_t damaged_bytes = 0;              // after it: a torn write, or damage
  std::string damage;                      // what is wrong at valid_bytes
  // A record written by the journal that lies after the damage: proof that
  // the damage is not a torn tail.
  std::optional<uint64_t> valid_after;
};

// Reads a journal file that starts at `start`. Errors (naming the file and
// the offset): unreadable, not a journal file, a record out of sequence, a
// checksummed record that does not parse, records after the file's last.
Status ReadJournalFile(FileSystem& fs, const std::string& path, uint64_t start,
                       JournalFileContents* contents);

// Where an existing journal goes on: its last file, already checked (and
// cut back to `size`, its last whole record, if it had a torn tail).
struct JournalTail {
  uint64_t file_start = 0;
  std::string salt;
  uint64_t size = 0;
};

class Journal {
 public:
  // Opens the journal at `position` (the number of records so far): with a
  // tail, appending to its file; without, in a new file journal-<position>.
  static Status Open(FileSystem& fs, std::string dir, uint64_t position,
                     const std::optional<JournalTail>& tail, JournalOptions options,
                     std::unique_ptr<Journal>* journal);
  // Writes and syncs what is pending, then stops the committer.
  ~Journal();

  // Appends `record` after every record appended before it and sets *token
  // to what OnDurable waits for. Fails, changing nothing, once the journal
  // has failed, and (InvalidArgument) for a record over kMaxJournalRecordBytes.
  Status Append(const v1::JournalRecord& record, uint64_t* token) EXCLUDES(mu_);

  // Calls done(Ok) once every record up to `token` is durable (per the
  // fsync mode), or done(the journal's error) once the journal has failed
  // without making `token` durable. From any thread, possibly inline.
  void OnDurable(uint64_t token, std::function<void(const Status&)> done) EXCLUDES(mu_);

  // The fate of one record: Ok if `token` is durable, the journal's error if
  // it failed before making it so.
  // REQUIRES: OnDurable has completed for some token >= `token`.
  Status Outcome(uint64_t token) EXCLUDES(mu_);

  // Records appended from now on go to a new file (once the committer gets
  // to it); returns its position (the number of records appended so far).
  // Call while no Append runs, to get a position that matches a consistent
  // state.
  uint64_t Rotate() EXCLUDES(mu_);

  // Waits until every record appended so far is written and synced (whatever
  // the mode) and a requested rotation is done or given up. Returns the
  // journal's error, if it has failed.
  Status Sync() EXCLUDES(mu_);

  // The start of the file the committer writes to now (after Sync: the one
  // holding the position Rotate returned, which is that position unless the
  // rotation was given up).
  uint64_t file_start() const EXCLUDES(mu_);
  // Why the last rotation was given up ("" if it was not).
  std::string rotation_error() const EXCLUDES(mu_);

  // Bytes appended since the last Rotate (for checkpoint scheduling).
  uint64_t bytes_since_rotate() const EXCLUDES(mu_);

  // Ok while the journal takes records; once it has failed, its error (every
  // later Append gets it too). Cheap: one lock, no I/O.
  Status health() const EXCLUDES(mu_);

 private:
  Journal(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options);
  // What the committer takes from the queue in one round.
  struct Round;
  void CommitLoop() EXCLUDES(mu_);
  // Waits until there is work for the committer (or a stop).
  void WaitForWork(std::chrono::steady_clock::time_point last_sync) REQUIRES(mu_);
  // Takes what is pending.
  Round TakeRound() REQUIRES(mu_);
  // Writes (and syncs, per the mode) a round; returns how far it got.
  Status WriteRound(const Round& round, std::chrono::steady_clock::time_point* last_sync,
                    uint64_t* written, uint64_t* synced) EXCLUDES(mu_);
  // Records the round's outcome and takes the waiters it completes.
  std::vector<std::pair<std::function<void(const Status&)>, Status>> FinishRound(
      const Round& round, const Status& status, uint64_t written, uint64_t synced) REQUIRES(mu_);
  // The records an acknowledgement may rely on, per the mode.
  uint64_t DurableLocked() const REQUIRES(mu_);
  // Opens journal-<position> with a new salt and makes its header durable.
  Status CreateFile(uint64_t position, std::unique_ptr<WritableFile>* file,
                    std::string* salt) const;
  // Encodes records [first, first + count) of `batch` for the current file.
  std::string Encode(const std::vector<std::string>& batch, std::size_t begin, std::size_t end,
                     uint64_t first_index) const;
  // Writes `data` to the current file (and syncs it if `sync`); on failure
  // cuts the file back to where it was, and says what happened.
  Status WriteOrCutBack(std::string_view data, bool sync);
  // Moves on to journal-<position>: false (with rotation_error_ set) if the
  // new file could not be opened; the current file then stays.
  bool MoveToNewFile(uint64_t position) EXCLUDES(mu_);

  FileSystem& fs_;
  const std::string dir_;
  const JournalOptions options_;

  mutable util::Mutex mu_;
  util::CondVar wake_;                                // the committer: work or stop
  util::CondVar progress_;                            // Sync(), Rotate(): written
  std::vector<std::string> pending_ GUARDED_BY(mu_);  // serialised records not yet written
  uint64_t next_ GUARDED_BY(mu_) = 0;                 // position of the next record appended
  uint64_t written_ GUARDED_BY(mu_) = 0;  // records written to the OS (and synced, per mode)
  uint64_t synced_ GUARDED_BY(mu_) = 0;   // records known to be fdatasync'ed
  bool sync_requested_ GUARDED_BY(mu_) = false;
  // A rotation waiting for the committer: the first rotate_count_ records of
  // pending_ go to the old file.
  bool rotate_ GUARDED_BY(mu_) = false;
  std::size_t rotate_count_ GUARDED_BY(mu_) = 0;
  uint64_t rotate_position_ GUARDED_BY(mu_) = 0;
  uint64_t bytes_since_rotate_ GUARDED_BY(mu_) = 0;
  Status failed_ GUARDED_BY(mu_);
  bool stop_ GUARDED_BY(mu_) = false;
  std::multimap<uint64_t, std::function<void(const Status&)>> waiters_ GUARDED_BY(mu_);
  uint64_t file_start_shared_ GUARDED_BY(mu_) = 0;  // a copy of file_start_, for file_start()
  std::string rotation_error_ GUARDED_BY(mu_);

  // The committer's (and Open's, before the committer starts): no lock.
  std::unique_ptr<WritableFile> file_;
  uint64_t file_start_ = 0;
  std::string salt_;
  uint64_t file_size_ = 0;
  std::thread committer_;
};

}  // namespace gradientd::storage
