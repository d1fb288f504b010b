#include "storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

namespace gradientd::storage {
namespace {

Status OsError(std::string_view what, const std::string& path, int error) {
  const StatusCode code =
      error == ENOSPC || error == EDQUOT ? StatusCode::kResourceExhausted : StatusCode::kInternal;
  return Status(code, std::string(what) + " " + path + ": " + std::strerror(error));
}

class PosixFile : public WritableFile {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Append(std::string_view data) override {
    while (!data.empty()) {
      const ssize_t n = ::write(fd_, data.data(), data.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return OsError("write", path_, errno);
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return Status::Ok();
  }

  Status Sync() override {
    if (::fdatasync(fd_) != 0) return OsError("fsync", path_, errno);
    return Status::Ok();
  }

  Status Truncate(uint64_t size) override {
    if (::ftruncate(fd_, static_cast<off_t>(size)) != 0) return OsError("truncate", path_, errno);
    return Sync();
  }

  Status Close() override {
    const int fd = fd_;
    fd_ = -1;
    if (fd >= 0 && ::close(fd) != 0) return OsError("close", path_, errno);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixSequentialFile : public SequentialFile {
 public:
  PosixSequentialFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixSequentialFile() override { ::close(fd_); }

  Status Read(std::size_t n, std::string* out) override {
    const std::size_t start = out->size();
    out->resize(start + n);
    std::size_t got = 0;
    while (got < n) {
      const ssize_t r = ::read(fd_, out->data() + start + got, n - got);
      if (r < 0 && errno == EINTR) continue;
      if (r < 0) {
        out->resize(start + got);
        return OsError("cannot read", path_, errno);
      }
      if (r == 0) break;
      got += static_cast<std::size_t>(r);
    }
    out->resize(start + got);
    return Status::Ok();
  }

 private:
  int fd_;
  std::string path_;
};

class PosixLock : public FileLock {
 public:
  explicit PosixLock(int fd) : fd_(fd) {}
  ~PosixLock() override { ::close(fd_); }  // releases the flock

 private:
  int fd_;
};

class Posix : public FileSystem {
 public:
  Status NewWritableFile(const std::string& path, std::unique_ptr<WritableFile>* file) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) return OsError("cannot create", path, errno);
    *file = std::make_unique<PosixFile>(fd, path);
    return Status::Ok();
  }

  Status OpenForAppend(const std::string& path, std::unique_ptr<WritableFile>* file) override {
    const int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open", path, errno);
    *file = std::make_unique<PosixFile>(fd, path);
    return Status::Ok();
  }

  Status NewSequentialFile(const std::string& path,
                           std::unique_ptr<SequentialFile>* file) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open", path, errno);
    *file = std::make_unique<PosixSequentialFile>(fd, path);
    return Status::Ok();
  }

  Status ReadFile(const std::string& path, std::string* contents) override {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open", path, errno);
    contents->clear();
    char buffer[1 << 16];
    while (true) {
      const ssize_t n = ::read(fd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        const int error = errno;
        ::close(fd);
        return OsError("cannot read", path, error);
      }
      if (n == 0) break;
      contents->append(buffer, static_cast<std::size_t>(n));
    }
    ::close(fd);
    return Status::Ok();
  }

  Status Truncate(const std::string& path, uint64_t size) override {
    if (::truncate(path.c_str(), static_cast<off_t>(size)) != 0) {
      return OsError("cannot truncate", path, errno);
    }
    const int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open", path, errno);
    const int rc = ::fdatasync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) return OsError("fsync", path, error);
    return Status::Ok();
  }

  Status Rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0) return OsError("cannot rename", from, errno);
    return Status::Ok();
  }

  Status Remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      return OsError("cannot remove", path, errno);
    }
    return Status::Ok();
  }

  Status SyncDir(const std::string& dir) override {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return OsError("cannot open directory", dir, errno);
    const int rc = ::fsync(fd);
    const int error = errno;
    ::close(fd);
    if (rc != 0) return OsError("fsync", dir, error);
    return Status::Ok();
  }

  Status ListDir(const std::string& dir, std::vector<std::string>* names) override {
    DIR* d = ::opendir(dir.c_str());
    if (d == nullptr) return OsError("cannot list", dir, errno);
    names->clear();
    while (const dirent* entry = ::readdir(d)) {
      const std::string name = entry->d_name;
      if (name != "." && name != "..") names->push_back(name);
    }
    ::closedir(d);
    return Status::Ok();
  }

  Status CreateDirs(const std::string& dir) override {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    if (ec) return Status::Internal("cannot create directory " + dir + ": " + ec.message());
    return Status::Ok();
  }

  Status Lock(const std::string& path, std::unique_ptr<FileLock>* lock) override {
    const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return OsError("cannot open lock file", path, errno);
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      const int error = errno;
      ::close(fd);
      if (error == EWOULDBLOCK) {
        return Status::FailedPrecondition(path +
                                          " is locked: another gradientd is using this data "
                                          "directory");
      }
      return OsError("cannot lock", path, error);
    }
    *lock = std::make_unique<PosixLock>(fd);
    return Status::Ok();
  }
};

}  // namespace

FileSystem& PosixFileSystem() {
  static Posix posix;
  return posix;
}

class FaultInjectingFileSystem::File : public WritableFile {
 public:
  File(FaultInjectingFileSystem& fs, std::unique_ptr<WritableFile> base, std::string path)
      : fs_(fs), base_(std::move(base)), path_(std::move(path)) {}

  Status Append(std::string_view data) override {
    int64_t budget = fs_.write_budget_.load();
    if (budget >= 0) {
      const auto allowed = static_cast<std::size_t>(budget);
      if (data.size() > allowed) {
        if (allowed > 0) (void)base_->Append(data.substr(0, allowed));
        fs_.write_budget_ = 0;
        return OsError("write", path_, ENOSPC);
      }
      fs_.write_budget_ = budget - static_cast<int64_t>(data.size());
    }
    return base_->Append(data);
  }
  Status Sync() override {
    if (fs_.fail_syncs_) return OsError("fsync", path_, EIO);
    return base_->Sync();
  }
  Status Truncate(uint64_t size) override { return base_->Truncate(size); }
  Status Close() override { return base_->Close(); }

 private:
  FaultInjectingFileSystem& fs_;
  std::unique_ptr<WritableFile> base_;
  std::string path_;
};

Status FaultInjectingFileSystem::Open(const std::string& path, bool append,
                                      std::unique_ptr<WritableFile>* file) {
  if (fail_opens_) return OsError(append ? "cannot open" : "cannot create", path, EMFILE);
  std::unique_ptr<WritableFile> base;
  Status s = append ? base_.OpenForAppend(path, &base) : base_.NewWritableFile(path, &base);
  if (s.ok()) *file = std::make_unique<File>(*this, std::move(base), path);
  return s;
}

Status FaultInjectingFileSystem::SyncDir(const std::string& dir) {
  if (fail_syncs_) return OsError("fsync", dir, EIO);
  return base_.SyncDir(dir);
}

}  // namespace gradientd::storage
