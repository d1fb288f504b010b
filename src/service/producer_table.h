// ProducerTable: the exactly-once producers, so that a retried batch is
// applied once. For each producer id the sequences applied (the highest and
// a window below it, SequenceWindow), the log token of the last batch
// applied, and when its last batch came. A producer
// is forgotten once no batch of it has come for `expiry` (a retry of one of
// its batches then counts again); a new producer is refused only while the
// table is full of unexpired ones. Thread-safe.
//
// Lock order: a producer's mutex may be held while taking the table's
// (Drop); the table's is held only with a TryLock of a producer's.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "gradientd/v1/journal.pb.h"
#include "service/sequence_window.h"
#include "util/mutex.h"

namespace gradientd::service {

class ProducerTable {
 public:
  struct Producer {
    explicit Producer(uint64_t window) : sequences(window) {}

    util::Mutex mu;
    SequenceWindow sequences GUARDED_BY(mu);
    // The log token of the last batch applied: once it is durable, so is
    // every batch of the producer applied before it.
    uint64_t last_token GUARDED_BY(mu) = 0;
    // When its last batch was applied (Unix nanoseconds); only grows.
    std::atomic<int64_t> last_seen{0};
    bool removed GUARDED_BY(mu) = false;  // no longer in the table
  };

  // `window`: sequences below a producer's highest that are told apart (a
  // positive multiple of 64).
  ProducerTable(std::size_t max_producers, std::chrono::nanoseconds expiry, uint64_t window);

  // The wall clock expiry uses (Unix nanoseconds); the system clock unless
  // set (tests). Set before use.
  void SetClock(std::function<int64_t()> now_unix_nanos) { now_ = std::move(now_unix_nanos); }
  int64_t Now() const { return now_(); }

  // How many producers the table holds now (expired ones included until
  // they are evicted to make room).
  std::size_t size() EXCLUDES(mu_);

  // Whether `producer`, last seen as it says, has expired at `now`.
  bool Expired(const Producer& producer, int64_t now) const;

  // Calls fn(producer, now, created) with the producer `id` locked (and
  // not removed), created if needed (making room by evicting expired
  // producers); `now` is the time of the batch: `at`, or the clock's. Fails,
  // calling nothing, when the table is full of unexpired producers.
  using LockedFn = std::function<void(Producer& producer, int64_t now, bool created)>;
  Status WithProducer(const std::string& id, const LockedFn& fn,
                      std::optional<int64_t> at = std::nullopt) EXCLUDES(mu_);

  // Forgets a producer created for a batch that was then refused.
  void Drop(const std::string& id, Producer& producer) REQUIRES(producer.mu) EXCLUDES(mu_);

  // Replay: the producer's batch `sequence` comes to be applied at `time`.
  // Records it and returns true, or returns false when the producer's window
  // says it was applied before (a log that holds it twice: it counts once).
  bool ApplyBatch(const std::string& id, uint64_t sequence, int64_t time) EXCLUDES(mu_);
  // Recovery: the producers of a snapshot.
  void Restore(const v1::Snapshot& snapshot) EXCLUDES(mu_);
  // Adds the unexpired producers to `snapshot`.
  void AddTo(v1::Snapshot* snapshot) EXCLUDES(mu_);

 private:
  std::shared_ptr<Producer> FindOrCreate(const std::string& id) REQUIRES(mu_);
  // Recovery's FindOrCreate: any last_seen may come, so the bound is reset.
  std::shared_ptr<Producer> FindOrCreateUnbounded(const std::string& id) EXCLUDES(mu_);
  // Erases the expired producers that are not in use.
  void EvictExpired(int64_t now) REQUIRES(mu_);
  // The producer `id`, created if there is room; *now: the time of the batch
  // (`at`, or the clock's).
  Status FindForBatch(const std::string& id, std::optional<int64_t> at, int64_t* now,
                      std::shared_ptr<Producer>* producer, bool* created) EXCLUDES(mu_);

  const std::size_t max_producers_;
  const std::chrono::nanoseconds expiry_;
  const uint64_t window_;
  std::function<int64_t()> now_;

  util::Mutex mu_;
  std::unordered_map<std::string, std::shared_ptr<Producer>> producers_ GUARDED_BY(mu_);
  // No producer in the table was last seen before this (a lower bound), so
  // none can have expired before it + expiry: a full table of live
  // producers refuses new ones without scanning.
  int64_t oldest_seen_bound_ GUARDED_BY(mu_) = INT64_MIN;
};

}  // namespace gradientd::service
