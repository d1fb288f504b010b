// Round trips at a steady rate: gradient queries to gradientd, and the same
// frame to an echo server, one at a time on their own connections.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/bench/bench.h"
#include "cli/bench/common.h"
#include "cli/bench/raw_connection.h"
#include "core/status.h"

namespace gradientd::cli::bench {

struct Latencies {
  std::vector<int64_t> ns;  // sorted once finished
  uint64_t late = 0;        // sent more than one interval behind schedule

  uint64_t count() const { return ns.size(); }
  double Us(double q) const { return static_cast<double>(Percentile(ns, q)) / 1e3; }
};

struct RoundTripPlan {
  RawConnection* connection = nullptr;  // to gradientd; null: echo only
  std::string series;
  double rate = 1000;
  Clock::time_point end;
  const std::atomic<bool>* stop = nullptr;  // optional: stop early
  // Optional: an echo server probed at the same ticks, alternately before
  // and after the query, so that both see the same machine.
  RawConnection* echo = nullptr;
};

// One query at a time on schedule (at least one), `rate` a second, until
// `end`; with `echo`, an echo round trip at each tick too. A few unrecorded
// round trips warm up first. Late sends are counted in *latencies.
Status RunRoundTrips(const RoundTripPlan& plan, Latencies* latencies, Latencies* echo_latencies);

}  // namespace gradientd::cli::bench
