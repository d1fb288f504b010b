// Soak test: the real gradientd binary, for a bounded time (SOAK_SECONDS,
// default GRADIENTD_SOAK_DEFAULT_SECONDS), loopback only, with tight limits.
// Well-behaved exactly-once producers (pipelining, each on its own series)
// and queriers connect first and keep their connections; alongside them,
// hostile clients loop for the whole run: garbage senders, mid-frame
// disconnecters, stallers, connection hoarders (up to the limit and beyond,
// reading nothing), clients that pipeline and never read, and oversize
// frames. Afterwards every acknowledged point is counted exactly once (n
// exact; the least-squares line equal to an exact integer reference), the
// server's peak RSS is within a bound derived from its limits, a fresh
// connection is answered, and SIGTERM ends it with exit status 0.
//
// No speed or latency is asserted: the only timing checks are lower bounds
// (the server must not close a connection before its timeout), which a slow
// machine cannot break. Every wait is bounded, and a watchdog SIGKILLs the
// server if the run overstays, so a hung server fails the test instead of
// hanging it.
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
#include <cmath>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "client/client.h"
#include "client/tls.h"
#include "protocol/connection.h"
#include "protocol/frame_codec.h"
#include "test_ca.h"

extern char** environ;

#ifndef GRADIENTD_SOAK_DEFAULT_SECONDS
#define GRADIENTD_SOAK_DEFAULT_SECONDS 20
#endif

