// gradientd's command line: one table row per option (name, help, bounds,
// target; the default is the target's value in a default NodeOptions), from
// which both the parser and --help are made.
#pragma once

#include <string>

#include "app/node.h"
#include "core/status.h"

namespace gradientd::app {

struct CommandLine {
  NodeOptions node;
  bool help = false;  // --help: print usage and exit 0
  bool version = false;
  std::string usage;         // the --help text
  std::string cluster_urls;  // --cluster, as given (NodeOptions has the list)
  // --cluster-user-file and --cluster-token-file (NodeOptions has what they hold).
  std::string cluster_user_file;
  std::string cluster_token_file;
};

// Parses gradientd's arguments. Errors name the flag and the bad value.
Status ParseCommandLine(int argc, const char* const* argv, CommandLine* command_line);

// The data directory used without --data-dir: $XDG_STATE_HOME/gradientd, else
// $HOME/.local/state/gradientd, else ./gradientd-data.
std::string DefaultDataDir();

}  // namespace gradientd::app
