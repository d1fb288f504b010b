#include "cli/replay.h"

#include <google/protobuf/struct.pb.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <span>
#include <thread>
#include <utility>

#include "cli/csv_flags.h"
#include "cli/output.h"
#include "protocol/series_name.h"
#include "recording/recording.h"

namespace gradientd::cli {

namespace po = boost::program_options;
using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace {

// As produce's limits.
constexpr int64_t kMaxBatchPoints = 1'000'000;
constexpr int64_t kMaxWindow = 1'000'000;
// How often the progress bar is redrawn at most.
constexpr nanoseconds kBarInterval = std::chrono::milliseconds(100);
// The longest sleep while waiting for a batch's time, so progress keeps moving.
constexpr nanoseconds kWaitSlice = std::chrono::milliseconds(100);

std::string Fixed(double value, int decimals) {
  char buf[48];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, value);
  return buf;
}

// ---------------------------------------------------------------------------
// Progress on stderr.

class Progress {
 public:
  Progress(ProgressMode mode, std::ostream& err, nanoseconds interval)
      : mode_(mode), err_(err), interval_(interval), start_(Clock::now()) {}

  // `fraction` in [0, 1] of the work done; `points` sent so far;
  // `eta` when the caller knows better than the rate (the recorded timing).
  void Update(double fraction, uint64_t points, std::optional<nanoseconds> eta) {
    if (mode_ == ProgressMode::kNone) return;
    const auto now = Clock::now();
    const nanoseconds every = mode_ == ProgressMode::kBar ? kBarInterval : interval_;
    if (drawn_once_ && now - last_draw_ < every) return;
    if (mode_ == ProgressMode::kLines && now - start_ < interval_) return;
    Draw(now, fraction, points, eta, false);
  }

  // The final state (a bar is completed and ended with a newline).
  void Finish(double fraction, uint64_t points) {
    if (mode_ == ProgressMode::kBar && drawn_once_) {
      Draw(Clock::now(), fraction, points, nanoseconds(0), true);
      err_ << '\n';
      err_.flush();
    }
  }

  // Before printing a message: ends the bar's line so the message starts on
  // its own; the next Update draws the bar again below it.
  void Interrupt() {
    if (mode_ == ProgressMode::kBar && drawn_once_ && !interrupted_) {
      err_ << '\n';
      interrupted_ = true;
      width_ = 0;
    }
  }

 private:
  void Draw(Clock::time_point now, double fraction, uint64_t points, std::optional<nanoseconds> eta,
            bool final) {
    fraction = std::clamp(fraction, 0.0, 1.0);
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(points) / seconds : 0.0;
    if (!eta && fraction > 0 && fraction < 1 && seconds > 0) {
      eta = std::chrono::duration_cast<nanoseconds>(
          std::chrono::duration<double>(seconds * (1 - fraction) / fraction));
    }
    std::string eta_text = final ? "done" : eta ? FormatDuration(*eta) : "?";
    if (mode_ == ProgressMode::kBar) {
      constexpr int kWidth = 30;
      const int filled = static_cast<int>(std::floor(fraction * kWidth));
      std::string line = "[";
      for (int i = 0; i < kWidth; ++i) line += i < filled ? '#' : '.';
      line += "] " + Fixed(fraction * 100, 1) + "%  " + std::to_string(points) + " points sent  " +
              Fixed(rate, 0) + " points/s  ETA " + eta_text;
      const std::size_t pad = width_ > line.size() ? width_ - line.size() : 0;
      width_ = line.size();
      err_ << '\r' << line << std::string(pad, ' ');
    } else {
      err_ << "gradctl: replay: " << Fixed(fraction * 100, 1) << "%, " << points << " points sent, "
           << Fixed(rate, 0) << " points/s, ETA " << eta_text << '\n';
    }
    err_.flush();
    drawn_once_ = true;
    interrupted_ = false;
    last_draw_ = now;
  }

  ProgressMode mode_;
  std::ostream& err_;
  nanoseconds interval_;
  Clock::time_point start_;
  Clock::time_point last_draw_{};
  bool drawn_once_ = false;
  bool interrupted_ = false;
  std::size_t width_ = 0;
};

// One FILE operand, examined before anything is sent.
struct Input {
  std::string path;
  bool recording = false;
  RecordingSummary summary;  // recordings
  uint64_t bytes = 0;        // CSV files: the size
};

}  // namespace

