// The options of `gradctl bench` and their checks.
#include <boost/program_options.hpp>
#include <cstdint>
#include <string>

#include "cli/bench/bench.h"
#include "protocol/endpoint.h"
#include "util/duration.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

constexpr int64_t kMaxBatchPoints = 1'000'000;  // as `produce`: under the 16 MiB frame limit
constexpr auto kMinScrapeInterval = std::chrono::milliseconds(10);
constexpr auto kMaxScrapeInterval = std::chrono::hours(1);

// The flags that choose the server and the baselines.
Status ParseServerFlags(const po::variables_map& vm, BenchConfig* c) {
  c->server = vm["server"].as<std::string>();
  // The benchmark writes a lot: not into "default" unless asked to.
  c->series = vm["series"].defaulted() ? "bench" : vm["series"].as<std::string>();
  c->json = vm["json"].as<bool>();
  c->spawn_server = vm["spawn-server"].as<bool>();
  if (vm.count("server-binary")) {
    c->server_binary = vm["server-binary"].as<std::string>();
    if (!c->spawn_server) return Status::InvalidArgument("--server-binary needs --spawn-server");
  }
  const bool baseline = vm["baseline"].as<bool>();
  const bool no_baseline = vm["no-baseline"].as<bool>();
  if (baseline && no_baseline)
    return Status::InvalidArgument("--baseline and --no-baseline conflict");
  c->baseline = baseline || (c->spawn_server && !no_baseline);
  return Status::Ok();
}

// The flags that size the load.
Status ParseLoadFlags(const po::variables_map& vm, BenchConfig* c) {
  c->producers = vm["producers"].as<int>();
  if (c->producers < 1 || c->producers > 256) {
    return Status::InvalidArgument("--producers must be between 1 and 256");
  }
  c->batch = vm["batch"].as<int64_t>();
  if (c->batch < 1 || c->batch > kMaxBatchPoints) {
    return Status::InvalidArgument("--batch must be between 1 and " +
                                   std::to_string(kMaxBatchPoints));
  }
  c->window = vm["window"].as<int64_t>();
  if (c->window < 1 || c->window > 65536) {
    return Status::InvalidArgument("--window must be between 1 and 65536");
  }
  c->seconds = vm["seconds"].as<double>();
  if (!(c->seconds >= 0 && c->seconds <= 86400)) {
    return Status::InvalidArgument("--seconds must be between 0 and 86400");
  }
  c->idle_seconds = vm["idle-seconds"].as<double>();
  if (!(c->idle_seconds >= 0 && c->idle_seconds <= 86400)) {
    return Status::InvalidArgument("--idle-seconds must be between 0 and 86400");
  }
  c->query_rate = vm["query-rate"].as<double>();
  if (!(c->query_rate > 0 && c->query_rate <= 1e6)) {
    return Status::InvalidArgument("--query-rate must be > 0 and at most 1000000");
  }
  const int64_t points = vm["points"].as<int64_t>();
  if (points < 0) return Status::InvalidArgument("--points must be >= 0");
  c->points = static_cast<uint64_t>(points);
  return Status::Ok();
}

Status ParseSeriesCount(const po::variables_map& vm, BenchConfig* c) {
  const int64_t series_count = vm["series-count"].as<int64_t>();
  if (series_count < 0 || series_count > 100'000'000) {
    return Status::InvalidArgument("--series-count must be between 0 and 100000000");
  }
  c->series_count = static_cast<uint64_t>(series_count);
  if (c->series_count > 0 && !c->spawn_server) {
    return Status::InvalidArgument(
        "--series-count needs --spawn-server (it reads the server's RSS)");
  }
  return Status::Ok();
}

