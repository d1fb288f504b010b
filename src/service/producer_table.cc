#include "service/producer_table.h"

#include <algorithm>
#include <utility>
#include <vector>

namespace gradientd::service {

ProducerTable::ProducerTable(std::size_t max_producers, std::chrono::nanoseconds expiry,
                             uint64_t window)
    : max_producers_(max_producers), expiry_(expiry), window_(window), now_([] {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
            .count();
      }) {}

bool ProducerTable::Expired(const Producer& producer, int64_t now) const {
  const int64_t seen = producer.last_seen.load();
  return seen <= now && now - seen >= expiry_.count();
}

std::size_t ProducerTable::size() {
  util::MutexLock lock(mu_);
  return producers_.size();
}

std::shared_ptr<ProducerTable::Producer> ProducerTable::FindOrCreate(const std::string& id) {
  auto& slot = producers_[id];
  if (!slot) slot = std::make_shared<Producer>(window_);
  return slot;
}

void ProducerTable::EvictExpired(int64_t now) {
  // Nothing can have expired yet: do not scan.
  if (oldest_seen_bound_ > now - expiry_.count()) return;
  int64_t oldest = INT64_MAX;
  for (auto it = producers_.begin(); it != producers_.end();) {
    const std::shared_ptr<Producer> producer = it->second;
    // One in use (locked) is not evicted: its batch may be refreshing it.
    bool evict = false;
    if (producer->mu.TryLock()) {
      evict = Expired(*producer, now);
      if (evict) producer->removed = true;
      producer->mu.Unlock();
    }
    if (evict) {
      it = producers_.erase(it);
      continue;
    }
    oldest = std::min(oldest, producer->last_seen.load());
    ++it;
  }
  oldest_seen_bound_ = oldest;
}

Status ProducerTable::FindForBatch(const std::string& id, std::optional<int64_t> at,
                                   int64_t* now_out, std::shared_ptr<Producer>* producer,
                                   bool* created) {
  util::MutexLock lock(mu_);
  // Read under the table's lock, so that a batch that finds its producer
  // evicted has a time at which recovery also sees it expired.
  const int64_t now = *now_out = at ? *at : now_();
  auto it = producers_.find(id);
  *created = it == producers_.end();
  if (!*created) {
    *producer = it->second;
    return Status::Ok();
  }
  if (producers_.size() >= max_producers_) EvictExpired(now);
  if (producers_.size() >= max_producers_) {
    return Status::ResourceExhausted(
        "the server's table of " + std::to_string(max_producers_) +
        " exactly-once producers is full of producers that sent a batch in the last " +
        std::to_string(std::chrono::duration_cast<std::chrono::seconds>(expiry_).count()) +
        "s: the batch of new producer '" + id +
        "' was not applied (retry later, or send without a producer_id)");
  }
  *producer = FindOrCreate(id);
  (*producer)->last_seen = now;
  oldest_seen_bound_ = std::min(oldest_seen_bound_, now);  // should the clock step back
  return Status::Ok();
}

Status ProducerTable::WithProducer(const std::string& id, const LockedFn& fn,
                                   std::optional<int64_t> at) {
  // A producer found but removed (evicted, or dropped by a refused batch)
  // before we locked it is looked up again; each retry needs another
  // thread to have removed it meanwhile, so a few suffice.
  for (int attempt = 0; attempt < 64; ++attempt) {
    int64_t now = 0;
    std::shared_ptr<Producer> producer;  // outlives the lock, should it be erased
    bool created = false;
    if (Status s = FindForBatch(id, at, &now, &producer, &created); !s.ok()) return s;
    util::MutexLock lock(producer->mu);
    if (producer->removed) continue;
    fn(*producer, now, created);
    return Status::Ok();
  }
  return Status::Internal("producer '" + id + "' is being evicted and re-created concurrently");
}

void ProducerTable::Drop(const std::string& id, Producer& producer) {
  util::MutexLock lock(mu_);
  auto it = producers_.find(id);
  if (it != producers_.end() && it->second.get() == &producer) {
    producers_.erase(it);
    producer.removed = true;
  }
}

bool ProducerTable::ApplyBatch(const std::string& id, uint64_t sequence, int64_t time) {
  const std::shared_ptr<Producer> producer = FindOrCreateUnbounded(id);
  util::MutexLock lock(producer->mu);
  // The same rule as a batch that comes: a producer expired when its batch
  // came was forgotten, and counts from scratch. A journal holds only
  // batches that were new when they came, so it finds each new again.
  if (Expired(*producer, time)) producer->sequences.Clear();
  if (producer->sequences.Check(sequence) != SequenceWindow::Seen::kNew) return false;
  producer->sequences.Mark(sequence);
  producer->last_seen = std::max(producer->last_seen.load(), time);
  return true;
}

void ProducerTable::Restore(const v1::Snapshot& snapshot) {
  for (const v1::ProducerState& p : snapshot.producers()) {
    const std::shared_ptr<Producer> producer = FindOrCreateUnbounded(p.producer_id());
    util::MutexLock lock(producer->mu);
    producer->sequences.Restore(p.last_sequence(), p.applied_below());
    // Snapshots of older versions have no time: seen at recovery (the only
    // time recovery reads the clock).
    producer->last_seen = p.last_seen_unix_nanos() != 0 ? p.last_seen_unix_nanos() : now_();
  }
}

std::shared_ptr<ProducerTable::Producer> ProducerTable::FindOrCreateUnbounded(
    const std::string& id) {
  util::MutexLock lock(mu_);
  // Its last_seen may be anything: the bound no longer holds.
  oldest_seen_bound_ = INT64_MIN;
  return FindOrCreate(id);
}

void ProducerTable::AddTo(v1::Snapshot* snapshot) {
  const int64_t now = now_();
  // Collected under the table's lock, read under each producer's (the lock
  // order), so that each ProducerState is one producer's state.
  std::vector<std::pair<std::string, std::shared_ptr<Producer>>> live;
  {
    util::MutexLock lock(mu_);
    for (const auto& [id, producer] : producers_) {
      // An expired producer is forgotten: recovery need not know it.
      if (!Expired(*producer, now)) live.emplace_back(id, producer);
    }
  }
  for (const auto& [id, producer] : live) {
    v1::ProducerState* p = snapshot->add_producers();
    p->set_producer_id(id);
    util::MutexLock lock(producer->mu);
    p->set_last_sequence(producer->sequences.highest());
    p->set_applied_below(producer->sequences.AppliedBelow());
    p->set_last_seen_unix_nanos(producer->last_seen.load());
  }
}

}  // namespace gradientd::service
