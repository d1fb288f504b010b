#include "core/window.h"

#include <algorithm>
#include <limits>
#include <string>

namespace gradientd::core {
namespace {

// floor(a / b) for b > 0, also for negative a.
int64_t FloorDiv(int64_t a, int64_t b) {
  const int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
constexpr int64_t kMax = std::numeric_limits<int64_t>::max();

// `index * width` clamped to the int64 range (width > 0).
int64_t SaturatedProduct(int64_t index, int64_t width) {
  int64_t v = 0;
  if (__builtin_mul_overflow(index, width, &v)) return index < 0 ? kMin : kMax;
  return v;
}

uint32_t PowerOfTwoAtLeast(uint32_t n) {
  uint32_t p = 1;
  while (p < n) p *= 2;
  return p;
}

// b - a for a <= b, without overflow.
uint64_t Distance(int64_t a, int64_t b) {
  return static_cast<uint64_t>(b) - static_cast<uint64_t>(a);
}

}  // namespace

Status BucketWindow::Validate(int64_t length_ns, uint32_t buckets) {
  if (length_ns <= 0) {
    return Status::InvalidArgument("window length must be > 0, got " + std::to_string(length_ns) +
                                   " ns");
  }
  if (buckets < 1 || buckets > kMaxBuckets) {
    return Status::InvalidArgument("window buckets must be in 1.." + std::to_string(kMaxBuckets) +
                                   ", got " + std::to_string(buckets));
  }
  if (length_ns < static_cast<int64_t>(buckets)) {
    return Status::InvalidArgument("window length " + std::to_string(length_ns) +
                                   " ns is shorter than its " + std::to_string(buckets) +
                                   " buckets of at least 1 ns each");
  }
  return Status::Ok();
}

std::size_t BucketWindow::HeapBytes(uint32_t buckets) {
  return buckets * sizeof(int64_t) +
         2 * std::size_t{PowerOfTwoAtLeast(buckets)} * sizeof(PointStats);
}

BucketWindow::BucketWindow(int64_t length_ns, uint32_t buckets)
    : length_ns_(length_ns),
      buckets_(buckets),
      width_ns_(length_ns / buckets),
      slot_index_(buckets, 0),
      tree_(2 * static_cast<std::size_t>(PowerOfTwoAtLeast(buckets))),
      leaves_(PowerOfTwoAtLeast(buckets)) {}

uint32_t BucketWindow::SlotOf(int64_t index) const {
  const int64_t k = static_cast<int64_t>(buckets_);
  const int64_t r = index % k;
  return static_cast<uint32_t>(r < 0 ? r + k : r);
}

void BucketWindow::UpdatePath(uint32_t slot) {
  for (std::size_t i = (leaves_ + slot) / 2; i >= 1; i /= 2) {
    tree_[i] = tree_[2 * i];
    tree_[i].Merge(tree_[2 * i + 1]);
  }
}

void BucketWindow::MoveTo(int64_t index) {
  if (!has_latest_ || Distance(latest_, index) >= buckets_) {
    std::fill(tree_.begin(), tree_.end(), PointStats());
  } else {
    const uint64_t moved = Distance(latest_, index);
    for (uint64_t d = 1; d <= moved; ++d) {
      const uint32_t slot = SlotOf(static_cast<int64_t>(static_cast<uint64_t>(latest_) + d));
      if (tree_[leaves_ + slot].empty()) continue;
      tree_[leaves_ + slot] = PointStats();
      UpdatePath(slot);
    }
  }
  has_latest_ = true;
  latest_ = index;
}

bool BucketWindow::Add(const PointStats& batch, int64_t event_time_ns) {
  const int64_t index = FloorDiv(event_time_ns, width_ns_);
  if (!has_latest_ || index > latest_) {
    MoveTo(index);
  } else if (Distance(index, latest_) >= buckets_) {
    return false;  // older than the window
  }
  const uint32_t slot = SlotOf(index);
  slot_index_[slot] = index;
  tree_[leaves_ + slot].Merge(batch);
  UpdatePath(slot);
  return true;
}

const PointStats& BucketWindow::Total() const { return tree_[1]; }

int64_t BucketWindow::start_ns() const {
  if (!has_latest_) return 0;
  const int64_t span = static_cast<int64_t>(buckets_) - 1;
  if (latest_ < kMin + span) return kMin;
  return SaturatedProduct(latest_ - span, width_ns_);
}

int64_t BucketWindow::end_ns() const {
  if (!has_latest_) return 0;
  if (latest_ == kMax) return kMax;
  return SaturatedProduct(latest_ + 1, width_ns_);
}

std::vector<BucketWindow::Bucket> BucketWindow::Buckets() const {
  std::vector<Bucket> out;
  for (uint32_t slot = 0; slot < buckets_; ++slot) {
    const PointStats& stats = tree_[leaves_ + slot];
    if (!stats.empty()) out.push_back({slot_index_[slot], stats});
  }
  std::sort(out.begin(), out.end(),
            [](const Bucket& a, const Bucket& b) { return a.index < b.index; });
  return out;
}

BucketWindow BucketWindow::FromBuckets(int64_t length_ns, uint32_t buckets, bool has_latest,
                                       int64_t latest, const std::vector<Bucket>& contents) {
  BucketWindow w(length_ns, buckets);
  w.has_latest_ = has_latest;
  w.latest_ = latest;
  if (!has_latest) return w;
  for (const Bucket& bucket : contents) {
    if (bucket.index > latest || Distance(bucket.index, latest) >= buckets) continue;
    const uint32_t slot = w.SlotOf(bucket.index);
    w.slot_index_[slot] = bucket.index;
    w.tree_[w.leaves_ + slot] = bucket.stats;
  }
  for (std::size_t i = w.leaves_ - 1; i >= 1; --i) {
    w.tree_[i] = w.tree_[2 * i];
    w.tree_[i].Merge(w.tree_[2 * i + 1]);
  }
  return w;
}

}  // namespace gradientd::core
