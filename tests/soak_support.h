// The soak tests' support: the server's limits and the run's shape, the
// bookkeeping the client threads share (Problems, Tally), the gradientd
// process (ServerProcess, Watchdog) and raw sockets for the bytes no
// well-behaved client would send. Header-only; everything here is
// thread-compatible unless it says otherwise (Problems and Tally are
// thread-safe).
#ifndef GRADIENTD_TESTS_SOAK_SUPPORT_H_
#define GRADIENTD_TESTS_SOAK_SUPPORT_H_

#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "protocol/connection.h"
#include "protocol/frame_codec.h"

extern char** environ;

#ifndef GRADIENTD_SOAK_DEFAULT_SECONDS
#define GRADIENTD_SOAK_DEFAULT_SECONDS 20
#endif

namespace gradientd::soak {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;

// ---- The server's limits (flags) and the test's shape ----------------------

constexpr int kMaxConnections = 32;
constexpr std::size_t kMaxFrameBytes = 64 * 1024;
constexpr std::size_t kMaxQueuedBytes = 64 * 1024;
constexpr auto kIdleTimeout = 4000ms;
constexpr auto kRequestTimeout = 1000ms;
constexpr auto kWriteTimeout = 1000ms;

constexpr int kProducers = 4;
constexpr int kQueriers = 2;
constexpr int kWellBehaved = kProducers + kQueriers;
constexpr std::size_t kWindow = 8;      // unacknowledged batches per producer
constexpr int kMaxBatchPoints = 2048;   // 2048 * 16 bytes: well under kMaxFrameBytes
constexpr int kDuplicateEvery = 64;     // every 64th send repeats an acknowledged batch
constexpr int64_t kHalfRangeK = 10000;  // x = offset + k, |k| <= kHalfRangeK
constexpr int kStallersAtOnce = 3;
constexpr int kHoardExtra = 4;  // hoarders try this many beyond the limit

// A bound for waits that only a broken server can exceed.
constexpr auto kPatience = 30s;
// On a slow or loaded machine a kind of hostile client may not have got
// past the connection limit when the time is up: the run goes on until each
// has, for at most this long.
constexpr auto kExtension = 60s;

// Peak RSS allowed (normal build), from the limits above. Per connection the
// server holds at most:
//   its receive buffer: a partial frame (< kMaxFrameBytes) plus what the
//     next frame needs or the read-ahead, whichever is larger
//     (Connection::kMaxReadAhead, 1 MiB): 2 * kMaxFrameBytes + kMaxReadAhead;
//   the decoded request, whose arrays are kept for the next batch and may
//     have grown by doubling: 2 * kMaxFrameBytes;
//   its response queue: reading stops at kMaxQueuedBytes, plus one chunk of
//     about kChunkBytes (server.cc) and a response, each string possibly
//     with twice its size in capacity: 2 * (kMaxQueuedBytes + kChunkBytes);
//   the socket, three coroutine frames, timers, the session: < 64 KiB.
// With kMaxConnections such connections at once, on top of what the server
// held after starting (the baseline, measured), plus 16 MiB for malloc's
// per-thread arenas and fragmentation, the few series and the refused
// connections in flight. Leaks per request, per batch or per connection
// (thousands of each during a run) go past it; a server that reads without
// bound from a client that does not read goes past it within seconds.
constexpr std::size_t kChunkBytes = 256 * 1024;
constexpr std::size_t kPerConnectionBytes =
    2 * kMaxFrameBytes + protocol::Connection::kMaxReadAhead + 2 * kMaxFrameBytes +
    2 * (kMaxQueuedBytes + kChunkBytes) + 64 * 1024;
constexpr std::size_t kRssSlackBytes = 16u << 20;

// Sanitizers change memory use wholesale, so there the bound is coarse (the
// normal build's is the tight one): ASan keeps freed memory in a quarantine
// of 256 MiB of user bytes by default, which with chunk headers and
// redzones can hold twice that, and adds redzones and shadow to live memory
// (a 20 s run peaked at 395 MiB, a 90 s one at 412 MiB); TSan's shadow is
// a few times the application's memory, plus per-thread traces and sync
// objects (a 20 s run peaked at 55 MiB). Still bounded, still catching
// growth without limit.
#if defined(GRADIENTD_SOAK_SANITIZER_ADDRESS)
constexpr std::size_t kRssScale = 3;
constexpr std::size_t kSanitizerBytes = 512u << 20;
constexpr const char* kBuildKind = "ASan+UBSan";
#elif defined(GRADIENTD_SOAK_SANITIZER_THREAD)
constexpr std::size_t kRssScale = 4;
constexpr std::size_t kSanitizerBytes = 128u << 20;
constexpr const char* kBuildKind = "TSan";
#else
constexpr std::size_t kRssScale = 1;
constexpr std::size_t kSanitizerBytes = 0;
constexpr const char* kBuildKind = "normal";
#endif

inline std::size_t RssBoundBytes(std::size_t baseline) {
  return baseline + kRssScale * (kMaxConnections * kPerConnectionBytes + kRssSlackBytes) +
         kSanitizerBytes;
}

inline std::chrono::seconds SoakDuration() {
  long seconds = GRADIENTD_SOAK_DEFAULT_SECONDS;
  if (const char* text = std::getenv("SOAK_SECONDS"); text != nullptr && *text != 0) {
    char* end = nullptr;
    seconds = std::strtol(text, &end, 10);
    if (end == text || *end != 0 || seconds <= 0) {
      ADD_FAILURE() << "SOAK_SECONDS='" << text << "' is not a positive number of seconds";
      seconds = GRADIENTD_SOAK_DEFAULT_SECONDS;
    }
  }
  return std::chrono::seconds(seconds);
}

inline double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
inline double MiB(std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }
inline long Millis(Clock::duration d) {
  return static_cast<long>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count());
}

