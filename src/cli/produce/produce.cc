#include "cli/produce/produce.h"

#include <google/protobuf/struct.pb.h>

#include <charconv>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <memory>
#include <optional>
#include <system_error>
#include <vector>

#include "cli/output.h"
#include "cli/produce/producer.h"
#include "cli/produce/producer_report.h"
#include "protocol/error_codes.h"
#include "protocol/series_name.h"
#include "recording/recording.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;

// One run of produce: the phases, in order, are opening --save, starting
// the Producer, the send loop (with progress queries), the report of what
// stopped it, the final fit and the summary.
class ProduceRun {
 public:
  ProduceRun(const ProduceConfig& config, PointSource& source, std::ostream& out, std::ostream& err)
      : config_(config), source_(source), out_(out), err_(err) {
    gradient_query_.mutable_gradient()->set_series(config.series);
    fit_query_.mutable_fit()->set_series(config.series);
  }

  int Run();

 private:
  int Fail(const Status& status) { return PrintFailure(status, err_); }
  // --save: creates the recording; options_.save points to it.
  Status OpenSave();
  // Sends every point of the source; sets send_error_ and input_error_.
  void SendAll();
  Status SendProgressQueries();
  void OnProgressGradient(uint64_t sequence, const v1::Response& response);
  void OnProgressFit(uint64_t sequence, const v1::Response& response);
  void WarnProgressFailed(uint64_t sequence, const v1::Response& response);
  void PrintProgressLine(uint64_t sequence, const v1::FitReply& fit);
  // After the send loop: warnings, and why it stopped early (an exit code
  // other than 0), if it did.
  int ReportStop();
  // The final fit, for the summary; empty when nothing was sent or the
  // token may not read it.
  int FetchFinalFit(v1::Response* fit);
  void PrintJsonSummary(const v1::Response& fit);
  void PrintSummary(const v1::Response& fit);
  // The series' point count in the last acknowledgement.
  uint64_t SeriesTotal() const;
  double Rate() const;

  const ProduceConfig& config_;
  PointSource& source_;
  std::ostream& out_;
  std::ostream& err_;
  ProducerOptions options_;
  std::unique_ptr<storage::RecordingWriter> save_;
  std::optional<Producer> producer_;
  Clock::time_point start_;
  double seconds_ = 0;  // from the start to the last acknowledgement
  v1::Request gradient_query_;
  v1::Request fit_query_;
  // The last progress gradient, until its fit reply prints it.
  std::optional<v1::GradientReply> progress_gradient_;
  Status input_error_;
  Status send_error_;
  Status save_error_;
};

int ProduceRun::Run() {
  if (Status s = MakeProducerOptions(config_.server, config_.failover_timeout, config_.connect,
                                     config_.window, config_.exactly_once, "gradctl", &options_);
      !s.ok()) {
    return ReportBadServer(config_.server, s, err_);
  }
  if (Status s = OpenSave(); !s.ok()) return Fail(s);
  if (config_.exactly_once.producer_id.empty()) AnnounceProducerId(options_, err_);
  producer_.emplace(options_, err_);
  if (int rc = StartProducer(*producer_, config_.server, err_); rc != 0) return rc;
  start_ = Clock::now();
  SendAll();
  if (save_) save_error_ = save_->Close();
  seconds_ = std::chrono::duration<double>(Clock::now() - start_).count();
  if (int rc = ReportStop(); rc != kExitOk) return rc;
  v1::Response fit;
  if (int rc = FetchFinalFit(&fit); rc != kExitOk) return rc;
  if (config_.json) {
    PrintJsonSummary(fit);
  } else {
    PrintSummary(fit);
  }
  return kExitOk;
}

Status ProduceRun::OpenSave() {
  if (config_.save_path.empty()) return Status::Ok();
  if (Status s = storage::RecordingWriter::Create(config_.save_path, &save_); !s.ok()) return s;
  options_.save = save_.get();
  return Status::Ok();
}

void ProduceRun::SendAll() {
  std::vector<double> x;
  std::vector<double> y;
  uint64_t batches = 0;
  while (send_error_.ok()) {
    const Status s = source_.Next(&x, &y, config_.batch);
    if (!s.ok()) input_error_ = s;
    if (x.empty()) break;
    std::optional<int64_t> event_time;
    if (Status e = EventTimeOfBatch(config_.event_time, x.back(), &event_time); !e.ok()) {
      input_error_ = e;
      break;
    }
    // The valid points before a bad CSV line are sent too.
    send_error_ = producer_->Send(config_.series, x, y, event_time);
    ++batches;
    if (send_error_.ok() && config_.progress_every > 0 && batches % config_.progress_every == 0) {
      send_error_ = SendProgressQueries();
    }
    if (!input_error_.ok()) break;
  }
  if (send_error_.ok()) send_error_ = producer_->Finish();
}