namespace gradientd {
namespace {

using namespace std::chrono_literals;
using Clock = std::chrono::steady_clock;
__extension__ typedef __int128 Int128;  // exact reference sums

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

std::size_t RssBoundBytes(std::size_t baseline) {
  return baseline + kRssScale * (kMaxConnections * kPerConnectionBytes + kRssSlackBytes) +
         kSanitizerBytes;
}

std::chrono::seconds SoakDuration() {
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

double Seconds(Clock::duration d) { return std::chrono::duration<double>(d).count(); }
double MiB(std::size_t bytes) { return static_cast<double>(bytes) / (1 << 20); }
long Millis(Clock::duration d) {
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
void Pause(Clock::duration d, const std::atomic<bool>& stop) {
  const auto until = Clock::now() + d;
  while (!stop && Clock::now() < until) {
    std::this_thread::sleep_for(std::min<Clock::duration>(until - Clock::now(), 20ms));
  }
}

// ---- The gradientd process -------------------------------------------------

// /proc/PID/status field in bytes (VmRSS, VmHWM); 0 if unreadable.
std::size_t ProcStatusBytes(pid_t pid, const std::string& field) {
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
    // The single stdout line: "gradientd listening on HOST:PORT".
    std::string line;
    const auto deadline = Clock::now() + 60s;  // sanitizer builds start slowly
    while (line.find('\n') == std::string::npos) {
      if (Clock::now() >= deadline) return "gradientd did not print its listening line in 60 s";
      pollfd p{stdout_fd_, POLLIN, 0};
      if (::poll(&p, 1, 100) <= 0) continue;
      char buffer[256];
      const ssize_t n = ::read(stdout_fd_, buffer, sizeof buffer);
      if (n <= 0) return "gradientd exited before listening (see its stderr above)";
      line.append(buffer, static_cast<std::size_t>(n));
    }
    const std::string prefix = "gradientd listening on ";
    const std::size_t newline = line.find('\n');
    if (line.rfind(prefix, 0) != 0 || newline != line.size() - 1) {
      return "unexpected stdout from gradientd: '" + line + "'";
    }
    address_ = line.substr(prefix.size(), newline - prefix.size());
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
    if (n > 0) {
      return "gradientd printed more than its one line to stdout: '" +
             std::string(rest, static_cast<std::size_t>(n)) + "'";
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
bool ParseResponses(const std::string& bytes, std::vector<v1::Response>* responses) {
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
bool IsRefusal(const v1::Response& r) {
  return r.has_error() && r.error().code() == v1::Error::RESOURCE_EXHAUSTED &&
         r.error().message().find("too many connections") != std::string::npos;
}

bool IsError(const v1::Response& r, v1::Error::Code code, const std::string& words) {
  return r.has_error() && r.error().code() == code &&
         r.error().message().find(words) != std::string::npos;
}

std::string Framed(const v1::Request& request) {
  std::string frame;
  protocol::AppendFrame(request, &frame);
  return frame;
}

std::string Varint(uint64_t value) {
  std::string out;
  while (value >= 0x80) {
    out.push_back(static_cast<char>((value & 0x7f) | 0x80));
    value >>= 7;
  }
  out.push_back(static_cast<char>(value));
  return out;
}

// ---- Well-behaved producers ------------------------------------------------

// Exact sums over points x = offset + k, y = j / 4 with integers k and j:
// the reference for the server's statistics, independent of its code.
struct ExactSums {
  Int128 n = 0, k = 0, j = 0, kk = 0, kj = 0;
  void Add(const ExactSums& o) {
    n += o.n;
    k += o.k;
    j += o.j;
    kk += o.kk;
    kj += o.kj;
  }
};

struct ProducerSpec {
  std::string series;
  std::string producer_id;
  double offset;   // x = offset + k (1.7e9: Unix-timestamp-like data)
  int64_t slope4;  // y ~ (slope4 * k + intercept4 + noise) / 4
  int64_t intercept4;
};

struct ProducerState {
  ProducerSpec spec;
  std::atomic<uint64_t> points_sent{0};   // raised before the batch is sent
  std::atomic<uint64_t> points_acked{0};  // raised once its ack is received
  std::atomic<uint64_t> batches_acked{0};
  std::atomic<uint64_t> duplicates_acked{0};
  std::atomic<bool> dropped{false};
  ExactSums acked;  // written by the producer thread only; read after join
};

struct Batch {
  v1::Request request;
  ExactSums sums;
  uint64_t points = 0;
};

Batch MakeBatch(const ProducerSpec& spec, uint64_t sequence, std::mt19937_64& rng) {
  Batch b;
  // Mostly small batches (many requests), sometimes large ones.
  const int count =
      std::uniform_int_distribution<int>(2, rng() % 2 == 0 ? 64 : kMaxBatchPoints)(rng);
  std::uniform_int_distribution<int64_t> k_dist(-kHalfRangeK, kHalfRangeK);
  std::uniform_int_distribution<int64_t> noise(-400, 400);
  v1::PointBatch* batch = b.request.mutable_ingest();
  batch->set_series(spec.series);
  batch->set_producer_id(spec.producer_id);
  batch->set_sequence(sequence);
  batch->mutable_x()->Reserve(count);
  batch->mutable_y()->Reserve(count);
  int64_t sk = 0, sj = 0, skk = 0, skj = 0;
  for (int i = 0; i < count; ++i) {
    // The first batch spans the range, so x has spread from the start.
    const int64_t k = sequence == 1 && i < 2 ? (i == 0 ? -kHalfRangeK : kHalfRangeK) : k_dist(rng);
    const int64_t j = spec.slope4 * k + spec.intercept4 + noise(rng);
    batch->add_x(spec.offset + static_cast<double>(k));
    batch->add_y(static_cast<double>(j) * 0.25);
    sk += k;
    sj += j;
    skk += k * k;
    skj += k * j;
  }
  b.points = static_cast<uint64_t>(count);
  b.sums = {count, sk, sj, skk, skj};
  return b;
}

// Pipelines batches with up to kWindow unacknowledged until `stop`, then
// drains. Checks each ack exactly (the series is this producer's alone);
// any failure, a dropped connection included, is a problem: the server must
// never drop a well-behaved client.
void RunProducer(ProducerState& p, client::Client& c, uint64_t seed, const std::atomic<bool>& stop,
                 Problems& problems) {
  std::mt19937_64 rng(seed);
  struct Pending {
    v1::Request request;  // kept until acknowledged, to be repeated later
    uint64_t points = 0;
    bool duplicate = false;
    ExactSums sums;
  };
  std::deque<Pending> window;
  std::optional<v1::Request> last_acked;  // the newest acknowledged new batch
  uint64_t sequence = 0, total = 0, sends = 0;
  const std::string who = "producer " + p.spec.series;

  auto fail = [&](const std::string& what) {
    problems.Add(who + ": " + what);
    p.dropped = true;
  };
  auto receive_one = [&]() -> bool {
    v1::Response r;
    if (Status s = c.Receive(&r); !s.ok()) {
      fail("connection lost with " + std::to_string(window.size()) +
           " batches unacknowledged (the server must not drop a well-behaved client): " +
           s.message());
      return false;
    }
    Pending front = std::move(window.front());
    window.pop_front();
    if (r.id() != front.request.id() || !r.has_ack()) {
      fail("expected the ack of request " + std::to_string(front.request.id()) + ", got " +
           r.ShortDebugString());
      return false;
    }
    // The series is this producer's alone, so its total is known exactly.
    const v1::IngestAck& ack = r.ack();
    const uint64_t accepted = front.duplicate ? 0 : front.points;
    if (ack.series() != p.spec.series || ack.duplicate() != front.duplicate ||
        ack.accepted() != accepted || ack.total() != total + accepted) {
      fail("ack of request " + std::to_string(front.request.id()) + " (" +
           std::to_string(front.points) + " points" +
           (front.duplicate ? ", a repeated sequence" : "") + ") is wrong after " +
           std::to_string(total) + " points: " + ack.ShortDebugString());
      return false;
    }
    total = ack.total();
    if (front.duplicate) {
      ++p.duplicates_acked;
    } else {
      p.acked.Add(front.sums);
      p.points_acked += front.points;
      ++p.batches_acked;
      last_acked = std::move(front.request);
    }
    return true;
  };

  while (!stop) {
    Pending pending;
    if (++sends % kDuplicateEvery == 0 && last_acked) {
      // An acknowledged batch again (same producer id, sequence, points):
      // the server must acknowledge it as a duplicate and apply nothing.
      pending.request = *last_acked;
      pending.duplicate = true;
      pending.points = static_cast<uint64_t>(pending.request.ingest().x_size());
    } else {
      Batch batch = MakeBatch(p.spec, ++sequence, rng);
      pending.request = std::move(batch.request);
      pending.points = batch.points;
      pending.sums = batch.sums;
      p.points_sent += batch.points;  // before the server can apply it
    }
    if (Status s = c.Send(pending.request); !s.ok()) {
      return fail("send failed (the server must not drop a well-behaved client): " + s.message());
    }
    window.push_back(std::move(pending));
    while (window.size() >= kWindow) {
      if (!receive_one()) return;
    }
  }
  while (!window.empty()) {
    if (!receive_one()) return;
  }
}

// ---- Well-behaved queriers -------------------------------------------------

bool Finite(double v) { return std::isfinite(v); }

// What a reply about producer series `p` must satisfy: well-formed, finite,
// and n between the points acknowledged before the query was sent and those
// sent by the time its reply arrived.
std::string CheckFit(const v1::FitReply& f, const std::string& series, uint64_t lo, uint64_t hi) {
  std::ostringstream bad;
  if (f.series() != series) bad << "series '" << f.series() << "' ";
  if (f.n() < lo || f.n() > hi) bad << "n " << f.n() << " outside [" << lo << ", " << hi << "] ";
  if (!Finite(f.descent().m()) || !Finite(f.descent().b()) || !f.descent().has_loss() ||
      !Finite(f.descent().loss()) || f.descent().loss() < 0) {
    bad << "descent line not finite ";
  }
  if (!f.has_least_squares() || !Finite(f.least_squares().m()) || !Finite(f.least_squares().b()) ||
      !Finite(f.least_squares().loss())) {
    bad << "no finite least-squares line ";
  }
  if (f.has_r_squared() && !(f.r_squared() >= 0 && f.r_squared() <= 1 + 1e-9)) {
    bad << "r_squared " << f.r_squared() << " ";
  }
  if (!Finite(f.mean_x()) || !Finite(f.mean_y()) || !Finite(f.learning_rate()) ||
      f.learning_rate() <= 0) {
    bad << "means or learning rate not finite ";
  }
  const std::string text = bad.str();
  return text.empty() ? "" : "fit of " + series + ": " + text + "in " + f.ShortDebugString();
}

std::string CheckGradient(const v1::GradientReply& g, const std::string& series, uint64_t lo,
                          uint64_t hi) {
  if (g.series() == series && g.n() >= lo && g.n() <= hi && Finite(g.m()) && Finite(g.b()) &&
      Finite(g.intercept_gradient()) && Finite(g.slope_gradient()) && Finite(g.loss()) &&
      g.loss() >= 0) {
    return "";
  }
  return "gradient of " + series + " (n in [" + std::to_string(lo) + ", " + std::to_string(hi) +
         "]) is wrong: " + g.ShortDebugString();
}

void RunQuerier(std::vector<std::unique_ptr<ProducerState>>& producers, client::Client& c,
                uint64_t seed, const std::atomic<bool>& stop, Problems& problems, Tally& tally) {
  std::mt19937_64 rng(seed);
  while (!stop) {
    const std::size_t p = rng() % producers.size();
    const std::string& series = producers[p]->spec.series;
    std::vector<uint64_t> lo(producers.size()), hi(producers.size());
    for (std::size_t i = 0; i < producers.size(); ++i) lo[i] = producers[i]->points_acked;

    v1::Request gradient, fit, list, missing;
    gradient.mutable_gradient()->set_series(series);
    if (rng() % 2 == 0) {  // else the series' descent model
      gradient.mutable_gradient()->set_m(std::uniform_real_distribution<double>(-10, 10)(rng));
      gradient.mutable_gradient()->set_b(std::uniform_real_distribution<double>(-1e3, 1e3)(rng));
    }
    fit.mutable_fit()->set_series(series);
    list.mutable_list();
    missing.mutable_gradient()->set_series("soak-no-such-series");
    std::vector<v1::Request*> requests = {&gradient, &fit, &list, &missing};
    for (v1::Request* r : requests) {
      if (Status s = c.Send(*r); !s.ok()) {
        return problems.Add(
            "querier: send failed (the server must not drop a well-behaved "
            "client): " +
            s.message());
      }
    }
    std::vector<v1::Response> replies(requests.size());
    for (std::size_t i = 0; i < requests.size(); ++i) {
      if (Status s = c.Receive(&replies[i]); !s.ok()) {
        return problems.Add(
            "querier: connection lost (the server must not drop a well-behaved "
            "client): " +
            s.message());
      }
      if (replies[i].id() != requests[i]->id()) {
        return problems.Add("querier: reply id " + std::to_string(replies[i].id()) +
                            " for request " + std::to_string(requests[i]->id()));
      }
    }
    for (std::size_t i = 0; i < producers.size(); ++i) hi[i] = producers[i]->points_sent;

    std::vector<std::string> bad;
    if (!replies[0].has_gradient()) {
      bad.push_back("gradient: " + replies[0].ShortDebugString());
    } else {
      bad.push_back(CheckGradient(replies[0].gradient(), series, lo[p], hi[p]));
    }
    if (!replies[1].has_fit()) {
      bad.push_back("fit: " + replies[1].ShortDebugString());
    } else {
      bad.push_back(CheckFit(replies[1].fit(), series, lo[p], hi[p]));
    }
    if (!replies[2].has_series_list()) {
      bad.push_back("list: " + replies[2].ShortDebugString());
    } else {
      const auto& all = replies[2].series_list().series();
      for (int i = 1; i < all.size(); ++i) {
        if (!(all[i - 1].series() < all[i].series())) bad.push_back("list is not sorted by name");
      }
      for (std::size_t i = 0; i < producers.size(); ++i) {
        const auto it = std::find_if(all.begin(), all.end(), [&](const v1::FitReply& f) {
          return f.series() == producers[i]->spec.series;
        });
        if (it == all.end()) {
          bad.push_back("list lacks " + producers[i]->spec.series);
        } else {
          bad.push_back(CheckFit(*it, producers[i]->spec.series, lo[i], hi[i]));
        }
      }
    }
    if (!IsError(replies[3], v1::Error::NOT_FOUND, "")) {
      bad.push_back("gradient of a missing series: " + replies[3].ShortDebugString());
    }
    for (const auto& b : bad) {
      if (!b.empty()) problems.Add("querier: " + b);
    }
    tally.Count("queriers", "rounds");
    Pause(std::chrono::milliseconds(5 + static_cast<int64_t>(rng() % 11)), stop);
  }
}

// ---- Hostile clients -------------------------------------------------------

struct Hostile {
  uint16_t port;
  const std::vector<std::unique_ptr<ProducerState>>* producers;
  const std::atomic<bool>* stop;
  Problems* problems;
  Tally* tally;

  // A connection a hostile client holds, and when it started waiting on it.
  struct Opened {
    RawSocket socket;
    Clock::time_point since;
  };

  // A valid ingest frame for a well-behaved producer's series: if any of it
  // were applied, that series' exact totals would be off.
  std::string IngestFrame(std::mt19937_64& rng) const {
    v1::Request r;
    r.set_id(rng() % 1000 + 1);
    r.mutable_ingest()->set_series((*producers)[rng() % producers->size()]->spec.series);
    const int n = 1 + static_cast<int>(rng() % 500);
    for (int i = 0; i < n; ++i) {
      r.mutable_ingest()->add_x(1e6 + i);
      r.mutable_ingest()->add_y(-1e6);
    }
    return Framed(r);
  }

  // Reads until the server closes; false (with a problem) if it does not
  // within kPatience.
  bool ReadToClose(RawSocket& s, std::string* bytes, const std::string& kind) const {
    if (s.Read(bytes, Clock::now() + kPatience) == RawSocket::End::kClosed) return true;
    problems->Add(kind + ": the server did not close the connection within " +
                  std::to_string(Millis(kPatience)) + " ms");
    return false;
  }

  // Random bytes then end of input: the server may answer whatever parses
  // (well-formed responses only) and must then close. Or a frame whose
  // body cannot be a Request (a tag varint longer than 64 bits): exactly one
  // INVALID_ARGUMENT error, then the close.
  void Garbage(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("garbage: cannot connect");
    const bool random = rng() % 2 == 0;
    std::string bytes;
    if (random) {
      bytes.resize(1 + rng() % 4096);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      const std::string body(11 + rng() % 50, '\xff');
      bytes = Varint(body.size()) + body;
    }
    const auto sent = s.SendAll(bytes, Clock::now() + kPatience);
    if (sent == RawSocket::SendResult::kTimedOut) {
      return problems->Add("garbage: the server stopped reading without closing");
    }
    if (random) s.ShutdownWrite();
    std::string reply;
    if (!ReadToClose(s, &reply, "garbage")) return;
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses)) {
      return problems->Add("garbage: the reply is not well-formed response frames (" +
                           std::to_string(reply.size()) + " bytes)");
    }
    if (responses.size() == 1 && IsRefusal(responses[0])) {
      return tally->Count("garbage", "refused at the limit");
    }
    if (random) {
      return tally->Count("garbage", responses.empty() ? "random bytes, closed silently"
                                                       : "random bytes, answered then closed");
    }
    if (responses.size() != 1 ||
        !IsError(responses[0], v1::Error::INVALID_ARGUMENT, "cannot decode")) {
      return problems->Add("garbage: expected one INVALID_ARGUMENT error, got " +
                           std::to_string(responses.size()) + " response(s)" +
                           (responses.empty() ? "" : ": " + responses[0].ShortDebugString()));
    }
    tally->Count("garbage", "undecodable frame, error then close");
  }

  // A valid ingest frame cut short, then a close or a reset.
  void MidFrame(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("mid-frame: cannot connect");
    const std::string frame = IngestFrame(rng);
    const std::size_t cut = 1 + rng() % (frame.size() - 1);
    if (s.SendAll(std::string_view(frame).substr(0, cut), Clock::now() + kPatience) ==
        RawSocket::SendResult::kTimedOut) {
      return problems->Add("mid-frame: the server stopped reading without closing");
    }
    if (rng() % 2 == 0) {
      s.Close();
      tally->Count("mid-frame", "closed");
    } else {
      s.Reset();
      tally->Count("mid-frame", "reset");
    }
  }

  // Several connections each send part of a frame and wait: the server must
  // close each, without answering, once --request-timeout has passed (never
  // before).
  void Stall(std::mt19937_64& rng) const {
    std::vector<Opened> stalled;
    for (int i = 0; i < kStallersAtOnce; ++i) {
      RawSocket s = RawSocket::Connect(port);
      if (!s.valid()) return problems->Add("staller: cannot connect");
      const std::string frame = IngestFrame(rng);
      const std::size_t cut = 1 + rng() % (frame.size() - 1);
      const auto since = Clock::now();
      const auto sent = s.SendAll(std::string_view(frame).substr(0, cut), since + kPatience);
      if (sent == RawSocket::SendResult::kTimedOut) {
        problems->Add("staller: the server stopped reading without closing");
        continue;
      }
      if (sent == RawSocket::SendResult::kBroken) {
        tally->Count("stallers", "refused at the limit");  // closed before we were done
        continue;
      }
      stalled.push_back({std::move(s), since});
    }
    for (auto& [socket, since] : stalled) {
      std::string reply;
      if (socket.Read(&reply, since + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
        problems->Add("staller: not closed within " +
                      std::to_string(Millis(kRequestTimeout + kPatience)) + " ms of stalling");
        continue;
      }
      const auto after = Clock::now() - since;
      std::vector<v1::Response> responses;
      if (!reply.empty()) {
        if (ParseResponses(reply, &responses) && responses.size() == 1 && IsRefusal(responses[0])) {
          tally->Count("stallers", "refused at the limit");
        } else {
          problems->Add("staller: the server answered a partial frame (" +
                        std::to_string(reply.size()) + " bytes)");
        }
        continue;
      }
      if (after < kRequestTimeout) {
        problems->Add("staller: closed after " + std::to_string(Millis(after)) +
                      " ms, before --request-timeout");
        continue;
      }
      tally->Count("stallers", "closed after the request timeout");
    }
  }

  // Opens connections up to the limit and beyond, reads nothing, holds them
  // (sometimes past --idle-timeout), then lets them go. Before letting go,
  // sends each a request to learn its fate: served (answers), refused (the
  // RESOURCE_EXHAUSTED refusal), or closed as idle (only allowed after
  // --idle-timeout). The served ones were all open at once, next to the
  // well-behaved clients, so at most kMaxConnections - kWellBehaved.
  void Hoard(std::mt19937_64& rng) const {
    std::vector<Opened> held;
    for (int i = 0; i < kMaxConnections + kHoardExtra && !*stop; ++i) {
      const auto since = Clock::now();
      RawSocket s = RawSocket::Connect(port);
      if (!s.valid()) return problems->Add("hoarder: cannot connect");
      held.push_back({std::move(s), since});
    }
    // Two rounds in three hold them for less than the idle timeout (the
    // first round always does), the third for longer.
    const bool past_idle = tally->Get("hoarders", "rounds") % 3 == 2;
    const auto hold = past_idle ? kIdleTimeout + std::chrono::milliseconds(500 + rng() % 1500)
                                : std::chrono::milliseconds(500 + rng() % 2500);
    Pause(hold, *stop);
    v1::Request list;
    list.set_id(1);
    list.mutable_list();
    const std::string frame = Framed(list);
    uint64_t served = 0, refused = 0, idle_closed = 0;
    for (auto& [socket, since] : held) {
      const auto asked = Clock::now();
      socket.SendAll(frame, asked + kPatience);  // a refused one may be closed already
      std::string reply;
      if (socket.Read(&reply, asked + kPatience, /*stop_after_frame=*/true) !=
          RawSocket::End::kClosed) {
        problems->Add("hoarder: a held connection neither answered nor closed within " +
                      std::to_string(Millis(kPatience)) + " ms");
        continue;
      }
      std::vector<v1::Response> responses;
      if (reply.empty()) {
        if (asked - since < kIdleTimeout) {
          problems->Add("hoarder: a connection idle for " + std::to_string(Millis(asked - since)) +
                        " ms was closed, before --idle-timeout");
        }
        ++idle_closed;
      } else if (!ParseResponses(reply, &responses) || responses.size() != 1) {
        problems->Add("hoarder: the reply is not one well-formed response (" +
                      std::to_string(reply.size()) + " bytes)");
      } else if (IsRefusal(responses[0])) {
        ++refused;
      } else if (responses[0].has_series_list() && responses[0].id() == 1) {
        ++served;
      } else {
        problems->Add("hoarder: unexpected reply " + responses[0].ShortDebugString());
      }
    }
    if (served > static_cast<uint64_t>(kMaxConnections - kWellBehaved)) {
      problems->Add("hoarder: " + std::to_string(served) + " connections were served at once " +
                    "besides the " + std::to_string(kWellBehaved) + " well-behaved ones, over " +
                    "--max-connections " + std::to_string(kMaxConnections));
    }
    tally->Count("hoarders", "rounds");
    tally->Count("hoarders", "held and served", served);
    tally->Count("hoarders", "refused at the limit", refused);
    tally->Count("hoarders", "closed as idle", idle_closed);
    held.clear();  // let them go
    Pause(std::chrono::milliseconds(500 + static_cast<int64_t>(rng() % 1500)), *stop);
  }

  // Pipelines requests and never reads: the server must stop reading it and,
  // once its responses could not be written for --write-timeout, close it.
  void NonReader(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port, /*receive_buffer=*/4096);
    if (!s.valid()) return problems->Add("non-reader: cannot connect");
    v1::Request list;
    list.set_id(1);
    list.mutable_list();
    // First one request, read, to tell a refusal from being served.
    std::string reply;
    if (s.SendAll(Framed(list), Clock::now() + kPatience) != RawSocket::SendResult::kSent ||
        s.Read(&reply, Clock::now() + kPatience, /*stop_after_frame=*/true) !=
            RawSocket::End::kClosed) {
      return problems->Add("non-reader: no answer to its first request");
    }
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses) || responses.size() != 1) {
      return problems->Add("non-reader: malformed first reply");
    }
    if (IsRefusal(responses[0])) return tally->Count("non-readers", "refused at the limit");
    if (!responses[0].has_series_list()) {
      return problems->Add("non-reader: first reply " + responses[0].ShortDebugString());
    }
    std::string frames;
    for (int i = 0; i < 1000; ++i) frames += Framed(list);
    const auto start = Clock::now();
    uint64_t sent = 0;
    std::size_t at = 0;
    while (true) {
      const ssize_t n = s.SendSome(std::string_view(frames).substr(at));
      if (n < 0) break;  // closed by the server
      sent += static_cast<uint64_t>(n);
      at = (at + static_cast<std::size_t>(n)) % frames.size();  // frames are all alike
      if (Clock::now() - start > kWriteTimeout + kPatience) {
        return problems->Add(
            "non-reader: still open " + std::to_string(Millis(kWriteTimeout + kPatience)) +
            " ms after it stopped reading (" + std::to_string(sent) + " bytes sent)");
      }
      if (n == 0) std::this_thread::sleep_for(10ms);
    }
    const auto after = Clock::now() - start;
    if (after < kWriteTimeout) {
      return problems->Add("non-reader: closed after " + std::to_string(Millis(after)) +
                           " ms, before --write-timeout");
    }
    tally->Count("non-readers", "closed after the write timeout");
    tally->Max("non-readers", "bytes at most sent before the close", sent);
  }

  // A frame header declaring more than --max-frame-bytes (or a malformed
  // one), maybe with a few body bytes: one error, then the close, without
  // waiting for the body.
  void Oversize(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("oversize: cannot connect");
    const bool malformed = rng() % 4 == 0;
    std::string bytes;
    if (malformed) {
      bytes = std::string(9, '\x80') + '\x7f';  // a varint beyond 64 bits
    } else {
      bytes = Varint(kMaxFrameBytes + 1 + rng() % (uint64_t{1} << (rng() % 40)));
    }
    for (uint64_t i = rng() % 16; i > 0; --i) bytes.push_back(static_cast<char>(rng()));
    if (s.SendAll(bytes, Clock::now() + kPatience) == RawSocket::SendResult::kTimedOut) {
      return problems->Add("oversize: the server stopped reading without closing");
    }
    std::string reply;
    if (!ReadToClose(s, &reply, "oversize")) return;
    std::vector<v1::Response> responses;
    if (!ParseResponses(reply, &responses) || responses.size() != 1) {
      return problems->Add("oversize: expected one response, got " + std::to_string(reply.size()) +
                           " bytes");
    }
    if (IsRefusal(responses[0])) return tally->Count("oversize", "refused at the limit");
    const bool ok =
        malformed ? IsError(responses[0], v1::Error::INVALID_ARGUMENT, "malformed frame header")
                  : IsError(responses[0], v1::Error::RESOURCE_EXHAUSTED, "limit");
    if (!ok) return problems->Add("oversize: " + responses[0].ShortDebugString());
    tally->Count("oversize", malformed ? "malformed header, error then close"
                                       : "over the limit, error then close");
  }
};

// ---- The test --------------------------------------------------------------

// Every acknowledged point counted exactly once: n exact, the line equal
// to the exact reference. Relative 1e-9 on the slope; the intercept and
// the means are compared relative to the magnitudes they are computed from
// (b = mean_y - m * mean_x cancels when x is offset by 1.7e9).
void ExpectExactTotals(const std::vector<std::unique_ptr<ProducerState>>& producers,
                       client::Client& fresh) {
  for (const auto& p : producers) {
    v1::Request fit;
    fit.mutable_fit()->set_series(p->spec.series);
    v1::Response r;
    const Status s = fresh.Call(fit, &r);
    ASSERT_TRUE(s.ok()) << s.message();
    ASSERT_TRUE(r.has_fit()) << p->spec.series << ": " << r.ShortDebugString();
    const v1::FitReply& f = r.fit();
    if (p->dropped) {
      // Batches in flight when the connection broke may or may not count.
      EXPECT_GE(f.n(), p->points_acked.load()) << p->spec.series;
      EXPECT_LE(f.n(), p->points_sent.load()) << p->spec.series;
      continue;
    }
    const ExactSums& e = p->acked;
    EXPECT_EQ(f.n(), static_cast<uint64_t>(e.n)) << p->spec.series << ": acknowledged points";
    ASSERT_GT(static_cast<uint64_t>(e.n), 1u);
    ASSERT_TRUE(f.has_least_squares()) << f.ShortDebugString();
    const Int128 det = e.n * e.kk - e.k * e.k;    // n^2 var(k) > 0: k has spread
    const Int128 cross = e.n * e.kj - e.k * e.j;  // n^2 cov(k, j)
    using LD = long double;
    const LD n = static_cast<LD>(e.n);
    const LD m = static_cast<LD>(cross) / (4 * static_cast<LD>(det));
    const LD mean_x = static_cast<LD>(p->spec.offset) + static_cast<LD>(e.k) / n;
    const LD mean_y = static_cast<LD>(e.j) / (4 * n);
    const LD b = mean_y - m * mean_x;
    const auto near = [](double got, LD want, LD scale) {
      return std::fabs(static_cast<LD>(got) - want) <= 1e-9L * scale;
    };
    const LD y_scale = std::fabs(mean_y) + static_cast<LD>(kHalfRangeK) * 3;  // |slope| <= 2.5
    EXPECT_TRUE(near(f.least_squares().m(), m, std::fabs(m)))
        << p->spec.series << ": slope " << f.least_squares().m() << ", reference "
        << static_cast<double>(m);
    EXPECT_TRUE(near(f.least_squares().b(), b, std::fabs(b) + std::fabs(m * mean_x)))
        << p->spec.series << ": intercept " << f.least_squares().b() << ", reference "
        << static_cast<double>(b);
    EXPECT_TRUE(near(f.mean_x(), mean_x, std::fabs(mean_x) + static_cast<LD>(kHalfRangeK)))
        << p->spec.series << ": mean_x " << f.mean_x() << ", reference "
        << static_cast<double>(mean_x);
    EXPECT_TRUE(near(f.mean_y(), mean_y, y_scale)) << p->spec.series << ": mean_y " << f.mean_y()
                                                   << ", reference " << static_cast<double>(mean_y);
  }
}

// Each kind of hostile client, and the outcomes that mean it got through to
// the server (rather than being refused at the connection limit).
const std::vector<std::pair<std::string, std::vector<std::string>>>& HostileKinds() {
  static const std::vector<std::pair<std::string, std::vector<std::string>>> kinds = {
      {"garbage",
       {"undecodable frame, error then close", "random bytes, answered then closed",
        "random bytes, closed silently"}},
      {"mid-frame", {"closed", "reset"}},
      {"stallers", {"closed after the request timeout"}},
      {"hoarders", {"held and served"}},
      {"non-readers", {"closed after the write timeout"}},
      {"oversize", {"over the limit, error then close", "malformed header, error then close"}},
  };
  return kinds;
}

// The kinds that have not got through yet.
std::vector<std::string> NotYetExercised(const Tally& tally) {
  std::vector<std::string> missing;
  for (const auto& kind_and_outcomes : HostileKinds()) {
    const std::string& kind = kind_and_outcomes.first;
    const std::vector<std::string>& outcomes = kind_and_outcomes.second;
    if (std::none_of(outcomes.begin(), outcomes.end(),
                     [&](const std::string& o) { return tally.Get(kind, o) > 0; })) {
      missing.push_back(kind);
    }
  }
  return missing;
}

TEST(SoakTest, HostileClientsChangeNothingForWellBehavedOnesAndMemoryStaysBounded) {
  ::signal(SIGPIPE, SIG_IGN);
  const auto duration = SoakDuration();
  // clang-format off
  const std::vector<std::string> args = {
      "--in-memory",
      "--listen", "127.0.0.1:0",
      "--threads", "2",
      "--max-connections", std::to_string(kMaxConnections),
      "--max-frame-bytes", std::to_string(kMaxFrameBytes),
      "--max-queued-bytes", std::to_string(kMaxQueuedBytes),
      "--idle-timeout", std::to_string(kIdleTimeout.count()) + "ms",
      "--request-timeout", std::to_string(kRequestTimeout.count()) + "ms",
      "--write-timeout", std::to_string(kWriteTimeout.count()) + "ms",
  };
  // clang-format on
  ServerProcess server;
  const std::string started = server.Start(GRADIENTD_BINARY, args);
  ASSERT_EQ(started, "");
  // The run, the wind-down (each hostile client's current action is bounded
  // by kPatience, a few times over) and the checks, with room to spare.
  const auto watchdog_limit = duration + kExtension + 6 * kPatience;
  Watchdog watchdog(server.pid(), watchdog_limit);

  // Baseline memory: after starting and answering one request.
  {
    std::unique_ptr<client::Client> c;
    ASSERT_TRUE(client::Client::Connect(server.address(), &c).ok());
    v1::Request list;
    list.mutable_list();
    v1::Response r;
    ASSERT_TRUE(c->Call(list, &r).ok());
    ASSERT_TRUE(r.has_series_list()) << r.ShortDebugString();
  }
  const std::size_t baseline = ProcStatusBytes(server.pid(), "VmHWM");
  ASSERT_GT(baseline, 0u) << "cannot read VmHWM from /proc/" << server.pid() << "/status";

  // The well-behaved clients connect first and keep their connections.
  const ProducerSpec specs[kProducers] = {
      {"soak-p0", "soak-producer-0", 0.0, 10, -160},
      {"soak-p1", "soak-producer-1", 1.7e9, -3, 4000},
      {"soak-p2", "soak-producer-2", -2.5e4, 7, 0},
      {"soak-p3", "soak-producer-3", 3e6, 1, 333},
  };
  std::vector<std::unique_ptr<ProducerState>> producers;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i < kWellBehaved; ++i) {
    if (i < kProducers) {
      producers.push_back(std::make_unique<ProducerState>());
      producers.back()->spec = specs[i];
    }
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(server.address(), &c);
    ASSERT_TRUE(s.ok()) << s.message();
    clients.push_back(std::move(c));
  }

  const uint64_t seed = std::random_device()();
  std::cout << "soak: " << duration.count() << " s (SOAK_SECONDS), " << kBuildKind
            << " build, seed " << seed << ", gradientd on " << server.address()
            << " (--max-connections " << kMaxConnections << ", --idle-timeout "
            << kIdleTimeout.count() << "ms, --request-timeout " << kRequestTimeout.count()
            << "ms, --write-timeout " << kWriteTimeout.count() << "ms)\n";
  std::atomic<bool> stop{false};
  Problems problems;
  Tally tally;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kProducers; ++i) {
    threads.emplace_back(RunProducer, std::ref(*producers[i]), std::ref(*clients[i]),
                         seed + static_cast<uint64_t>(i), std::cref(stop), std::ref(problems));
  }
  // Queriers expect every producer series to exist: wait for first acks.
  const auto first_acks_by = Clock::now() + kPatience;
  while (Clock::now() < first_acks_by &&
         std::any_of(producers.begin(), producers.end(),
                     [](const auto& p) { return p->batches_acked == 0 && !p->dropped; })) {
    std::this_thread::sleep_for(10ms);
  }
  const bool producing = std::all_of(producers.begin(), producers.end(),
                                     [](const auto& p) { return p->batches_acked > 0; });
  if (!producing) problems.Add("the producers' first batches were not all acknowledged");
  const auto soak_start = Clock::now();
  const Hostile hostile{server.port(), &producers, &stop, &problems, &tally};  // outlives threads
  Clock::duration extended{};  // beyond the duration, until every kind got through
  if (producing) {
    for (std::size_t i = 0; i < kQueriers; ++i) {
      threads.emplace_back(RunQuerier, std::ref(producers), std::ref(*clients[kProducers + i]),
                           seed + 100 + static_cast<uint64_t>(i), std::cref(stop),
                           std::ref(problems), std::ref(tally));
    }
    using Action = void (Hostile::*)(std::mt19937_64&) const;
    const std::pair<Action, Clock::duration> loops[] = {
        {&Hostile::Garbage, 5ms}, {&Hostile::MidFrame, 5ms},   {&Hostile::Stall, 50ms},
        {&Hostile::Hoard, 0ms},   {&Hostile::NonReader, 50ms}, {&Hostile::Oversize, 5ms},
    };
    uint64_t n = 200;
    for (const auto& loop : loops) {
      threads.emplace_back([&, action = loop.first, pause = loop.second, loop_seed = seed + n++] {
        std::mt19937_64 rng(loop_seed);
        while (!stop) {
          (hostile.*action)(rng);
          Pause(pause + std::chrono::milliseconds(static_cast<int64_t>(rng() % 10)), stop);
        }
      });
    }
    Pause(duration, stop);
    const auto time_up = Clock::now();
    while (!NotYetExercised(tally).empty() && Clock::now() < time_up + kExtension) {
      std::this_thread::sleep_for(50ms);
    }
    extended = Clock::now() - time_up;
  }
  stop = true;
  const auto wind_down = Clock::now();
  for (auto& t : threads) t.join();
  const auto soak_end = Clock::now();
  clients.clear();

