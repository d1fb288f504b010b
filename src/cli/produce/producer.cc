#include "cli/produce/producer.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "cli/output.h"
#include "client/server_list.h"
#include "util/random.h"

namespace gradientd::cli {

using Clock = std::chrono::steady_clock;
using std::chrono::nanoseconds;

namespace {

bool IsUnavailable(const v1::Response& response) {
  return response.has_error() && response.error().code() == v1::Error::UNAVAILABLE;
}

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
    std::size_t index = current_;
    const Status s = client::ConnectToFirstAvailable(options_.servers, current_, options_.connect,
                                                     &client, &index);
    if (s.ok()) {
      client_ = std::move(client);
      current_ = index;
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
  if (options_.servers.empty()) return Fail(Status::InvalidArgument("no server address"));
  const auto start = Clock::now();
  std::unique_ptr<client::Client> client;
  std::size_t index = 0;
  Status s =
      client::ConnectToFirstAvailable(options_.servers, 0, options_.connect, &client, &index);
  if (s.ok()) {
    client_ = std::move(client);
    current_ = index;
    if (index != 0) Log() << "gradctl: connected to " << server() << std::endl;
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
  Log() << "gradctl: connected to " << server() << " after " << FormatDuration(Clock::now() - start)
        << std::endl;
  return s;
}

Status Producer::Reconnect(const Status& reason) {
  client_.reset();
  ++losses_;
  if (!lost_since_) {
    lost_since_ = Clock::now();
    retry_backoff_ = options_.initial_backoff;
    if (options_.servers.size() == 1) {
      Log() << "gradctl: " << reason.message() << "; reconnecting";
      if (options_.retry_for.count() > 0) {
        log_ << " (for up to " << FormatDuration(options_.retry_for) << ")";
      }
      log_ << std::endl;
    }
  }
  Status why = reason;
  while (true) {
    for (const Pending& p : pending_) {
      if (!p.batch) ++counters_.queries_lost;
    }
    pending_.clear();
    if (Status s = NextServer(why); !s.ok()) return s;
    if (Status s = ConnectUntil(*lost_since_ + options_.retry_for); !s.ok()) {
      if (s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied) {
        return Fail(Status(s.code(), "lost the connection to " + failed_server_ + " (" +
                                         why.message() + "); on reconnecting, " + s.message()));
      }
      return Fail(GaveUp(why, &s));
    }
    NoteReconnected(why);
    const Status sent = ResendUnacknowledged();
    if (sent.ok()) return sent;
    if (sent.code() != StatusCode::kUnavailable) return Fail(sent);
    client_.reset();
    ++losses_;
    why = sent;
    if (options_.servers.size() == 1) {
      Log() << "gradctl: " << sent.message() << "; reconnecting" << std::endl;
    }
  }
}

Status Producer::NextServer(const Status& why) {
  failed_server_ = server();
  const std::size_t n = options_.servers.size();
  // A failover: the next server first. The note comes once one answers.
  if (n > 1) current_ = (current_ + 1) % n;
  // Every server failed since the last reply (a server that answers
  // UNAVAILABLE reconnects at once): back off before the next round.
  if (losses_ > 1 && (losses_ - 1) % n == 0) {
    const auto deadline = *lost_since_ + options_.retry_for;
    const auto now = Clock::now();
    if (now >= deadline) return Fail(GaveUp(why, nullptr));
    if (on_wait_) on_wait_();
    std::this_thread::sleep_for(std::min<nanoseconds>(retry_backoff_, deadline - now));
    retry_backoff_ = std::min<nanoseconds>(retry_backoff_ * 2, options_.max_backoff);
  }
  return Status::Ok();
}

Status Producer::GaveUp(const Status& why, const Status* last) const {
  std::string message = "lost the connection to " + failed_server_ + " (" + why.message() +
                        ") and could not reconnect within " + FormatDuration(options_.retry_for);
  if (last != nullptr) message += ": " + last->message();
  return Status::Unavailable(std::move(message));
}

void Producer::OnReply() {
  lost_since_.reset();
  losses_ = 0;
}

void Producer::NoteReconnected(const Status& reason) {
  ++counters_.reconnects;
  if (server() != failed_server_) {
    ++counters_.failovers;
    Log() << "gradctl: " << failed_server_ << " failed (" << reason.message() << "): resending "
          << Plural(unacked_.size(), "unacknowledged batch") << " to " << server() << std::endl;
    return;
  }
  Log() << "gradctl: reconnected to " << server() << " after "
        << FormatDuration(Clock::now() - *lost_since_);
  if (!unacked_.empty()) {
    log_ << "; resending " << Plural(unacked_.size(), "unacknowledged batch") << " (sequence "
         << SequenceRange(unacked_.front().sequence, unacked_.back().sequence) << ")";
  }
  log_ << std::endl;
}

Status Producer::ResendUnacknowledged() {
  for (Outstanding& o : unacked_) {
    if (Status sent = client_->Send(o.request); !sent.ok()) return sent;
    pending_.push_back({true, nullptr});
    ++counters_.batches_resent;
  }
  return Status::Ok();
}

Status Producer::OnUnavailable(const v1::Response& response) {
  // The batch stays the oldest unacknowledged; the replies still expected
  // on this connection are given up with it.
  return Reconnect(
      Status::Unavailable(server() + " answered " + client::ResponseStatus(response).message()));
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
  if (IsUnavailable(response) && pending_.front().batch) return OnUnavailable(response);
  OnReply();
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
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + server()));
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
  if (!client_) return Reconnect(Status::Unavailable("not connected to " + server()));
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
      if (Status s = Reconnect(Status::Unavailable("not connected to " + server())); !s.ok()) {
        return s;
      }
    }
    Status t = client_->Call(request, response);
    if (t.ok() && IsUnavailable(*response) && options_.servers.size() > 1) {
      t = Status::Unavailable(server() + " answered " +
                              client::ResponseStatus(*response).message());
    }
    if (t.ok()) {
      OnReply();
      return t;
    }
    if (t.code() != StatusCode::kUnavailable) return Fail(t);
    if (Status s = Reconnect(t); !s.ok()) return s;
  }
}

}  // namespace gradientd::cli