// ---- Bookkeeping shared by the threads -------------------------------------

// Everything that went wrong, from any thread; the first few are reported.
class Problems {
 public:
  void Add(const std::string& what) {
    std::lock_guard lock(mu_);
    if (messages_.size() < 20) messages_.push_back(what);
    ++count_;
  }
  uint64_t count() const {
    std::lock_guard lock(mu_);
    return count_;
  }
  std::string Report() const {
    std::lock_guard lock(mu_);
    std::string text = std::to_string(count_) + " problem(s):";
    for (const auto& m : messages_) text += "\n  " + m;
    if (count_ > messages_.size()) text += "\n  ...";
    return text;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> messages_;
  uint64_t count_ = 0;
};

// Counts of what happened, per kind of client and outcome.
class Tally {
 public:
  void Count(const std::string& kind, const std::string& outcome, uint64_t n = 1) {
    std::lock_guard lock(mu_);
    counts_[kind][outcome] += n;
  }
  void Max(const std::string& kind, const std::string& what, uint64_t value) {
    std::lock_guard lock(mu_);
    uint64_t& v = counts_[kind][what];
    v = std::max(v, value);
  }
  uint64_t Get(const std::string& kind, const std::string& outcome) const {
    std::lock_guard lock(mu_);
    const auto k = counts_.find(kind);
    if (k == counts_.end()) return 0;
    const auto o = k->second.find(outcome);
    return o == k->second.end() ? 0 : o->second;
  }
  std::string Line(const std::string& kind) const {
    std::lock_guard lock(mu_);
    std::string text = kind + ":";
    const auto k = counts_.find(kind);
    if (k == counts_.end()) return text + " none";
    const char* separator = " ";
    for (const auto& [outcome, n] : k->second) {
      text += separator + std::to_string(n) + " " + outcome;
      separator = "; ";
    }
    return text;
  }

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, uint64_t>> counts_;
};

// Sleeps `d` in short steps, returning early once `stop` is set.
inline void Pause(Clock::duration d, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + d;
  while (!stop && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), 20ms));
  }
}

// ---- The gradientd process -------------------------------------------------

// /proc/PID/status field in bytes (VmRSS, VmHWM); 0 if unreadable.
inline std::size_t ProcStatusBytes(pid_t pid, const std::string& field) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(field + ":", 0) == 0) {
      return static_cast<std::size_t>(std::strtoull(line.c_str() + field.size() + 1, nullptr, 10)) *
             1024;
    }
  }
  return 0;
}