// ---------------------------------------------------------------------------
// Options.

void AddReplayOptions(po::options_description* d) {
  // clang-format off
  d->add_options()
      ("speed", po::value<double>()->default_value(1.0)->value_name("X"),
       "recordings: send X times as fast as recorded (2 = twice as fast, 0.5 = half)")
      ("max", po::bool_switch(),
       "send as fast as possible, ignoring the recorded timing")
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

void AddInspectOptions(po::options_description*) {}

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
  config->speed = vm["speed"].as<double>();
  if (!std::isfinite(config->speed) || config->speed <= 0) {
    return Status::InvalidArgument("--speed must be a number above 0");
  }
  if (config->max && !vm["speed"].defaulted()) {
    return Status::InvalidArgument("--max and --speed conflict");
  }
  const int64_t batch = vm["batch"].as<int64_t>();
  if (batch < 1 || batch > kMaxBatchPoints) {
    return Status::InvalidArgument("--batch must be between 1 and " +
                                   std::to_string(kMaxBatchPoints));
  }
  config->batch = static_cast<std::size_t>(batch);
  const int64_t window = vm["window"].as<int64_t>();
  if (window < 1 || window > kMaxWindow) {
    return Status::InvalidArgument("--window must be between 1 and " + std::to_string(kMaxWindow));
  }
  config->window = static_cast<std::size_t>(window);
  const std::string progress = vm["progress"].as<std::string>();
  if (progress == "auto") {
    config->progress = ProgressMode::kAuto;
  } else if (progress == "bar") {
    config->progress = ProgressMode::kBar;
  } else if (progress == "lines") {
    config->progress = ProgressMode::kLines;
  } else if (progress == "none") {
    config->progress = ProgressMode::kNone;
  } else {
    return Status::InvalidArgument("--progress must be auto, bar, lines or none, got '" + progress +
                                   "'");
  }
  if (Status s = CsvOptionsFromFlags(vm, &config->csv); !s.ok()) return s;
  return ExactlyOnceFlagsFromVm(vm, &config->exactly_once);
}

Status ParseInspectConfig(const po::variables_map& vm, InspectConfig* config) {
  *config = InspectConfig{};
  config->json = vm["json"].as<bool>();
  if (vm.count("files")) config->files = vm["files"].as<std::vector<std::string>>();
  if (config->files.empty()) return Status::InvalidArgument("no FILE given");
  return Status::Ok();
}

// ---------------------------------------------------------------------------
// Summaries.

Status SummarizeRecording(const std::string& path, RecordingSummary* summary) {
  *summary = RecordingSummary{};
  summary->path = path;
  std::unique_ptr<storage::RecordingReader> reader;
  if (Status s = storage::RecordingReader::Open(path, &reader); !s.ok()) return s;
  summary->file_bytes = reader->file_size();
  v1::RecordedBatch batch;
  while (true) {
    const uint64_t offset = reader->offset();
    switch (reader->Next(&batch)) {
      case storage::RecordingReader::Result::kRecord: {
        if (batch.x_size() != batch.y_size()) {
          return Status::InvalidArgument(path + ": record " + std::to_string(reader->records()) +
                                         " at byte offset " + std::to_string(offset) +
                                         " is invalid: x has " + std::to_string(batch.x_size()) +
                                         " values but y has " + std::to_string(batch.y_size()));
        }
        const auto n = static_cast<uint64_t>(batch.x_size());
        ++summary->batches;
        summary->points += n;
        RecordingSummary::Series& series = summary->series[batch.series()];
        ++series.batches;
        series.points += n;
        RecordingSummary::Producer& producer = summary->producers[batch.producer_id()];
        if (producer.batches++ == 0) {
          producer.first_sequence = producer.last_sequence = batch.sequence();
        } else {
          producer.first_sequence = std::min(producer.first_sequence, batch.sequence());
          producer.last_sequence = std::max(producer.last_sequence, batch.sequence());
        }
        if (batch.time_unix_nanos() != 0) {
          if (!summary->has_time) {
            summary->first_time = summary->last_time = batch.time_unix_nanos();
            summary->has_time = true;
          } else {
            summary->first_time = std::min(summary->first_time, batch.time_unix_nanos());
            summary->last_time = std::max(summary->last_time, batch.time_unix_nanos());
          }
        }
        break;
      }
      case storage::RecordingReader::Result::kEnd:
        return Status::Ok();
      case storage::RecordingReader::Result::kTruncated:
        summary->truncated = true;
        summary->truncated_offset = reader->offset();
        summary->truncated_bytes = reader->truncated_bytes();
        summary->truncation_message = reader->TruncationMessage();
        return Status::Ok();
      case storage::RecordingReader::Result::kError:
        return reader->error();
    }
  }
}

