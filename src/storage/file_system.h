// FileSystem: the little of the OS that the data directory needs, behind an
// interface so tests can inject failures (a full disk, a failing fsync).
// Errors name the file and the OS error.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace gradientd::storage {

// A file open for appending. Not synchronised.
class WritableFile {
 public:
  virtual ~WritableFile() = default;
  virtual Status Append(std::string_view data) = 0;
  virtual Status Sync() = 0;  // data reaches stable storage (fdatasync)
  // Cuts the file to `size` bytes and syncs that; later appends go after it.
  virtual Status Truncate(uint64_t size) = 0;
  virtual Status Close() = 0;
};

// A file open for reading from its start. Not synchronised.
class SequentialFile {
 public:
  virtual ~SequentialFile() = default;
  // Appends up to `n` more bytes to `out`; fewer only at the end of the file.
  virtual Status Read(std::size_t n, std::string* out) = 0;
};

// Held while the process uses a directory; released on destruction.
class FileLock {
 public:
  virtual ~FileLock() = default;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Creates `path`, or truncates it, for appending.
  virtual Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* file) = 0;
  // Opens an existing `path` for appending after its last byte.
  virtual Status OpenForAppend(const std::string& path, std::unique_ptr<WritableFile>* file) = 0;
  virtual Status ReadFile(const std::string& path, std::string* contents) = 0;
  virtual Status NewSequentialFile(const std::string& path,
                                   std::unique_ptr<SequentialFile>* file) = 0;
  virtual Status Truncate(const std::string& path, uint64_t size) = 0;
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  virtual Status Remove(const std::string& path) = 0;
  virtual Status SyncDir(const std::string& dir) = 0;
  // The names (not paths) of the entries of `dir`.
  virtual Status ListDir(const std::string& dir, std::vector<std::string>* names) = 0;
  virtual Status CreateDirs(const std::string& dir) = 0;
  // An exclusive advisory lock on `path` (created if needed); fails at once
  // if another process holds it.
  virtual Status Lock(const std::string& path, std::unique_ptr<FileLock>* lock) = 0;
};

// The real one. Thread-safe.
FileSystem& PosixFileSystem();

// Passes everything to `base`, but fails writes (as a full disk would: the
// write is cut short) or syncs on demand. Thread-safe.
class FaultInjectingFileSystem : public FileSystem {
 public:
  explicit FaultInjectingFileSystem(FileSystem& base) : base_(base) {}

  // Appends fail with ENOSPC once `bytes` more bytes have been written; a
  // write straddling the limit writes its first part (a torn write).
  void FailWritesAfter(uint64_t bytes) { write_budget_ = static_cast<int64_t>(bytes); }
  void StopFailingWrites() { write_budget_ = -1; }
  void FailSyncs(bool fail) { fail_syncs_ = fail; }

  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* file) override {
    return Open(path, false, file);
  }
  Status OpenForAppend(const std::string& path, std::unique_ptr<WritableFile>* file) override {
    return Open(path, true, file);
  }
  // New files fail to open (as when out of descriptors) while set.
  void FailOpens(bool fail) { fail_opens_ = fail; }
  Status ReadFile(const std::string& path, std::string* contents) override {
    return base_.ReadFile(path, contents);
  }
  Status NewSequentialFile(const std::string& path,
                           std::unique_ptr<SequentialFile>* file) override {
    return base_.NewSequentialFile(path, file);
  }
  Status Truncate(const std::string& path, uint64_t size) override {
    return base_.Truncate(path, size);
  }
  Status Rename(const std::string& from, const std::string& to) override {
    return base_.Rename(from, to);
  }
  Status Remove(const std::string& path) override { return base_.Remove(path); }
  Status SyncDir(const std::string& dir) override;
  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    return base_.ListDir(dir, names);
  }
  Status CreateDirs(const std::string& dir) override { return base_.CreateDirs(dir); }
  Status Lock(const std::string& path, std::unique_ptr<FileLock>* lock) override {
    return base_.Lock(path, lock);
  }

 private:
  class File;
  Status Open(const std::string& path, bool append, std::unique_ptr<WritableFile>* file);
  FileSystem& base_;
  std::atomic<int64_t> write_budget_{-1};  // -1: unlimited
  std::atomic<bool> fail_syncs_{false};
  std::atomic<bool> fail_opens_{false};
};

}  // namespace gradientd::storage