class ServerProcess {
 public:
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
    }
    if (stdout_fd_ >= 0) ::close(stdout_fd_);
  }

  // Starts `binary` with `args`, waits (bounded) for its listening line.
  // Returns "" or what went wrong.
  std::string Start(const std::string& binary, const std::vector<std::string>& args) {
    int pipe_fds[2];
    if (::pipe2(pipe_fds, O_CLOEXEC) != 0) return std::string("pipe: ") + std::strerror(errno);
    stdout_fd_ = pipe_fds[0];
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], STDOUT_FILENO);
    // The test ignores SIGPIPE; the server gets the default, so a write to
    // a closed socket that it did not guard against would show as a crash.
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t defaults;
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    posix_spawnattr_setsigdefault(&attr, &defaults);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF);
    std::vector<char*> argv;
    argv.push_back(const_cast<char*>(binary.c_str()));
    for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const int rc = ::posix_spawn(&pid_, binary.c_str(), &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    ::close(pipe_fds[1]);
    if (rc != 0) {
      pid_ = -1;
      return "cannot start " + binary + ": " + std::strerror(rc);
    }
    // The stdout lines: "gradientd http listening on HOST:PORT" (unless
    // --http-listen off), then "gradientd listening on HOST:PORT".
    const std::string http_line = "gradientd http listening on ";
    const std::string prefix = "gradientd listening on ";
    std::string text;
    const auto deadline = Clock::now() + 60s;  // sanitizer builds start slowly
    std::size_t start = 0;
    while (true) {
      const std::size_t newline = text.find('\n', start);
      if (newline != std::string::npos) {
        const std::string line = text.substr(start, newline - start);
        if (line.rfind(prefix, 0) == 0) {
          stdout_after_ = text.substr(newline + 1);
          address_ = line.substr(prefix.size());
          break;
        }
        if (start != 0 || line.rfind(http_line, 0) != 0) {
          return "unexpected stdout from gradientd: '" + text + "'";
        }
        start = newline + 1;
        continue;
      }
      if (Clock::now() >= deadline) return "gradientd did not print its listening line in 60 s";
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[256];
      const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0) return "gradientd exited before listening (see its stderr above)";
      text.append(buffer, static_cast<std::size_t>(n));
    }
    const std::size_t colon = address_.rfind(':');
    port_ = static_cast<uint16_t>(std::stoi(address_.substr(colon + 1)));
    return "";
  }

  // Sends SIGTERM and waits up to `patience` for the exit; returns "" if it
  // exited with status 0, else what happened. Checks that nothing more was
  // printed to stdout.
  std::string Terminate(Clock::duration patience, Clock::duration* took) {
    const auto start = Clock::now();
    ::kill(pid_, SIGTERM);
    int status = 0;
    while (true) {
      const pid_t r = ::waitpid(pid_, &status, WNOHANG);
      if (r == pid_) break;
      if (Clock::now() - start > patience) {
        return "gradientd did not exit within " + std::to_string(Millis(patience)) +
               " ms of SIGTERM (killed)";
      }
      std::this_thread::sleep_for(10ms);
    }
    pid_ = -1;
    *took = Clock::now() - start;
    char rest[256];
    const ssize_t n = ::read(stdout_fd_, rest, sizeof rest);
    if (n > 0) stdout_after_.append(rest, static_cast<std::size_t>(n));
    const std::string& extra = stdout_after_;
    if (!extra.empty()) {
      return "gradientd printed more than its listening lines to stdout: '" + extra + "'";
    }
    if (WIFSIGNALED(status)) {
      return "gradientd was killed by signal " + std::to_string(WTERMSIG(status));
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
      return "gradientd exited with status " + std::to_string(WEXITSTATUS(status));
    }
    return "";
  }

  pid_t pid() const { return pid_; }
  uint16_t port() const { return port_; }
  const std::string& address() const { return address_; }

 private:
  pid_t pid_ = -1;
  std::string stdout_after_;  // stdout after the first line
  int stdout_fd_ = -1;
  uint16_t port_ = 0;
  std::string address_;
};

// SIGKILLs the server if the run outlasts `limit`: every blocked client then
// sees its connection end, so the test fails instead of hanging.
class Watchdog {
 public:
  Watchdog(pid_t pid, Clock::duration limit)
      : thread_([this, pid, limit] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            fired_ = true;
            ::kill(pid, SIGKILL);
          }
        }) {}
  ~Watchdog() { Disarm(); }
  void Disarm() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable()) thread_.join();
  }
  bool fired() const { return fired_; }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::atomic<bool> fired_{false};
  std::thread thread_;  // last: starts once the members above exist
};

// ---- Raw sockets, for bytes no well-behaved client would send --------------

