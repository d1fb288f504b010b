// What a recording holds (series, producers, time range, truncation), read
// through once: `gradctl inspect` prints it; `gradctl replay` checks every
// recording with it before sending and sizes its progress by it.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "core/status.h"

namespace gradientd::cli {

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
  int64_t first_time = 0;           // lowest time_unix_nanos (of the batches that have one)
  int64_t last_time = 0;            // highest
  uint64_t event_time_batches = 0;  // batches with an event time
  int64_t first_event_time = 0;     // lowest event_time_unix_nanos of those
  int64_t last_event_time = 0;      // highest
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