// --scrape-interval and where it scrapes: the spawned server, or
// --scrape-address.
Status ParseScrapeFlags(const po::variables_map& vm, BenchConfig* c) {
  const std::string text = vm["scrape-interval"].as<std::string>();
  if (Status s = util::ParseDuration(text, &c->scrape_interval); !s.ok()) {
    return Status::InvalidArgument("--scrape-interval: " + s.message());
  }
  const bool scraping = c->scrape_interval.count() > 0;
  if (scraping &&
      (c->scrape_interval < kMinScrapeInterval || c->scrape_interval > kMaxScrapeInterval)) {
    return Status::InvalidArgument("--scrape-interval must be 0 (off) or between 10ms and 1h");
  }
  if (vm.count("scrape-address")) {
    c->scrape_address = vm["scrape-address"].as<std::string>();
    if (!scraping) return Status::InvalidArgument("--scrape-address needs --scrape-interval");
    if (c->spawn_server) {
      return Status::InvalidArgument(
          "--scrape-address conflicts with --spawn-server (the spawned server's HTTP address "
          "is scraped)");
    }
    protocol::Endpoint endpoint;
    if (Status s = protocol::ParseEndpoint(c->scrape_address, &endpoint); !s.ok()) {
      return Status::InvalidArgument("--scrape-address " + c->scrape_address + ": " + s.message());
    }
  } else if (scraping && !c->spawn_server) {
    return Status::InvalidArgument(
        "--scrape-interval needs --scrape-address HOST:PORT (gradientd's HTTP listener) or "
        "--spawn-server");
  }
  return Status::Ok();
}

}  // namespace

void AddBenchOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("spawn-server", po::bool_switch(),
       "start a private gradientd (--listen 127.0.0.1:0 --in-memory) for the run, stop it at "
       "the end, and report its CPU time and memory; --server is then ignored")
      ("server-binary", po::value<std::string>()->value_name("PATH"),
       "the gradientd to spawn (default: the gradientd next to this gradctl)")
      ("producers", po::value<int>()->default_value(2)->value_name("P"),
       "producer connections, one thread each")
      ("batch", po::value<int64_t>()->default_value(8192)->value_name("B"), "points per batch")
      ("window", po::value<int64_t>()->default_value(8)->value_name("W"),
       "most unacknowledged batches per producer")
      ("seconds", po::value<double>()->default_value(5.0)->value_name("S"),
       "how long the producers send (and the discard baseline runs); 0 skips ingest")
      ("points", po::value<int64_t>()->default_value(0)->value_name("N"),
       "stop ingest once N points are acknowledged (0: no limit; --seconds still bounds it)")
      ("query-rate", po::value<double>()->default_value(1000.0)->value_name("Q"),
       "gradient queries per second, one at a time on their own connection")
      ("idle-seconds", po::value<double>()->default_value(1.0)->value_name("S"),
       "query latency is measured this long before ingest starts (and the echo baseline runs "
       "this long); 0 skips it")
      ("baseline", po::bool_switch(),
       "run the baselines: a discard server in gradctl fed by the same producers, and a TCP "
       "echo server in a child process (the default with --spawn-server)")
      ("no-baseline", po::bool_switch(), "skip the baselines")
      ("series-count", po::value<int64_t>()->default_value(0)->value_name("N"),
       "after ingest, create N more series of one point each and report the server's RSS per "
       "series (needs --spawn-server)")
      ("scrape-interval", po::value<std::string>()->default_value("0")->value_name("DURATION"),
       "GET gradientd's /metrics this often (10ms to 1h; 0: never) while the idle queries and "
       "ingest run, as a Prometheus would, and report the scrapes: done, failed, duration, size")
      ("scrape-address", po::value<std::string>()->value_name("HOST:PORT"),
       "gradientd's HTTP listener to scrape (needed with --scrape-interval unless "
       "--spawn-server, whose HTTP line names it)");
  // clang-format on
}

Status ParseBenchConfig(const po::variables_map& vm, BenchConfig* c) {
  if (Status s = ParseServerFlags(vm, c); !s.ok()) return s;
  if (Status s = ParseLoadFlags(vm, c); !s.ok()) return s;
  if (Status s = ParseSeriesCount(vm, c); !s.ok()) return s;
  return ParseScrapeFlags(vm, c);
}

}  // namespace gradientd::cli