class RawSocket {
 public:
  // Connects to 127.0.0.1:port (with a small receive buffer if asked), then
  // makes the socket non-blocking. Invalid (fd < 0) on failure.
  static RawSocket Connect(uint16_t port, int receive_buffer = 0) {
    RawSocket s;
    const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return s;
    s.fd_ = fd;
    if (receive_buffer > 0) {
      ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    }
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      s.Close();
      return s;
    }
    const int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
    return s;
  }

  RawSocket() = default;
  RawSocket(RawSocket&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  RawSocket& operator=(RawSocket&& other) noexcept {
    Close();
    fd_ = std::exchange(other.fd_, -1);
    return *this;
  }
  ~RawSocket() { Close(); }

  bool valid() const { return fd_ >= 0; }

  enum class SendResult { kSent, kBroken, kTimedOut };
  // Sends all of `bytes` before `deadline`.
  SendResult SendAll(std::string_view bytes, Clock::time_point deadline) {
    std::size_t sent = 0;
    while (sent < bytes.size()) {
      const ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
      if (n > 0) {
        sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
        return SendResult::kBroken;
      }
      if (Clock::now() >= deadline) return SendResult::kTimedOut;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, 50);
    }
    return SendResult::kSent;
  }

  // Sends what the socket takes now; -1 if the connection broke.
  ssize_t SendSome(std::string_view bytes) {
    const ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n >= 0) return n;
    return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -1;
  }

  enum class End { kClosed, kTimedOut };
  // Reads until the server closes the connection (end of stream or reset)
  // or `deadline`; appends what arrived to `bytes`. With `stop_after_frame`,
  // also returns once `bytes` holds a whole frame (kTimedOut then means
  // neither happened).
  End Read(std::string* bytes, Clock::time_point deadline, bool stop_after_frame = false) {
    while (true) {
      if (stop_after_frame) {
        const auto h = protocol::DecodeFrameHeader(
            {reinterpret_cast<const uint8_t*>(bytes->data()), bytes->size()}, 1u << 30);
        if (h.kind != protocol::FrameHeader::Kind::kNeedMore) return End::kClosed;
      }
      char buffer[16384];
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n > 0) {
        bytes->append(buffer, static_cast<std::size_t>(n));
        continue;
      }
      if (n == 0) return End::kClosed;
      if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) return End::kClosed;
      const auto now = Clock::now();
      if (now >= deadline) return End::kTimedOut;
      pollfd p{fd_, POLLIN, 0};
      ::poll(&p, 1, static_cast<int>(std::min<long>(Millis(deadline - now) + 1, 100)));
    }
  }

  void ShutdownWrite() { ::shutdown(fd_, SHUT_WR); }

  // Closes with a reset (RST) instead of an orderly end of stream.
  void Reset() {
    const linger abort{1, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_LINGER, &abort, sizeof abort);
    Close();
  }

  void Close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }

 private:
  int fd_ = -1;
};

// Splits `bytes` into Responses; false unless it is whole, well-formed
// response frames and nothing else.
inline bool ParseResponses(const std::string& bytes, std::vector<v1::Response>* responses) {
  std::size_t at = 0;
  while (at < bytes.size()) {
    const auto h = protocol::DecodeFrameHeader(
        {reinterpret_cast<const uint8_t*>(bytes.data()) + at, bytes.size() - at}, 1u << 30);
    if (h.kind != protocol::FrameHeader::Kind::kFrame) return false;
    v1::Response r;
    if (!r.ParseFromArray(bytes.data() + at + h.header_bytes, static_cast<int>(h.body_bytes))) {
      return false;
    }
    responses->push_back(std::move(r));
    at += h.header_bytes + h.body_bytes;
  }
  return true;
}

// The server's answer to a connection beyond --max-connections.
inline bool IsRefusal(const v1::Response& r) {
  return r.has_error() && r.error().code() == v1::Error::RESOURCE_EXHAUSTED &&
         r.error().message().find("too many connections") != std::string::npos;
}

inline bool IsError(const v1::Response& r, v1::Error::Code code, const std::string& words) {
  return r.has_error() && r.error().code() == code &&
         r.error().message().find(words) != std::string::npos;
}

inline std::string Framed(const v1::Request& request) {
  std::string frame;
  protocol::AppendFrame(request, &frame);
  return frame;
}

inline std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

}  // namespace gradientd::soak

#endif  // GRADIENTD_TESTS_SOAK_SUPPORT_H_
