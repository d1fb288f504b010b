// `gradctl inspect`: summarises recordings (recording_summary.h), readable
// or as one JSON object per file. Needs no server.
#pragma once

#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/command.h"
#include "core/status.h"

namespace gradientd::cli {

Command InspectCommand();

struct InspectConfig {
  std::vector<std::string> files;
  bool json = false;
};

// Reads inspect's command line (global options included). A returned error
// is a usage error.
Status ParseInspectConfig(const boost::program_options::variables_map& vm, InspectConfig* config);

// Prints each file's summary to `out`; a file that cannot be read is
// reported on `err` and makes the exit code 1.
int RunInspect(const InspectConfig& config, std::ostream& out, std::ostream& err);

}  // namespace gradientd::cli
