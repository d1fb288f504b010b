// `gradctl replay`: streams recordings (recording/recording.h) and CSV files to
// a server, exactly once (through produce's Producer), with the recorded
// timing, and prints a summary. Progress on stderr: progress.h.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>
#include <vector>

#include "cli/command.h"
#include "cli/csv_reader.h"
#include "cli/replay/progress.h"
#include "cli/send_flags.h"
#include "client/client.h"
#include "core/status.h"

namespace gradientd::cli {

Command ReplayCommand();

struct ReplayConfig {
  std::string server;  // HOST:PORT[,HOST:PORT...]
  std::chrono::nanoseconds failover_timeout = std::chrono::seconds(30);
  client::ConnectOptions connect;  // set by gradctl from the global TLS and token flags
  std::string series;              // CSV files' series; with `rename`, every batch's
  bool rename = false;             // --series was given
  bool json = false;
  std::vector<std::string> files;
  double speed = 1.0;
  bool max = false;  // as fast as possible
  // Send no event times (the server stamps each batch on receipt) instead
  // of each recorded batch's own.
  bool restamp = false;
  std::size_t batch = 8192;
  std::size_t window = 16;
  CsvOptions csv;
  ExactlyOnceFlags exactly_once;
  ProgressMode progress = ProgressMode::kAuto;
  std::chrono::nanoseconds progress_interval = std::chrono::seconds(2);
};

// Reads replay's command line (global options included). A returned error is
// a usage error.
Status ParseReplayConfig(const boost::program_options::variables_map& vm, ReplayConfig* config);

// Replays; the summary goes to `out`, progress and diagnostics to `err`.
// Returns a gradctl exit code.
int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err);

}  // namespace gradientd::cli