Status ProduceRun::SendProgressQueries() {
  const uint64_t sequence = producer_->next_sequence() - 1;
  Status s = producer_->SendQuery(gradient_query_, [this, sequence](const v1::Response& r) {
    OnProgressGradient(sequence, r);
  });
  if (!s.ok()) return s;
  return producer_->SendQuery(
      fit_query_, [this, sequence](const v1::Response& r) { OnProgressFit(sequence, r); });
}

void ProduceRun::OnProgressGradient(uint64_t sequence, const v1::Response& response) {
  if (config_.json) {
    out_ << ToJson(response) << std::endl;
    return;
  }
  progress_gradient_.reset();
  if (response.has_error()) {
    WarnProgressFailed(sequence, response);
  } else if (response.has_gradient()) {
    progress_gradient_ = response.gradient();
  }
}

void ProduceRun::OnProgressFit(uint64_t sequence, const v1::Response& response) {
  if (config_.json) {
    out_ << ToJson(response) << std::endl;
    return;
  }
  if (response.has_error()) {
    WarnProgressFailed(sequence, response);
  } else if (response.has_fit()) {
    PrintProgressLine(sequence, response.fit());
  }
  progress_gradient_.reset();
}

void ProduceRun::WarnProgressFailed(uint64_t sequence, const v1::Response& response) {
  err_ << "gradctl: warning: progress query after batch " << sequence
       << " failed: " << protocol::ErrorCodeName(response.error()) << ": "
       << response.error().message() << '\n';
}

void ProduceRun::PrintProgressLine(uint64_t sequence, const v1::FitReply& fit) {
  const double seconds = std::chrono::duration<double>(Clock::now() - start_).count();
  out_ << "batch " << sequence << ": " << producer_->counters().points_acked
       << " points acknowledged, " << FormatFixed(seconds, 3) << " s; n " << fit.n()
       << "; descent m " << FormatNumber(fit.descent().m()) << " b "
       << FormatNumber(fit.descent().b());
  if (progress_gradient_) {
    out_ << " loss " << FormatNumber(progress_gradient_->loss()) << " dL/dm "
         << FormatNumber(progress_gradient_->slope_gradient()) << " dL/db "
         << FormatNumber(progress_gradient_->intercept_gradient());
  }
  if (fit.has_least_squares()) {
    out_ << "; least squares m " << FormatNumber(fit.least_squares().m()) << " b "
         << FormatNumber(fit.least_squares().b());
  }
  out_ << std::endl;
}

int ProduceRun::ReportStop() {
  const ProducerCounters& c = producer_->counters();
  if (c.descent_errors > 1) {
    err_ << "gradctl: warning: the descent steps were refused after " << c.descent_errors
         << " batches\n";
  }
  NoteDuplicates(c, options_.producer_id, err_);
  if (!send_error_.ok()) {
    const int rc = ReportProducerFailure(*producer_, send_error_, config_.json,
                                         "the same input (same --batch)", out_, err_);
    if (!producer_->rejection()) err_ << "gradctl: source: " << config_.source_description << '\n';
    return rc;
  }
  if (!save_error_.ok()) return Fail(save_error_);
  if (!input_error_.ok()) {
    Fail(input_error_);
    err_ << "gradctl: stopped at that line: " << AcknowledgedText(c) << " before it (series '"
         << config_.series << "' has " << SeriesTotal() << " points)\n";
    return kExitFailure;
  }
  return kExitOk;
}

int ProduceRun::FetchFinalFit(v1::Response* fit) {
  // There is no series without points.
  if (producer_->counters().batches_acked == 0) {
    err_ << "gradctl: warning: the input has no points; nothing was sent\n";
    return kExitOk;
  }
  if (Status s = producer_->Call(fit_query_, fit); !s.ok()) return Fail(s);
  if (fit->has_error() && fit->error().code() == v1::Error::PERMISSION_DENIED) {
    // A token with only the produce role: the points are in, the summary
    // just has no fit.
    err_ << "gradctl: note: no fit in the summary: " << fit->error().message() << '\n';
    fit->Clear();
  } else if (fit->has_error()) {
    if (config_.json) out_ << ToJson(*fit) << std::endl;
    err_ << "gradctl: " << protocol::ErrorCodeName(fit->error()) << ": " << fit->error().message()
         << '\n';
    return kExitFailure;
  }
  return kExitOk;
}

