// `gradctl bench`: a load generator and latency probe for gradientd.
//
// P producer connections (one thread each, raw blocking Asio sockets) send
// batches of B points for S seconds, pipelined with at most W batches
// unacknowledged, while another connection sends GradientQuery requests at a
// steady rate and records each round trip. The producers' frames are built
// once: every send writes the same x/y bytes and only re-encodes a ~40-byte
// head (request id, sequence number), with one gather write.
//
// Phases, in order:
//   1. --spawn-server: start `gradientd --listen 127.0.0.1:0 --in-memory`
//      and read its "gradientd listening on HOST:PORT" line.
//   2. Discard baseline (--baseline; on by default with --spawn-server): an
//      in-process server that reads and drops bytes receives the same
//      producer code's same bytes for the same duration.
//   3. Idle queries for --idle-seconds, before any ingest (the series gets
//      one batch first, on a connection of its own, if it has no points
//      yet). With the baselines, each tick also times a round trip to a
//      plain TCP echo server, in a child process, of the same frame (same
//      client code), alternately before and after the query, so that both
//      see the same machine.
//   4. Ingest for --seconds (or until --points points are acknowledged),
//      with the query (and echo) connections running alongside.
//   5. --series-count N: N more series of one point each, and the server's
//      RSS before and after.
// With --scrape-interval, a thread GETs the server's /metrics on schedule
// through phases 3 and 4 (a spawned server's HTTP address is read from its
// "gradientd http listening on" line), and the report counts the scrapes,
// the failed ones, their duration and size.
// Server CPU seconds (utime + stime, /proc/PID/stat) and memory (VmRSS,
// VmHWM, /proc/PID/status) are reported only for a spawned server.
//
// In this folder: run.cc (the phases, in order), options.cc, producers.*
// (phase 4) over batch_template.* and raw_connection.*, round_trips.* (the
// query and echo probes), scraper.* (the /metrics scrapes), baselines.*
// (discard and echo servers),
// spawned_server.* and process_stats.* (phase 1, the server's figures),
// series_setup.* (the query series, phase 5), report.* (what is reported)
// and report_fields.* (its readable and JSON renderings).
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "client/client.h"
#include "core/status.h"

namespace gradientd::cli {

struct BenchConfig {
  std::string server;  // HOST:PORT, without --spawn-server
  // Set by gradctl from the global flags: --token (a Hello on every
  // connection to gradientd) and --tcp-congestion (every connection). No TLS.
  client::ConnectOptions connect;
  std::string series;  // the series the producers and queries use
  bool json = false;
  bool spawn_server = false;
  std::string server_binary;  // empty: gradientd next to this executable
  bool baseline = false;
  int producers = 2;
  int64_t batch = 8192;
  int64_t window = 8;
  double seconds = 5;
  double idle_seconds = 1;
  double query_rate = 1000;
  uint64_t points = 0;        // stop ingest once this many are acknowledged; 0 = no limit
  uint64_t series_count = 0;  // phase 5
  // --scrape-interval: GET /metrics this often during phases 3 and 4; 0: never.
  std::chrono::nanoseconds scrape_interval{0};
  std::string scrape_address;  // HOST:PORT of gradientd's HTTP, without --spawn-server
};

// The options of `gradctl bench`.
void AddBenchOptions(boost::program_options::options_description* options);

// Fills `config` from the parsed command line (which holds the global
// options too: --server, --series, --json), all but `connect`, which gradctl
// sets. A returned error is a usage error.
Status ParseBenchConfig(const boost::program_options::variables_map& vm, BenchConfig* config);

// Runs the benchmark; the report goes to `out` (readable, or one JSON
// object with --json), diagnostics to `err`. Returns a gradctl exit code.
int RunBench(const BenchConfig& config, std::ostream& out, std::ostream& err);

// Helpers, exposed for tests.

// The nearest-rank q-quantile (0 < q <= 1) of `sorted` (ascending); 0 when
// empty.
int64_t Percentile(const std::vector<int64_t>& sorted, double q);

struct ProcessStats {
  double cpu_seconds = 0;       // utime + stime
  uint64_t rss_bytes = 0;       // VmRSS
  uint64_t peak_rss_bytes = 0;  // VmHWM
};

// Parses the text of /proc/PID/stat and /proc/PID/status.
Status ParseProcessStats(const std::string& stat, const std::string& status, long ticks_per_second,
                         ProcessStats* stats);

}  // namespace gradientd::cli
