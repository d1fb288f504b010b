#include "cli/replay/replay.h"

#include <google/protobuf/struct.pb.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <utility>

#include "cli/csv_flags.h"
#include "cli/output.h"
#include "cli/produce/producer.h"
#include "cli/produce/producer_report.h"
#include "cli/replay/recording_summary.h"
#include "protocol/series_name.h"
#include "recording/recording.h"

namespace gradientd::cli {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace {

// The longest sleep while waiting for a batch's time, so progress keeps moving.
constexpr nanoseconds kWaitSlice = std::chrono::milliseconds(100);

// `duration` divided by `speed`.
nanoseconds Scaled(int64_t duration_nanos, double speed) {
  return std::chrono::duration_cast<nanoseconds>(
      std::chrono::duration<double, std::nano>(static_cast<double>(duration_nanos) / speed));
}

// One FILE operand, examined before anything is sent.
struct Input {
  std::string path;
  bool recording = false;
  RecordingSummary summary;  // recordings
  uint64_t bytes = 0;        // CSV files: the size
};

// A recording's schedule: the first batch with a time is sent at once, each
// later one at its recorded distance from it, divided by the speed.
struct Schedule {
  std::optional<int64_t> base_time;
  Clock::time_point base_clock;
  int64_t last_time = 0;  // the latest time reached
};

// One run of replay. The phases, in order: examine every file, start the
// Producer, send each file (recordings on their schedule, CSV files as fast
// as the window allows), report what stopped it, print the summary.
class ReplayRun {
 public:
  ReplayRun(const ReplayConfig& config, std::ostream& out, std::ostream& err)
      : config_(config), out_(out), err_(err) {}

  int Run();

 private:
  int Fail(const Status& status) { return PrintFailure(status, err_); }
  // Examines every file before sending anything: a missing file, a corrupt
  // recording or an unreadable CSV file is refused whole.
  Status Examine();
  Status ExamineFile(const std::string& path);
  // The Producer and the progress display, wired together.
  void MakeProducer();
  ProgressMode ResolvedProgressMode() const;
  // Progress: by points when every input is a recording, else by bytes read
  // (recordings count their points as 16 bytes each).
  double Fraction() const;
  void UpdateProgress();
  void SendAll();
  void SendRecording(const Input& input);
  void SendRecordedBatch(const v1::RecordedBatch& record, Schedule* schedule);
  void WaitForRecordedTime(int64_t time, Schedule* schedule);
  void SendCsv(const Input& input);
  int ReportStop();
  void PrintJsonSummary();
  void PrintSummary();
  std::optional<uint64_t> SeriesTotal(const std::string& name) const;
  double Rate() const;

  const ReplayConfig& config_;
  std::ostream& out_;
  std::ostream& err_;

  std::vector<Input> inputs_;
  uint64_t total_points_ = 0;  // of the recordings
  uint64_t total_csv_bytes_ = 0;
  nanoseconds total_recorded_{0};
  bool any_csv_ = false;

  ProducerOptions options_;
  std::optional<Progress> progress_;
  std::optional<Producer> producer_;
  // Progress counts what was sent (acknowledgements are read only when the
  // window is full, so they lag); at most `window` batches are unacknowledged.
  uint64_t done_bytes_ = 0;          // of the CSV files, read so far
  uint64_t done_record_points_ = 0;  // of the recordings, sent
  bool timed_ = false;               // the ETA comes from the recorded times
  nanoseconds recorded_left_{0};
  Clock::time_point recorded_left_at_;  // when recorded_left_ was last updated

