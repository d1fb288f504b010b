#include "http/live_points.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace gradientd::http {
namespace {

// Uniform in (0, 1): the logarithms below need it nonzero.
double OpenUnit(std::mt19937_64& random) {
  const double u = std::uniform_real_distribution<double>(0.0, 1.0)(random);
  return u > 0 ? u : std::numeric_limits<double>::min();
}

}  // namespace

void Reservoir::Add(const v1::PointBatch& batch, std::mt19937_64& random) {
  if (capacity_ == 0) return;
  const auto size = static_cast<uint64_t>(std::min(batch.x_size(), batch.y_size()));
  uint64_t i = 0;
  for (; i < size && points_.size() < capacity_; ++i) {
    const int at = static_cast<int>(i);
    points_.emplace_back(batch.x(at), batch.y(at));
    if (points_.size() == capacity_) {
      w_ = std::exp(std::log(OpenUnit(random)) / static_cast<double>(capacity_));
      next_ = seen_ + i;  // the index just filled
      Skip(random);
    }
  }
  const uint64_t first = seen_;  // the stream index of the batch's point 0
  while (points_.size() == capacity_ && next_ < first + size) {
    const int at = static_cast<int>(next_ - first);
    const auto slot = std::uniform_int_distribution<std::size_t>(0, capacity_ - 1)(random);
    points_[slot] = {batch.x(at), batch.y(at)};
    w_ *= std::exp(std::log(OpenUnit(random)) / static_cast<double>(capacity_));
    Skip(random);
  }
  seen_ += size;
}

void Reservoir::Skip(std::mt19937_64& random) {
  const double gap = std::floor(std::log(OpenUnit(random)) / std::log1p(-w_));
  // Far enough to be never, without overflowing the index.
  constexpr double kNever = 1e18;
  next_ += static_cast<uint64_t>(std::isfinite(gap) ? std::min(gap, kNever) : kNever) + 1;
}

LivePoints::LivePoints(LivePointsLimits limits, uint64_t seed) : limits_(limits), random_(seed) {}

void LivePoints::Observe(const std::string& series, const v1::PointBatch& batch) {
  util::MutexLock lock(mu_);
  auto it = series_.find(series);
  if (it == series_.end()) {
    if (series_.size() >= limits_.max_series) return;
    it = series_.try_emplace(series, limits_.sample_points).first;
  }
  it->second.reservoir.Add(batch, random_);
}

bool LivePoints::Watch(const std::string& series, int64_t now_unix_nanos) {
  util::MutexLock lock(mu_);
  auto it = series_.find(series);
  if (it == series_.end()) {
    if (!MakeRoom(now_unix_nanos)) return false;
    it = series_.try_emplace(series, limits_.sample_points).first;
  }
  it->second.last_watched = now_unix_nanos;
  return true;
}

bool LivePoints::MakeRoom(int64_t now) {
  if (series_.size() < limits_.max_series) return true;
  auto oldest = series_.end();
  for (auto it = series_.begin(); it != series_.end(); ++it) {
    const std::optional<int64_t>& watched = it->second.last_watched;
    if (watched && now - *watched < limits_.watch_for.count()) continue;
    if (oldest == series_.end() || watched < oldest->second.last_watched) oldest = it;
  }
  if (oldest == series_.end()) return false;
  series_.erase(oldest);
  return true;
}

std::optional<LiveSample> LivePoints::Sample(const std::string& series) const {
  util::MutexLock lock(mu_);
  const auto it = series_.find(series);
  if (it == series_.end()) return std::nullopt;
  return LiveSample{it->second.reservoir.seen(), it->second.reservoir.points()};
}

void LivePoints::RecordHistory(const std::string& series, const HistoryEntry& entry) {
  util::MutexLock lock(mu_);
  const auto it = series_.find(series);
  if (it == series_.end() || limits_.history_entries == 0) return;
  std::deque<HistoryEntry>& history = it->second.history;
  if (!history.empty() &&
      entry.unix_nanos - history.back().unix_nanos < limits_.history_every.count()) {
    return;
  }
  if (history.size() >= limits_.history_entries) history.pop_front();
  history.push_back(entry);
}

std::vector<HistoryEntry> LivePoints::History(const std::string& series) const {
  util::MutexLock lock(mu_);
  const auto it = series_.find(series);
  if (it == series_.end()) return {};
  return {it->second.history.begin(), it->second.history.end()};
}

void LivePoints::Forget(const std::string& series) {
  util::MutexLock lock(mu_);
  const auto it = series_.find(series);
  if (it == series_.end()) return;
  it->second.reservoir = Reservoir(limits_.sample_points);
  it->second.history.clear();
}

std::size_t LivePoints::tracked() const {
  util::MutexLock lock(mu_);
  return series_.size();
}

}  // namespace gradientd::http
