// SeriesStore: every named series, safe to use from many threads.
//
// Series are spread over shards, each a mutex and a map, and every series
// has a mutex of its own, so the shared critical sections are O(1) lookups
// and O(1) merges; O(batch) work happens before, outside any lock.
// Series are never removed, so a looked-up series stays valid.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/series.h"

namespace gradientd::service {

class SeriesStore {
 public:
  // Runs fn(series) under the series' lock; false if there is no such series.
  bool WithSeries(std::string_view name, const std::function<void(core::Series&)>& fn);

  // Runs fn(series) under the series' lock, creating the series (empty) first
  // if needed, unless that would make more than `max_series` series: then
  // returns false and does nothing.
  bool WithNewOrExistingSeries(std::string_view name, const std::function<void(core::Series&)>& fn,
                               std::size_t max_series = SIZE_MAX);

  // Calls fn(name, series) for every series, in name order, each under its
  // lock (one at a time, so this is not an atomic snapshot of all series).
  void ForEach(const std::function<void(const std::string&, const core::Series&)>& fn);

  std::size_t size() const;

 private:
  struct Entry {
    std::mutex mu;
    core::Series series;
  };
  struct Shard {
    mutable std::mutex mu;
    std::unordered_map<std::string, std::unique_ptr<Entry>> entries;
  };
  static constexpr std::size_t kShards = 64;

  Shard& ShardFor(std::string_view name);
  Entry* Find(std::string_view name);
  Entry* FindOrCreate(std::string_view name, std::size_t max_series);

  std::array<Shard, kShards> shards_;
  std::atomic<std::size_t> count_{0};
};

}  // namespace gradientd::service
