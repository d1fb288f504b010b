#include "service/series_store.h"

#include <algorithm>
#include <utility>

namespace gradientd::service {

SeriesStore::Shard& SeriesStore::ShardFor(std::string_view name) {
  return shards_[std::hash<std::string_view>{}(name) % kShards];
}

SeriesStore::Entry* SeriesStore::Find(std::string_view name) {
  Shard& shard = ShardFor(name);
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(std::string(name));
  return it == shard.entries.end() ? nullptr : it->second.get();
}

SeriesStore::Entry* SeriesStore::FindOrCreate(std::string_view name, std::size_t max_series) {
  Shard& shard = ShardFor(name);
  std::lock_guard lock(shard.mu);
  auto it = shard.entries.find(std::string(name));
  if (it != shard.entries.end()) return it->second.get();
  // Reserve a place first, so concurrent creations cannot overshoot.
  std::size_t count = count_.load();
  do {
    if (count >= max_series) return nullptr;
  } while (!count_.compare_exchange_weak(count, count + 1));
  auto& slot = shard.entries[std::string(name)];
  slot = std::make_unique<Entry>();
  return slot.get();
}

bool SeriesStore::WithSeries(std::string_view name, const std::function<void(core::Series&)>& fn) {
  Entry* entry = Find(name);
  if (entry == nullptr) return false;
  std::lock_guard lock(entry->mu);
  fn(entry->series);
  return true;
}

bool SeriesStore::WithNewOrExistingSeries(std::string_view name,
                                          const std::function<void(core::Series&)>& fn,
                                          std::size_t max_series) {
  Entry* entry = FindOrCreate(name, max_series);
  if (entry == nullptr) return false;
  std::lock_guard lock(entry->mu);
  fn(entry->series);
  return true;
}

void SeriesStore::ForEach(const std::function<void(const std::string&, const core::Series&)>& fn) {
  std::vector<std::pair<std::string, Entry*>> all;
  for (Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    for (const auto& [name, entry] : shard.entries) all.emplace_back(name, entry.get());
  }
  std::sort(all.begin(), all.end());
  for (const auto& [name, entry] : all) {
    std::lock_guard lock(entry->mu);
    fn(name, entry->series);
  }
}

std::size_t SeriesStore::size() const { return count_.load(); }

}  // namespace gradientd::service
