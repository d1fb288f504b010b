// The standard process_* metrics of the Prometheus client libraries, read
// from /proc/self (Linux) at scrape time.
#pragma once

#include <cstdint>
#include <optional>

#include "metrics/metrics.h"

namespace gradientd::metrics {

struct ProcessStats {
  double cpu_seconds = 0;  // user + system
  uint64_t resident_bytes = 0;
  uint64_t virtual_bytes = 0;
  uint64_t open_fds = 0;
  uint64_t max_fds = 0;           // the soft RLIMIT_NOFILE
  double start_time_seconds = 0;  // Unix time
};

// What /proc/self/stat, /proc/self/fd and /proc/stat say now; nullopt if
// they cannot be read.
std::optional<ProcessStats> ReadProcessStats();

// Registers process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_open_fds, process_max_fds and
// process_start_time_seconds (0 each when /proc cannot be read).
void AddProcessMetrics(Registry& registry);

}  // namespace gradientd::metrics
