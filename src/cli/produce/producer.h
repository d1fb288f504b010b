// Exactly-once producing for gradctl: `produce` and `replay` send their
// batches through a Producer (what they report about it: producer_report.h).
//
// Every batch carries the producer's id and a sequence number (1, 2, ...
// unless told otherwise). The server applies a (producer id, sequence) at
// most once and acknowledges a repeat as a duplicate. So when the connection
// is lost (the server killed, restarted, the connection reset) or a batch
// is answered UNAVAILABLE, the Producer reconnects with exponential backoff
// (to the next of several servers, the nodes of one cluster: a failover)
// and resends every batch it has not seen acknowledged, in order, with its
// original sequence and identical content: each batch ends up applied
// exactly once. Unacknowledged batches are kept in memory, at most `window`
// of them.
#pragma once

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

namespace gradientd::cli {

// A random producer id: PREFIX-<16 hex digits>.
std::string GenerateProducerId(std::string_view prefix);

// ---------------------------------------------------------------------------
// Producer.

struct ProducerOptions {
  // HOST:PORT each, tried in order; after a failure, from the next one on.
  std::vector<std::string> servers;
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
  // Of the duplicates, those too far below the producer's highest sequence
  // for the server to tell (IngestAck.below_window): taken as applied.
  uint64_t below_window_batches = 0;
  uint64_t reconnects = 0;
  uint64_t failovers = 0;  // reconnects to another server than the one lost
  uint64_t batches_resent = 0;
  uint64_t queries_lost = 0;  // queries dropped with a lost connection
  uint64_t descent_errors = 0;
};

class Producer {
 public:
  using ReplyHandler = std::function<void(const v1::Response&)>;
  using AckHandler =
      std::function<void(const v1::IngestAck& ack, uint64_t sequence, std::size_t points)>;

  // Messages about the connection (lost, reconnected, failed over, giving
  // up) and warnings go to `log`, each line starting with "gradctl: ".
  Producer(ProducerOptions options, std::ostream& log);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Connects to the first server that answers. Servers that cannot be
  // reached are retried for retry_for. kInvalidArgument for a bad address.
  Status Start();

  // Sends a batch with the next sequence number (after recording it with
  // `save`). First, while `window` batches are unacknowledged, receives
  // replies. Errors are final (every later call returns the same):
  // kUnavailable when the connection could not be re-established within
  // retry_for; the server's error when it rejected a batch (see
  // rejection()); a --save write error. `event_time_unix_nanos`, when
  // given, is the batch's event time (sent and saved); else the server
  // stamps the batch when it receives it.
  Status Send(std::string_view series, std::span<const double> x, std::span<const double> y,
              std::optional<int64_t> event_time_unix_nanos = std::nullopt);

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
  // The server in use (or to be tried next).
  const std::string& server() const { return options_.servers[current_]; }
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
  // On a new connection: counts it and says so (a failover, or a
  // reconnect to the same server).
  void NoteReconnected(const Status& reason);
  // On a new connection: resends every unacknowledged batch.
  Status ResendUnacknowledged();
  // Connects with backoff until `deadline`, a round of every server (from
  // the current one) per attempt; the last error if it passes.
  Status ConnectUntil(std::chrono::steady_clock::time_point deadline);
  // Before each reconnection: moves to the next server, and backs off once
  // every server failed since the last reply; fails past retry_for.
  Status NextServer(const Status& why);
  // The final error: the connection to failed_server_ was lost because of
  // `why` and none came back; `last` (may be null) is the last attempt's
  // error.
  Status GaveUp(const Status& why, const Status* last) const;
  // A reply (not UNAVAILABLE) arrived: the connection works again.
  void OnReply();
  // A batch answered UNAVAILABLE: resent, like the rest, after reconnecting.
  Status OnUnavailable(const v1::Response& response);
  std::ostream& Log();

  ProducerOptions options_;
  std::ostream& log_;
  std::unique_ptr<client::Client> client_;
  std::size_t current_ = 0;    // in options_.servers
  std::string failed_server_;  // the server lost, until the next one is connected
  uint64_t losses_ = 0;        // connections lost (or answering UNAVAILABLE) since a reply
  std::chrono::nanoseconds retry_backoff_{0};
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

}  // namespace gradientd::cli
