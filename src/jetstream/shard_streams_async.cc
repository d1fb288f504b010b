// ShardStreams' pipelined publishes: an entry per outstanding message id,
// sent by one sender thread, completed by libnats' ack handler.
#include <nats/nats.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "jetstream/shard_streams.h"

namespace gradientd::jetstream {
namespace {

constexpr std::size_t kMaxMessageIdBytes = 256;
// How soon a message refused (no stream leader, no connection) goes again:
// from 100 ms, doubling each time up to 1 s (an election takes 4-9 s).
constexpr std::chrono::milliseconds kRetryWait{100};
constexpr std::chrono::milliseconds kMaxRetryWait{1000};
// How often the sender looks for messages unanswered or past their give-up.
constexpr std::chrono::milliseconds kScanPeriod{50};

// Errors worth sending again: the stream or the connection is not there yet.
bool Retryable(natsStatus status) {
  switch (status) {
    case NATS_TIMEOUT:
    case NATS_NO_SERVER:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
      return true;
    default:
      return false;
  }
}

}  // namespace

void ShardStreams::PublishAsync(uint32_t shard, std::string data, const std::string& message_id,
                                Clock::time_point give_up, PublishCallback callback) {
  if (shard >= options_.shards) {
    return callback(Status::InvalidArgument("no shard " + std::to_string(shard)), {});
  }
  if (message_id.empty() || message_id.size() > kMaxMessageIdBytes) {
    return callback(Status::InvalidArgument("a message id must be 1 to 256 bytes"), {});
  }
  util::MutexLock lock(async_mu_);
  while (!closing_ && outstanding_.size() >= options_.max_outstanding && Clock::now() < give_up) {
    async_cv_.WaitUntil(async_mu_, give_up);
  }
  Status refused;
  if (closing_) {
    refused = Status::Unavailable("the cluster connection is closing: the message was not sent");
  } else if (outstanding_.size() >= options_.max_outstanding) {
    refused = Status::Unavailable("too many messages outstanding: the message was not sent");
  } else if (outstanding_.count(message_id) != 0) {
    refused = Status::FailedPrecondition("message id " + message_id + " is already outstanding");
  }
  if (!refused.ok()) {
    lock.Unlock();
    return callback(refused, {});
  }
  Outstanding& entry = outstanding_[message_id];
  entry.shard = shard;
  entry.data = std::move(data);
  entry.callback = std::move(callback);
  entry.give_up = give_up;
  entry.resend_at = Clock::now();
  fresh_.push_back(message_id);
  async_cv_.SignalAll();
}

void ShardStreams::CancelPublishes(const Status& status) {
  std::vector<PublishCallback> callbacks;
  {
    util::MutexLock lock(async_mu_);
    for (auto& [id, entry] : outstanding_) callbacks.push_back(std::move(entry.callback));
    outstanding_.clear();
    fresh_.clear();
    callbacks_running_ += static_cast<int>(callbacks.size());
    async_cv_.SignalAll();
  }
  for (PublishCallback& callback : callbacks) RunCallback(callback, status, {});
  util::MutexLock lock(async_mu_);
  while (callbacks_running_ > 0) async_cv_.Wait(async_mu_);
}

void ShardStreams::RunCallback(PublishCallback& callback, const Status& status,
                               const PublishResult& result) {
  callback(status, result);
  util::MutexLock lock(async_mu_);
  --callbacks_running_;
  async_cv_.SignalAll();
}

void ShardStreams::Complete(const std::string& id, const Status& status,
                            const PublishResult& result) {
  PublishCallback callback;
  {
    util::MutexLock lock(async_mu_);
    auto it = outstanding_.find(id);
    if (it == outstanding_.end()) return;  // answered before, or cancelled
    callback = std::move(it->second.callback);
    outstanding_.erase(it);
    ++callbacks_running_;
    async_cv_.SignalAll();
  }
  RunCallback(callback, status, result);
}

void ShardStreams::OnAck(jsCtx*, natsMsg* msg, jsPubAck* ack, jsPubAckErr* error, void* closure) {
  auto* self = static_cast<ShardStreams*>(closure);
  const char* id = nullptr;
  if (msg != nullptr && natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK && id != nullptr) {
    const std::string message_id = id;
    if (ack != nullptr) {
      self->Complete(message_id, Status::Ok(), {ack->Sequence, ack->Duplicate});
    } else if (error != nullptr && Retryable(error->Err)) {
      util::MutexLock lock(self->async_mu_);
      auto it = self->outstanding_.find(message_id);
      if (it != self->outstanding_.end()) {
        it->second.awaiting = false;
        it->second.backoff = std::clamp(it->second.backoff * 2, kRetryWait, kMaxRetryWait);
        it->second.resend_at = Clock::now() + it->second.backoff;
      }
    } else if (error != nullptr) {
      std::string text = std::string("publishing to a shard: ") + natsStatus_GetText(error->Err);
      if (error->ErrText != nullptr) text += std::string(" (") + error->ErrText + ")";
      if (error->ErrCode != 0) {
        text += " (JetStream error " + std::to_string(static_cast<int>(error->ErrCode)) + ")";
      }
      self->Complete(message_id, Status::Internal(text), {});
    }
  }
  natsMsg_Destroy(msg);
}

void ShardStreams::SendLoop() {
  auto next_scan = Clock::now();
  std::vector<std::string> due;
  std::vector<PublishCallback> expired;
  while (true) {
    bool unanswered = false;
    {
      util::MutexLock lock(async_mu_);
      while (!closing_ && fresh_.empty() && Clock::now() < next_scan) {
        async_cv_.WaitUntil(async_mu_, next_scan);
      }
      if (closing_) return;
      due.swap(fresh_);
      const auto now = Clock::now();
      if (now >= next_scan) {
        next_scan = now + kScanPeriod;
        for (auto it = outstanding_.begin(); it != outstanding_.end();) {
          if (it->second.give_up <= now) {
            expired.push_back(std::move(it->second.callback));
            it = outstanding_.erase(it);
            continue;
          }
          if (it->second.resend_at <= now) {
            due.push_back(it->first);
            unanswered = unanswered || it->second.awaiting;
          }
          ++it;
        }
        callbacks_running_ += static_cast<int>(expired.size());
        if (!expired.empty()) async_cv_.SignalAll();
      }
    }
    for (PublishCallback& callback : expired) {
      RunCallback(callback,
                  Status::Unavailable("no stream acknowledged the message before its give-up "
                                      "time: it may or may not be stored"),
                  {});
    }
    expired.clear();
    if (unanswered) ForgetUnanswered(&due);
    SendDue(&due);
    due.clear();
  }
}

void ShardStreams::ForgetUnanswered(std::vector<std::string>* due) {
  // libnats keeps waiting for the answers a killed leader never sends, and
  // they count against its MaxPending: take its whole list back, so every
  // message awaiting an answer goes again (stored once, by its id).
  natsMsgList pending;
  if (js_PublishAsyncGetPendingList(&pending, async_js_) == NATS_OK) {
    natsMsgList_Destroy(&pending);
  }
  util::MutexLock lock(async_mu_);
  for (const auto& [id, entry] : outstanding_) {
    if (entry.awaiting) due->push_back(id);
  }
}

void ShardStreams::SendDue(std::vector<std::string>* due) {
  std::sort(due->begin(), due->end());
  due->erase(std::unique(due->begin(), due->end()), due->end());
  std::string data;
  for (const std::string& id : *due) {
    uint32_t shard = 0;
    {
      util::MutexLock lock(async_mu_);
      auto it = outstanding_.find(id);
      if (it == outstanding_.end()) continue;
      // Unanswered for the timeout: it goes again (JetStream stores it once).
      it->second.resend_at = Clock::now() + options_.timeout;
      it->second.awaiting = true;
      shard = it->second.shard;
      data = it->second.data;
    }
    const std::string subject = Subject(shard);
    jsPubOptions pub;
    jsPubOptions_Init(&pub);
    pub.MsgId = id.c_str();
    pub.MaxWait = options_.timeout.count();
    const natsStatus s = js_PublishAsync(async_js_, subject.c_str(), data.data(),
                                         static_cast<int>(data.size()), &pub);
    if (s != NATS_OK) {
      util::MutexLock lock(async_mu_);
      auto it = outstanding_.find(id);
      if (it != outstanding_.end()) {
        it->second.awaiting = false;
        it->second.backoff = std::clamp(it->second.backoff * 2, kRetryWait, kMaxRetryWait);
        it->second.resend_at = Clock::now() + it->second.backoff;
      }
    }
  }
}

}  // namespace gradientd::jetstream
