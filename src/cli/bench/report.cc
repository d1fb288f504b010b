#include "cli/bench/report.h"

#include <limits>
#include <string>
#include <utility>

#include "cli/output.h"

namespace gradientd::cli::bench {
namespace {

using Style = Format::Style;

// Payload: the points' values, two doubles a point. The wire carries a few
// more bytes a batch (frame and field headers); both are reported.
constexpr uint64_t kPayloadBytesPerPoint = 16;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr std::pair<const char*, double> kWindowQuantiles[] = {
    {"min", 0.0}, {"p10", 0.1}, {"p50", 0.5}, {"p90", 0.9}, {"max", 1.0}};

Format Text(std::string before = "", std::string after = "") {
  return {.style = Style::kText, .before = std::move(before), .after = std::move(after)};
}
Format Integer(std::string after) { return {.style = Style::kInteger, .after = std::move(after)}; }
Format Group(std::string before, std::string after) {
  return {.style = Style::kGrouped, .before = std::move(before), .after = std::move(after)};
}
Format Number(std::string before, std::string after) {
  return {.style = Style::kNumber, .before = std::move(before), .after = std::move(after)};
}
Format Fixed(int decimals, std::string before, std::string after, double divisor = 1) {
  return {.style = Style::kFixed,
          .before = std::move(before),
          .after = std::move(after),
          .divisor = divisor,
          .decimals = decimals};
}
Format Mega(int decimals, std::string after) { return Fixed(decimals, "", std::move(after), 1e6); }
Format MiB(std::string before, std::string after) {
  return Fixed(1, std::move(before), " MiB" + std::move(after), 1024.0 * 1024.0);
}
// `format` when `shown`, else JSON only.
Format If(bool shown, Format format) { return shown ? std::move(format) : Format{}; }

double PerSecond(uint64_t count, double seconds) {
  return seconds > 0 ? static_cast<double>(count) / seconds : 0;
}

Row Nulls(std::vector<std::string> keys) {
  Row row{.kind = Row::Kind::kJsonOnly};
  for (std::string& key : keys) row.fields.push_back(JsonOnly(std::move(key), JsonNull{}));
  return row;
}

// "p50 ... µs   p99 ...   (N round trips)", keys PREFIXcount, PREFIXp50_us, ...
Row LatencyRow(std::string label, const std::string& prefix, const Latencies& l, bool ran) {
  if (!ran) {
    return Nulls({prefix + "count", prefix + "p50_us", prefix + "p99_us", prefix + "p999_us",
                  prefix + "max_us"});
  }
  return Row{.label = std::move(label),
             .fields = {Shown(prefix + "p50_us", l.Us(0.5), Fixed(1, "p50 ", " µs   ")),
                        Shown(prefix + "p99_us", l.Us(0.99), Fixed(1, "p99 ", " µs   ")),
                        Shown(prefix + "p999_us", l.Us(0.999), Fixed(1, "p99.9 ", " µs   ")),
                        Shown(prefix + "max_us", l.Us(1.0), Fixed(1, "max ", " µs   (")),
                        Shown(prefix + "count", l.count(), Group("", " round trips)"))}};
}

// "gradctl bench: gradientd at HOST:PORT (spawned BINARY, pid PID)" and the
// run's parameters.
void AddHeadings(const BenchConfig& c, const Report& r, std::vector<Row>* rows) {
  Row server{.kind = Row::Kind::kHeading,
             .fields = {Shown("server", r.server, Text("gradctl bench: gradientd at ")),
                        JsonOnly("server_spawned", c.spawn_server)}};
  if (c.spawn_server) {
    server.fields.push_back(Shown("", r.server_binary, Text(" (spawned ")));
    server.fields.push_back(Shown("server_pid", static_cast<uint64_t>(r.server_pid),
                                  {.style = Style::kInteger, .before = ", pid ", .after = ")"}));
  }
  rows->push_back(std::move(server));
  const std::string& congestion = r.ingest_ran ? r.ingest.tcp_congestion : r.discard.tcp_congestion;
  const bool ingest = r.ingest_ran;
  Row run{.kind = Row::Kind::kHeading};
  run.fields = {Shown("producers", static_cast<uint64_t>(c.producers),
                      If(ingest, Integer(c.producers == 1 ? " producer x " : " producers x "))),
                Shown("batch_points", static_cast<uint64_t>(c.batch),
                      If(ingest, Group("", "-point batches, window "))),
                Shown("window", static_cast<uint64_t>(c.window), If(ingest, Integer(", "))),
                Shown("seconds", c.seconds, If(ingest, Number("", " s"))),
                Shown("tcp_congestion", congestion.empty() ? FieldValue(JsonNull{}) : congestion,
                      If(ingest && !congestion.empty(), Text(", TCP "))),
                Literal(ingest ? "; " : "no ingest (--seconds 0); "),
                Shown("query_rate", c.query_rate, Number("gradient queries at ", "/s; series '")),
                Shown("series", c.series, Text("", "'")),
                JsonOnly("idle_seconds", c.idle_seconds),
                JsonOnly("payload_bytes_per_point", kPayloadBytesPerPoint)};
  rows->push_back(std::move(run));
}

double WireBytesPerSecond(const Report& r) {
  return PerSecond(r.ingest.bytes_sent, r.ingest.seconds);
}

// The rate of each kRateWindow: "min ... max ... M points/s (N windows)".
void AddIngestWindows(const Report& r, std::vector<Row>* rows) {
  const double window_seconds = std::chrono::duration<double>(kRateWindow).count();
  const bool any = !r.window_rates.empty();
  Row row{.kind = any ? Row::Kind::kLine : Row::Kind::kJsonOnly,
          .label = "  per " + FormatNumber(window_seconds) + " s",
          .fields = {JsonOnly("ingest_window_seconds", window_seconds)}};
  for (const auto& [name, q] : kWindowQuantiles) {
    const std::string key = std::string("ingest_window_") + name + "_points_per_second";
    if (!any) {
      row.fields.push_back(JsonOnly(key, JsonNull{}));
      continue;
    }
    const std::string before = std::string(row.fields.size() == 1 ? "" : "   ") + name + " ";
    row.fields.push_back(
        Shown(key, static_cast<double>(Percentile(r.window_rates, q)), Fixed(1, before, "", 1e6)));
  }
  row.fields.push_back(Shown("ingest_windows", static_cast<uint64_t>(r.window_rates.size()),
                             If(any, Group(" M points/s (", " windows)"))));
  rows->push_back(std::move(row));
}

void AddIngest(const Report& r, std::vector<Row>* rows) {
  if (!r.ingest_ran) {
    rows->push_back(Nulls({"ingest_seconds", "points_acknowledged", "batches_acknowledged",
                           "points_per_second", "payload_bytes_per_second", "wire_bytes_per_second",
                           "batches_per_second", "client_cpu_seconds_ingest"}));
    return;
  }
  const IngestResult& i = r.ingest;
  const double pps = PerSecond(i.points_acked, i.seconds);
  const double payload = pps * static_cast<double>(kPayloadBytesPerPoint);
  rows->push_back(
      Row{.label = "ingest",
          .fields = {Shown("points_per_second", pps, Mega(2, " M points/s   ")),
                     Shown("payload_bytes_per_second", payload, Mega(1, " MB/s payload   ")),
                     Shown("batches_per_second", static_cast<double>(i.batches_acked) / i.seconds,
                           Fixed(0, "", " batches/s"))}});
  rows->push_back(
      Row{.label = "  acknowledged",
          .fields = {Shown("points_acknowledged", i.points_acked, Group("", " points in ")),
                     Shown("batches_acknowledged", i.batches_acked, Group("", " batches, ")),
                     Shown("ingest_seconds", i.seconds, Fixed(3, "", " s"))}});
  rows->push_back(Row{.label = "  on the wire",
                      .fields = {Shown("wire_bytes_per_second", WireBytesPerSecond(r),
                                       Mega(1, " MB/s (payload: 16 bytes a point)"))}});
  AddIngestWindows(r, rows);
}

void AddQueries(const Report& r, std::vector<Row>* rows) {
  Row idle = LatencyRow("query, idle", "idle_query_", r.idle, r.idle_ran);
  Row loaded = LatencyRow("query, under ingest", "query_", r.loaded, r.loaded_ran);
  Row late{.kind = r.loaded.late > 0 ? Row::Kind::kLine : Row::Kind::kJsonOnly,
           .label = "  late sends",
           .fields = {r.loaded_ran ? Shown("query_late_sends", r.loaded.late,
                                           Group("", " (behind schedule)"))
                                   : JsonOnly("query_late_sends", JsonNull{})}};
  if (!r.loaded_ran) late.kind = Row::Kind::kJsonOnly;
  rows->push_back(std::move(idle));
  rows->push_back(std::move(loaded));
  rows->push_back(std::move(late));
}

// Each query p50 over the echo p50 of the same phase: same machine state.
Row EchoRatioRow(const Report& r) {
  return Row{
      .kind = r.idle_ran || r.loaded_ran ? Row::Kind::kLine : Row::Kind::kJsonOnly,
      .label = "query p50 / echo p50",
      .fields = {
          Shown("idle_query_p50_over_echo_p50", r.idle_ran ? r.idle.Us(0.5) / r.echo.Us(0.5) : kNaN,
                If(r.idle_ran, Fixed(2, "idle ", "x"))),
          Shown(
              "query_p50_over_echo_p50",
              r.loaded_ran ? r.loaded.Us(0.5) / r.loaded_echo.Us(0.5) : kNaN,
              If(r.loaded_ran, Fixed(2, r.idle_ran ? ", under ingest " : "under ingest ", "x")))}};
}

void AddBaselines(const BenchConfig& c, const Report& r, std::vector<Row>* rows) {
  rows->push_back(
      Row{.kind = Row::Kind::kJsonOnly, .fields = {JsonOnly("baseline", r.baseline_ran)}});
  if (!r.baseline_ran) {
    rows->push_back(
        Nulls({"baseline_discard_bytes_per_second", "ingest_fraction_of_discard",
               "baseline_echo_p50_us", "baseline_echo_p99_us", "query_p50_over_echo_p50"}));
    return;
  }
  const IngestResult& d = r.discard;
  const double discard = PerSecond(d.bytes_sent, d.seconds);
  const uint64_t discard_points = d.batches_sent * static_cast<uint64_t>(c.batch);
  rows->push_back(Row{
      .label = "discard baseline",
      .fields = {
          Shown("baseline_discard_bytes_per_second", discard, Mega(1, " MB/s on the wire")),
          JsonOnly("ingest_fraction_of_discard",
                   r.ingest_ran && discard > 0 ? WireBytesPerSecond(r) / discard : kNaN),
          // The same fraction as a percentage, rounded as it always was.
          Shown("", 100 * WireBytesPerSecond(r) / discard,
                If(r.ingest_ran, Fixed(1, "; ingest carries ", "%"))),
          JsonOnly("baseline_discard_seconds", d.seconds),
          JsonOnly("baseline_discard_points_per_second", PerSecond(discard_points, d.seconds))}});
  rows->push_back(LatencyRow("echo, idle", "baseline_echo_", r.echo, true));
  rows->push_back(
      LatencyRow("echo, under ingest", "baseline_echo_under_ingest_", r.loaded_echo, r.loaded_ran));
  rows->push_back(EchoRatioRow(r));
}

// "CPU s during ingest (N cores)", the cores for the readable report only.
std::vector<Field> IngestCpu(std::string key, double cpu, const Report& r, std::string before) {
  return {Shown(std::move(key), cpu, Fixed(2, std::move(before), " s during ingest (")),
          Shown("", cpu / r.ingest.seconds, Fixed(2, "", " cores)"))};
}

void AddServerStats(const Report& r, std::vector<Row>* rows) {
  if (!r.have_stats) {
    rows->push_back(Nulls({"server_cpu_seconds", "server_peak_rss_bytes"}));
    return;
  }
  Row cpu{.label = "server CPU",
          .fields = {Shown("server_cpu_seconds", r.at_end.cpu_seconds, Fixed(2, "", " s in all"))}};
  const double ingest_cpu = r.after_ingest.cpu_seconds - r.before_ingest.cpu_seconds;
  if (r.ingest_ran) {
    for (Field& f : IngestCpu("server_cpu_seconds_ingest", ingest_cpu, r, ", ")) {
      cpu.fields.push_back(std::move(f));
    }
  } else {
    cpu.fields.push_back(JsonOnly("server_cpu_seconds_ingest", ingest_cpu));
  }
  rows->push_back(std::move(cpu));
  rows->push_back(Row{
      .label = "server memory",
      .fields = {
          Shown("server_peak_rss_bytes", r.peak_rss, MiB("peak RSS ", "; RSS ")),
          Shown("server_rss_before_ingest_bytes", r.before_ingest.rss_bytes,
                MiB("", " before ingest, ")),
          Shown("server_rss_after_ingest_bytes", r.after_ingest.rss_bytes, MiB("", " after"))}});
  rows->push_back(Row{.kind = Row::Kind::kJsonOnly,
                      .fields = {JsonOnly("server_rss_at_points", JsonEmptyObject{})}});
  for (const RssCheckpoint& cp : r.checkpoints) {
    rows->push_back(Row{.label = "  RSS at " + Grouped(cp.threshold) + " points",
                        .object = {"server_rss_at_points", std::to_string(cp.threshold)},
                        .fields = {Shown("rss_bytes", cp.rss_bytes, MiB("", " (sampled at ")),
                                   Shown("points", cp.points, Group("", ")"))}});
  }
}

void AddClientCpu(const Report& r, std::vector<Row>* rows) {
  if (!r.ingest_ran) return;  // its null is with the ingest's
  rows->push_back(
      Row{.label = "client CPU",
          .fields = IngestCpu("client_cpu_seconds_ingest", r.client_cpu_ingest, r, "")});
}

void AddSeries(const Report& r, std::vector<Row>* rows) {
  if (r.series_count == 0) return;
  const double per =
      (static_cast<double>(r.series_rss_after) - static_cast<double>(r.series_rss_before)) /
      static_cast<double>(r.series_count);
  rows->push_back(
      Row{.label = "series",
          .fields = {Shown("series_count", r.series_count, Group("", " created in ")),
                     Shown("series_seconds", r.series_seconds, Fixed(2, "", " s; RSS ")),
                     Shown("series_rss_before_bytes", r.series_rss_before, MiB("", " -> ")),
                     Shown("series_rss_after_bytes", r.series_rss_after, MiB("", " = ")),
                     Shown("series_bytes_per_series", per, Fixed(0, "", " bytes a series"))}});
}

// --scrape-interval: "N every 1 s, F failed", then the successful ones'
// duration and size, and the first failure.
void AddScrapes(const BenchConfig& c, const Report& r, std::vector<Row>* rows) {
  const double interval = std::chrono::duration<double>(c.scrape_interval).count();
  rows->push_back(
      Row{.kind = Row::Kind::kJsonOnly, .fields = {JsonOnly("scrape_interval_seconds", interval)}});
  if (!r.scrape_ran) {
    rows->push_back(Nulls({"scrape_address", "scrapes", "scrapes_failed", "scrape_p50_us",
                           "scrape_p99_us", "scrape_bytes_per_scrape", "scrape_first_error"}));
    return;
  }
  const ScrapeResult& s = r.scrape;
  rows->push_back(
      Row{.label = "metrics scrapes",
          .fields = {Shown("scrapes", s.scrapes, Group("", " of ")),
                     Shown("scrape_address", r.scrape_address, Text("", "/metrics every ")),
                     Literal(FormatDuration(c.scrape_interval) + ", "),
                     Shown("scrapes_failed", s.failed, Group("", " failed"))}});
  const uint64_t ok = s.durations.count();
  const auto value = [ok](double v) { return ok > 0 ? FieldValue(v) : FieldValue(JsonNull{}); };
  rows->push_back(Row{
      .kind = ok > 0 ? Row::Kind::kLine : Row::Kind::kJsonOnly,
      .label = "  scrape duration",
      .fields = {Shown("scrape_p50_us", value(s.durations.Us(0.5)), Fixed(1, "p50 ", " µs   ")),
                 Shown("scrape_p99_us", value(s.durations.Us(0.99)), Fixed(1, "p99 ", " µs   ")),
                 Shown("scrape_bytes_per_scrape",
                       value(ok > 0 ? static_cast<double>(s.bytes) / static_cast<double>(ok) : 0),
                       Fixed(0, "", " bytes a scrape"))}});
  rows->push_back(Row{.kind = s.failed > 0 ? Row::Kind::kLine : Row::Kind::kJsonOnly,
                      .label = "  first failure",
                      .fields = {s.failed > 0 ? Shown("scrape_first_error", s.first_error, Text())
                                              : JsonOnly("scrape_first_error", JsonNull{})}});
}

}  // namespace

std::vector<Row> ReportRows(const BenchConfig& config, const Report& report) {
  std::vector<Row> rows;
  AddHeadings(config, report, &rows);
  AddIngest(report, &rows);
  AddQueries(report, &rows);
  AddBaselines(config, report, &rows);
  AddServerStats(report, &rows);
  AddClientCpu(report, &rows);
  AddSeries(report, &rows);
  AddScrapes(config, report, &rows);
  return rows;
}

}  // namespace gradientd::cli::bench
