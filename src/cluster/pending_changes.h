// PendingChanges: the changes this node proposed to the cluster's log that
// have no response yet, by token. A change is decided once: by the applier
// that applied it here (its outcome), by a publish that failed, or by its
// deadline; the response then goes to whoever waits with OnDecided.
// Thread-safe.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <unordered_map>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "util/mutex.h"

namespace gradientd::cluster {

class PendingChanges {
 public:
  using Clock = std::chrono::steady_clock;

  // A new change of `shard`, undecided until `deadline`: its token (> 0).
  uint64_t Add(uint32_t shard, Clock::time_point deadline) EXCLUDES(mu_);
  // The change is stored at `sequence` of its shard's stream.
  void Stored(uint64_t token, uint64_t sequence) EXCLUDES(mu_);
  // Its response; ignored when it was decided before.
  void Decide(uint64_t token, v1::Response response) EXCLUDES(mu_);
  // Calls done(response) once the change is decided (inline if it is).
  void OnDecided(uint64_t token, std::function<void(v1::Response)> done) EXCLUDES(mu_);
  // Decides, with an UNAVAILABLE Error saying what is known of it, every
  // change whose deadline has passed; forgets decided responses nobody
  // came for within `unclaimed` (their connection went away).
  void Expire(Clock::time_point now, std::chrono::nanoseconds unclaimed) EXCLUDES(mu_);
  // Decides every change left with `status` (shutdown).
  void FailAll(const Status& status) EXCLUDES(mu_);

  std::size_t size() EXCLUDES(mu_);

 private:
  struct Entry {
    uint32_t shard = 0;
    uint64_t sequence = 0;  // 0: not known to be stored
    Clock::time_point deadline;
    std::optional<v1::Response> response;
    std::function<void(v1::Response)> done;
  };
  // Decides `entry` if it is not yet; returns the callback to call with its
  // response, outside the lock (null: none yet).
  std::function<void(v1::Response)> DecideLocked(uint64_t token, Entry& entry,
                                                 v1::Response response, v1::Response* out)
      REQUIRES(mu_);

  util::Mutex mu_;
  uint64_t next_token_ GUARDED_BY(mu_) = 1;
  std::unordered_map<uint64_t, Entry> entries_ GUARDED_BY(mu_);
};

}  // namespace gradientd::cluster
