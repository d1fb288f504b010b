#include "storage/journal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <utility>

#include "storage/record_format.h"

namespace gradientd::storage {
namespace {

// How far past a bad record to look for a valid one (records are far smaller).
constexpr std::size_t kMaxScan = 1 << 16;

}  // namespace

std::string JournalFileName(uint64_t position) {
  char name[64];
  std::snprintf(name, sizeof name, "journal-%020" PRIu64 ".log", position);
  return name;
}

Status ReadJournalFile(FileSystem& fs, const std::string& path, JournalFileContents* contents) {
  std::string data;
  if (Status s = fs.ReadFile(path, &data); !s.ok()) return s;
  *contents = JournalFileContents();
  const std::string_view view = data;
  if (view.size() < kJournalMagic.size()) {
    // A crash right after the file was created: nothing was acknowledged.
    contents->torn_bytes = view.size();
    return Status::Ok();
  }
  if (view.substr(0, kJournalMagic.size()) != kJournalMagic) {
    return Status::Internal(path + " is not a gradientd journal file (bad header)");
  }
  std::size_t offset = kJournalMagic.size();
  while (true) {
    const RecordRead r = ReadRecord(view, offset);
    if (r.kind == RecordRead::Kind::kEnd) break;
    // The journal never writes an empty record: zeros are an unwritten tail.
    if (r.kind == RecordRead::Kind::kRecord && !r.payload.empty()) {
      v1::JournalRecord& record = contents->records.emplace_back();
      if (!record.ParseFromArray(r.payload.data(), static_cast<int>(r.payload.size()))) {
        return Status::Internal(path + " is corrupt at byte offset " + std::to_string(offset) +
                                ": a record with a good checksum does not parse");
      }
      offset = r.next;
      continue;
    }
    // A bad record: a torn tail only if no valid record follows it.
    for (std::size_t later = offset + 1; later + kRecordHeaderBytes <= view.size(); ++later) {
      // Journal records are small; a longer length is garbage, not a record.
      const RecordRead next =
          ReadRecord(view.substr(0, std::min(view.size(), later + kMaxScan)), later);
      if (next.kind == RecordRead::Kind::kRecord && !next.payload.empty()) {
        return Status::Internal(
            path + " is corrupt at byte offset " + std::to_string(offset) + " (record " +
            std::to_string(contents->records.size()) + ": " +
            (r.kind == RecordRead::Kind::kBadChecksum ? "checksum mismatch" : "bad length") +
            ") with valid records after it, at byte offset " + std::to_string(later) +
            "; refusing to start rather than drop them. Restore the file from a backup, or "
            "move it away to start without the records from that offset on");
      }
    }
    break;
  }
  contents->valid_bytes = offset;
  contents->torn_bytes = view.size() - offset;
  return Status::Ok();
}

Journal::Journal(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options)
    : fs_(fs),
      dir_(std::move(dir)),
      options_(options),
      next_(position),
      written_(position),
      synced_(position) {}

Status Journal::Open(FileSystem& fs, std::string dir, uint64_t position, JournalOptions options,
                     std::unique_ptr<Journal>* journal) {
  std::unique_ptr<Journal> j(new Journal(fs, std::move(dir), position, options));
  if (Status s = j->StartFile(position); !s.ok()) return s;
  j->committer_ = std::thread([raw = j.get()] { raw->CommitLoop(); });
  *journal = std::move(j);
  return Status::Ok();
}

Journal::~Journal() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
    sync_requested_ = true;
  }
  wake_.notify_all();
  if (committer_.joinable()) committer_.join();
  if (file_) (void)file_->Close();
}

Status Journal::StartFile(uint64_t position) {
  const std::string path = dir_ + "/" + JournalFileName(position);
  if (Status s = fs_.NewWritableFile(path, &file_); !s.ok()) return s;
  if (Status s = file_->Append(kJournalMagic); !s.ok()) return s;
  if (options_.fsync != FsyncMode::kNever) {
    if (Status s = file_->Sync(); !s.ok()) return s;
    return fs_.SyncDir(dir_);
  }
  return Status::Ok();
}

Status Journal::Append(const v1::JournalRecord& record, uint64_t* token) {
  const std::string payload = record.SerializeAsString();
  {
    std::lock_guard lock(mu_);
    if (!failed_.ok()) return failed_;
    const std::size_t before = pending_.size();
    AppendRecord(payload, &pending_);
    bytes_since_rotate_ += pending_.size() - before;
    *token = ++next_;
  }
  wake_.notify_one();
  return Status::Ok();
}