void ProduceRun::PrintJsonSummary(const v1::Response& fit) {
  google::protobuf::Struct root;
  google::protobuf::Struct* summary = (*root.mutable_fields())["summary"].mutable_struct_value();
  auto& fields = *summary->mutable_fields();
  fields["series"].set_string_value(config_.series);
  fields["source"].set_string_value(config_.source_description);
  AddCounterFields(options_, producer_->counters(), producer_->next_sequence() - 1, summary);
  fields["series_total"] = JsonNumber(SeriesTotal());
  fields["elapsed_seconds"].set_number_value(seconds_);
  fields["points_per_second"].set_number_value(Rate());
  if (save_) fields["saved_to"].set_string_value(config_.save_path);
  if (fit.has_fit()) out_ << ToJson(fit) << '\n';
  out_ << ToJson(root) << std::endl;
}

void ProduceRun::PrintSummary(const v1::Response& fit) {
  const ProducerCounters& c = producer_->counters();
  KeyValueBlock block;
  block.Add("source", config_.source_description);
  AddCounterLines(options_, c, producer_->next_sequence() - 1, &block);
  if (save_) {
    block.Add("saved to", config_.save_path + " (" + Plural(c.batches_sent, "batch") + ")");
  }
  block.Add("series total", std::to_string(SeriesTotal()));
  block.Add("elapsed", FormatFixed(seconds_, 3) + " s");
  block.Add("throughput", FormatFixed(Rate(), 0) + " points/s");
  if (fit.has_fit()) AddFit(fit.fit(), &block);
  block.Print(out_);
  out_.flush();
}

uint64_t ProduceRun::SeriesTotal() const {
  const auto& totals = producer_->series_totals();
  const auto it = totals.find(protocol::SeriesOrDefault(config_.series));
  return it == totals.end() ? 0 : it->second;
}

double ProduceRun::Rate() const {
  const auto points = static_cast<double>(producer_->counters().points_acked);
  return seconds_ > 0 ? points / seconds_ : 0.0;
}

// ---------------------------------------------------------------------------
// The command line.

void ProduceOptions(po::options_description* d) {
  AddPointSourceOptions(d);  // CSV, --synthetic and its flags
  // clang-format off
  d->add_options()
      ("batch", po::value<int64_t>()->default_value(8192)->value_name("N"),
       "points per batch sent")
      ("window", po::value<int64_t>()->default_value(16)->value_name("W"),
       "most batches sent but not yet acknowledged (pipelining)")
      ("progress-every", po::value<int64_t>()->default_value(0)->value_name("K"),
       "every K batches, print the series' gradient and fit (0 = never)");
  // clang-format on
  AddExactlyOnceOptions(d);  // --producer-id, --first-sequence, --retry-for
  // clang-format off
  d->add_options()
      ("save", po::value<std::string>()->value_name("FILE"),
       "record every batch sent (once, when first sent: series, points, producer id, "
       "sequence, send time, event time) to FILE, a gradientd recording, for `gradctl replay` "
       "and `gradctl inspect`; FILE is created or truncated")
      ("event-time", po::value<std::string>()->default_value("now")->value_name("WHEN"),
       "each batch's event time: now (none sent: the server stamps it on receipt), "
       "x-seconds (the batch's last x, read as Unix seconds) or NANOS (this many "
       "nanoseconds since the Unix epoch, on every batch)");
  // clang-format on
}

// --save FILE, which must not be the input FILE.
Status SavePathFromVm(const po::variables_map& vm, std::string* save_path) {
  if (!vm.count("save")) return Status::Ok();
  *save_path = vm["save"].as<std::string>();
  if (save_path->empty()) return Status::InvalidArgument("--save needs a FILE");
  std::error_code ec;
  if (vm.count("file") &&
      std::filesystem::equivalent(vm["file"].as<std::string>(), *save_path, ec)) {
    return Status::InvalidArgument("--save " + *save_path + " would overwrite the input FILE");
  }
  return Status::Ok();
}

