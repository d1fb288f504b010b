// RunBench: the phases of `gradctl bench`, in order (see bench.h).
#include <algorithm>
#include <atomic>
#include <functional>
#include <optional>
#include <thread>

#include "cli/bench/baselines.h"
#include "cli/bench/batch_template.h"
#include "cli/bench/bench.h"
#include "cli/bench/common.h"
#include "cli/bench/process_stats.h"
#include "cli/bench/producers.h"
#include "cli/bench/raw_connection.h"
#include "cli/bench/report.h"
#include "cli/bench/round_trips.h"
#include "cli/bench/scraper.h"
#include "cli/bench/series_setup.h"
#include "cli/bench/spawned_server.h"
#include "cli/exit_codes.h"
#include "util/random.h"

namespace gradientd::cli {
namespace bench {
namespace {

// One run: the plan from the config, the connections and child processes it
// makes, and the Report they fill.
class BenchRun {
 public:
  BenchRun(const BenchConfig& config, std::ostream& out, std::ostream& err)
      : c_(config),
        out_(out),
        err_(err),
        batch_(MakeBatchTemplate(static_cast<uint64_t>(c_.batch))) {
    plan_.batch = &batch_;
    plan_.series = c_.series;
    plan_.window = static_cast<uint64_t>(c_.window);
    plan_.connect = c_.connect;
  }

  int Run() {
    if (Status s = VerifyTemplate(batch_); !s.ok()) return Fail(s.message());
    if (Status s = StartServer(); !s.ok()) return Fail(s.message());
    Status s = MeasureAll();
    if (!s.ok()) return FailRun(s);
    Print();
    return kExitOk;
  }

 private:
  // Phase 1: the spawned server, or the one at --server.
  Status StartServer() {
    if (c_.spawn_server) {
      if (Status s = FindServerBinary(c_, &r_.server_binary); !s.ok()) return s;
      std::string* http = Scraping() ? &r_.scrape_address : nullptr;
      if (Status s = spawned_.Start(r_.server_binary, &r_.server, http); !s.ok()) return s;
      r_.server_pid = spawned_.pid();
      r_.have_stats = true;
    } else {
      r_.server = c_.server;
      r_.scrape_address = c_.scrape_address;
    }
    if (Status s = protocol::ParseEndpoint(r_.server, &endpoint_); !s.ok()) {
      return Status(s.code(), "--server " + r_.server + ": " + s.message());
    }
    return Status::Ok();
  }

  // Phases 2 to 5, and the server's last figures.
  Status MeasureAll() {
    if (c_.baseline) {
      if (Status s = DiscardBaseline(); !s.ok()) return s;
      if (Status s = StartEcho(); !s.ok()) return s;
    }
    if (Status s = ConnectQueries(); !s.ok()) return s;
    if (Status s = StartScraper(); !s.ok()) return s;
    if (Status s = IdleQueries(); !s.ok()) return s;
    if (Status s = SampleStats(&r_.before_ingest); !s.ok()) return s;
    if (c_.seconds > 0) {
      if (Status s = Ingest(); !s.ok()) return s;
    }
    StopScraper();
    if (Status s = AfterIngest(); !s.ok()) return s;
    if (c_.series_count > 0) {
      if (Status s = SeriesCount(); !s.ok()) return s;
    }
    return StopServer();
  }

  bool Scraping() const { return c_.scrape_interval.count() > 0; }

  // --scrape-interval: scrapes from here to the end of ingest.
  Status StartScraper() {
    if (!Scraping()) return Status::Ok();
    ScrapePlan plan;
    plan.token = c_.connect.token;
    plan.interval = c_.scrape_interval;
    if (Status s = protocol::ParseEndpoint(r_.scrape_address, &plan.endpoint); !s.ok()) {
      return Status(s.code(), "the HTTP address " + r_.scrape_address + ": " + s.message());
    }
    scraper_.emplace(std::move(plan));
    scraper_->Start();
    return Status::Ok();
  }

  // Failed scrapes are in the report, and said on stderr too.
  void StopScraper() {
    if (!scraper_) return;
    r_.scrape = scraper_->Stop();
    r_.scrape_ran = true;
    if (r_.scrape.failed > 0) {
      err_ << "gradctl bench: " << r_.scrape.failed << " of " << r_.scrape.scrapes << " scrapes of "
           << r_.scrape_address << " failed; the first: " << r_.scrape.first_error << '\n';
    }
  }

