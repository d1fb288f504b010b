// Exactly-once producing for gradctl: `produce` and `replay` send their
// batches through a Producer.
//
// Every batch carries the producer's id and a sequence number (1, 2, ...
// unless told otherwise). The server applies a (producer id, sequence) at
// most once and acknowledges a repeat as a duplicate. So when the connection
// is lost (the server killed, restarted, the connection reset), the Producer
// reconnects with exponential backoff and resends every batch it has not
// seen acknowledged, with its original sequence and identical content: each
// batch ends up applied exactly once. Unacknowledged batches are kept in
// memory, at most `window` of them.
#pragma once

#include <boost/program_options.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "client/client.h"
#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "recording/recording.h"

namespace google::protobuf {
class Struct;
}  // namespace google::protobuf

namespace gradientd::cli {

class KeyValueBlock;  // cli/output.h

// ---------------------------------------------------------------------------
// Helpers shared by the commands.

// A duration for people: "850 ms", "12.3 s", "4 min 05 s", "2 h 03 min".
std::string FormatDuration(std::chrono::nanoseconds duration);

// A time since the Unix epoch as UTC ISO-8601 with milliseconds:
// "2024-05-01T12:00:00.123Z".
std::string FormatUtc(int64_t unix_nanos);

// A random producer id: PREFIX-<16 hex digits>.
std::string GenerateProducerId(std::string_view prefix);

// ---------------------------------------------------------------------------
// The exactly-once flags: --producer-id, --first-sequence, --retry-for.

void AddExactlyOnceOptions(boost::program_options::options_description* options);

struct ExactlyOnceFlags {
  std::string producer_id;  // empty: generate one
  uint64_t first_sequence = 1;
  std::chrono::nanoseconds retry_for = std::chrono::seconds(60);
};

// Reads the flags added by AddExactlyOnceOptions. A returned error is a usage
// error naming the flag.
Status ExactlyOnceFlagsFromVm(const boost::program_options::variables_map& vm,
                              ExactlyOnceFlags* flags);

// ---------------------------------------------------------------------------
// Producer.

struct ProducerOptions {
  std::string server;  // HOST:PORT
  client::ConnectOptions connect;  // TLS and token, for every (re)connection
  std::string producer_id;
  uint64_t first_sequence = 1;
  std::size_t window = 16;  // most batches unacknowledged
  // How long to keep trying to (re)connect after the connection is lost (or
  // cannot be made at the start), counted from the loss; 0 = give up at once.
  std::chrono::nanoseconds retry_for = std::chrono::seconds(60);
  std::chrono::nanoseconds initial_backoff = std::chrono::milliseconds(50);
  std::chrono::nanoseconds max_backoff = std::chrono::seconds(2);
  // Every batch is appended here once, when it is first sent (not owned;
  // may be null).
  storage::RecordingWriter* save = nullptr;
};

struct ProducerCounters {
  uint64_t batches_sent = 0;  // distinct batches sent (resends not counted)
  uint64_t points_sent = 0;
  uint64_t batches_acked = 0;      // acknowledged, duplicates included
  uint64_t points_acked = 0;       // points of the acknowledged batches, duplicates included
  uint64_t points_applied = 0;     // points the server applied now (IngestAck.accepted)
  uint64_t duplicate_batches = 0;  // acknowledged as applied before
  uint64_t duplicate_points = 0;
  uint64_t reconnects = 0;
  uint64_t batches_resent = 0;
  uint64_t queries_lost = 0;  // queries dropped with a lost connection
  uint64_t descent_errors = 0;
};

class Producer {
 public:
  using ReplyHandler = std::function<void(const v1::Response&)>;
  using AckHandler =
      std::function<void(const v1::IngestAck& ack, uint64_t sequence, std::size_t points)>;

  // Messages about the connection (lost, reconnected, giving up) and
  // warnings go to `log`, each line starting with "gradctl: ".
  Producer(ProducerOptions options, std::ostream& log);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Connects. A server that cannot be reached is retried for retry_for.
  // kInvalidArgument for a bad server address.
  Status Start();

  // Sends a batch with the next sequence number (after recording it with
  // `save`). First, while `window` batches are unacknowledged, receives
  // replies. Errors are final (every later call returns the same):
  // kUnavailable when the connection could not be re-established within
  // retry_for; the server's error when it rejected a batch (see
  // rejection()); a --save write error.
  Status Send(std::string_view series, std::span<const double> x, std::span<const double> y);

  // Sends a request that is not a batch (a progress query); `on_reply` gets
  // its response. A query outstanding when the connection is lost is
  // dropped, not resent (counters().queries_lost).
  Status SendQuery(v1::Request& request, ReplyHandler on_reply);

  // Receives replies until every batch is acknowledged and every query
  // answered.
  Status Finish();

  // After Finish: a request and its response, on a new connection if the
  // current one is lost (within retry_for).
  Status Call(v1::Request& request, v1::Response* response);

  // Called for every acknowledgement, duplicates included.
  void set_on_ack(AckHandler handler) { on_ack_ = std::move(handler); }
  // Called while waiting to reconnect (between attempts), e.g. to redraw
  // progress.
  void set_on_wait(std::function<void()> handler) { on_wait_ = std::move(handler); }
  // Called before each message to the log (e.g. to end a progress bar's line).
  void set_before_log(std::function<void()> handler) { before_log_ = std::move(handler); }

