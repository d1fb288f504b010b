#include "cli/watch/watch.h"

#include <algorithm>
#include <memory>
#include <sstream>
#include <thread>
#include <utility>
#include <vector>

#include "cli/output.h"
#include "cli/query/query_support.h"
#include "cli/query/view_names.h"
#include "util/duration.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

void WatchOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("interval", po::value<std::string>()->default_value("1s")->value_name("DURATION"),
       "time between refreshes (1ms to 24h)")
      ("count", po::value<int64_t>()->default_value(0)->value_name("N"),
       "refresh N times, then exit; 0 = until interrupted (Ctrl-C)")
      ("prefix", po::value<std::string>()->default_value("")->value_name("P"),
       "only the series whose names start with P")
      ("sort", po::value<std::string>()->default_value("name")->value_name("KEY"),
       "row order: name, n (most first) or rate (fastest first)")
      ("limit", po::value<int64_t>()->default_value(50)->value_name("N"),
       "most series rows shown (1 to 10000; on a terminal also its height)");
  // clang-format on
  AddViewOption(d,
                "the view of the lines, n and loss: all (default), window or decayed "
                "(a series without it is shown with all); the rate is always all history's");
}

Status ParseSort(const std::string& text, WatchSort* sort) {
  if (text == "name") {
    *sort = WatchSort::kName;
  } else if (text == "n") {
    *sort = WatchSort::kN;
  } else if (text == "rate") {
    *sort = WatchSort::kRate;
  } else {
    return Status::InvalidArgument("--sort must be name, n or rate, got '" + text + "'");
  }
  return Status::Ok();
}

Status ParseInterval(const std::string& text, std::chrono::nanoseconds* interval) {
  if (Status s = util::ParseDuration(text, interval); !s.ok()) {
    return Status::InvalidArgument("--interval: " + s.message());
  }
  if (*interval < std::chrono::milliseconds(1) || *interval > std::chrono::hours(24)) {
    return Status::InvalidArgument("--interval must be from 1ms to 24h, got '" + text + "'");
  }
  return Status::Ok();
}

}  // namespace

Status WatchConfigFromVm(const po::variables_map& vm, WatchConfig* config) {
  if (Status s = ParseInterval(vm["interval"].as<std::string>(), &config->interval); !s.ok()) {
    return s;
  }
  const int64_t count = vm["count"].as<int64_t>();
  if (count < 0) return Status::InvalidArgument("--count must be >= 0 (0 = until interrupted)");
  config->count = static_cast<uint64_t>(count);
  const int64_t limit = vm["limit"].as<int64_t>();
  if (limit < 1 || limit > static_cast<int64_t>(kWatchMaxListedSeries)) {
    return Status::InvalidArgument("--limit must be between 1 and " +
                                   std::to_string(kWatchMaxListedSeries));
  }
  config->limit = static_cast<std::size_t>(limit);
  config->prefix = vm["prefix"].as<std::string>();
  if (Status s = ParseSort(vm["sort"].as<std::string>(), &config->sort); !s.ok()) return s;
  return ViewFromVm(vm, &config->view);
}

