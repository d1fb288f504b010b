// LivePoints: what the dashboard draws that the statistics do not keep, in
// memory only (never journaled): for a bounded set of tracked series, a
// uniform reservoir sample of the points each has seen since it became
// tracked, and a ring of (time, loss, gradient norm) entries.
//
// A series becomes tracked when its page polls (Watch) or, while a slot is
// free, with its first batch after start (Observe), so a small server's
// series have samples before anyone looks. A Watch of an untracked series
// evicts the tracked series watched least recently, if none watched it for
// watch_for; otherwise it is refused. Memory: at most max_series entries of
// sample_points * 16 B + history_entries * 24 B (about 70 KiB each with the
// defaults, 4.4 MiB in all), whatever the number of series.
//
// Thread-safe: Observe runs from the service's batch observer under the
// series' lock, so it only takes this store's own short lock: 16-31 ns per
// 8,192-point batch with 1 or 2 threads (live_points_bench), against tens
// of microseconds to absorb the batch, so one lock does not serialize
// ingest; a read-mostly index with per-series locks measured twice as slow.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gradientd/v1/gradientd.pb.h"
#include "util/mutex.h"

namespace gradientd::http {

struct LivePointsLimits {
  std::size_t max_series = 64;
  std::size_t sample_points = 2000;
  std::size_t history_entries = 900;  // 15 minutes at one a second
  // A series counts as watched this long after its page last polled.
  std::chrono::nanoseconds watch_for = std::chrono::seconds(60);
  // History entries are at least this far apart.
  std::chrono::nanoseconds history_every = std::chrono::seconds(1);
};

struct HistoryEntry {
  int64_t unix_nanos = 0;
  double loss = 0;
  double gradient_norm = 0;
};

struct LiveSample {
  uint64_t seen = 0;  // points offered to the reservoir since tracking began
  std::vector<std::pair<double, double>> points;
};

// Uniform sampling without replacement of at most `capacity` points from a
// stream of batches (Li's Algorithm L: the cost is per kept point, not per
// point seen). Not thread-safe.
class Reservoir {
 public:
  explicit Reservoir(std::size_t capacity) : capacity_(capacity) {}
  void Add(const v1::PointBatch& batch, std::mt19937_64& random);
  uint64_t seen() const { return seen_; }
  const std::vector<std::pair<double, double>>& points() const { return points_; }

 private:
  // Moves next_ to the index of the next point to keep.
  void Skip(std::mt19937_64& random);

  std::size_t capacity_;
  uint64_t seen_ = 0;
  uint64_t next_ = 0;  // once full: the stream index of the next point kept
  double w_ = 0;
  std::vector<std::pair<double, double>> points_;
};

class LivePoints {
 public:
  explicit LivePoints(LivePointsLimits limits = {}, uint64_t seed = std::random_device{}());

  // The service's batch observer: samples `batch` if `series` is tracked,
  // or starts tracking it while a slot is free.
  void Observe(const std::string& series, const v1::PointBatch& batch);

  // A page of `series` polled at `now_unix_nanos`: tracks it from now on
  // (see above); false when every slot is watched by others.
  bool Watch(const std::string& series, int64_t now_unix_nanos);

  // The sample of a tracked series; nullopt when it is not tracked.
  std::optional<LiveSample> Sample(const std::string& series) const;

  // Appends `entry` to a tracked series' history unless the last entry is
  // less than history_every older; the oldest entry goes when it is full.
  void RecordHistory(const std::string& series, const HistoryEntry& entry);
  std::vector<HistoryEntry> History(const std::string& series) const;

  // The service's reset observer: empties a tracked series' sample and
  // history (it stays tracked, so later batches are sampled afresh).
  void Forget(const std::string& series);

  std::size_t tracked() const;
  const LivePointsLimits& limits() const { return limits_; }

 private:
  struct Tracked {
    explicit Tracked(std::size_t capacity) : reservoir(capacity) {}
    Reservoir reservoir;
    std::deque<HistoryEntry> history;
    std::optional<int64_t> last_watched;
  };
  // Makes room for one more entry if it can, evicting an entry unwatched
  // at `now`.
  bool MakeRoom(int64_t now) REQUIRES(mu_);

  const LivePointsLimits limits_;
  mutable util::Mutex mu_;
  std::mt19937_64 random_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Tracked> series_ GUARDED_BY(mu_);
};

}  // namespace gradientd::http