  Clock::time_point start_;
  double seconds_ = 0;
  Status send_error_;
  Status input_error_;
  std::vector<std::string> truncations_;
  std::map<std::string, uint64_t> series_points_;  // points sent per series
};

int ReplayRun::Run() {
  if (Status s = Examine(); !s.ok()) return Fail(s);
  if (Status s =
          MakeProducerOptions(config_.server, config_.failover_timeout, config_.connect,
                              config_.window, config_.exactly_once, "gradctl-replay", &options_);
      !s.ok()) {
    return ReportBadServer(config_.server, s, err_);
  }
  if (config_.exactly_once.producer_id.empty()) AnnounceProducerId(options_, err_);
  MakeProducer();
  if (int rc = StartProducer(*producer_, config_.server, err_); rc != 0) return rc;
  start_ = Clock::now();
  SendAll();
  if (send_error_.ok()) send_error_ = producer_->Finish();
  progress_->Finish(Fraction(), producer_->counters().points_sent);
  seconds_ = std::chrono::duration<double>(Clock::now() - start_).count();
  if (int rc = ReportStop(); rc != kExitOk) return rc;
  if (config_.json) {
    PrintJsonSummary();
  } else {
    PrintSummary();
  }
  return kExitOk;
}

Status ReplayRun::Examine() {
  for (const std::string& path : config_.files) {
    if (Status s = ExamineFile(path); !s.ok()) return s;
  }
  any_csv_ =
      std::any_of(inputs_.begin(), inputs_.end(), [](const Input& i) { return !i.recording; });
  return Status::Ok();
}

Status ReplayRun::ExamineFile(const std::string& path) {
  Input input;
  input.path = path;
  if (Status s = storage::SniffRecording(path, &input.recording); !s.ok()) return s;
  if (input.recording) {
    if (Status s = SummarizeRecording(path, &input.summary); !s.ok()) return s;
    total_points_ += input.summary.points;
    if (input.summary.has_time) {
      total_recorded_ += nanoseconds(input.summary.last_time - input.summary.first_time);
    }
  } else {
    std::error_code ec;
    const auto size = std::filesystem::file_size(path, ec);
    input.bytes = ec ? 0 : static_cast<uint64_t>(size);
    total_csv_bytes_ += input.bytes;
  }
  inputs_.push_back(std::move(input));
  return Status::Ok();
}

ProgressMode ReplayRun::ResolvedProgressMode() const {
  if (config_.progress != ProgressMode::kAuto) return config_.progress;
  return &err_ == &std::cerr && ::isatty(STDERR_FILENO) != 0 ? ProgressMode::kBar
                                                             : ProgressMode::kLines;
}

void ReplayRun::MakeProducer() {
  progress_.emplace(ResolvedProgressMode(), err_, config_.progress_interval);
  producer_.emplace(options_, err_);
  recorded_left_ = total_recorded_;
  timed_ = !config_.max && !any_csv_ && total_recorded_.count() > 0;
  recorded_left_at_ = Clock::now();
  producer_->set_on_ack([this](const v1::IngestAck&, uint64_t, std::size_t) { UpdateProgress(); });
  producer_->set_on_wait([this] { UpdateProgress(); });
  producer_->set_before_log([this] { progress_->Interrupt(); });
}

double ReplayRun::Fraction() const {
  if (!any_csv_) {
    return total_points_ == 0
               ? 1.0
               : static_cast<double>(done_record_points_) / static_cast<double>(total_points_);
  }
  const double total =
      static_cast<double>(total_csv_bytes_) + 16.0 * static_cast<double>(total_points_);
  const double done =
      static_cast<double>(done_bytes_) + 16.0 * static_cast<double>(done_record_points_);
  return total <= 0 ? 1.0 : done / total;
}

void ReplayRun::UpdateProgress() {
  std::optional<nanoseconds> eta;
  if (timed_) {
    const auto left =
        Scaled(recorded_left_.count(), config_.speed) - (Clock::now() - recorded_left_at_);
    eta = std::max(left, nanoseconds(0));
  }
  progress_->Update(Fraction(), producer_->counters().points_sent, eta);
}

void ReplayRun::SendAll() {
  for (const Input& input : inputs_) {
    if (!send_error_.ok() || !input_error_.ok()) break;
    if (input.recording) {
      SendRecording(input);
    } else {
      SendCsv(input);
    }
  }
}

void ReplayRun::SendRecording(const Input& input) {
  std::unique_ptr<storage::RecordingReader> reader;
  if (Status s = storage::RecordingReader::Open(input.path, &reader); !s.ok()) {
    input_error_ = s;
    return;
  }
  Schedule schedule;
  schedule.last_time = input.summary.first_time;
  v1::RecordedBatch record;
  bool done = false;
  while (!done && send_error_.ok()) {
    switch (reader->Next(&record)) {
      case storage::RecordingReader::Result::kRecord:
        SendRecordedBatch(record, &schedule);
        break;
      case storage::RecordingReader::Result::kEnd:
        done = true;
        break;
      case storage::RecordingReader::Result::kTruncated:
        progress_->Interrupt();
        err_ << "gradctl: warning: " << reader->TruncationMessage()
             << ": replayed its whole records and stopped there\n";
        truncations_.push_back(reader->TruncationMessage());
        done = true;
        break;
      case storage::RecordingReader::Result::kError:
        input_error_ = reader->error();
        done = true;
        break;
    }
  }
  if (input.summary.has_time && schedule.last_time < input.summary.last_time) {
    recorded_left_ -= nanoseconds(input.summary.last_time - schedule.last_time);
  }
}

void ReplayRun::SendRecordedBatch(const v1::RecordedBatch& record, Schedule* schedule) {
  const int64_t t = record.time_unix_nanos();
  if (!config_.max && t != 0) WaitForRecordedTime(t, schedule);
  const std::string& series = config_.rename ? config_.series : record.series();
  const auto n = static_cast<std::size_t>(record.x_size());
  std::optional<int64_t> event_time;
  if (record.has_event_time_unix_nanos() && !config_.restamp) {
    event_time = record.event_time_unix_nanos();
  }
  send_error_ = producer_->Send(
      series, std::span<const double>(record.x().data(), n),
      std::span<const double>(record.y().data(), static_cast<std::size_t>(record.y_size())),
      event_time);
  series_points_[protocol::SeriesOrDefault(series)] += n;
  done_record_points_ += n;
  UpdateProgress();
}

void ReplayRun::WaitForRecordedTime(int64_t time, Schedule* schedule) {
  if (!schedule->base_time) {
    schedule->base_time = time;
    schedule->base_clock = Clock::now();
  }
  const auto target = schedule->base_clock + Scaled(time - *schedule->base_time, config_.speed);
  for (auto now = Clock::now(); now < target; now = Clock::now()) {
    std::this_thread::sleep_for(std::min<nanoseconds>(target - now, kWaitSlice));
    UpdateProgress();
  }
  if (time > schedule->last_time) {
    recorded_left_ -= nanoseconds(time - schedule->last_time);
    recorded_left_at_ = Clock::now();
    schedule->last_time = time;
  }
}

void ReplayRun::SendCsv(const Input& input) {
  std::ifstream stream(input.path, std::ios::in | std::ios::binary);
  if (!stream.is_open()) {
    input_error_ =
        Status::InvalidArgument("cannot open " + input.path + ": " + std::strerror(errno));
    return;
  }
  CsvPointReader reader(stream, input.path, config_.csv);
  std::vector<double> x;
  std::vector<double> y;
  const uint64_t bytes_before = done_bytes_;
  while (send_error_.ok()) {
    const Status s = reader.Next(&x, &y, config_.batch);
    if (!s.ok()) input_error_ = s;
    const std::streamoff position = stream.tellg();
    done_bytes_ = bytes_before + (position >= 0 ? static_cast<uint64_t>(position) : input.bytes);
    if (x.empty()) break;
    send_error_ = producer_->Send(config_.series, x, y);
    series_points_[protocol::SeriesOrDefault(config_.series)] += x.size();
    UpdateProgress();
    if (!input_error_.ok()) break;
  }
  done_bytes_ = bytes_before + input.bytes;
}

int ReplayRun::ReportStop() {
  const ProducerCounters& c = producer_->counters();
  NoteDuplicates(c, options_.producer_id, err_);
  if (!send_error_.ok()) {
    return ReportProducerFailure(*producer_, send_error_, config_.json,
                                 "the same files (same --batch for CSV)", out_, err_);
  }
  if (!input_error_.ok()) {
    Fail(input_error_);
    err_ << "gradctl: stopped there: " << AcknowledgedText(c) << " before it\n";
    return kExitFailure;
  }
  return kExitOk;
}

std::optional<uint64_t> ReplayRun::SeriesTotal(const std::string& name) const {
  const auto& totals = producer_->series_totals();
  const auto it = totals.find(name);
  if (it == totals.end()) return std::nullopt;
  return it->second;
}

double ReplayRun::Rate() const {
  const auto points = static_cast<double>(producer_->counters().points_acked);
  return seconds_ > 0 ? points / seconds_ : 0.0;
}

void ReplayRun::PrintJsonSummary() {
  google::protobuf::Struct root;
  google::protobuf::Struct* summary = (*root.mutable_fields())["summary"].mutable_struct_value();
  auto& fields = *summary->mutable_fields();
  auto* files = fields["files"].mutable_list_value();
  for (const Input& input : inputs_) {
    auto& item = *files->add_values()->mutable_struct_value()->mutable_fields();
    item["file"].set_string_value(input.path);
    item["kind"].set_string_value(input.recording ? "recording" : "csv");
  }
  AddCounterFields(options_, producer_->counters(), producer_->next_sequence() - 1, summary);
  fields["elapsed_seconds"].set_number_value(seconds_);
  fields["points_per_second"].set_number_value(Rate());
  auto* truncated = fields["truncated"].mutable_list_value();
  for (const std::string& t : truncations_) truncated->add_values()->set_string_value(t);
  auto* series = fields["series"].mutable_list_value();
  for (const auto& [name, points] : series_points_) {
    auto& item = *series->add_values()->mutable_struct_value()->mutable_fields();
    item["name"].set_string_value(name);
    item["points_sent"] = JsonNumber(points);
    if (const auto total = SeriesTotal(name)) {
      item["series_total"] = JsonNumber(*total);
    }
  }
  out_ << ToJson(root) << std::endl;
}

void ReplayRun::PrintSummary() {
  KeyValueBlock block;
  std::string files;
  for (const Input& input : inputs_) {
    if (!files.empty()) files += ", ";
    files += input.path + (input.recording ? " (recording)" : " (CSV)");
  }
  block.Add("files", files);
  AddCounterLines(options_, producer_->counters(), producer_->next_sequence() - 1, &block);
  for (const std::string& t : truncations_) block.Add("truncated", t);
  block.Add("timing", config_.max ? std::string("as fast as possible (--max)")
                                  : "recorded, x" + FormatNumber(config_.speed));
  block.Add("event times", config_.restamp ? "none sent (--restamp)" : "as recorded");
  block.Add("elapsed", FormatFixed(seconds_, 3) + " s");
  block.Add("throughput", FormatFixed(Rate(), 0) + " points/s");
  block.Print(out_);
  if (!series_points_.empty()) {
    out_ << '\n';
    Table table({"SERIES", "POINTS SENT", "SERIES TOTAL"}, {false, true, true});
    for (const auto& [name, points] : series_points_) {
      const auto total = SeriesTotal(name);
      table.AddRow({name, std::to_string(points), total ? std::to_string(*total) : "-"});
    }
    table.Print(out_);
  }
  out_.flush();
}

// ---------------------------------------------------------------------------
// The command line.

constexpr std::string_view kReplaySummary =
    "stream recordings (or CSV files) to the server, with their timing";
constexpr std::string_view kReplayDescription =
    "Streams each FILE, in order, to the server: a gradientd recording (from `gradctl\n"
    "produce --save` or `gradientd --record`; recognised by its header) batch by batch,\n"
    "keeping the recorded batch boundaries and series, or a CSV file (read with the CSV\n"
    "flags, as produce does, in batches of --batch points, to --series, default 'default').\n"
    "\n"
    "Timing: a recording's batches are sent with their original spacing (from their recorded\n"
    "times), --speed X times as fast; --max sends as fast as the window allows. CSV files\n"
    "carry no times and are always sent as fast as possible.\n"
    "\n"
    "--series NAME sends every batch to NAME instead of its recorded series.\n"
    "\n"
    "Event time: each recorded batch is sent with its recorded event time, if it has one, so\n"
    "windows and decay see the original times; --restamp sends none (the server stamps each\n"
    "batch when it receives it). CSV batches carry none.\n"
    "\n"
    "Exactly once, as produce: the replay is one producer (a new random id, printed at the\n"
    "start, or --producer-id) numbering its batches 1, 2, ... (--first-sequence); a lost\n"
    "connection (or a batch answered UNAVAILABLE) is retried for --retry-for, on the next\n"
    "--server address when there are several, and the unacknowledged batches are resent, and\n"
    "replaying again with the same --producer-id skips what the server already applied.\n"
    "Recordings are read through once before anything is sent, so a corrupt one is refused\n"
    "whole. A recording truncated by a crash (cut mid-record) is replayed up to its last whole\n"
    "record, with a notice saying where it stops (byte offset, whole records). Replaying a\n"
    "recording into a fresh server reproduces the original statistics exactly (same\n"
    "batches, same order).\n"
    "\n"
    "Progress goes to stderr: on a terminal a progress bar (percentage of the points, or of\n"
    "the bytes when CSV files are involved; points/s; ETA), otherwise a line every 2 s.";

void AddReplayOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("speed", po::value<double>()->default_value(1.0)->value_name("X"),
       "recordings: send X times as fast as recorded (2 = twice as fast, 0.5 = half)")
      ("max", po::bool_switch(),
       "send as fast as possible, ignoring the recorded timing")
      ("restamp", po::bool_switch(),
       "send no recorded event times: the server stamps each batch on receipt")
      ("batch", po::value<int64_t>()->default_value(8192)->value_name("N"),
       "CSV: points per batch (recordings keep their recorded batches)")
      ("window", po::value<int64_t>()->default_value(16)->value_name("W"),
       "most batches sent but not yet acknowledged (pipelining)")
      ("progress", po::value<std::string>()->default_value("auto")->value_name("MODE"),
       "auto (a bar when stderr is a terminal, else lines), bar, lines (one every 2 s), "
       "or none");
  // clang-format on
  AddCsvOptions(d);
  AddExactlyOnceOptions(d);
}

Status ProgressModeFromFlag(const std::string& progress, ProgressMode* mode) {
  if (progress == "auto") {
    *mode = ProgressMode::kAuto;
  } else if (progress == "bar") {
    *mode = ProgressMode::kBar;
  } else if (progress == "lines") {
    *mode = ProgressMode::kLines;
  } else if (progress == "none") {
    *mode = ProgressMode::kNone;
  } else {
    return Status::InvalidArgument("--progress must be auto, bar, lines or none, got '" + progress +
                                   "'");
  }
  return Status::Ok();
}

int Replay(CommandContext& context, const po::variables_map& vm) {
  ReplayConfig config;
  if (Status s = ParseReplayConfig(vm, &config); !s.ok()) return context.Usage(s.message());
  if (int rc = context.MakeConnectOptions(&config.connect); rc != kExitOk) return rc;
  config.failover_timeout = FailoverTimeout(context.flags);
  return RunReplay(config, context.out, context.err);
}

}  // namespace