int Produce(CommandContext& context, const po::variables_map& vm) {
  ProduceConfig config;
  if (Status s = BatchAndWindowFromVm(vm, &config.batch, &config.window); !s.ok()) {
    return context.Usage(s.message());
  }
  const int64_t progress_every = vm["progress-every"].as<int64_t>();
  if (progress_every < 0) return context.Usage("--progress-every must be >= 0");
  config.progress_every = static_cast<uint64_t>(progress_every);
  config.server = context.flags.server;
  config.failover_timeout = FailoverTimeout(context.flags);
  if (int rc = context.MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  config.series = context.flags.series;
  config.json = context.flags.json;
  if (Status s = ExactlyOnceFlagsFromVm(vm, &config.exactly_once); !s.ok()) {
    return context.Usage(s.message());
  }
  if (Status s = SavePathFromVm(vm, &config.save_path); !s.ok()) return context.Usage(s.message());
  if (Status s = ParseEventTimeFlag(vm["event-time"].as<std::string>(), &config.event_time);
      !s.ok()) {
    return context.Usage(s.message());
  }
  std::unique_ptr<PointSource> source;
  bool usage_error = false;
  if (Status s = MakePointSource(vm, context.in, &source, &config.source_description, &usage_error);
      !s.ok()) {
    return usage_error ? context.Usage(s.message()) : context.Fail(s);
  }
  return RunProduce(config, *source, context.out, context.err);
}

}  // namespace

Status ParseEventTimeFlag(std::string_view text, EventTimeFlag* flag) {
  *flag = EventTimeFlag{};
  if (text == "now") return Status::Ok();
  if (text == "x-seconds") {
    flag->kind = EventTimeFlag::Kind::kXSeconds;
    return Status::Ok();
  }
  int64_t nanos = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), nanos);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) {
    return Status::InvalidArgument(
        "--event-time must be now, x-seconds or an integer of nanoseconds since the Unix "
        "epoch, got '" +
        std::string(text) + "'");
  }
  flag->kind = EventTimeFlag::Kind::kFixed;
  flag->fixed_unix_nanos = nanos;
  return Status::Ok();
}

Status EventTimeOfBatch(const EventTimeFlag& flag, double last_x,
                        std::optional<int64_t>* event_time_unix_nanos) {
  switch (flag.kind) {
    case EventTimeFlag::Kind::kNow:
      event_time_unix_nanos->reset();
      return Status::Ok();
    case EventTimeFlag::Kind::kFixed:
      *event_time_unix_nanos = flag.fixed_unix_nanos;
      return Status::Ok();
    case EventTimeFlag::Kind::kXSeconds:
      break;
  }
  // int64 nanoseconds reach 9.22e9 s; stay clear of the edge's rounding.
  constexpr double kMaxSeconds = 9.2e9;
  if (!std::isfinite(last_x) || std::fabs(last_x) > kMaxSeconds) {
    return Status::InvalidArgument("--event-time x-seconds: x = " + FormatNumber(last_x) +
                                   " is not a time in Unix seconds");
  }
  *event_time_unix_nanos = std::llround(last_x * 1e9);
  return Status::Ok();
}

int RunProduce(const ProduceConfig& config, PointSource& source, std::ostream& out,
               std::ostream& err) {
  return ProduceRun(config, source, out, err).Run();
}

Command ProduceCommand() {
  return {
      "produce",
      "[FILE]",
      "send points from a CSV file, stdin, or a synthetic line",
      "Sends (x, y) points to the series in pipelined batches: from the CSV FILE, from stdin\n"
      "when FILE is '-' or absent, or generated with --synthetic. Then prints what was sent\n"
      "and the series' fit. A bad CSV line stops it after the points before that line were\n"
      "sent (exit 1, with the line number).\n"
      "\n"
      "Exactly once: every batch carries a producer id (--producer-id, or a new random one,\n"
      "printed at the start) and a sequence number (--first-sequence, 1, 2, ...). The server\n"
      "applies each (producer id, sequence) at most once and acknowledges a repeat as a\n"
      "duplicate. When the connection is lost (the server killed or restarting, the\n"
      "connection reset) or a batch is answered UNAVAILABLE, produce reconnects with\n"
      "backoff (50ms doubling to 2s; with several --server addresses to the next one) for\n"
      "up to --retry-for and resends every unacknowledged batch (at most --window) with its\n"
      "original sequence and content, then goes on; the summary reports reconnects,\n"
      "failovers and duplicates. If it gives up (exit 1), sending the same input again with the "
      "same\n"
      "--producer-id and --batch skips what the server already applied.\n"
      "--save FILE records every batch sent, once, for `gradctl replay` and `gradctl inspect`.\n"
      "--event-time says when each batch's points happened, for windows and decay: now\n"
      "(the default: the server stamps each batch on receipt), x-seconds (each batch's last\n"
      "x read as seconds since the Unix epoch) or a fixed NANOS.",
      &ProduceOptions,
      &Produce,
      Operands::kOptionalFile};
}

}  // namespace gradientd::cli