namespace {

// One refresh's series, in name order, at most config.max_listed.
struct Listing {
  std::vector<v1::FitReply> series;
  bool cut = false;  // pages were left unread
};

// A transport failure (the server went away) is the status; an Error
// reply is *error_reply.
Status FetchListing(FailoverClient& client, const WatchConfig& config, Listing* listing,
                    v1::Response* error_reply) {
  v1::Request request;
  request.mutable_list()->set_prefix(config.prefix);
  request.mutable_list()->set_view(config.view);
  // Each page's names come after the previous page's: at most max_listed pages.
  while (listing->series.size() < config.max_listed) {
    const std::size_t room = config.max_listed - listing->series.size();
    request.mutable_list()->set_page_size(
        static_cast<uint32_t>(std::min<std::size_t>(config.page_size, room)));
    v1::Response response;
    if (Status s = client.Call(request, &response, Resend::kIdempotent); !s.ok()) return s;
    if (response.has_error()) {
      error_reply->Swap(&response);
      return Status::Ok();
    }
    if (!response.has_series_list()) {
      return Status::Internal("unexpected reply: " + ToJson(response));
    }
    v1::SeriesList* page = response.mutable_series_list();
    for (v1::FitReply& fit : *page->mutable_series()) {
      listing->series.emplace_back().Swap(&fit);
    }
    if (page->next_page_token().empty()) return Status::Ok();
    if (page->next_page_token() <= request.list().page_token()) {
      return Status::Internal("the server's next_page_token does not advance");
    }
    request.mutable_list()->set_page_token(page->next_page_token());
  }
  listing->cut = true;
  return Status::Ok();
}

// `server` is the address that answered this refresh.
std::string Heading(const std::string& server, const WatchConfig& config, int64_t unix_nanos,
                    std::size_t series, bool cut) {
  std::string heading = FormatUtc(unix_nanos) + "  " + server + "  view " + ViewName(config.view) +
                        "  " + std::to_string(series) + (cut ? "+" : "") + " series";
  if (!config.prefix.empty()) heading += " starting '" + config.prefix + "'";
  return heading + "  every " + FormatDurationFlag(config.interval.count());
}

// Draws a frame: on a terminal over the previous one, else as a block of
// lines ended by a blank line.
class Screen {
 public:
  Screen(std::ostream& out, bool terminal) : out_(out), terminal_(terminal) {
    if (terminal_) out_ << kHideCursor << kHomeAndClear << std::flush;
  }
  // Restores the cursor below the last frame.
  ~Screen() {
    if (terminal_) out_ << kShowCursor << '\n' << std::flush;
  }
  Screen(const Screen&) = delete;
  Screen& operator=(const Screen&) = delete;

  void Draw(const std::vector<std::string>& lines) {
    std::ostringstream frame;  // one write: no half-drawn frame
    if (!terminal_) {
      for (const std::string& line : lines) frame << line << '\n';
      frame << '\n';
    } else {
      frame << kHome;
      // No newline after the last line: a full screen must not scroll.
      for (std::size_t i = 0; i < lines.size(); ++i) {
        frame << lines[i] << kClearLineEnd << (i + 1 < lines.size() ? "\n" : "");
      }
      frame << kClearScreenEnd;
    }
    out_ << frame.str() << std::flush;
  }

 private:
  std::ostream& out_;
  const bool terminal_;
};

FrameLayout Layout(const WatchConfig& config, bool terminal, const TerminalSize& size) {
  FrameLayout layout;
  layout.max_rows = config.limit;
  if (!terminal) return layout;
  layout.width = size.columns;
  // The heading, the table's header and the "... and K more" line.
  constexpr std::size_t kOtherLines = 3;
  if (size.rows > 0) {
    layout.max_rows =
        std::min(layout.max_rows, size.rows > kOtherLines + 1 ? size.rows - kOtherLines : 1);
  }
  return layout;
}

// The refresh loop; the Screen around it is the caller's.
int Refresh(CommandContext& context, const WatchConfig& config, WatchEnvironment& environment,
            FailoverClient& client, Screen& screen) {
  RateTracker tracker;
  std::chrono::steady_clock::time_point last{};
  for (uint64_t refresh = 1; config.count == 0 || refresh <= config.count; ++refresh) {
    if (refresh > 1 && !environment.Wait(config.interval)) return kExitOk;
    Listing listing;
    v1::Response error_reply;
    if (Status s = FetchListing(client, config, &listing, &error_reply); !s.ok()) {
      if (environment.Interrupted()) return kExitOk;  // Ctrl-C broke off the call
      const uint64_t done = refresh - 1;
      return context.Fail(Status(
          s.code(), "lost the server at " + client.server() + " after " + std::to_string(done) +
                        (done == 1 ? " refresh: " : " refreshes: ") + s.message()));
    }
    if (error_reply.has_error()) return context.ServerError(error_reply);
    const auto now = environment.Now();
    const std::size_t listed = listing.series.size();
    std::vector<WatchRow> rows = tracker.Update(
        std::move(listing.series), refresh == 1 ? std::chrono::nanoseconds(0) : now - last);
    last = now;
    SortRows(config.sort, &rows);
    const bool terminal = environment.IsTerminal();
    FrameLayout layout = Layout(config, terminal, terminal ? environment.Size() : TerminalSize{});
    layout.heading = Heading(client.server(), config, environment.UnixNanos(), listed, listing.cut);
    screen.Draw(RenderFrame(rows, listing.cut, layout));
    if (environment.Interrupted()) return kExitOk;
  }
  return kExitOk;
}

// The real world: the clocks, SIGINT and SIGTERM as a flag, standard output.
class ProcessEnvironment : public WatchEnvironment {
 public:
  explicit ProcessEnvironment(const std::ostream& out) : terminal_(cli::IsTerminal(out)) {}

