// `gradctl replay` (streams recordings and CSV files to a server, exactly
// once, with the recorded timing) and `gradctl inspect` (summarises
// recordings). The recording format is recording/recording.h.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstdint>
#include <map>
#include <ostream>
#include <string>
#include <string_view>
#include <vector>

#include "cli/csv_reader.h"
#include "cli/producer.h"
#include "core/status.h"

namespace gradientd::cli {

inline constexpr std::string_view kReplaySummary =
    "stream recordings (or CSV files) to the server, with their timing";
inline constexpr std::string_view kReplayDescription =
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
    "Exactly once, as produce: the replay is one producer (a new random id, printed at the\n"
    "start, or --producer-id) numbering its batches 1, 2, ... (--first-sequence); a lost\n"
    "connection is retried for --retry-for and the unacknowledged batches are resent, and\n"
    "replaying again with the same --producer-id skips what the server already applied.\n"
    "Recordings are read through once before anything is sent, so a corrupt one is refused\n"
    "whole. A recording truncated by a crash (cut mid-record) is replayed up to its last whole\n"
    "record, with a notice saying where it stops (byte offset, whole records). Replaying a\n"
    "recording into a fresh server reproduces the original statistics exactly (same\n"
    "batches, same order).\n"
    "\n"
    "Progress goes to stderr: on a terminal a progress bar (percentage of the points, or of\n"
    "the bytes when CSV files are involved; points/s; ETA), otherwise a line every 2 s.";

inline constexpr std::string_view kInspectSummary = "summarise recordings";
inline constexpr std::string_view kInspectDescription =
    "Reads each FILE, a gradientd recording, and prints its size, batches, points, series\n"
    "(points and batches each), time range (first and last batch, UTC, and the duration),\n"
    "producers (batches and sequence range each) and, for a recording cut short by a\n"
    "crash, where its last whole record ends. --json prints one JSON object per file.\n"
    "Needs no server. Exit 1 if a FILE cannot be read or is not a recording.";

void AddReplayOptions(boost::program_options::options_description* options);
void AddInspectOptions(boost::program_options::options_description* options);

enum class ProgressMode {
  kAuto,   // a bar when stderr is a terminal, else lines
  kBar,    // one line redrawn with \r
  kLines,  // a line every interval
  kNone,
};

struct ReplayConfig {
  std::string server;
  client::ConnectOptions connect;  // set by gradctl from the global TLS and token flags
  std::string series;   // CSV files' series; with `rename`, every batch's
  bool rename = false;  // --series was given
  bool json = false;
  std::vector<std::string> files;
  double speed = 1.0;
  bool max = false;  // as fast as possible
  std::size_t batch = 8192;
  std::size_t window = 16;
  CsvOptions csv;
  ExactlyOnceFlags exactly_once;
  ProgressMode progress = ProgressMode::kAuto;
  std::chrono::nanoseconds progress_interval = std::chrono::seconds(2);
};

// Reads replay's command line (global options included). A returned error is
// a usage error.
Status ParseReplayConfig(const boost::program_options::variables_map& vm, ReplayConfig* config);

// Replays; the summary goes to `out`, progress and diagnostics to `err`.
// Returns a gradctl exit code.
int RunReplay(const ReplayConfig& config, std::ostream& out, std::ostream& err);

struct InspectConfig {
  std::vector<std::string> files;
  bool json = false;
};

Status ParseInspectConfig(const boost::program_options::variables_map& vm, InspectConfig* config);
int RunInspect(const InspectConfig& config, std::ostream& out, std::ostream& err);

// What a recording holds: inspect prints it; replay uses it for progress.
struct RecordingSummary {
  struct Series {
    uint64_t points = 0;
    uint64_t batches = 0;
  };
  struct Producer {
    uint64_t batches = 0;
    uint64_t first_sequence = 0;  // lowest
    uint64_t last_sequence = 0;   // highest
  };
  std::string path;
  uint64_t file_bytes = 0;
  uint64_t batches = 0;
  uint64_t points = 0;
  std::map<std::string, Series> series;       // "" is shown as "default"
  std::map<std::string, Producer> producers;  // "" = batches without a producer id
  bool has_time = false;                      // some batch has a time
  int64_t first_time = 0;  // lowest time_unix_nanos (of the batches that have one)
  int64_t last_time = 0;   // highest
  bool truncated = false;
  uint64_t truncated_offset = 0;  // where the incomplete record starts
  uint64_t truncated_bytes = 0;
  std::string truncation_message;
};

// Reads the whole recording. Errors: the file cannot be opened, is not a
// recording, has a corrupt record, or a record whose x and y differ in
// length. A truncated file is not an error (summary->truncated).
Status SummarizeRecording(const std::string& path, RecordingSummary* summary);

}  // namespace gradientd::cli