  const ProducerOptions& options() const { return options_; }
  const ProducerCounters& counters() const { return counters_; }
  // The sequence number the next batch gets.
  uint64_t next_sequence() const { return next_sequence_; }
  // Batches sent and not acknowledged, and the lowest of their sequences.
  std::size_t unacknowledged() const { return unacked_.size(); }
  uint64_t first_unacknowledged() const {
    return unacked_.empty() ? next_sequence_ : unacked_.front().sequence;
  }
  // The series' point count in the latest acknowledgement for it.
  const std::map<std::string, uint64_t>& series_totals() const { return series_totals_; }
  // The server's Error reply to a rejected batch, and that batch's sequence.
  const std::optional<v1::Response>& rejection() const { return rejection_; }
  uint64_t rejected_sequence() const { return rejected_sequence_; }

 private:
  struct Outstanding {
    uint64_t sequence = 0;
    std::size_t points = 0;
    v1::Request request;
  };
  struct Pending {
    bool batch = false;    // else a query
    ReplyHandler handler;  // queries
  };

  Status Fail(Status status);
  // Receives and handles one reply; reconnects if the connection is lost.
  Status ReceiveOne();
  // Handles a reply to the oldest outstanding request.
  Status HandleReply(const v1::Response& response);
  // After a rejection: collects the replies in flight, without reconnecting.
  void Drain();
  // Connects again (with backoff, within retry_for of the loss) and resends
  // every unacknowledged batch. `reason` is why the connection was lost.
  Status Reconnect(const Status& reason);
  // Connects with backoff until `deadline`; the last error if it passes.
  Status ConnectUntil(std::chrono::steady_clock::time_point deadline);
  std::ostream& Log();

  ProducerOptions options_;
  std::ostream& log_;
  std::unique_ptr<client::Client> client_;
  uint64_t next_sequence_ = 1;
  std::deque<Outstanding> unacked_;
  std::deque<Pending> pending_;  // replies expected on the current connection, in order
  // When the connection was lost, until a reply arrives on a new one.
  std::optional<std::chrono::steady_clock::time_point> lost_since_;
  ProducerCounters counters_;
  std::map<std::string, uint64_t> series_totals_;
  std::optional<v1::Response> rejection_;
  uint64_t rejected_sequence_ = 0;
  Status failure_;  // sticky
  AckHandler on_ack_;
  std::function<void()> on_wait_;
  std::function<void()> before_log_;
};

// Reports why a Producer stopped, to `err`: the server's rejection of a batch
// (also printed as JSON to `out` with `json`), or `status`; then what was
// acknowledged before, the unacknowledged batches, and how to resume
// (`resume` says what to send again, e.g. "the same input (same --batch)").
// Returns gradctl's failure exit code, 1.
int ReportProducerFailure(const Producer& producer, const Status& status, bool json,
                          std::string_view resume, std::ostream& out, std::ostream& err);

// Starts `producer`; on failure says why on `err` and returns the exit code
// (2 for a bad --server, 1 otherwise), else 0.
int StartProducer(Producer& producer, const std::string& server, std::ostream& err);

// "N points in M batches were sent and acknowledged".
std::string AcknowledgedText(const ProducerCounters& counters);

// "1 batch", "3 batches", "2 points".
std::string Plural(uint64_t n, std::string_view noun);
// "4", or "4..9".
std::string SequenceRange(uint64_t first, uint64_t last);

// What every sending command (produce, replay) says about its exactly-once
// run: on `err`, a note when batches came back as duplicates; in its summary,
// the producer id, sequences and counters, as JSON fields of `summary` or as
// lines of `block`. `last_sequence` is the last one sent.
void NoteDuplicates(const ProducerCounters& counters, const std::string& producer_id,
                    std::ostream& err);
void AddCounterFields(const ProducerOptions& options, const ProducerCounters& counters,
                      uint64_t last_sequence, google::protobuf::Struct* summary);
void AddCounterLines(const ProducerOptions& options, const ProducerCounters& counters,
                     uint64_t last_sequence, KeyValueBlock* block);

// ---------------------------------------------------------------------------
// `gradctl produce`.

// Where produce's points come from.
class PointSource {
 public:
  virtual ~PointSource() = default;
  // As CsvPointReader::Next: OK with no points at the end.
  virtual Status Next(std::vector<double>* x, std::vector<double>* y, std::size_t max) = 0;
};

struct ProduceConfig {
  std::string server;
  client::ConnectOptions connect;
  std::string series;
  bool json = false;
  std::size_t batch = 8192;
  std::size_t window = 16;
  uint64_t progress_every = 0;
  std::string source_description;  // for the summary
  ExactlyOnceFlags exactly_once;
  std::string save_path;  // --save; empty: none
};

// The flags produce adds to the exactly-once ones: --save.
void AddProduceSaveOption(boost::program_options::options_description* options);

// Sends the source's points and prints a summary (readable, or JSON with
// config.json) to `out`; diagnostics to `err`. Returns a gradctl exit code.
int RunProduce(const ProduceConfig& config, PointSource& source, std::ostream& out,
               std::ostream& err);

}  // namespace gradientd::cli