namespace {

void PrintSummaryText(const RecordingSummary& s, std::ostream& out) {
  KeyValueBlock block;
  block.Add("file", s.path);
  block.Add("size", Plural(s.file_bytes, "byte"));
  block.Add("batches", std::to_string(s.batches));
  block.Add("points", std::to_string(s.points));
  block.Add("series", std::to_string(s.series.size()));
  if (s.has_time) {
    block.Add("first batch", FormatUtc(s.first_time));
    block.Add("last batch", FormatUtc(s.last_time));
    block.Add("duration", FormatDuration(nanoseconds(s.last_time - s.first_time)) + " (" +
                              Fixed(static_cast<double>(s.last_time - s.first_time) / 1e9, 3) +
                              " s)");
  } else {
    block.Add("time range", "none (no batch has a time)");
  }
  block.Add("producers", std::to_string(s.producers.size()));
  if (s.truncated) {
    block.Add("truncated", "yes: at byte offset " + std::to_string(s.truncated_offset) + " after " +
                               Plural(s.batches, "whole record") + "; the last " +
                               Plural(s.truncated_bytes, "byte") +
                               " are an incomplete record (a crash mid-write?)");
  } else {
    block.Add("truncated", "no");
  }
  block.Print(out);
  if (!s.series.empty()) {
    out << '\n';
    Table table({"SERIES", "POINTS", "BATCHES"}, {false, true, true});
    for (const auto& [name, series] : s.series) {
      table.AddRow({protocol::SeriesOrDefault(name), std::to_string(series.points),
                    std::to_string(series.batches)});
    }
    table.Print(out);
  }
  if (!s.producers.empty()) {
    out << '\n';
    Table table({"PRODUCER", "BATCHES", "SEQUENCES"}, {false, true, false});
    for (const auto& [id, producer] : s.producers) {
      table.AddRow({id.empty() ? "(none)" : id, std::to_string(producer.batches),
                    SequenceRange(producer.first_sequence, producer.last_sequence)});
    }
    table.Print(out);
  }
}

std::string SummaryJson(const RecordingSummary& s) {
  google::protobuf::Struct root;
  auto& f = *root.mutable_fields();
  const auto number = [](uint64_t v) {
    google::protobuf::Value value;
    value.set_number_value(static_cast<double>(v));
    return value;
  };
  f["file"].set_string_value(s.path);
  f["bytes"] = number(s.file_bytes);
  f["batches"] = number(s.batches);
  f["points"] = number(s.points);
  auto* series = f["series"].mutable_list_value();
  for (const auto& [name, info] : s.series) {
    auto& item = *series->add_values()->mutable_struct_value()->mutable_fields();
    item["name"].set_string_value(protocol::SeriesOrDefault(name));
    item["points"] = number(info.points);
    item["batches"] = number(info.batches);
  }
  if (s.has_time) {
    f["first_time"].set_string_value(FormatUtc(s.first_time));
    f["last_time"].set_string_value(FormatUtc(s.last_time));
    // As strings: nanoseconds since the epoch do not fit a double exactly.
    f["first_time_unix_nanos"].set_string_value(std::to_string(s.first_time));
    f["last_time_unix_nanos"].set_string_value(std::to_string(s.last_time));
    f["duration_seconds"].set_number_value(static_cast<double>(s.last_time - s.first_time) / 1e9);
  } else {
    f["first_time"].set_null_value(google::protobuf::NULL_VALUE);
    f["last_time"].set_null_value(google::protobuf::NULL_VALUE);
    f["duration_seconds"].set_null_value(google::protobuf::NULL_VALUE);
  }
  auto* producers = f["producers"].mutable_list_value();
  for (const auto& [id, info] : s.producers) {
    auto& item = *producers->add_values()->mutable_struct_value()->mutable_fields();
    item["id"].set_string_value(id);
    item["batches"] = number(info.batches);
    item["first_sequence"] = number(info.first_sequence);
    item["last_sequence"] = number(info.last_sequence);
  }
  if (s.truncated) {
    auto& t = *f["truncated"].mutable_struct_value()->mutable_fields();
    t["offset"] = number(s.truncated_offset);
    t["whole_records"] = number(s.batches);
    t["incomplete_bytes"] = number(s.truncated_bytes);
  } else {
    f["truncated"].set_null_value(google::protobuf::NULL_VALUE);
  }
  return ToJson(root);
}

}  // namespace

