#include "cli/replay/inspect.h"

#include <google/protobuf/struct.pb.h>

#include <chrono>

#include "cli/output.h"
#include "cli/replay/recording_summary.h"
#include "protocol/series_name.h"

namespace gradientd::cli {
namespace {

namespace po = boost::program_options;

constexpr std::string_view kInspectSummary = "summarise recordings";
constexpr std::string_view kInspectDescription =
    "Reads each FILE, a gradientd recording, and prints its size, batches, points, series\n"
    "(points and batches each), time range (first and last batch, UTC, and the duration),\n"
    "event-time range (of the batches that carry one), producers (batches and sequence\n"
    "range each) and, for a recording cut short by a crash, where its last whole record\n"
    "ends. --json prints one JSON object per file.\n"
    "Needs no server. Exit 1 if a FILE cannot be read or is not a recording.";

void PrintSummaryTables(const RecordingSummary& s, std::ostream& out) {
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
    block.Add("duration",
              FormatDuration(std::chrono::nanoseconds(s.last_time - s.first_time)) + " (" +
                  FormatFixed(static_cast<double>(s.last_time - s.first_time) / 1e9, 3) + " s)");
  } else {
    block.Add("time range", "none (no batch has a time)");
  }
  if (s.event_time_batches > 0) {
    block.Add("event times", Plural(s.event_time_batches, "batch") + " of " +
                                 std::to_string(s.batches) + ", " + FormatUtc(s.first_event_time) +
                                 " to " + FormatUtc(s.last_event_time));
  } else {
    block.Add("event times", "none (the server stamped every batch on receipt)");
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
  PrintSummaryTables(s, out);
}

using JsonFields = google::protobuf::Map<std::string, google::protobuf::Value>;

void AddTimeFields(const RecordingSummary& s, JsonFields& f) {
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
}

void AddEventTimeFields(const RecordingSummary& s, JsonFields& f) {
  f["event_time_batches"] = JsonNumber(s.event_time_batches);
  if (s.event_time_batches > 0) {
    f["first_event_time"].set_string_value(FormatUtc(s.first_event_time));
    f["last_event_time"].set_string_value(FormatUtc(s.last_event_time));
    f["first_event_time_unix_nanos"].set_string_value(std::to_string(s.first_event_time));
    f["last_event_time_unix_nanos"].set_string_value(std::to_string(s.last_event_time));
  } else {
    f["first_event_time"].set_null_value(google::protobuf::NULL_VALUE);
    f["last_event_time"].set_null_value(google::protobuf::NULL_VALUE);
  }
}

void AddProducerList(const RecordingSummary& s, JsonFields& f) {
  auto* producers = f["producers"].mutable_list_value();
  for (const auto& [id, info] : s.producers) {
    auto& item = *producers->add_values()->mutable_struct_value()->mutable_fields();
    item["id"].set_string_value(id);
    item["batches"] = JsonNumber(info.batches);
    item["first_sequence"] = JsonNumber(info.first_sequence);
    item["last_sequence"] = JsonNumber(info.last_sequence);
  }
}

std::string SummaryJson(const RecordingSummary& s) {
  google::protobuf::Struct root;
  auto& f = *root.mutable_fields();
  f["file"].set_string_value(s.path);
  f["bytes"] = JsonNumber(s.file_bytes);
  f["batches"] = JsonNumber(s.batches);
  f["points"] = JsonNumber(s.points);
  auto* series = f["series"].mutable_list_value();
  for (const auto& [name, info] : s.series) {
    auto& item = *series->add_values()->mutable_struct_value()->mutable_fields();
    item["name"].set_string_value(protocol::SeriesOrDefault(name));
    item["points"] = JsonNumber(info.points);
    item["batches"] = JsonNumber(info.batches);
  }
  AddTimeFields(s, f);
  AddEventTimeFields(s, f);
  AddProducerList(s, f);
  if (s.truncated) {
    auto& t = *f["truncated"].mutable_struct_value()->mutable_fields();
    t["offset"] = JsonNumber(s.truncated_offset);
    t["whole_records"] = JsonNumber(s.batches);
    t["incomplete_bytes"] = JsonNumber(s.truncated_bytes);
  } else {
    f["truncated"].set_null_value(google::protobuf::NULL_VALUE);
  }
  return ToJson(root);
}

int Inspect(CommandContext& context, const po::variables_map& vm) {
  InspectConfig config;
  if (Status s = ParseInspectConfig(vm, &config); !s.ok()) return context.Usage(s.message());
  return RunInspect(config, context.out, context.err);
}

}  // namespace

Command InspectCommand() {
  return {"inspect",  "FILE...", kInspectSummary, kInspectDescription,
          &NoOptions, &Inspect,  Operands::kFiles};
}

Status ParseInspectConfig(const po::variables_map& vm, InspectConfig* config) {
  *config = InspectConfig{};
  config->json = vm["json"].as<bool>();
  if (vm.count("files")) config->files = vm["files"].as<std::vector<std::string>>();
  if (config->files.empty()) return Status::InvalidArgument("no FILE given");
  return Status::Ok();
}

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

}  // namespace gradientd::cli
