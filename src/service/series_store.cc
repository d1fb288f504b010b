#include "service/series_store.h"

#include <algorithm>
#include <utility>

namespace gradientd::service {

SeriesStore::Shard& SeriesStore::ShardFor(std::string_view name) {
  return shards_[std::hash<std::string_view>{}(name) % kShards];
}

SeriesStore::Entry* SeriesStore::Find(std::string_view name) {
  Shard& shard = ShardFor(name);
  util::MutexLock lock(shard.mu);
  auto it = shard.entries.find(std::string(name));
  return it == shard.entries.end() ? nullptr : it->second.get();
}

bool SeriesStore::WithSeries(std::string_view name, const std::function<void(core::Series&)>& fn) {
  Entry* entry = Find(name);
  if (entry == nullptr) return false;
  util::MutexLock lock(entry->mu);
  fn(entry->series);
  return true;
}

bool SeriesStore::WithNewOrExistingSeries(std::string_view name,
                                          const std::function<bool(core::Series&)>& fn,
                                          std::size_t max_series) {
  const auto existing = [&](Entry* entry) {
    util::MutexLock lock(entry->mu);
    fn(entry->series);
    return true;
  };
  if (Entry* entry = Find(name)) return existing(entry);
  Shard& shard = ShardFor(name);
  util::MutexLock create(shard.create_mu);
  // Created meanwhile by another change?
  if (Entry* entry = Find(name)) return existing(entry);
  // Reserve a place first, so concurrent creations cannot overshoot.
  std::size_t count = count_.load();
  do {
    if (count >= max_series) return false;
  } while (!count_.compare_exchange_weak(count, count + 1));
  // The new series is invisible to everyone else until fn has succeeded.
  auto entry = std::make_unique<Entry>();
  bool changed = false;
  {
    util::MutexLock lock(entry->mu);  // no one else can see it: taken for the analysis
    changed = fn(entry->series);
  }
  if (!changed) {
    count_.fetch_sub(1);
    return true;
  }
  Entry* created = entry.get();
  const std::string* key = nullptr;
  {
    util::MutexLock lock(shard.mu);
    auto [it, inserted] = shard.entries.emplace(std::string(name), std::move(entry));
    key = &it->first;
  }
  util::WriterLock index(index_mu_);
  index_.emplace(std::string_view(*key), std::pair{key, created});
  return true;
}

void SeriesStore::ForEach(const std::function<void(const std::string&, const core::Series&)>& fn) {
  ForEachAfter({}, {}, SIZE_MAX, [&](const std::string& name, const core::Series& series) {
    fn(name, series);
    return true;
  });
}

void SeriesStore::ForEachAfter(
    std::string_view after, std::string_view prefix, std::size_t limit,
    const std::function<bool(const std::string&, const core::Series&)>& fn) {
  // Collect under the index's lock, visit without it: a slow series must
  // not hold up the creation of others.
  std::vector<std::pair<const std::string*, Entry*>> page;
  {
    util::ReaderLock lock(index_mu_);
    auto it = after < prefix ? index_.lower_bound(prefix) : index_.upper_bound(after);
    for (; it != index_.end() && page.size() < limit && it->first.starts_with(prefix); ++it) {
      page.push_back(it->second);
    }
  }
  for (const auto& [name, entry] : page) {
    util::MutexLock lock(entry->mu);
    if (!fn(*name, entry->series)) return;
  }
}

std::size_t SeriesStore::size() const { return count_.load(); }

}  // namespace gradientd::service
