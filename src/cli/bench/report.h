// What a run of `gradctl bench` measured, and its report (readable, or one
// JSON object), both from the one list of fields ReportRows builds.
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <vector>

#include "cli/bench/bench.h"
#include "cli/bench/producers.h"
#include "cli/bench/report_fields.h"
#include "cli/bench/round_trips.h"
#include "cli/bench/scraper.h"

namespace gradientd::cli::bench {

// The ingest rate is sampled in windows of this length.
inline constexpr std::chrono::milliseconds kRateWindow{500};

struct RssCheckpoint {
  uint64_t threshold = 0;  // a power of ten
  uint64_t points = 0;     // acknowledged when sampled
  uint64_t rss_bytes = 0;
};

struct Report {
  std::string server;
  std::string server_binary;
  long server_pid = 0;
  std::string stop_problem;

  bool ingest_ran = false;
  IngestResult ingest;
  // Points/s acknowledged in each whole kRateWindow of ingest, sorted: how
  // steady ingest was (the scheduler's placement of the threads shows here).
  std::vector<int64_t> window_rates;
  double client_cpu_ingest = 0;
  Latencies idle, loaded, echo, loaded_echo;
  bool idle_ran = false, loaded_ran = false;

  bool baseline_ran = false;
  IngestResult discard;
  uint64_t discard_bytes_received = 0;

  bool have_stats = false;
  ProcessStats before_ingest, after_ingest, at_end;
  std::vector<RssCheckpoint> checkpoints;
  // VmHWM can lag behind VmRSS samples taken earlier: the largest of all.
  uint64_t peak_rss = 0;

  uint64_t series_count = 0;
  double series_seconds = 0;
  uint64_t series_rss_before = 0, series_rss_after = 0;

  std::string scrape_address;  // gradientd's HTTP listener, with --scrape-interval
  bool scrape_ran = false;
  ScrapeResult scrape;
};

// The report's fields, in the readable report's order.
std::vector<Row> ReportRows(const BenchConfig& config, const Report& report);

}  // namespace gradientd::cli::bench