Command ReplayCommand() {
  return {"replay",          "FILE...", kReplaySummary,  kReplayDescription,
          &AddReplayOptions, &Replay,   Operands::kFiles};
}

Status ParseReplayConfig(const po::variables_map& vm, ReplayConfig* config) {
  *config = ReplayConfig{};
  config->server = vm["server"].as<std::string>();
  config->series = vm["series"].as<std::string>();
  config->rename = !vm["series"].defaulted();
  config->json = vm["json"].as<bool>();
  if (vm.count("files")) config->files = vm["files"].as<std::vector<std::string>>();
  if (config->files.empty()) {
    return Status::InvalidArgument(
        "no FILE given: replay needs at least one recording or CSV "
        "file");
  }
  config->max = vm["max"].as<bool>();
  config->restamp = vm["restamp"].as<bool>();
  config->speed = vm["speed"].as<double>();
  if (!std::isfinite(config->speed) || config->speed <= 0) {
    return Status::InvalidArgument("--speed must be a number above 0");
  }
  if (config->max && !vm["speed"].defaulted()) {
    return Status::InvalidArgument("--max and --speed conflict");
  }
  if (Status s = BatchAndWindowFromVm(vm, &config->batch, &config->window); !s.ok()) return s;
  if (Status s = ProgressModeFromFlag(vm["progress"].as<std::string>(), &config->progress);
      !s.ok()) {
    return s;
  }
  if (Status s = CsvOptionsFromFlags(vm, &config->csv); !s.ok()) return s;
  return ExactlyOnceFlagsFromVm(vm, &config->exactly_once);
}

int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err) {
  return ReplayRun(config, out, err).Run();
}

}  // namespace gradientd::cli
