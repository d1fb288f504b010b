#include "cli/failover_client.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "cli/output.h"
#include "client/server_list.h"

namespace gradientd::cli {

FailoverClient::FailoverClient(FailoverPolicy policy, std::ostream& log)
    : policy_(std::move(policy)), log_(&log), backoff_(policy_.backoff) {
  policy_.attempts_per_server = std::max(policy_.attempts_per_server, 1);
}

FailoverClient::~FailoverClient() = default;

Status FailoverClient::Connect() { return EnsureConnected(); }

Status FailoverClient::Call(v1::Request& request, v1::Response* response, Resend resend) {
  while (true) {
    if (Status s = EnsureConnected(); !s.ok()) return s;
    const Status t = client_->Call(request, response);
    if (!failover()) return t;
    const bool unavailable =
        t.ok() && response->has_error() && response->error().code() == v1::Error::UNAVAILABLE;
    if (t.ok() && !unavailable) {
      ResetBudget();
      return t;
    }
    // A broken TLS session or a garbled reply: not the node's availability.
    if (!t.ok() && t.code() != StatusCode::kUnavailable) return t;
    const Status why = t.ok() ? Status::Unavailable(server() + " answered " +
                                                    client::ResponseStatus(*response).message())
                              : t;
    if (resend == Resend::kIfUnsent) {
      client_.reset();
      return Status::Unavailable(why.message() +
                                 "; the request had been sent, so its outcome is unknown (it "
                                 "may have been applied): not resent to another server");
    }
    NoteFailure(why);
  }
}

Status FailoverClient::EnsureConnected() {
  while (!client_) {
    if (!TakeAttempt()) return Exhausted();
    if (!note_.empty()) {
      *log_ << "gradctl: " << note_ << "; trying " << server() << std::endl;
      note_.clear();
    }
    const Status s = client::Client::Connect(server(), policy_.connect, &client_);
    if (s.ok()) return s;
    client_.reset();
    if (!failover() || !client::TryAnotherServer(s)) return s;
    NoteFailure(s);
  }
  return Status::Ok();
}

bool FailoverClient::TakeAttempt() {
  if (!failover()) return true;  // one connection, never retried
  const std::size_t n = policy_.servers.size();
  if (attempts_ >= n * static_cast<std::size_t>(policy_.attempts_per_server)) return false;
  if (first_failure_) {
    const auto left = policy_.timeout - (Clock::now() - *first_failure_);
    if (left <= Clock::duration::zero()) return false;
    if (attempts_ % n == 0) {  // a new round: every address failed since the last sleep
      std::this_thread::sleep_for(std::min<std::chrono::nanoseconds>(backoff_, left));
      backoff_ = std::min<std::chrono::nanoseconds>(backoff_ * 2, policy_.max_backoff);
    }
  }
  ++attempts_;
  return true;
}

void FailoverClient::NoteFailure(const Status& why) {
  client_.reset();
  if (!first_failure_) first_failure_ = Clock::now();
  failures_ += (failures_.empty() ? "" : "; ") + why.message();
  note_ = server() + " failed (" + why.message() + ")";
  index_ = (index_ + 1) % policy_.servers.size();
}

void FailoverClient::ResetBudget() {
  attempts_ = 0;
  first_failure_.reset();
  backoff_ = policy_.backoff;
  failures_.clear();
  note_.clear();
}

Status FailoverClient::Exhausted() const {
  std::string list;
  for (const std::string& s : policy_.servers) list += (list.empty() ? "" : ", ") + s;
  const bool timed_out =
      first_failure_ && Clock::now() - *first_failure_ >= policy_.timeout &&
      attempts_ < policy_.servers.size() * static_cast<std::size_t>(policy_.attempts_per_server);
  return Status::Unavailable(
      "no server of " + list + " answered (" + Plural(attempts_, "attempt") +
      (timed_out ? ", stopped by --failover-timeout " + FormatDuration(policy_.timeout) : "") +
      "): " + failures_);
}

}  // namespace gradientd::cli
