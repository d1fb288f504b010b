// --spawn-server: a private `gradientd --listen 127.0.0.1:0 --in-memory`
// for the run, its CPU time and memory read from /proc, stopped at the end.
#pragma once

#include <sys/types.h>

#include <string>
#include <string_view>

#include "cli/bench/bench.h"
#include "core/status.h"

namespace gradientd::cli::bench {

class SpawnedServer {
 public:
  SpawnedServer() = default;
  SpawnedServer(const SpawnedServer&) = delete;
  SpawnedServer& operator=(const SpawnedServer&) = delete;
  ~SpawnedServer();

  // Starts `binary --listen 127.0.0.1:0 --in-memory` and waits for its
  // "gradientd listening on HOST:PORT" line, HOST:PORT into *address; with
  // http_address, for the next line too, "gradientd http listening on
  // HOST:PORT" (its HTTP listener, on an ephemeral port), into it.
  Status Start(const std::string& binary, std::string* address,
               std::string* http_address = nullptr);

  pid_t pid() const { return pid_; }

  // Reads its CPU time and memory from /proc.
  Status Stats(ProcessStats* stats) const;

  // SIGTERM, then SIGKILL if it has not exited within 10 s. Sets *problem
  // when it had already died or did not exit cleanly. Does nothing when not
  // running.
  void Stop(std::string* problem);

  // The end of what it wrote to stderr.
  std::string StderrTail() const;

 private:
  Status Fork(const std::string& binary);
  // Reads stdout up to a line starting with `prefix`, the rest of it into
  // *value; the lines before it are skipped.
  Status ReadLine(std::string_view prefix, std::string* value);
  Status Failed(const std::string& what);

  pid_t pid_ = -1;
  int stdout_fd_ = -1;       // kept open: the server may write to its stdout
  std::string stdout_text_;  // read from stdout_fd_, not yet a whole line
  int stderr_fd_ = -1;
};

// The gradientd to spawn: --server-binary, or the one next to this
// executable; an error naming it when it cannot be run.
Status FindServerBinary(const BenchConfig& config, std::string* binary);

}  // namespace gradientd::cli::bench