  // Phase 2: the same producers into a server that drops the bytes.
  Status DiscardBaseline() {
    r_.baseline_ran = true;
    DiscardServer discard(c_.producers);
    protocol::Endpoint discard_endpoint;
    if (Status s = discard.Start(&discard_endpoint); !s.ok()) return s;
    ProducerPlan discard_plan = plan_;
    discard_plan.expect_acks = false;
    discard_plan.connect.token.clear();  // the discard server never answers a Hello
    r_.discard = RunProducers(discard_endpoint, c_.producers, discard_plan,
                              c_.seconds > 0 ? c_.seconds : 1.0, run_id_ + "-discard", nullptr);
    discard.Join();
    r_.discard_bytes_received = discard.bytes_received();
    return r_.discard.status;
  }

  // The echo server, probed at the same ticks as the queries, idle and
  // under ingest.
  Status StartEcho() {
    echo_server_.emplace();
    protocol::Endpoint echo_endpoint;
    if (Status s = echo_server_->Start(&echo_endpoint); !s.ok()) return s;
    client::ConnectOptions echo_options;
    echo_options.tcp_congestion = c_.connect.tcp_congestion;
    return echo_.Connect(echo_endpoint, echo_options);
  }

  // The query connection, once the series has points. The series is only
  // made when queries will run (a series-count run alone creates exactly
  // the series it counts), on a connection of its own: the query connection
  // stays a pure query client (gradientd moves a connection that ingests to
  // an ingest thread).
  Status ConnectQueries() {
    query_series_ = c_.idle_seconds > 0 || c_.seconds > 0;
    if (!query_series_) return Status::Ok();
    RawConnection setup;
    if (Status s = setup.Connect(endpoint_, plan_.connect); !s.ok()) return s;
    if (Status s = EnsureSeries(&setup, c_.series, batch_, run_id_ + "-setup"); !s.ok()) return s;
    setup.Close();
    return queries_.Connect(endpoint_, plan_.connect);
  }

  RoundTripPlan QueryPlan(double seconds) {
    RoundTripPlan rt;
    rt.connection = &queries_;
    rt.series = c_.series;
    rt.rate = c_.query_rate;
    rt.echo = c_.baseline ? &echo_ : nullptr;
    rt.end = Clock::now() + FromSeconds(seconds);
    return rt;
  }

  // Phase 3. Without an idle phase, the echo baseline still runs (for a
  // second).
  Status IdleQueries() {
    if (c_.idle_seconds <= 0 && !c_.baseline) return Status::Ok();
    RoundTripPlan rt = QueryPlan(c_.idle_seconds > 0 ? c_.idle_seconds : 1.0);
    if (c_.idle_seconds <= 0) rt.connection = nullptr;
    if (Status s = RunRoundTrips(rt, &r_.idle, &r_.echo); !s.ok()) return s;
    r_.idle_ran = c_.idle_seconds > 0;
    return Status::Ok();
  }

  // Phase 4: ingest, with queries alongside.
  Status Ingest() {
    r_.ingest_ran = r_.loaded_ran = true;
    std::atomic<bool> ingest_done{false};
    Status query_status;
    RoundTripPlan rt = QueryPlan(c_.seconds);
    rt.stop = &ingest_done;
    std::thread query_thread(
        [&] { query_status = RunRoundTrips(rt, &r_.loaded, &r_.loaded_echo); });
    window_start_ = Clock::now();
    ProducerPlan plan = plan_;
    plan.points_limit = c_.points;
    const double cpu_before = CpuSecondsSelf();
    r_.ingest = RunProducers(endpoint_, c_.producers, plan, c_.seconds, run_id_,
                             [this](uint64_t points) { Monitor(points); });
    std::sort(r_.window_rates.begin(), r_.window_rates.end());
    r_.client_cpu_ingest = CpuSecondsSelf() - cpu_before;
    ingest_done.store(true);
    query_thread.join();
    if (!r_.ingest.status.ok()) return r_.ingest.status;
    return query_status;
  }

