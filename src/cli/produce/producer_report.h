// What the sending commands (produce, replay) share around their Producer:
// its options from the exactly-once flags, starting it, and what they say
// about the run (duplicates, counters in the summary, why it stopped).
#pragma once

#include <chrono>
#include <cstdint>
#include <ostream>
#include <string>
#include <string_view>

#include "cli/produce/producer.h"
#include "cli/send_flags.h"
#include "core/status.h"

namespace google::protobuf {
class Struct;
}  // namespace google::protobuf

namespace gradientd::cli {

class KeyValueBlock;  // cli/output.h

// The Producer's options for a sending command, to the --server list
// `server`; without --producer-id, a new random id PREFIX-<16 hex digits>.
// With several addresses and no --retry-for, the Producer fails over for
// `failover_timeout`. kInvalidArgument for a bad --server.
Status MakeProducerOptions(const std::string& server, std::chrono::nanoseconds failover_timeout,
                           const client::ConnectOptions& connect, std::size_t window,
                           const ExactlyOnceFlags& flags, std::string_view id_prefix,
                           ProducerOptions* options);

// "gradctl: --server SERVER: why" on `err`; returns the usage exit code, 2.
int ReportBadServer(const std::string& server, const Status& status, std::ostream& err);

// "gradctl: producer id ID (sequences from N)", on `err`.
void AnnounceProducerId(const ProducerOptions& options, std::ostream& err);

// Starts `producer`; on failure says why on `err` and returns the exit code
// (2 for a bad --server, 1 otherwise), else 0.
int StartProducer(Producer& producer, const std::string& server, std::ostream& err);

// Reports why a Producer stopped, to `err`: the server's rejection of a batch
// (also printed as JSON to `out` with `json`), or `status`; then what was
// acknowledged before, the unacknowledged batches, and how to resume
// (`resume` says what to send again, e.g. "the same input (same --batch)").
// Returns gradctl's failure exit code, 1.
int ReportProducerFailure(const Producer& producer, const Status& status, bool json,
                          std::string_view resume, std::ostream& out, std::ostream& err);

// "N points in M batches were sent and acknowledged".
std::string AcknowledgedText(const ProducerCounters& counters);

// On `err`, a note when batches came back as duplicates.
void NoteDuplicates(const ProducerCounters& counters, const std::string& producer_id,
                    std::ostream& err);

// The producer id, sequences and counters in a summary, as JSON fields of
// `summary` or as lines of `block`. `last_sequence` is the last one sent.
void AddCounterFields(const ProducerOptions& options, const ProducerCounters& counters,
                      uint64_t last_sequence, google::protobuf::Struct* summary);
void AddCounterLines(const ProducerOptions& options, const ProducerCounters& counters,
                     uint64_t last_sequence, KeyValueBlock* block);

}  // namespace gradientd::cli
