// BucketWindow: the statistics of the points whose event time falls in a
// sliding window, exact to one bucket width.
//
// Event time is cut into buckets of width length/buckets, aligned to the
// Unix epoch (bucket index = floor(t / width)). The window ends with the
// newest bucket any batch fell in and holds the `buckets` buckets up to it.
// No subtraction: a bucket leaving the window is dropped, never taken out
// of a running total. The live buckets sit in the leaves of a fixed binary
// tree (slot = index mod buckets) whose inner nodes merge their children, so
// Total() is O(1), Add is O(log buckets) merges, and every result is a
// function of the buckets' contents alone: a window rebuilt from Buckets()
// answers bit for bit as the original. A value type; not synchronised.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "core/point_stats.h"
#include "core/status.h"

namespace gradientd::core {

class BucketWindow {
 public:
  static constexpr uint32_t kMaxBuckets = 4096;

  // Checks a window a client asked for: length > 0, 1 <= buckets <=
  // kMaxBuckets, length >= buckets (a bucket is at least 1 ns wide).
  static Status Validate(int64_t length_ns, uint32_t buckets);

  // The heap a window of `buckets` buckets holds (its slots and tree),
  // whatever it contains: what a server budgets for it.
  static std::size_t HeapBytes(uint32_t buckets);

  // An empty window. REQUIRES: Validate(length_ns, buckets).ok().
  BucketWindow(int64_t length_ns, uint32_t buckets);

  int64_t length_ns() const { return length_ns_; }
  uint32_t buckets() const { return buckets_; }
  int64_t bucket_width_ns() const { return width_ns_; }

  // Adds the batch's points to the bucket of `event_time_ns`, moving the
  // window forward first when that bucket is newer than every bucket seen.
  // Returns false (and changes nothing) when the bucket has already left
  // the window.
  bool Add(const PointStats& batch, int64_t event_time_ns);

  // The merged statistics of the live buckets. O(1).
  const PointStats& Total() const;
  // The event-time interval [start, end) the live buckets cover (saturated
  // at the int64 range); both 0 while the window has never had a batch.
  int64_t start_ns() const;
  int64_t end_ns() const;

  // For snapshots: the newest bucket index seen, and the non-empty live
  // buckets in index order. FromBuckets(..., latest_bucket(), Buckets())
  // rebuilds this window exactly.
  struct Bucket {
    int64_t index = 0;
    PointStats stats;
  };
  bool has_latest() const { return has_latest_; }
  int64_t latest_bucket() const { return latest_; }
  std::vector<Bucket> Buckets() const;
  // REQUIRES: a valid window; `buckets` in index order, each within the
  // window ending at `latest` (entries outside are ignored).
  static BucketWindow FromBuckets(int64_t length_ns, uint32_t buckets, bool has_latest,
                                  int64_t latest, const std::vector<Bucket>& contents);

 private:
  int64_t length_ns_;
  uint32_t buckets_;
  int64_t width_ns_;
  bool has_latest_ = false;
  int64_t latest_ = 0;
  uint32_t SlotOf(int64_t index) const;
  // Recomputes the inner nodes above a leaf.
  void UpdatePath(uint32_t slot);
  // Moves the window's end to bucket `index` (newer than latest_), dropping
  // the buckets that leave it.
  void MoveTo(int64_t index);

  std::vector<int64_t> slot_index_;  // the bucket index each leaf holds
  std::vector<PointStats> tree_;     // tree_[1] is the root; leaves from `leaves_`
  uint32_t leaves_ = 0;
};

}  // namespace gradientd::core
