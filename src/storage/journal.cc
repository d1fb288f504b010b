#include "storage/journal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "storage/record_format.h"

namespace gradientd::storage {
namespace {

constexpr uint8_t kChangeRecord = 1;    // a v1::JournalRecord
constexpr uint8_t kNextFileRecord = 2;  // empty; its index is the next file's start

// A record found after damage is one the journal wrote if its checksum
// verifies (the salt is the file's secret) and its index could follow.
constexpr uint64_t kMaxIndexGap = uint64_t{1} << 32;

std::string At(const std::string& path, uint64_t offset) {
  return path + " at byte offset " + std::to_string(offset);
}

// After damage at `offset`, where the record `index` was expected: the
// offset of a later record the journal wrote, if there is one.
std::optional<uint64_t> FindValidRecordAfter(std::string_view data, std::size_t offset,
                                             std::string_view salt, uint64_t index) {
  for (std::size_t later = offset + 1; later + kRecordHeaderBytes <= data.size(); ++later) {
    const RecordRead r = ReadRecord(data, later, salt, kMaxJournalRecordBytes);
    if (r.kind == RecordRead::Kind::kRecord && r.index >= index && r.index - index < kMaxIndexGap) {
      return later;
    }
  }
  return std::nullopt;
}

}  // namespace

std::string JournalFileName(uint64_t position) {
  char name[64];
  std::snprintf(name, sizeof name, "journal-%020" PRIu64 ".log", position);
  return name;
}

Status ReadJournalFile(FileSystem& fs, const std::string& path, uint64_t start,
                       JournalFileContents* contents) {
  std::string data;
  if (Status s = fs.ReadFile(path, &data); !s.ok()) return s;
  *contents = JournalFileContents();
  contents->first_index = start;
  const std::string_view view = data;
  const std::size_t header = kJournalMagic.size() + kSaltBytes;
  if (view.size() < header) {
    // Created, but its header never became durable: it holds no record.
    contents->damaged_bytes = view.size();
    contents->damage = "an incomplete file header";
    return Status::Ok();
  }
  if (view.substr(0, kJournalMagic.size()) != kJournalMagic) {
    return Status::Internal(
        path + " is not a gradientd journal file of this version (bad header" +
        (view.starts_with("GRDJNL01") ? ": format 01, written by an older gradientd" : "") + ")");
  }
  contents->salt = std::string(view.substr(kJournalMagic.size(), kSaltBytes));
  std::size_t offset = header;
  uint64_t index = start;  // the index the next record must have
  while (true) {
    const RecordRead r = ReadRecord(view, offset, contents->salt, kMaxJournalRecordBytes);
    if (r.kind == RecordRead::Kind::kEnd) break;
    if (r.kind != RecordRead::Kind::kRecord) {
      contents->damage = r.kind == RecordRead::Kind::kBadChecksum ? "a checksum mismatch"
                         : r.kind == RecordRead::Kind::kTooLong   ? "an impossible record length"
                                                                  : "an incomplete record";
      contents->valid_after = FindValidRecordAfter(view, offset, contents->salt, index);
      break;
    }
    if (contents->next_file) {
      return Status::Internal(At(path, offset) +
                              ": a record after the one that ends the file; refusing to start");
    }
    if (r.index != index) {
      return Status::Internal(At(path, offset) + ": record " + std::to_string(r.index) +
                              " where record " + std::to_string(index) +
                              " belongs; refusing to start");
    }
    if (r.type == kNextFileRecord) {
      contents->next_file = r.index;
    } else if (r.type == kChangeRecord) {
      if (!contents->records.emplace_back().ParseFromArray(r.payload.data(),
                                                           static_cast<int>(r.payload.size()))) {
        return Status::Internal(At(path, offset) +
                                ": a record with a good checksum does not parse; refusing "
                                "to start");
      }
      ++index;
    } else {
      return Status::Internal(At(path, offset) + ": a record of unknown kind " +
                              std::to_string(r.type) + "; refusing to start");
    }
    offset = r.next;
  }
  contents->valid_bytes = offset;
  contents->damaged_bytes = view.size() - offset;
  return Status::Ok();
}

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

Journal::Journal(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(options),
      next_(position),
      written_(position),
      synced_(position) {}

Status Journal::Open(FileSystem& fs, std::string dir, uint64_t position,
                     const std::optional<JournalTail>& tail, JournalOptions options,
                     std::unique_ptr<Journal>* journal) {
  std::unique_ptr<Journal> j(new Journal(fs, std::move(dir), position, options));
  if (tail) {
    const std::string path = j->dir_ + "/" + JournalFileName(tail->file_start);
    if (Status s = fs.OpenForAppend(path, &j->file_); !s.ok()) return s;
    j->file_start_ = tail->file_start;
    j->salt_ = tail->salt;
    j->file_size_ = tail->size;
  } else {
    if (Status s = j->CreateFile(position, &j->file_, &j->salt_); !s.ok()) return s;
    j->file_start_ = position;
    j->file_size_ = kJournalMagic.size() + kSaltBytes;
  }
  {
    util::MutexLock lock(j->mu_);  // alone here; taken for the analysis
    j->file_start_shared_ = j->file_start_;
  }
  j->committer_ = std::thread([raw = j.get()] { raw->CommitLoop(); });
  *journal = std::move(j);
  return Status::Ok();
}

Journal::~Journal() {
  {
    util::MutexLock lock(mu_);
    stop_ = true;
    sync_requested_ = true;
  }
  wake_.SignalAll();
  if (committer_.joinable()) committer_.join();
  if (file_) (void)file_->Close();
}

Status Journal::CreateFile(uint64_t position, std::unique_ptr<WritableFile>* file,
                           std::string* salt) const {
  const std::string path = dir_ + "/" + JournalFileName(position);
  *salt = NewSalt();
  Status s = fs_.NewWritableFile(path, file);
  if (s.ok()) s = (*file)->Append(FileHeader(kJournalMagic, *salt));
  if (s.ok() && options_.fsync != FsyncMode::kNever) s = (*file)->Sync();
  if (s.ok() && options_.fsync != FsyncMode::kNever) s = fs_.SyncDir(dir_);
  if (!s.ok() && *file) {
    (void)(*file)->Close();
    file->reset();
    (void)fs_.Remove(path);
  }
  return s;
}

Status Journal::Append(const v1::JournalRecord& record, uint64_t* token) {
  std::string payload = record.SerializeAsString();
  if (payload.size() > kMaxJournalRecordBytes) {
    return Status::InvalidArgument("the change is " + std::to_string(payload.size()) +
                                   " bytes as a journal record; the limit is " +
                                   std::to_string(kMaxJournalRecordBytes));
  }
  {
    util::MutexLock lock(mu_);
    if (!failed_.ok()) return failed_;
    bytes_since_rotate_ += payload.size() + kRecordHeaderBytes;
    pending_.push_back(std::move(payload));
    *token = ++next_;
  }
  wake_.Signal();
  return Status::Ok();
}

void Journal::OnDurable(uint64_t token, std::function<void(const Status&)> done) {
  Status status;
  {
    util::MutexLock lock(mu_);
    const uint64_t durable = DurableLocked();
    if (token <= durable) {
      status = Status::Ok();
    } else if (failed_.ok()) {
      waiters_.emplace(token, std::move(done));
      return;
    } else {
      status = failed_;
    }
  }
  done(status);
}

uint64_t Journal::DurableLocked() const {
  return options_.fsync == FsyncMode::kAlways ? synced_ : written_;
}

Status Journal::Outcome(uint64_t token) {
  util::MutexLock lock(mu_);
  const uint64_t durable = DurableLocked();
  if (token <= durable) return Status::Ok();
  return failed_.ok() ? Status::FailedPrecondition("journal record not yet durable") : failed_;
}

uint64_t Journal::Rotate() {
  util::MutexLock lock(mu_);
  while (rotate_ && failed_.ok()) progress_.Wait(mu_);
  rotate_ = true;
  rotate_count_ = pending_.size();
  rotate_position_ = next_;
  rotation_error_.clear();
  bytes_since_rotate_ = 0;
  wake_.Signal();
  return next_;
}

Status Journal::Sync() {
  util::MutexLock lock(mu_);
  const uint64_t target = next_;
  sync_requested_ = true;
  wake_.Signal();
  while ((synced_ < target || rotate_) && failed_.ok()) progress_.Wait(mu_);
  return failed_;
}

uint64_t Journal::file_start() const {
  util::MutexLock lock(mu_);
  return file_start_shared_;
}

std::string Journal::rotation_error() const {
  util::MutexLock lock(mu_);
  return rotation_error_;
}

Status Journal::health() const {
  util::MutexLock lock(mu_);
  return failed_;
}

uint64_t Journal::bytes_since_rotate() const {
  util::MutexLock lock(mu_);
  return bytes_since_rotate_;
}

std::string Journal::Encode(const std::vector<std::string>& batch, std::size_t begin,
                            std::size_t end, uint64_t first_index) const {
  std::string data;
  for (std::size_t i = begin; i < end; ++i) {
    AppendRecord(salt_, first_index + i, kChangeRecord, batch[i], &data);
  }
  return data;
}

Status Journal::WriteOrCutBack(std::string_view data, bool sync) {
  if (data.empty() && !sync) return Status::Ok();
  JournalMetrics* metrics = options_.metrics;
  Status s = data.empty() ? Status::Ok() : file_->Append(data);
  if (s.ok() && metrics != nullptr) metrics->bytes_written.Add(data.size());
  if (s.ok() && sync) {
    const auto start = std::chrono::steady_clock::now();
    s = file_->Sync();
    const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
    if (metrics != nullptr) metrics->fsync_seconds.Observe(took.count());
  }
  if (s.ok()) {
    file_size_ += data.size();
    return s;
  }
  if (metrics != nullptr) metrics->write_failures.Add();
  // Part of the write may be in the file: cut it back, so that what was not
  // acknowledged cannot be recovered after a restart.
  const std::string path = dir_ + "/" + JournalFileName(file_start_);
  if (Status cut = file_->Truncate(file_size_); !cut.ok()) {
    return Status(s.code(), s.message() +
                                "; and the file could not be cut back to its last "
                                "durable record (" +
                                cut.message() +
                                "), so changes answered with this error may reappear after a "
                                "restart");
  }
  return s;
}

bool Journal::MoveToNewFile(uint64_t position) {
  if (position == file_start_) return true;  // the current file starts there
  std::unique_ptr<WritableFile> next;
  std::string salt;
  Status s = CreateFile(position, &next, &salt);
  // The old file ends with a record naming the new one, so recovery knows
  // the new one must exist.
  std::string marker;
  if (s.ok()) AppendRecord(salt_, position, kNextFileRecord, "", &marker);
  if (s.ok()) s = WriteOrCutBack(marker, options_.fsync != FsyncMode::kNever);
  if (!s.ok()) {
    if (next) {
      (void)next->Close();
      (void)fs_.Remove(dir_ + "/" + JournalFileName(position));
    }
    util::MutexLock lock(mu_);
    rotation_error_ = s.message();
    return false;
  }
  (void)file_->Close();
  file_ = std::move(next);
  file_start_ = position;
  salt_ = std::move(salt);
  file_size_ = kJournalMagic.size() + kSaltBytes;
  util::MutexLock lock(mu_);
  file_start_shared_ = position;
  return true;
}

struct Journal::Round {
  std::vector<std::string> batch;
  uint64_t end = 0;  // the position after the batch
  uint64_t first_index = 0;
  bool rotate = false;
  std::size_t rotate_count = 0;  // the first rotate_count records go to the old file
  uint64_t rotate_position = 0;
  bool sync_requested = false;
  bool stopping = false;
};

void Journal::CommitLoop() {
  auto last_sync = std::chrono::steady_clock::now();
  util::MutexLock lock(mu_);
  while (true) {
    WaitForWork(last_sync);
    if (!failed_.ok()) {
      if (stop_) return;
      pending_.clear();
      rotate_ = false;
      sync_requested_ = false;
      progress_.SignalAll();
      while (!stop_ && pending_.empty()) wake_.Wait(mu_);
      continue;
    }
    const Round round = TakeRound();
    lock.Unlock();
    // How far the records got: written to the OS, and synced.
    uint64_t written = 0, synced = 0;
    const Status s = WriteRound(round, &last_sync, &written, &synced);
    lock.Lock();
    auto done = FinishRound(round, s, written, synced);
    lock.Unlock();
    for (auto& [callback, status] : done) callback(status);
    lock.Lock();
    if (round.stopping && pending_.empty() && !rotate_) return;
  }
}

void Journal::WaitForWork(std::chrono::steady_clock::time_point last_sync) {
  using Clock = std::chrono::steady_clock;
  const auto has_work = [&]() REQUIRES(mu_) {
    return !pending_.empty() || rotate_ || sync_requested_ || stop_ ||
           (options_.fsync == FsyncMode::kInterval && synced_ < written_ &&
            Clock::now() >= last_sync + options_.fsync_interval);
  };
  if (options_.fsync == FsyncMode::kInterval) {
    const auto deadline = last_sync + options_.fsync_interval;
    while (!has_work() && wake_.WaitUntil(mu_, deadline)) {
    }
  } else {
    while (!has_work()) wake_.Wait(mu_);
  }
}

Journal::Round Journal::TakeRound() {
  Round round;
  round.batch.swap(pending_);
  round.end = next_;
  round.first_index = round.end - round.batch.size();
  round.rotate = rotate_;
  round.rotate_count = rotate_ ? rotate_count_ : 0;
  round.rotate_position = rotate_position_;
  round.sync_requested = sync_requested_;
  sync_requested_ = false;
  round.stopping = stop_;
  return round;
}

Status Journal::WriteRound(const Round& round, std::chrono::steady_clock::time_point* last_sync,
                           uint64_t* written, uint64_t* synced) {
  using Clock = std::chrono::steady_clock;
  if (options_.metrics != nullptr && !round.batch.empty()) {
    options_.metrics->group_commit_records.Observe(static_cast<double>(round.batch.size()));
  }
  Status s;
  if (round.rotate) {
    // What came before the rotation goes to the old file, synced unless
    // the mode is never: the snapshot at the rotation's position relies on it.
    const bool sync_old = options_.fsync != FsyncMode::kNever;
    s = WriteOrCutBack(Encode(round.batch, 0, round.rotate_count, round.first_index), sync_old);
    if (s.ok()) {
      *written = round.first_index + round.rotate_count;
      if (sync_old) *synced = *written;
      MoveToNewFile(round.rotate_position);
    }
  }
  const bool interval_due = options_.fsync == FsyncMode::kInterval &&
                            Clock::now() >= *last_sync + options_.fsync_interval;
  const bool sync = options_.fsync == FsyncMode::kAlways || round.sync_requested || interval_due;
  if (s.ok()) {
    s = WriteOrCutBack(
        Encode(round.batch, round.rotate_count, round.batch.size(), round.first_index), sync);
  }
  if (s.ok()) {
    *written = round.end;
    if (sync) {
      *synced = round.end;
      *last_sync = Clock::now();
    }
  }
  return s;
}

std::vector<std::pair<std::function<void(const Status&)>, Status>> Journal::FinishRound(
    const Round& round, const Status& s, uint64_t written, uint64_t synced) {
  if (round.rotate) rotate_ = false;
  written_ = std::max(written_, written);
  synced_ = std::max(synced_, synced);
  if (!s.ok()) {
    failed_ =
        Status(s.code(), "the journal failed, so the change was not made durable (" + s.message() +
                             "); gradientd refuses changes until it is restarted");
  }
  const uint64_t durable = DurableLocked();
  // Each waiter by its own fate: those made durable before the failure
  // are acknowledged, the others get the error.
  std::vector<std::pair<std::function<void(const Status&)>, Status>> done;
  const auto last = s.ok() ? waiters_.upper_bound(durable) : waiters_.end();
  for (auto it = waiters_.begin(); it != last; ++it) {
    done.emplace_back(std::move(it->second), it->first <= durable ? Status::Ok() : failed_);
  }
  waiters_.erase(waiters_.begin(), last);
  progress_.SignalAll();
  return done;
}

}  // namespace gradientd::storage