  // A fresh connection is answered once the hoarded ones are gone (the
  // server may still be closing them: a refusal is retried, within bounds).
  std::unique_ptr<client::Client> fresh;
  int attempts = 0;
  std::string fresh_problem = "no attempt";
  for (const auto by = Clock::now() + kPatience; Clock::now() < by;) {
    ++attempts;
    fresh.reset();
    if (Status s = client::Client::Connect(server.address(), &fresh); !s.ok()) {
      fresh_problem = s.message();
      fresh.reset();
      break;
    }
    v1::Request list;
    list.mutable_list();
    v1::Response r;
    if (Status s = fresh->Call(list, &r); !s.ok()) {
      fresh_problem = s.message();
    } else if (r.has_series_list()) {
      fresh_problem.clear();
      break;
    } else {
      fresh_problem = r.ShortDebugString();
      if (!IsRefusal(r)) break;
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(fresh_problem, "") << "a fresh connection after the soak was not answered";

  uint64_t points_acked = 0, batches_acked = 0, duplicates = 0;
  for (const auto& p : producers) {
    points_acked += p->points_acked;
    batches_acked += p->batches_acked;
    duplicates += p->duplicates_acked;
  }
  if (fresh_problem.empty()) ExpectExactTotals(producers, *fresh);
  fresh.reset();

  const std::size_t peak = ProcStatusBytes(server.pid(), "VmHWM");
  const std::size_t bound = RssBoundBytes(baseline);
  EXPECT_GT(peak, 0u) << "cannot read VmHWM from /proc/" << server.pid() << "/status";
  EXPECT_LE(peak, bound) << "the server's peak RSS (VmHWM) went past the bound derived from its "
                            "limits";

  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the run took longer than " << Seconds(watchdog_limit)
                                 << " s; the server was killed";
  Clock::duration stop_took{};
  const std::string stopped = server.Terminate(kPatience, &stop_took);
  EXPECT_EQ(stopped, "");

  // Every kind of hostile client must have got through to the server at
  // least once, or the run did not test what it claims.
  if (producing) {
    for (const auto& kind : NotYetExercised(tally)) {
      ADD_FAILURE() << "no " << kind << " client got past the connection limit in "
                    << Seconds(soak_end - soak_start) << " s";
    }
  }
  EXPECT_EQ(problems.count(), 0u) << problems.Report();

  std::cout << "soak: ran " << Seconds(soak_end - soak_start) << " s (extended by "
            << Seconds(extended) << " s until every kind of hostile client got through; wind-down "
            << Seconds(soak_end - wind_down) << " s)\n"
            << "soak: well-behaved: " << kProducers << " producers, " << batches_acked
            << " batches / " << points_acked << " points acknowledged, " << duplicates
            << " repeated batches acknowledged as duplicates; " << kQueriers << " queriers, "
            << tally.Get("queriers", "rounds") << " rounds of gradient+fit+list+missing\n";
  for (const auto& kind : HostileKinds()) {
    std::cout << "soak: hostile " << tally.Line(kind.first) << "\n";
  }
  std::cout << "soak: server RSS: baseline " << MiB(baseline) << " MiB, peak (VmHWM) " << MiB(peak)
            << " MiB, bound " << MiB(bound) << " MiB\n"
            << "soak: fresh connection: "
            << (fresh_problem.empty() ? "answered" : "NOT answered (" + fresh_problem + ")")
            << " after " << attempts << " attempt(s); SIGTERM: "
            << (stopped.empty() ? "exit status 0 in " + std::to_string(Seconds(stop_took)) + " s"
                                : stopped)
            << "\n";
}

// ---- The TLS + auth variant ------------------------------------------------

// The same server over TLS with --auth-file: authenticated producers and
// queriers alongside clients that complete the handshake but never
// authenticate (their requests, aimed at the producers' series, must change
// nothing), clients with a wrong token, connections that never start a
// handshake, handshakes trickled a byte at a time, and plaintext clients.
// Run with SOAK_TLS=1 (the ctest entry soak_tls_test does).
struct TlsHostile {
  uint16_t port;
  std::string address;
  client::ConnectOptions tls;  // trusts the server, no token
  const std::vector<std::unique_ptr<ProducerState>>* producers;
  Problems* problems;
  Tally* tally;

  v1::Request IngestToAProducer(std::mt19937_64& rng) const {
    v1::Request r;
    r.mutable_ingest()->set_series((*producers)[rng() % producers->size()]->spec.series);
    for (int i = 0; i < 50; ++i) {
      r.mutable_ingest()->add_x(1e6 + i);
      r.mutable_ingest()->add_y(-1e6);
    }
    return r;
  }

  // TLS, no Hello: every request is UNAUTHENTICATED and changes nothing.
  void Unauthenticated(std::mt19937_64& rng) const {
    std::unique_ptr<client::Client> c;
    if (Status s = client::Client::Connect(address, tls, &c); !s.ok()) {
      return tally->Count("unauthenticated", "could not connect (at the limit)");
    }
    for (int i = 0; i < 5; ++i) {
      v1::Request ingest = IngestToAProducer(rng);
      v1::Response r;
      if (Status s = c->Call(ingest, &r); !s.ok()) {
        return tally->Count("unauthenticated", "closed (at the limit)");
      }
      if (IsRefusal(r)) return tally->Count("unauthenticated", "refused at the limit");
      if (!r.has_error() || r.error().code() != v1::Error::UNAUTHENTICATED) {
        return problems->Add("unauthenticated: an ingest without a Hello got " +
                             r.ShortDebugString());
      }
    }
    tally->Count("unauthenticated", "ingests refused as UNAUTHENTICATED", 5);
  }

  void WrongToken(std::mt19937_64&) const {
    client::ConnectOptions wrong = tls;
    wrong.token = "not-a-token-the-server-knows-0123456789";
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(address, wrong, &c);
    if (s.code() == StatusCode::kUnauthenticated) {
      return tally->Count("wrong token", "refused as UNAUTHENTICATED");
    }
    if (s.ok()) return problems->Add("wrong token: the Hello was accepted");
    tally->Count("wrong token", "could not connect (at the limit)");
  }

  // Connects and never sends a byte: closed within --request-timeout (plus
  // patience), never served.
  void Handshakeless(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("handshake-less: cannot connect");
    const auto since = Clock::now();
    std::string reply;
    if (s.Read(&reply, since + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
      return problems->Add("handshake-less: not closed within " +
                           std::to_string(Millis(kRequestTimeout + kPatience)) + " ms");
    }
    tally->Count("handshake-less", "closed");
  }

  // A TLS record header and then random bytes, one every quarter of
  // --request-timeout: the handshake's deadline runs from its first byte,
  // so it is closed within about the timeout however long it trickles.
  void Trickle(std::mt19937_64& rng) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("trickler: cannot connect");
    const std::string header("\x16\x03\x01\x02\x00", 5);  // handshake, 512 bytes
    const auto since = Clock::now();
    for (int i = 0; i < 400; ++i) {
      const char byte = i < 5 ? header[static_cast<std::size_t>(i)] : static_cast<char>(rng());
      if (s.SendSome(std::string_view(&byte, 1)) < 0) break;
      std::string reply;
      if (s.Read(&reply, Clock::now() + kRequestTimeout / 4) == RawSocket::End::kClosed) break;
      if (Clock::now() - since > kRequestTimeout + kPatience) {
        return problems->Add("trickler: a handshake trickled for " +
                             std::to_string(Millis(Clock::now() - since)) + " ms stays open");
      }
    }
    tally->Count("tricklers", "closed");
  }

  // A plaintext request to the TLS server: the handshake fails, closed.
  void Plaintext(std::mt19937_64&) const {
    RawSocket s = RawSocket::Connect(port);
    if (!s.valid()) return problems->Add("plaintext: cannot connect");
    v1::Request list;
    list.mutable_list();
    s.SendAll(Framed(list), Clock::now() + kPatience);
    std::string reply;
    if (s.Read(&reply, Clock::now() + kRequestTimeout + kPatience) != RawSocket::End::kClosed) {
      return problems->Add("plaintext: not closed");
    }
    tally->Count("plaintext", "closed");
  }
};

TEST(SoakTest, OverTlsWithAuthUnauthenticatedAndHandshakelessClientsDoNotHurtOthers) {
  if (std::getenv("SOAK_TLS") == nullptr) {
    GTEST_SKIP() << "the TLS + auth variant runs with SOAK_TLS=1 (ctest: soak_tls_test)";
  }
  ::signal(SIGPIPE, SIG_IGN);
  const auto duration = SoakDuration();
  const std::string dir = ::testing::TempDir() + "soak_tls_" + std::to_string(::getpid());
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  testing::TestCa ca("gradientd soak CA");
  ca.WriteCertificate(dir + "/ca.pem");
  ca.Issue("gradientd soak server", "IP:127.0.0.1,DNS:localhost", dir + "/server.pem",
           dir + "/server.key");
  const std::string produce_token = "soak-producer-token-5f1e9a7c3b2d4e6f";
  const std::string query_token = "soak-querier-token-8a0b2c4d6e1f3a5b";
  {
    std::ofstream auth(dir + "/auth");
    auth << "producers produce " << produce_token << "\nqueriers query " << query_token << "\n";
  }
  std::filesystem::permissions(
      dir + "/auth", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  // clang-format off
  const std::vector<std::string> args = {
      "--in-memory",
      "--listen", "127.0.0.1:0",
      "--threads", "2",
      "--max-connections", std::to_string(kMaxConnections),
      "--max-frame-bytes", std::to_string(kMaxFrameBytes),
      "--max-queued-bytes", std::to_string(kMaxQueuedBytes),
      "--idle-timeout", std::to_string(kIdleTimeout.count()) + "ms",
      "--request-timeout", std::to_string(kRequestTimeout.count()) + "ms",
      "--write-timeout", std::to_string(kWriteTimeout.count()) + "ms",
      "--tls-cert", dir + "/server.pem",
      "--tls-key", dir + "/server.key",
      "--auth-file", dir + "/auth",
  };
  // clang-format on
  ServerProcess server;
  ASSERT_EQ(server.Start(GRADIENTD_BINARY, args), "");
  const auto watchdog_limit = duration + 6 * kPatience;
  Watchdog watchdog(server.pid(), watchdog_limit);

  client::ConnectOptions tls;
  client::TlsOptions trust;
  trust.ca_file = dir + "/ca.pem";
  ASSERT_TRUE(client::MakeClientTlsContext(trust, &tls.tls).ok());
  const ProducerSpec specs[kProducers] = {
      {"soak-p0", "soak-producer-0", 0.0, 10, -160},
      {"soak-p1", "soak-producer-1", 1.7e9, -3, 4000},
      {"soak-p2", "soak-producer-2", -2.5e4, 7, 0},
      {"soak-p3", "soak-producer-3", 3e6, 1, 333},
  };
  std::vector<std::unique_ptr<ProducerState>> producers;
  std::vector<std::unique_ptr<client::Client>> clients;
  for (int i = 0; i < kWellBehaved; ++i) {
    client::ConnectOptions options = tls;
    options.token = i < kProducers ? produce_token : query_token;
    if (i < kProducers) {
      producers.push_back(std::make_unique<ProducerState>());
      producers.back()->spec = specs[i];
    }
    std::unique_ptr<client::Client> c;
    const Status s = client::Client::Connect(server.address(), options, &c);
    ASSERT_TRUE(s.ok()) << s.message();
    clients.push_back(std::move(c));
  }

  const uint64_t seed = std::random_device()();
  std::cout << "soak (TLS + auth): " << duration.count() << " s (SOAK_SECONDS), seed " << seed
            << ", gradientd on " << server.address() << "\n";
  std::atomic<bool> stop{false};
  Problems problems;
  Tally tally;
  std::vector<std::thread> threads;
  for (std::size_t i = 0; i < kProducers; ++i) {
    threads.emplace_back(RunProducer, std::ref(*producers[i]), std::ref(*clients[i]),
                         seed + static_cast<uint64_t>(i), std::cref(stop), std::ref(problems));
  }
  const auto first_acks_by = Clock::now() + kPatience;
  while (Clock::now() < first_acks_by &&
         std::any_of(producers.begin(), producers.end(),
                     [](const auto& p) { return p->batches_acked == 0 && !p->dropped; })) {
    std::this_thread::sleep_for(10ms);
  }
  const bool producing = std::all_of(producers.begin(), producers.end(),
                                     [](const auto& p) { return p->batches_acked > 0; });
  if (!producing) problems.Add("the producers' first batches were not all acknowledged");
  const TlsHostile hostile{server.port(), server.address(), tls, &producers, &problems, &tally};
  if (producing) {
    for (std::size_t i = 0; i < kQueriers; ++i) {
      threads.emplace_back(RunQuerier, std::ref(producers), std::ref(*clients[kProducers + i]),
                           seed + 100 + static_cast<uint64_t>(i), std::cref(stop),
                           std::ref(problems), std::ref(tally));
    }
    using Action = void (TlsHostile::*)(std::mt19937_64&) const;
    const std::pair<Action, int> loops[] = {
        // Several handshake-less and trickling clients at once, as an
        // attacker holding descriptors would.
        {&TlsHostile::Unauthenticated, 2}, {&TlsHostile::WrongToken, 1},
        {&TlsHostile::Handshakeless, 6},   {&TlsHostile::Trickle, 4},
        {&TlsHostile::Plaintext, 1},
    };
    uint64_t n = 200;
    for (const auto& [action, copies] : loops) {
      for (int copy = 0; copy < copies; ++copy) {
        threads.emplace_back([&, action = action, loop_seed = seed + n++] {
          std::mt19937_64 rng(loop_seed);
          while (!stop) {
            (hostile.*action)(rng);
            Pause(std::chrono::milliseconds(5 + static_cast<int64_t>(rng() % 20)), stop);
          }
        });
      }
    }
    Pause(duration, stop);
  }
  stop = true;
  for (auto& t : threads) t.join();
  clients.clear();

  // A fresh authenticated connection is answered (retrying a refusal while
  // the server closes the hostile ones), and every acknowledged point was
  // counted exactly once: none of the unauthenticated ingests got in.
  client::ConnectOptions fresh_options = tls;
  fresh_options.token = query_token;
  std::unique_ptr<client::Client> fresh;
  std::string fresh_problem = "no attempt";
  for (const auto by = Clock::now() + kPatience; Clock::now() < by;) {
    fresh.reset();
    if (Status s = client::Client::Connect(server.address(), fresh_options, &fresh); !s.ok()) {
      fresh_problem = s.message();
      std::this_thread::sleep_for(100ms);
      continue;
    }
    v1::Request list;
    list.mutable_list();
    v1::Response r;
    if (Status s = fresh->Call(list, &r); !s.ok()) {
      fresh_problem = s.message();
    } else if (r.has_series_list()) {
      fresh_problem.clear();
      break;
    } else {
      fresh_problem = r.ShortDebugString();
    }
    std::this_thread::sleep_for(100ms);
  }
  EXPECT_EQ(fresh_problem, "") << "a fresh connection after the soak was not answered";
  if (fresh_problem.empty()) ExpectExactTotals(producers, *fresh);
  fresh.reset();

  watchdog.Disarm();
  EXPECT_FALSE(watchdog.fired()) << "the run took longer than " << Seconds(watchdog_limit) << " s";
  Clock::duration stop_took{};
  EXPECT_EQ(server.Terminate(kPatience, &stop_took), "");
  if (producing) {
    for (const char* kind : {"handshake-less", "tricklers", "plaintext"}) {
      EXPECT_GT(tally.Get(kind, "closed"), 0u) << kind;
    }
    EXPECT_GT(tally.Get("unauthenticated", "ingests refused as UNAUTHENTICATED"), 0u);
    EXPECT_GT(tally.Get("wrong token", "refused as UNAUTHENTICATED"), 0u);
  }
  EXPECT_EQ(problems.count(), 0u) << problems.Report();
  uint64_t points_acked = 0;
  for (const auto& p : producers) points_acked += p->points_acked;
  std::cout << "soak (TLS + auth): " << points_acked << " points acknowledged\n";
  for (const char* kind :
       {"unauthenticated", "wrong token", "handshake-less", "tricklers", "plaintext"}) {
    std::cout << "soak (TLS + auth): hostile " << tally.Line(kind) << "\n";
  }
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace gradientd
