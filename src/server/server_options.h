// Command-line options of gradientd, parsed into ServerOptions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "server/server.h"

namespace gradientd::server {

struct CommandLine {
  ServerOptions server;
  bool help = false;  // --help: print usage and exit 0
  bool version = false;
  std::string usage;  // the --help text
};

// Parses gradientd's arguments. Errors name the flag and the bad value.
Status ParseCommandLine(int argc, const char* const* argv, CommandLine* command_line);

// Parses a byte size: "16777216", "64KiB", "16MiB", "1GiB".
Status ParseByteSize(std::string_view text, std::size_t* bytes);

}  // namespace gradientd::server
