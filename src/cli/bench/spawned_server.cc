#include "cli/bench/spawned_server.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string_view>
#include <system_error>
#include <thread>
#include <vector>

#include "cli/bench/common.h"

namespace gradientd::cli::bench {
namespace {

constexpr int kSpawnTimeoutMs = 30'000;
constexpr auto kStopTimeout = std::chrono::seconds(10);

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::in | std::ios::binary);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::string Describe(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

SpawnedServer::~SpawnedServer() {
  std::string ignored;
  Stop(&ignored);
  if (stdout_fd_ >= 0) close(stdout_fd_);
  if (stderr_fd_ >= 0) close(stderr_fd_);
}

Status SpawnedServer::Start(const std::string& binary, std::string* address,
                            std::string* http_address) {
  if (Status s = Fork(binary); !s.ok()) return s;
  // The HTTP line comes first (HTTP answers during recovery); ReadLine
  // skips it when it is not asked for.
  if (http_address != nullptr) {
    if (Status s = ReadLine("gradientd http listening on ", http_address); !s.ok()) return s;
  }
  return ReadLine("gradientd listening on ", address);
}

// Forks and executes the server, its stdout into a pipe and its stderr into
// an unlinked temporary file (read if it fails).
Status SpawnedServer::Fork(const std::string& binary) {
  const std::vector<std::string> args = {binary, "--listen", "127.0.0.1:0", "--in-memory"};
  std::vector<char*> argv;
  for (const std::string& a : args) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  const char* tmpdir = std::getenv("TMPDIR");
  std::string name = std::string(tmpdir != nullptr && *tmpdir != '\0' ? tmpdir : "/tmp") +
                     "/gradctl-bench-server.XXXXXX";
  stderr_fd_ = mkostemp(name.data(), O_CLOEXEC);
  if (stderr_fd_ < 0) return Errno("cannot create a temporary file in the temporary directory");
  unlink(name.c_str());
  int pipe_fds[2];
  if (pipe2(pipe_fds, O_CLOEXEC) != 0) return Errno("pipe");
  stdout_fd_ = pipe_fds[0];
  const pid_t parent = getpid();
  pid_ = fork();
  if (pid_ < 0) {
    close(pipe_fds[1]);
    return Errno("fork");
  }
  if (pid_ == 0) {
    // The child: only async-signal-safe calls until exec.
    dup2(pipe_fds[1], STDOUT_FILENO);
    dup2(stderr_fd_, STDERR_FILENO);
    prctl(PR_SET_PDEATHSIG, SIGTERM);  // never outlive gradctl
    if (getppid() != parent) _exit(1);
    execv(argv[0], argv.data());
    static constexpr char kMessage[] = "gradctl bench: cannot execute the server\n";
    [[maybe_unused]] const ssize_t written = write(STDERR_FILENO, kMessage, sizeof kMessage - 1);
    _exit(127);
  }
  close(pipe_fds[1]);
  return Status::Ok();
}

Status SpawnedServer::ReadLine(std::string_view prefix, std::string* value) {
  const Clock::time_point give_up = Clock::now() + std::chrono::milliseconds(kSpawnTimeoutMs);
  while (true) {
    if (const std::size_t eol = stdout_text_.find('\n'); eol != std::string::npos) {
      std::string line = stdout_text_.substr(0, eol);
      stdout_text_.erase(0, eol + 1);
      if (line.starts_with(prefix)) {
        *value = line.substr(prefix.size());
        return Status::Ok();
      }
      continue;
    }
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(give_up - Clock::now());
    if (left.count() <= 0) {
      return Failed("did not report '" + std::string(prefix) + "HOST:PORT' within " +
                    std::to_string(kSpawnTimeoutMs / 1000) + " s");
    }
    pollfd p{stdout_fd_, POLLIN, 0};
    const int ready = poll(&p, 1, static_cast<int>(left.count()));
    if (ready < 0 && errno != EINTR) return Errno("poll");
    if (ready <= 0) continue;
    char buf[4096];
    const ssize_t n = read(stdout_fd_, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Failed("exited before printing '" + std::string(prefix) + "HOST:PORT'");
    stdout_text_.append(buf, static_cast<std::size_t>(n));
  }
}

Status SpawnedServer::Stats(ProcessStats* stats) const {
  const std::string dir = "/proc/" + std::to_string(pid_);
  const long ticks = sysconf(_SC_CLK_TCK);
  return ParseProcessStats(ReadFile(dir + "/stat"), ReadFile(dir + "/status"), ticks, stats);
}

void SpawnedServer::Stop(std::string* problem) {
  if (pid_ <= 0) return;
  int status = 0;
  pid_t done = waitpid(pid_, &status, WNOHANG);
  if (done == pid_) {
    *problem = "the server had exited during the benchmark: " + Describe(status);
  } else {
    kill(pid_, SIGTERM);
    const Clock::time_point give_up = Clock::now() + kStopTimeout;
    while ((done = waitpid(pid_, &status, WNOHANG)) == 0 && Clock::now() < give_up) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    if (done == 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, &status, 0);
      *problem = "the server did not stop on SIGTERM; killed";
    } else if (!(WIFEXITED(status) && WEXITSTATUS(status) == 0) &&
               !(WIFSIGNALED(status) && WTERMSIG(status) == SIGTERM)) {
      *problem = "the server stopped badly: " + Describe(status);
    }
  }
  pid_ = -1;
}

std::string SpawnedServer::StderrTail() const {
  std::string text;
  char buf[4096];
  off_t offset = 0;
  ssize_t n;
  while ((n = pread(stderr_fd_, buf, sizeof buf, offset)) > 0) {
    text.append(buf, static_cast<std::size_t>(n));
    offset += n;
  }
  if (text.size() > 2000) text = "..." + text.substr(text.size() - 2000);
  return text;
}

Status SpawnedServer::Failed(const std::string& what) {
  std::string ignored;
  Stop(&ignored);
  std::string message = "the spawned gradientd " + what;
  const std::string tail = StderrTail();
  if (!tail.empty()) message += "; its stderr:\n" + tail;
  return Status::Unavailable(message);
}

Status FindServerBinary(const BenchConfig& config, std::string* binary) {
  if (!config.server_binary.empty()) {
    *binary = config.server_binary;
  } else {
    std::error_code ec;
    const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) return Status::Unavailable("cannot find this executable: " + ec.message());
    *binary = (self.parent_path() / "gradientd").string();
  }
  if (access(binary->c_str(), X_OK) != 0) {
    return Status::Unavailable("cannot run the server binary '" + *binary +
                               "': " + std::strerror(errno) +
                               (config.server_binary.empty() ? " (use --server-binary PATH)" : ""));
  }
  return Status::Ok();
}

}  // namespace gradientd::cli::bench