int RunInspect(const InspectConfig& config, std::ostream& out, std::ostream& err) {
  int rc = 0;
  bool first = true;
  for (const std::string& path : config.files) {
    RecordingSummary summary;
    if (Status s = SummarizeRecording(path, &summary); !s.ok()) {
      err << "gradctl: " << s.message() << '\n';
      rc = 1;
      continue;
    }
    if (config.json) {
      out << SummaryJson(summary) << '\n';
    } else {
      if (!first) out << '\n';
      PrintSummaryText(summary, out);
    }
    if (summary.truncated) err << "gradctl: note: " << summary.truncation_message << '\n';
    first = false;
  }
  out.flush();
  return rc;
}

// ---------------------------------------------------------------------------
// Replay.

int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err) {
  const auto fail = [&](const Status& status) {
    err << "gradctl: " << status.message() << '\n';
    return 1;
  };

  // Examine every file before sending anything: a missing file, a corrupt
  // recording or an unreadable CSV file is refused whole.
  std::vector<Input> inputs;
  uint64_t total_points = 0;  // of the recordings
  uint64_t total_csv_bytes = 0;
  nanoseconds total_recorded = nanoseconds(0);
  for (const std::string& path : config.files) {
    Input input;
    input.path = path;
    if (Status s = storage::SniffRecording(path, &input.recording); !s.ok()) return fail(s);
    if (input.recording) {
      if (Status s = SummarizeRecording(path, &input.summary); !s.ok()) return fail(s);
      total_points += input.summary.points;
      if (input.summary.has_time) {
        total_recorded += nanoseconds(input.summary.last_time - input.summary.first_time);
      }
    } else {
      std::error_code ec;
      const auto size = std::filesystem::file_size(path, ec);
      input.bytes = ec ? 0 : static_cast<uint64_t>(size);
      total_csv_bytes += input.bytes;
    }
    inputs.push_back(std::move(input));
  }
  const bool any_csv =
      std::any_of(inputs.begin(), inputs.end(), [](const Input& i) { return !i.recording; });

  ProducerOptions options;
  options.server = config.server;
  options.connect = config.connect;
  options.window = config.window;
  options.first_sequence = config.exactly_once.first_sequence;
  options.retry_for = config.exactly_once.retry_for;
  options.producer_id = config.exactly_once.producer_id;
  if (options.producer_id.empty()) {
    options.producer_id = GenerateProducerId("gradctl-replay");
    err << "gradctl: producer id " << options.producer_id << " (sequences from "
        << options.first_sequence << ")" << std::endl;
  }

  ProgressMode mode = config.progress;
  if (mode == ProgressMode::kAuto) {
    mode = &err == &std::cerr && ::isatty(STDERR_FILENO) != 0 ? ProgressMode::kBar
                                                              : ProgressMode::kLines;
  }
  Progress progress(mode, err, config.progress_interval);

  Producer producer(options, err);
  // Progress: by points when every input is a recording, else by bytes read.
  uint64_t done_bytes = 0;          // of the CSV files, read so far
  uint64_t done_record_points = 0;  // of the recordings, sent
  nanoseconds recorded_left = total_recorded;
  const bool timed = !config.max && !any_csv && total_recorded.count() > 0;
  Clock::time_point recorded_left_at = Clock::now();  // when recorded_left was last updated
  const auto fraction = [&] {
    if (!any_csv) {
      return total_points == 0
                 ? 1.0
                 : static_cast<double>(done_record_points) / static_cast<double>(total_points);
    }
    // Bytes: recordings count their points as 16 bytes each.
    const double total =
        static_cast<double>(total_csv_bytes) + 16.0 * static_cast<double>(total_points);
    const double done =
        static_cast<double>(done_bytes) + 16.0 * static_cast<double>(done_record_points);
    return total <= 0 ? 1.0 : done / total;
  };
  const auto update = [&] {
    std::optional<nanoseconds> eta;
    if (timed) {
      const auto left =
          std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double, std::nano>(
              static_cast<double>(recorded_left.count()) / config.speed)) -
          (Clock::now() - recorded_left_at);
      eta = std::max(left, nanoseconds(0));
    }
    progress.Update(fraction(), producer.counters().points_sent, eta);
  };
  // Progress counts what was sent (acknowledgements are read only when the
  // window is full, so they lag); at most `window` batches are unacknowledged.
  producer.set_on_ack([&](const v1::IngestAck&, uint64_t, std::size_t) { update(); });
  producer.set_on_wait([&] { update(); });
  producer.set_before_log([&] { progress.Interrupt(); });

  if (int rc = StartProducer(producer, config.server, err); rc != 0) return rc;
  const auto start = Clock::now();

  Status send_error;
  Status input_error;
  std::vector<std::string> truncations;
  std::map<std::string, uint64_t> series_points;  // points sent per series
  v1::RecordedBatch record;
  std::vector<double> x;
  std::vector<double> y;
  for (const Input& input : inputs) {
    if (!send_error.ok() || !input_error.ok()) break;
    if (input.recording) {
      std::unique_ptr<storage::RecordingReader> reader;
      if (Status s = storage::RecordingReader::Open(input.path, &reader); !s.ok()) {
        input_error = s;
        break;
      }
      // The schedule: the first batch with a time is sent now, each later one
      // at its recorded distance from it, divided by the speed.
      std::optional<int64_t> base_time;
      Clock::time_point base_clock;
      int64_t last_time = input.summary.first_time;
      bool done = false;
      while (!done && send_error.ok()) {
        switch (reader->Next(&record)) {
          case storage::RecordingReader::Result::kRecord: {
            const int64_t t = record.time_unix_nanos();
            if (!config.max && t != 0) {
              if (!base_time) {
                base_time = t;
                base_clock = Clock::now();
              }
              const auto offset =
                  std::chrono::duration_cast<nanoseconds>(std::chrono::duration<double, std::nano>(
                      static_cast<double>(t - *base_time) / config.speed));
              const auto target = base_clock + offset;
              for (auto now = Clock::now(); now < target; now = Clock::now()) {
                std::this_thread::sleep_for(std::min<nanoseconds>(target - now, kWaitSlice));
                update();
              }
              if (t > last_time) {
                recorded_left -= nanoseconds(t - last_time);
                recorded_left_at = Clock::now();
                last_time = t;
              }
            }
            const std::string& series = config.rename ? config.series : record.series();
            send_error =
                producer.Send(series,
                              std::span<const double>(record.x().data(),
                                                      static_cast<std::size_t>(record.x_size())),
                              std::span<const double>(record.y().data(),
                                                      static_cast<std::size_t>(record.y_size())));
            series_points[protocol::SeriesOrDefault(series)] +=
                static_cast<uint64_t>(record.x_size());
            done_record_points += static_cast<uint64_t>(record.x_size());
            update();
            break;
          }
          case storage::RecordingReader::Result::kEnd:
            done = true;
            break;
          case storage::RecordingReader::Result::kTruncated:
            progress.Interrupt();
            err << "gradctl: warning: " << reader->TruncationMessage()
                << ": replayed its whole records and stopped there\n";
            truncations.push_back(reader->TruncationMessage());
            done = true;
            break;
          case storage::RecordingReader::Result::kError:
            input_error = reader->error();
            done = true;
            break;
        }
      }
      if (input.summary.has_time && last_time < input.summary.last_time) {
        recorded_left -= nanoseconds(input.summary.last_time - last_time);
      }
      continue;
    }
    // A CSV file.
    std::ifstream stream(input.path, std::ios::in | std::ios::binary);
    if (!stream.is_open()) {
      input_error =
          Status::InvalidArgument("cannot open " + input.path + ": " + std::strerror(errno));
      break;
    }
    CsvPointReader reader(stream, input.path, config.csv);
    const uint64_t bytes_before = done_bytes;
    while (send_error.ok()) {
      const Status s = reader.Next(&x, &y, config.batch);
      if (!s.ok()) input_error = s;
      const std::streamoff position = stream.tellg();
      done_bytes = bytes_before + (position >= 0 ? static_cast<uint64_t>(position) : input.bytes);
      if (x.empty()) break;
      send_error = producer.Send(config.series, x, y);
      series_points[protocol::SeriesOrDefault(config.series)] += x.size();
      update();
      if (!input_error.ok()) break;
    }
    done_bytes = bytes_before + input.bytes;
  }
  if (send_error.ok()) send_error = producer.Finish();
  progress.Finish(fraction(), producer.counters().points_sent);

  const ProducerCounters& c = producer.counters();
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  NoteDuplicates(c, options.producer_id, err);
  if (!send_error.ok()) {
    return ReportProducerFailure(producer, send_error, config.json,
                                 "the same files (same --batch for CSV)", out, err);
  }
  if (!input_error.ok()) {
    fail(input_error);
    err << "gradctl: stopped there: " << AcknowledgedText(c) << " before it\n";
    return 1;
  }

  const double rate = seconds > 0 ? static_cast<double>(c.points_acked) / seconds : 0.0;
  const uint64_t last_sequence = producer.next_sequence() - 1;
  const auto& totals = producer.series_totals();
  const auto total_of = [&](const std::string& name) -> std::optional<uint64_t> {
    const auto it = totals.find(name);
    if (it == totals.end()) return std::nullopt;
    return it->second;
  };
  if (config.json) {
    google::protobuf::Struct root;
    google::protobuf::Struct* summary = (*root.mutable_fields())["summary"].mutable_struct_value();
    auto& inner = *summary->mutable_fields();
    auto* files = inner["files"].mutable_list_value();
    for (const Input& input : inputs) {
      auto& item = *files->add_values()->mutable_struct_value()->mutable_fields();
      item["file"].set_string_value(input.path);
      item["kind"].set_string_value(input.recording ? "recording" : "csv");
    }
    AddCounterFields(options, c, last_sequence, summary);
    inner["elapsed_seconds"].set_number_value(seconds);
    inner["points_per_second"].set_number_value(rate);
    auto* truncated = inner["truncated"].mutable_list_value();
    for (const std::string& t : truncations) truncated->add_values()->set_string_value(t);
    auto* series = inner["series"].mutable_list_value();
    for (const auto& [name, points] : series_points) {
      auto& item = *series->add_values()->mutable_struct_value()->mutable_fields();
      item["name"].set_string_value(name);
      item["points_sent"].set_number_value(static_cast<double>(points));
      if (const auto total = total_of(name)) {
        item["series_total"].set_number_value(static_cast<double>(*total));
      }
    }
    out << ToJson(root) << std::endl;
    return 0;
  }
  KeyValueBlock block;
  std::string files;
  for (const Input& input : inputs) {
    if (!files.empty()) files += ", ";
    files += input.path + (input.recording ? " (recording)" : " (CSV)");
  }
  block.Add("files", files);
  AddCounterLines(options, c, last_sequence, &block);
  for (const std::string& t : truncations) block.Add("truncated", t);
  block.Add("timing", config.max ? std::string("as fast as possible (--max)")
                                 : "recorded, x" + FormatNumber(config.speed));
  block.Add("elapsed", Fixed(seconds, 3) + " s");
  block.Add("throughput", Fixed(rate, 0) + " points/s");
  block.Print(out);
  if (!series_points.empty()) {
    out << '\n';
    Table table({"SERIES", "POINTS SENT", "SERIES TOTAL"}, {false, true, true});
    for (const auto& [name, points] : series_points) {
      const auto total = total_of(name);
      table.AddRow({name, std::to_string(points), total ? std::to_string(*total) : "-"});
    }
    table.Print(out);
  }
  out.flush();
  return 0;
}

}  // namespace gradientd::cli
