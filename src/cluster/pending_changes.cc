#include "cluster/pending_changes.h"

#include <utility>
#include <vector>

#include "protocol/error_codes.h"

namespace gradientd::cluster {

uint64_t PendingChanges::Add(uint32_t shard, Clock::time_point deadline) {
  util::MutexLock lock(mu_);
  const uint64_t token = next_token_++;
  Entry& entry = entries_[token];
  entry.shard = shard;
  entry.deadline = deadline;
  return token;
}

void PendingChanges::Stored(uint64_t token, uint64_t sequence) {
  util::MutexLock lock(mu_);
  if (auto it = entries_.find(token); it != entries_.end()) it->second.sequence = sequence;
}

std::function<void(v1::Response)> PendingChanges::DecideLocked(uint64_t token, Entry& entry,
                                                               v1::Response response,
                                                               v1::Response* out) {
  if (entry.response) return nullptr;
  if (!entry.done) {
    entry.response = std::move(response);
    // Claimed within `unclaimed` of now, or forgotten (see Expire).
    entry.deadline = Clock::now();
    return nullptr;
  }
  auto done = std::move(entry.done);
  *out = std::move(response);
  entries_.erase(token);
  return done;
}

void PendingChanges::Decide(uint64_t token, v1::Response response) {
  std::function<void(v1::Response)> done;
  v1::Response out;
  {
    util::MutexLock lock(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end()) return;
    done = DecideLocked(token, it->second, std::move(response), &out);
  }
  if (done) done(std::move(out));
}

void PendingChanges::OnDecided(uint64_t token, std::function<void(v1::Response)> done) {
  v1::Response response;
  {
    util::MutexLock lock(mu_);
    auto it = entries_.find(token);
    if (it == entries_.end()) {
      // Never proposed here, or forgotten: nothing is known of it.
      protocol::SetError(Status::Internal("no change " + std::to_string(token) + " is pending"),
                         &response);
    } else if (!it->second.response) {
      it->second.done = std::move(done);
      return;
    } else {
      response = std::move(*it->second.response);
      entries_.erase(it);
    }
  }
  done(std::move(response));
}

void PendingChanges::Expire(Clock::time_point now, std::chrono::nanoseconds unclaimed) {
  std::vector<std::pair<std::function<void(v1::Response)>, v1::Response>> calls;
  {
    util::MutexLock lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      Entry& entry = it->second;
      if (entry.response) {
        it = now - entry.deadline > unclaimed ? entries_.erase(it) : std::next(it);
        continue;
      }
      if (now < entry.deadline) {
        ++it;
        continue;
      }
      v1::Response error;
      const std::string where =
          entry.sequence == 0
              ? "it was not acknowledged by the cluster's log, so it may or may not be applied"
              : "it is stored in shard " + std::to_string(entry.shard) + " at position " +
                    std::to_string(entry.sequence) +
                    " and will be applied, but this node has not applied it yet";
      protocol::SetError(Status::Unavailable("no outcome for this change in time: " + where +
                                             " (retry exactly-once batches with their producer "
                                             "id and sequence; query another node)"),
                         &error);
      const uint64_t token = it->first;
      ++it;
      v1::Response out;
      if (auto done = DecideLocked(token, entry, std::move(error), &out)) {
        calls.emplace_back(std::move(done), std::move(out));
      }
    }
  }
  for (auto& [done, response] : calls) done(std::move(response));
}

void PendingChanges::FailAll(const Status& status) {
  std::vector<std::pair<std::function<void(v1::Response)>, v1::Response>> calls;
  {
    util::MutexLock lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      const uint64_t token = it->first;
      Entry& entry = it->second;
      ++it;
      v1::Response error;
      protocol::SetError(status, &error);
      v1::Response out;
      if (auto done = DecideLocked(token, entry, std::move(error), &out)) {
        calls.emplace_back(std::move(done), std::move(out));
      }
    }
  }
  for (auto& [done, response] : calls) done(std::move(response));
}

std::size_t PendingChanges::size() {
  util::MutexLock lock(mu_);
  return entries_.size();
}

}  // namespace gradientd::cluster
