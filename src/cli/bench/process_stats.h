// CPU time of processes: the spawned server's from /proc (ParseProcessStats,
// bench.h), gradctl's own from getrusage.
#pragma once

namespace gradientd::cli::bench {

// This process's user + system CPU seconds so far.
double CpuSecondsSelf();

}  // namespace gradientd::cli::bench
