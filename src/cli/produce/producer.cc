#include "cli/produce/producer.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "cli/output.h"
#include "util/random.h"

namespace gradientd::cli {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace {

int64_t UnixNanosNow() {
  return std::chrono::duration_cast<nanoseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace

std::string GenerateProducerId(std::string_view prefix) {
  return std::string(prefix) + "-" + util::RandomHex64();
}

// ---------------------------------------------------------------------------
// Producer.

Producer::Producer(ProducerOptions options, std::ostream& log)
    : options_(std::move(options)), log_(log), next_sequence_(options_.first_sequence) {
  if (options_.window < 1) options_.window = 1;
}

Producer::~Producer() = default;

std::ostream& Producer::Log() {
  if (before_log_) before_log_();
  return log_;
}

Status Producer::Fail(Status status) {
  if (failure_.ok()) failure_ = std::move(status);
  client_.reset();
  return failure_;
}

Status Producer::ConnectUntil(Clock::time_point deadline) {
  nanoseconds backoff = options_.initial_backoff;
  while (true) {
    std::unique_ptr<client::Client> client;
    const Status s = client::Client::Connect(options_.server, options_.connect, &client);
    if (s.ok()) {
      client_ = std::move(client);
      return s;
    }
    // Only an unreachable server is worth waiting for; a bad address or a
    // refused token will not get better.
    if (s.code() != StatusCode::kUnavailable) return s;
    const auto now = Clock::now();
    if (now >= deadline) return s;
    if (on_wait_) on_wait_();
    std::this_thread::sleep_for(std::min<nanoseconds>(backoff, deadline - now));
    backoff = std::min<nanoseconds>(backoff * 2, options_.max_backoff);
  }
}

Status Producer::Start() {
  const auto start = Clock::now();
  std::unique_ptr<client::Client> client;
  Status s = client::Client::Connect(options_.server, options_.connect, &client);
  if (s.ok()) {
    client_ = std::move(client);
    return s;
  }
  if (s.code() != StatusCode::kUnavailable || options_.retry_for.count() <= 0) return Fail(s);
  Log() << "gradctl: " << s.message() << "; retrying for up to "
        << FormatDuration(options_.retry_for) << std::endl;
  s = ConnectUntil(start + options_.retry_for);
  if (!s.ok()) {
    if (s.code() != StatusCode::kUnavailable) return Fail(s);
    return Fail(Status::Unavailable("gave up after " + FormatDuration(options_.retry_for) + ": " +
                                    s.message()));
  }
  Log() << "gradctl: connected to " << options_.server << " after "
        << FormatDuration(Clock::now() - start) << std::endl;
  return s;
}

Status Producer::Reconnect(const Status& reason) {
  client_.reset();
  if (!lost_since_) {
    lost_since_ = Clock::now();
    Log() << "gradctl: " << reason.message() << "; reconnecting";
    if (options_.retry_for.count() > 0) {
      log_ << " (for up to " << FormatDuration(options_.retry_for) << ")";
    }
    log_ << std::endl;
  }
  const auto deadline = *lost_since_ + options_.retry_for;
  while (true) {
    for (const Pending& p : pending_) {
      if (!p.batch) ++counters_.queries_lost;
    }
    pending_.clear();
    if (Status s = ConnectUntil(deadline); !s.ok()) {
      if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
        return Fail(Status(s.code(), "lost the connection to " + options_.server + " (" +
                                         reason.message() + "); on reconnecting, " + s.message()));
      }
      std::string message = "lost the connection to " + options_.server + " (" + reason.message() +
                            ") and could not reconnect within " +
                            FormatDuration(options_.retry_for) + ": " + s.message();
      return Fail(Status::Unavailable(std::move(message)));
    }
    const Status sent = ResendUnacknowledged();
    if (sent.ok()) return sent;
    if (sent.code() != StatusCode::kUnavailable) return Fail(sent);
    client_.reset();
    Log() << "gradctl: " << sent.message() << "; reconnecting" << std::endl;
  }
}

Status Producer::ResendUnacknowledged() {
  ++counters_.reconnects;
  Log() << "gradctl: reconnected to " << options_.server << " after "
        << FormatDuration(Clock::now() - *lost_since_);
  if (!unacked_.empty()) {
    log_ << "; resending " << Plural(unacked_.size(), "unacknowledged batch") << " (sequence "
         << SequenceRange(unacked_.front().sequence, unacked_.back().sequence) << ")";
  }
  log_ << std::endl;
  for (Outstanding& o : unacked_) {
    if (Status sent = client_->Send(o.request); !sent.ok()) return sent;
    pending_.push_back({true, nullptr});
    ++counters_.batches_resent;
  }
  return Status::Ok();
}

Status Producer::HandleReply(const v1::Response& response) {
  Pending p = std::move(pending_.front());
  pending_.pop_front();
  if (!p.batch) {
    if (p.handler) p.handler(response);
    return Status::Ok();
  }
  Outstanding o = std::move(unacked_.front());
  unacked_.pop_front();
  if (response.has_error()) {
    if (!rejection_) {
      rejection_ = response;
      rejected_sequence_ = o.sequence;
    }
    return client::ResponseStatus(response);
  }
  if (!response.has_ack()) {
    return Status::Internal("unexpected reply to a point batch: " + ToJson(response));
  }
  const v1::IngestAck& ack = response.ack();
  ++counters_.batches_acked;
  counters_.points_acked += o.points;
  counters_.points_applied += ack.accepted();
  if (ack.duplicate()) {
    ++counters_.duplicate_batches;
    counters_.duplicate_points += o.points;
    if (ack.below_window()) ++counters_.below_window_batches;
  }
  series_totals_[ack.series()] = ack.total();
  if (!ack.descent_error().empty() && counters_.descent_errors++ == 0) {
    Log() << "gradctl: warning: batch " << o.sequence
          << ": the points were applied but the descent steps were refused: " << ack.descent_error()
          << '\n';
  }
  if (on_ack_) on_ack_(ack, o.sequence, o.points);
  return Status::Ok();
}

void Producer::Drain() {
  v1::Response response;
  while (client_ && !pending_.empty()) {
    response.Clear();
    if (!client_->Receive(&response).ok()) break;
    if (!HandleReply(response).ok() && !rejection_) break;
  }
}

Status Producer::ReceiveOne() {
  if (!failure_.ok()) return failure_;
  if (!client_) return Fail(Status::Internal("not connected"));
  v1::Response response;
  const Status t = client_->Receive(&response);
  if (!t.ok()) {
    if (t.code() == StatusCode::kUnavailable) return Reconnect(t);
    return Fail(t);
  }
  lost_since_.reset();
  const Status s = HandleReply(response);
  if (!s.ok()) {
    // A rejected batch: send no more, but collect the replies in flight
    // (their batches may have been applied). Anything else: the replies
    // cannot be matched to the requests any more.
    if (rejection_) Drain();
    return Fail(s);
  }
  return s;
}

Status Producer::Send(std::string_view series, std::span<const double> x, std::span<const double> y,
                      std::optional<int64_t> event_time_unix_nanos) {
  if (!failure_.ok()) return failure_;
  while (unacked_.size() >= options_.window) {
    if (Status s = ReceiveOne(); !s.ok()) return s;
  }
  Outstanding o;
  o.sequence = next_sequence_++;
  o.points = x.size();
  v1::PointBatch* batch = o.request.mutable_ingest();
  batch->set_series(std::string(series));
  batch->mutable_x()->Assign(x.begin(), x.end());
  batch->mutable_y()->Assign(y.begin(), y.end());
  batch->set_producer_id(options_.producer_id);
  batch->set_sequence(o.sequence);
  if (event_time_unix_nanos) batch->set_event_time_unix_nanos(*event_time_unix_nanos);
  if (options_.save != nullptr) {
    v1::RecordedBatch record;
    record.set_series(batch->series());
    *record.mutable_x() = batch->x();
    *record.mutable_y() = batch->y();
    record.set_producer_id(options_.producer_id);
    record.set_sequence(o.sequence);
    record.set_time_unix_nanos(UnixNanosNow());
    if (event_time_unix_nanos) record.set_event_time_unix_nanos(*event_time_unix_nanos);
    // Written at once: a recording cut short by a crash of gradctl still has
    // every batch sent before it (Append alone buffers up to 1 MiB).
    Status s = options_.save->Append(record);
    if (s.ok()) s = options_.save->Flush();
    if (!s.ok()) return Fail(s);
  }
  ++counters_.batches_sent;
  counters_.points_sent += o.points;
  unacked_.push_back(std::move(o));
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + options_.server));
  const Status t = client_->Send(unacked_.back().request);
  if (!t.ok()) {
    // Reconnecting resends this batch with the others.
    if (t.code() == StatusCode::kUnavailable) return Reconnect(t);
    return Fail(t);
  }
  pending_.push_back({true, nullptr});
  return t;
}

Status Producer::SendQuery(v1::Request& request, ReplyHandler on_reply) {
  if (!failure_.ok()) return failure_;
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + options_.server));
  const Status t = client_->Send(request);
  if (!t.ok()) {
    if (t.code() == StatusCode::kUnavailable) {
      ++counters_.queries_lost;
      return Reconnect(t);
    }
    return Fail(t);
  }
  pending_.push_back({false, std::move(on_reply)});
  return t;
}

Status Producer::Finish() {
  while (!pending_.empty() || !unacked_.empty()) {
    if (Status s = ReceiveOne(); !s.ok()) return s;
  }
  return failure_;
}

Status Producer::Call(v1::Request& request, v1::Response* response) {
  if (Status s = Finish(); !s.ok()) return s;
  while (true) {
    if (!client_) {
      if (Status s = Reconnect(Status::Unavailable("not connected to " + options_.server));
          !s.ok()) {
        return s;
      }
    }
    const Status t = client_->Call(request, response);
    if (t.ok()) {
      lost_since_.reset();
      return t;
    }
    if (t.code() != StatusCode::kUnavailable) return Fail(t);
    if (Status s = Reconnect(t); !s.ok()) return s;
  }
}

}  // namespace gradientd::cli