  // While ingest runs: the rate of each window, and the server's RSS when
  // the points acknowledged pass each power of ten.
  void Monitor(uint64_t points) {
    if (const Clock::time_point now = Clock::now(); now - window_start_ >= kRateWindow) {
      const double seconds = Seconds(now - window_start_);
      r_.window_rates.push_back(
          static_cast<int64_t>(static_cast<double>(points - window_points_) / seconds));
      window_start_ = now;
      window_points_ = points;
    }
    if (!r_.have_stats) return;
    ProcessStats sample;
    while (points >= next_checkpoint_) {
      if (spawned_.Stats(&sample).ok()) {
        r_.checkpoints.push_back({next_checkpoint_, points, sample.rss_bytes});
      }
      next_checkpoint_ *= 10;
    }
  }

  Status AfterIngest() {
    if (r_.have_stats) {
      if (Status s = spawned_.Stats(&r_.after_ingest); !s.ok()) return s;
      r_.peak_rss = std::max({r_.after_ingest.peak_rss_bytes, r_.after_ingest.rss_bytes,
                              r_.before_ingest.peak_rss_bytes});
      for (const RssCheckpoint& cp : r_.checkpoints) {
        r_.peak_rss = std::max(r_.peak_rss, cp.rss_bytes);
      }
    }
    if (query_series_) queries_.Close();
    if (echo_server_) {
      echo_.Close();
      echo_server_->Stop();
    }
    return Status::Ok();
  }

  // Phase 5: many one-point series, and the server's RSS before and after.
  Status SeriesCount() {
    ProcessStats before, after;
    if (Status s = spawned_.Stats(&before); !s.ok()) return s;
    if (Status s = CreateSeries(endpoint_, plan_.connect, c_.series + "-" + util::RandomHex64(),
                                c_.series_count, &r_.series_seconds);
        !s.ok()) {
      return s;
    }
    if (Status s = spawned_.Stats(&after); !s.ok()) return s;
    r_.series_count = c_.series_count;
    r_.series_rss_before = before.rss_bytes;
    r_.series_rss_after = after.rss_bytes;
    return Status::Ok();
  }

  Status StopServer() {
    if (!r_.have_stats) return Status::Ok();
    if (Status s = spawned_.Stats(&r_.at_end); !s.ok()) return s;
    spawned_.Stop(&r_.stop_problem);
    if (!r_.stop_problem.empty()) return Status::Internal(r_.stop_problem);
    return Status::Ok();
  }

  // A spawned server's figures; nothing without one.
  Status SampleStats(ProcessStats* stats) {
    return r_.have_stats ? spawned_.Stats(stats) : Status::Ok();
  }

  void Print() {
    const std::vector<Row> rows = ReportRows(c_, r_);
    if (c_.json) {
      PrintJson(rows, out_);
    } else {
      PrintReadable(rows, out_);
    }
    out_.flush();
  }

  int Fail(const std::string& message) {
    err_ << "gradctl bench: " << message << '\n';
    return kExitFailure;
  }

  // A failure once the server is known: with what it said, when spawned.
  int FailRun(const Status& s) {
    std::string message = s.message();
    if (c_.spawn_server) {
      std::string problem;
      spawned_.Stop(&problem);
      if (!problem.empty()) message += "\n" + problem;
      const std::string tail = spawned_.StderrTail();
      if (!tail.empty()) message += "\nthe server's stderr:\n" + tail;
    }
    return Fail(message);
  }

  const BenchConfig& c_;
  std::ostream& out_;
  std::ostream& err_;
  const BatchTemplate batch_;
  ProducerPlan plan_;
  const std::string run_id_ = "gradctl-bench-" + util::RandomHex64();
  Report r_;
  SpawnedServer spawned_;
  protocol::Endpoint endpoint_;
  std::optional<EchoProcess> echo_server_;
  RawConnection echo_;
  RawConnection queries_;
  bool query_series_ = false;
  std::optional<Scraper> scraper_;
  // Monitor's state.
  Clock::time_point window_start_;
  uint64_t window_points_ = 0;
  uint64_t next_checkpoint_ = 1'000'000;
};

}  // namespace
}  // namespace bench

int RunBench(const BenchConfig& config, std::ostream& out, std::ostream& err) {
  return bench::BenchRun(config, out, err).Run();
}

}  // namespace gradientd::cli
