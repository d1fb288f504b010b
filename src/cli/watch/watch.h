// gradctl watch: a live view of the series (counts, ingest rates, lines,
// loss) refreshed every --interval. On a terminal it redraws in place,
// fitted to the terminal's size; otherwise it writes one block of plain
// lines per refresh, headed by a UTC timestamp, so that it can be piped.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>

#include "cli/command.h"
#include "cli/watch/terminal.h"
#include "cli/watch/watch_table.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"

namespace gradientd::cli {

// The most series one refresh lists (in name order); beyond them the frame
// says more were not listed. Bounds a refresh's requests and memory.
inline constexpr std::size_t kWatchMaxListedSeries = 10000;

struct WatchConfig {
  std::chrono::nanoseconds interval{std::chrono::seconds(1)};
  std::string prefix;
  v1::View view = v1::VIEW_UNSPECIFIED;
  uint64_t count = 0;  // refreshes, then exit; 0: until interrupted
  WatchSort sort = WatchSort::kName;
  std::size_t limit = 50;  // series rows shown
  std::size_t max_listed = kWatchMaxListedSeries;
  uint32_t page_size = 1000;
};

// The flags into *config; kInvalidArgument naming the flag for a bad value.
Status WatchConfigFromVm(const boost::program_options::variables_map& vm, WatchConfig* config);

// What the loop needs from the world, so that tests can drive it: the
// clocks, the wait between refreshes (where a test ingests), the terminal.
class WatchEnvironment {
 public:
  virtual ~WatchEnvironment() = default;
  virtual std::chrono::steady_clock::time_point Now() = 0;
  virtual int64_t UnixNanos() = 0;  // for the heading
  // Waits `interval`; false when interrupted (the watch then ends, exit 0).
  virtual bool Wait(std::chrono::nanoseconds interval) = 0;
  virtual bool Interrupted() = 0;
  virtual bool IsTerminal() = 0;
  virtual TerminalSize Size() = 0;
};

// Connects and refreshes config.count times (or until interrupted). A
// server that cannot be reached or goes away mid-watch is reported on
// context.err and is exit 1; with one --server address there is no
// reconnect, with several it fails over (cli/failover_client.h).
int RunWatch(CommandContext& context, const WatchConfig& config, WatchEnvironment& environment);

Command WatchCommand();

}  // namespace gradientd::cli
