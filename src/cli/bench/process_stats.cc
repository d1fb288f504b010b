#include "cli/bench/process_stats.h"

#include <sys/resource.h>

#include <cstdint>
#include <cstdlib>
#include <sstream>
#include <string_view>

#include "cli/bench/bench.h"

namespace gradientd::cli {

Status ParseProcessStats(const std::string& stat, const std::string& status, long ticks_per_second,
                         ProcessStats* stats) {
  // stat: "PID (COMM) STATE PPID ..." where COMM may hold spaces and
  // parentheses; utime and stime are fields 14 and 15, the 12th and 13th
  // after the closing parenthesis.
  const std::size_t paren = stat.rfind(')');
  if (paren == std::string::npos || ticks_per_second <= 0) {
    return Status::Internal("cannot parse /proc/PID/stat");
  }
  std::istringstream fields(stat.substr(paren + 1));
  std::string field;
  uint64_t utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::strtoull(field.c_str(), nullptr, 10);
    if (i == 15) stime = std::strtoull(field.c_str(), nullptr, 10);
  }
  if (!fields) return Status::Internal("cannot parse /proc/PID/stat");
  stats->cpu_seconds = static_cast<double>(utime + stime) / static_cast<double>(ticks_per_second);
  bool rss = false, hwm = false;
  std::istringstream lines(status);
  std::string line;
  while (std::getline(lines, line)) {
    const auto kib = [&](std::string_view key, uint64_t* bytes) {
      if (!line.starts_with(key)) return false;
      *bytes = std::strtoull(line.c_str() + key.size(), nullptr, 10) * 1024;
      return true;
    };
    rss = kib("VmRSS:", &stats->rss_bytes) || rss;
    hwm = kib("VmHWM:", &stats->peak_rss_bytes) || hwm;
  }
  if (!rss || !hwm) return Status::Internal("no VmRSS or VmHWM in /proc/PID/status");
  return Status::Ok();
}

namespace bench {

double CpuSecondsSelf() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  const auto tv = [](const timeval& t) {
    return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) * 1e-6;
  };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

}  // namespace bench
}  // namespace gradientd::cli
