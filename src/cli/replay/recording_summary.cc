#include "cli/replay/recording_summary.h"

#include <algorithm>
#include <memory>

#include "recording/recording.h"

namespace gradientd::cli {

namespace {

void AddEventTime(int64_t t, RecordingSummary* s) {
  if (s->event_time_batches++ == 0) {
    s->first_event_time = s->last_event_time = t;
  } else {
    s->first_event_time = std::min(s->first_event_time, t);
    s->last_event_time = std::max(s->last_event_time, t);
  }
}

void AddBatch(const v1::RecordedBatch& batch, RecordingSummary* s) {
  const auto n = static_cast<uint64_t>(batch.x_size());
  ++s->batches;
  s->points += n;
  RecordingSummary::Series& series = s->series[batch.series()];
  ++series.batches;
  series.points += n;
  RecordingSummary::Producer& producer = s->producers[batch.producer_id()];
  if (producer.batches++ == 0) {
    producer.first_sequence = producer.last_sequence = batch.sequence();
  } else {
    producer.first_sequence = std::min(producer.first_sequence, batch.sequence());
    producer.last_sequence = std::max(producer.last_sequence, batch.sequence());
  }
  if (batch.has_event_time_unix_nanos()) AddEventTime(batch.event_time_unix_nanos(), s);
  if (batch.time_unix_nanos() != 0) {
    if (!s->has_time) {
      s->first_time = s->last_time = batch.time_unix_nanos();
      s->has_time = true;
    } else {
      s->first_time = std::min(s->first_time, batch.time_unix_nanos());
      s->last_time = std::max(s->last_time, batch.time_unix_nanos());
    }
  }
}

}  // namespace

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
        AddBatch(batch, summary);
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

}  // namespace gradientd::cli