  std::chrono::steady_clock::time_point Now() override { return std::chrono::steady_clock::now(); }
  int64_t UnixNanos() override {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(
               std::chrono::system_clock::now().time_since_epoch())
        .count();
  }
  bool Wait(std::chrono::nanoseconds interval) override {
    // In slices, so that Ctrl-C ends the watch within one.
    constexpr std::chrono::milliseconds kSlice(20);
    const auto until = Now() + interval;
    for (auto now = Now(); now < until; now = Now()) {
      if (Interrupted()) return false;
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(kSlice, until - now));
    }
    return !Interrupted();
  }
  bool Interrupted() override { return InterruptFlag::Raised(); }
  bool IsTerminal() override { return terminal_; }
  TerminalSize Size() override { return StandardOutputSize(); }

 private:
  InterruptFlag interrupt_;
  const bool terminal_;
};

int RunWatchCommand(CommandContext& context, const po::variables_map& vm) {
  if (context.flags.json)
    return context.Usage("--json is not supported (use 'gradctl list --json')");
  WatchConfig config;
  if (Status s = WatchConfigFromVm(vm, &config); !s.ok()) return context.Usage(s.message());
  ProcessEnvironment environment(context.out);
  return RunWatch(context, config, environment);
}

}  // namespace

int RunWatch(CommandContext& context, const WatchConfig& config, WatchEnvironment& environment) {
  std::unique_ptr<FailoverClient> client;
  if (int rc = context.Connect(&client); rc != kExitOk) return rc;
  // Messages wait until the screen is restored, so that none lands inside a
  // frame (failover notes too; the heading names the server that answered).
  std::ostringstream messages;
  CommandContext deferred{context.in, context.out, messages, context.flags, context.command};
  client->set_log(messages);
  int rc = kExitOk;
  {
    Screen screen(context.out, environment.IsTerminal());
    rc = Refresh(deferred, config, environment, *client, screen);
  }
  context.err << messages.str() << std::flush;
  return rc;
}

Command WatchCommand() {
  return {"watch",
          "[--interval DURATION] [--count N] [--prefix P] [--view VIEW] [--sort KEY] "
          "[--limit N]",
          "a live view of the series, refreshed in place",
          "Lists the series every --interval and shows, per series: n, the ingest rate in\n"
          "points/s since the previous refresh (blank on the first; 'restart' when n went\n"
          "down, after a reset or a restarted server), the least-squares line (LS M, LS B),\n"
          "the descent line, its loss, R² and the descent steps. On a terminal the view is\n"
          "redrawn in place and fitted to its width and height; otherwise each refresh is a\n"
          "block of plain lines headed by a UTC timestamp, ended by a blank line. A refresh\n"
          "lists at most 10000 series (in name order) and shows --limit rows of them, sorted\n"
          "by --sort, then '... and K more series'. Ctrl-C ends it (exit 0); a server that\n"
          "goes away ends it with a message (exit 1), without reconnecting; with several\n"
          "--server addresses it fails over to the next instead (the heading names the\n"
          "server that answered each refresh).",
          &WatchOptions,
          &RunWatchCommand};
}

}  // namespace gradientd::cli
