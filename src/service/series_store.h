// SeriesStore: every named series, safe to use from many threads.
//
// Series are spread over shards, each a mutex and a map, and every series
// has a mutex of its own, so the shared critical sections are O(1) lookups
// and O(1) merges; O(batch) work happens before, outside any lock. A sorted
// index of the names serves listings in name order, a page at a time.
// Series are never removed, so a looked-up series stays valid; a series is
// created only by a change that succeeds (a refused change creates nothing).
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/series.h"
#include "util/mutex.h"

namespace gradientd::service {

class SeriesStore {
 public:
  // Runs fn(series) under the series' lock; false if there is no such series.
  bool WithSeries(std::string_view name, const std::function<void(core::Series&)>& fn);

  // Runs fn(series) under the series' lock. If there is no such series, runs
  // it on a new empty one instead, which becomes a series only if fn returns
  // true (fn returns whether it changed the series; it must leave it as it
  // was when it returns false); unless the new series would make more than
  // `max_series`: then returns false and calls nothing. For an existing
  // series fn's result is ignored.
  bool WithNewOrExistingSeries(std::string_view name, const std::function<bool(core::Series&)>& fn,
                               std::size_t max_series = SIZE_MAX);

  // Calls fn(name, series) for every series, in name order, each under its
  // lock (one at a time, so this is not an atomic snapshot of all series).
  void ForEach(const std::function<void(const std::string&, const core::Series&)>& fn);

  // Calls fn(name, series) for the series whose names start with `prefix`
  // and come after `after` (byte order), in name order, each under its lock,
  // until fn returns false or `limit` series have been visited.
  void ForEachAfter(std::string_view after, std::string_view prefix, std::size_t limit,
                    const std::function<bool(const std::string&, const core::Series&)>& fn);

  std::size_t size() const;

 private:
  struct Entry {
    util::Mutex mu;
    core::Series series GUARDED_BY(mu);
  };
  struct Shard {
    util::Mutex mu;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries GUARDED_BY(mu);
    // Serialises the creation of series in this shard, so that a name is
    // created once, and only by a change that succeeds.
    util::Mutex create_mu ACQUIRED_BEFORE(mu);
  };
  static constexpr std::size_t kShards = 64;

  Shard& ShardFor(std::string_view name);
  Entry* Find(std::string_view name);

  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> count_{0};
  // Every series by name; the keys view the shards' keys (stable).
  mutable util::SharedMutex index_mu_;
  std::map<std::string_view, std::pair<const std::string*, Entry*>, std::less<>> index_
      GUARDED_BY(index_mu_);
};

}  // namespace gradientd::service
