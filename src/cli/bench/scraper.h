// --scrape-interval: a thread that GETs gradientd's /metrics (plain HTTP,
// Boost.Beast) on schedule while the measured phases run, as a Prometheus
// would, and counts what failed instead of dropping it.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <thread>
#include <utility>

#include "cli/bench/round_trips.h"
#include "core/status.h"
#include "protocol/endpoint.h"
#include "util/mutex.h"
#include "util/thread_annotations.h"

namespace gradientd::cli::bench {

// A scrape that takes longer fails: Prometheus's default scrape_timeout.
inline constexpr std::chrono::seconds kScrapeTimeout{10};
// The largest /metrics body read; a larger one is a failed scrape.
inline constexpr uint64_t kMaxScrapeBytes = 64ull << 20;

struct ScrapePlan {
  protocol::Endpoint endpoint;  // gradientd's HTTP listener
  std::string token;            // empty: no Authorization header
  std::chrono::nanoseconds interval{0};
};

struct ScrapeResult {
  uint64_t scrapes = 0;  // attempted and finished, failed ones included
  uint64_t failed = 0;   // refused, timed out, not 200, or unreadable
  Latencies durations;   // of the successful ones, from connect to the body's end; sorted
  uint64_t bytes = 0;    // the successful ones' bodies, in all
  std::string first_error;
};

// One GET /metrics on a connection of its own, bounded by `timeout`; the
// body's size into *body_bytes. A status other than 200 is an error naming
// it.
Status ScrapeOnce(const ScrapePlan& plan, std::chrono::nanoseconds timeout, uint64_t* body_bytes);

// Scrapes at once on Start, then every interval after the previous one
// was due (a late scrape does not make the next ones catch up).
// Start and Stop from one thread.
class Scraper {
 public:
  explicit Scraper(ScrapePlan plan) : plan_(std::move(plan)) {}
  Scraper(const Scraper&) = delete;
  Scraper& operator=(const Scraper&) = delete;
  ~Scraper() { Stop(); }

  void Start();
  // Ends the thread, waiting for a scrape in progress (at most
  // kScrapeTimeout); the durations sorted. Idempotent.
  const ScrapeResult& Stop();

 private:
  void Loop();
  void ScrapeAndCount();

  const ScrapePlan plan_;
  util::Mutex mu_;
  util::CondVar wake_;
  bool stopping_ GUARDED_BY(mu_) = false;
  ScrapeResult result_;  // the thread's alone until it is joined
  std::thread thread_;
};

}  // namespace gradientd::cli::bench