void Journal::OnDurable(uint64_t token, std::function<void(const Status&)> done) {
  Status status;
  {
    std::lock_guard lock(mu_);
    const uint64_t durable = options_.fsync == FsyncMode::kAlways ? synced_ : written_;
    if (failed_.ok() && durable < token) {
      waiters_.emplace(token, std::move(done));
      return;
    }
    status = failed_;
  }
  done(status);
}

Status Journal::Outcome(uint64_t token) {
  std::lock_guard lock(mu_);
  const uint64_t durable = options_.fsync == FsyncMode::kAlways ? synced_ : written_;
  if (token <= durable) return Status::Ok();
  return failed_.ok() ? Status::FailedPrecondition("journal record not yet durable") : failed_;
}

uint64_t Journal::Rotate() {
  std::unique_lock lock(mu_);
  progress_.wait(lock, [&] { return !rotate_ || !failed_.ok(); });
  rotate_ = true;
  rotate_offset_ = pending_.size();
  rotate_position_ = next_;
  bytes_since_rotate_ = 0;
  wake_.notify_one();
  return next_;
}

Status Journal::Sync() {
  std::unique_lock lock(mu_);
  const uint64_t target = next_;
  sync_requested_ = true;
  wake_.notify_one();
  progress_.wait(lock, [&] { return (synced_ >= target && !rotate_) || !failed_.ok(); });
  return failed_;
}

uint64_t Journal::bytes_since_rotate() const {
  std::lock_guard lock(mu_);
  return bytes_since_rotate_;
}

void Journal::CommitLoop() {
  using Clock = std::chrono::steady_clock;
  auto last_sync = Clock::now();
  std::unique_lock lock(mu_);
  while (true) {
    auto has_work = [&] {
      return !pending_.empty() || rotate_ || sync_requested_ || stop_ ||
             (options_.fsync == FsyncMode::kInterval && synced_ < written_ &&
              Clock::now() >= last_sync + options_.fsync_interval);
    };
    if (options_.fsync == FsyncMode::kInterval) {
      wake_.wait_until(lock, last_sync + options_.fsync_interval, has_work);
    } else {
      wake_.wait(lock, has_work);
    }
    if (!failed_.ok()) {
      if (stop_) return;
      pending_.clear();
      rotate_ = false;
      sync_requested_ = false;
      progress_.notify_all();
      wake_.wait(lock, [&] { return stop_ || !pending_.empty(); });
      continue;
    }
    std::string batch;
    batch.swap(pending_);
    const uint64_t end = next_;
    const bool rotate = rotate_;
    const std::size_t rotate_offset = rotate_offset_;
    const uint64_t rotate_position = rotate_position_;
    const bool sync_requested = sync_requested_;
    sync_requested_ = false;
    const bool stopping = stop_;
    lock.unlock();

    Status s;
    bool synced = false;
    std::string_view rest = batch;
    if (rotate) {
      s = file_->Append(rest.substr(0, rotate_offset));
      if (s.ok() && options_.fsync != FsyncMode::kNever) s = file_->Sync();
      if (s.ok()) s = file_->Close();
      if (s.ok()) s = StartFile(rotate_position);
      rest.remove_prefix(rotate_offset);
    }
    if (s.ok() && !rest.empty()) s = file_->Append(rest);
    const bool interval_due = options_.fsync == FsyncMode::kInterval &&
                              Clock::now() >= last_sync + options_.fsync_interval;
    if (s.ok() && (options_.fsync == FsyncMode::kAlways || sync_requested || interval_due)) {
      s = file_->Sync();
      synced = true;
      last_sync = Clock::now();
    }

    lock.lock();
    if (rotate) rotate_ = false;
    if (s.ok()) {
      written_ = end;
      if (synced) synced_ = end;
    } else {
      failed_ =
          Status(s.code(), "the journal failed, so the change was not made durable (" +
                               s.message() + "); gradientd refuses changes until it is restarted");
    }
    const uint64_t durable = options_.fsync == FsyncMode::kAlways ? synced_ : written_;
    std::vector<std::function<void(const Status&)>> done;
    auto last = s.ok() ? waiters_.upper_bound(durable) : waiters_.end();
    for (auto it = waiters_.begin(); it != last; ++it) done.push_back(std::move(it->second));
    waiters_.erase(waiters_.begin(), last);
    progress_.notify_all();
    lock.unlock();
    for (auto& callback : done) callback(s.ok() ? s : failed_);
    lock.lock();
    if (stopping && pending_.empty() && !rotate_) return;
  }
}

}  // namespace gradientd::storage
