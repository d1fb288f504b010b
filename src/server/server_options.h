// Command-line options of gradientd, parsed into ServerOptions.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/status.h"
#include "durable/data_directory.h"
#include "server/server.h"
#include "service/service.h"

namespace gradientd::server {

struct CommandLine {
  ServerOptions server;
  service::ServiceLimits limits;
  bool in_memory = false;
  durable::DataDirectoryOptions data;  // unless in_memory
  std::string record_path;             // --record: empty for none
  std::string auth_file;               // --auth-file: empty for an open server
  bool help = false;                   // --help: print usage and exit 0
  bool version = false;
  std::string usage;  // the --help text
};

// Parses gradientd's arguments. Errors name the flag and the bad value.
Status ParseCommandLine(int argc, const char* const* argv, CommandLine* command_line);

// Descriptors kept, beyond the connections and refusals, for the journal,
// snapshots, the recording, the auth file, the listening socket and Asio's
// own (epoll, eventfd, timers).
inline constexpr std::size_t kReservedDescriptors = 64;

// Raises the soft limit on open files (RLIMIT_NOFILE) to the hard limit and
// sets *limit to the soft limit then in effect.
Status RaiseOpenFileLimit(uint64_t* limit);

// Whether --max-connections, with the refusals in progress
// (Server::kRefusalAllowance) and kReservedDescriptors, fits in an
// open-file limit of `limit`. The error names both numbers and what to do.
Status CheckOpenFileLimit(std::size_t max_connections, uint64_t limit);

// The data directory used without --data-dir: $XDG_STATE_HOME/gradientd, else
// $HOME/.local/state/gradientd, else ./gradientd-data.
std::string DefaultDataDir();

}  // namespace gradientd::server
