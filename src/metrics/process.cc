#include "metrics/process.h"

#include <sys/resource.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace gradientd::metrics {
namespace {

// The fields of /proc/self/stat after the command name (which may hold
// spaces and parentheses: it ends at the last ')'); fields[0] is field 3.
std::optional<std::vector<std::string>> StatFields() {
  std::ifstream file("/proc/self/stat");
  std::string text;
  if (!std::getline(file, text)) return std::nullopt;
  const std::size_t end = text.rfind(')');
  if (end == std::string::npos) return std::nullopt;
  std::istringstream rest(text.substr(end + 1));
  std::vector<std::string> fields;
  for (std::string field; rest >> field;) fields.push_back(field);
  if (fields.size() < 22) return std::nullopt;
  return fields;
}

// The boot time (Unix seconds) from /proc/stat's btime line.
std::optional<double> BootTime() {
  std::ifstream file("/proc/stat");
  for (std::string line; std::getline(file, line);) {
    if (line.starts_with("btime ")) return std::stod(line.substr(6));
  }
  return std::nullopt;
}

uint64_t OpenFds() {
  std::error_code ec;
  uint64_t count = 0;
  for (std::filesystem::directory_iterator it("/proc/self/fd", ec), end; !ec && it != end;
       it.increment(ec)) {
    ++count;
  }
  // Less the descriptor the iteration itself holds open.
  return count > 0 ? count - 1 : 0;
}

}  // namespace

std::optional<ProcessStats> ReadProcessStats() {
  const auto fields = StatFields();
  const auto boot = BootTime();
  if (!fields || !boot) return std::nullopt;
  const double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  const long page = sysconf(_SC_PAGESIZE);
  // Field n of proc(5) is fields[n - 3]: utime 14, stime 15, starttime 22,
  // vsize 23, rss 24.
  ProcessStats stats;
  try {
    stats.cpu_seconds =
        static_cast<double>(std::stoull((*fields)[11]) + std::stoull((*fields)[12])) / ticks;
    stats.start_time_seconds = *boot + static_cast<double>(std::stoull((*fields)[19])) / ticks;
    stats.virtual_bytes = std::stoull((*fields)[20]);
    stats.resident_bytes = std::stoull((*fields)[21]) * static_cast<uint64_t>(page);
  } catch (const std::exception&) {
    return std::nullopt;
  }
  stats.open_fds = OpenFds();
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) stats.max_fds = limit.rlim_cur;
  return stats;
}

void AddProcessMetrics(Registry& registry) {
  // One read of /proc per family; a scrape is rare.
  const auto read = [](auto field) {
    return [field]() -> double {
      const auto stats = ReadProcessStats();
      return stats ? static_cast<double>((*stats).*field) : 0.0;
    };
  };
  registry.AddCallback("process_cpu_seconds_total",
                       "Total user and system CPU time spent in seconds.", "counter", {Labels{}},
                       [cpu = read(&ProcessStats::cpu_seconds)](std::vector<double>* values) {
                         (*values)[0] = cpu();
                       });
  registry.AddGaugeCallback("process_resident_memory_bytes", "Resident memory size in bytes.",
                            read(&ProcessStats::resident_bytes));
  registry.AddGaugeCallback("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                            read(&ProcessStats::virtual_bytes));
  registry.AddGaugeCallback("process_open_fds", "Number of open file descriptors.",
                            read(&ProcessStats::open_fds));
  registry.AddGaugeCallback("process_max_fds", "Maximum number of open file descriptors.",
                            read(&ProcessStats::max_fds));
  registry.AddGaugeCallback("process_start_time_seconds",
                            "Start time of the process since unix epoch in seconds.",
                            read(&ProcessStats::start_time_seconds));
}

}  // namespace gradientd::metrics
