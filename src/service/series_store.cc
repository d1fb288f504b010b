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

SeriesStore::Entry* SeriesStore::FindOrCreate(std::string_view name) {
  Shard& shard = ShardFor(name);
  std::lock_guard lock(shard.mu);
  auto& slot = shard.entries[std::string(name)];
  if (!slot) slot = std::make_unique<Entry>();
  return slot.get();
}

bool SeriesStore::WithSeries(std::string_view name, const std::function<void(core::Series&)>& fn) {
  Entry* entry = Find(name);
  if (entry == nullptr) return false;
  std::lock_guard lock(entry->mu);
  fn(entry->series);
  return true;
}

void SeriesStore::WithNewOrExistingSeries(std::string_view name,
                                          const std::function<void(core::Series&)>& fn) {
  Entry* entry = FindOrCreate(name);
  std::lock_guard lock(entry->mu);
  fn(entry->series);
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

std::size_t SeriesStore::size() const {
  std::size_t n = 0;
  for (const Shard& shard : shards_) {
    std::lock_guard lock(shard.mu);
    n += shard.entries.size();
  }
  return n;
}

}  // namespace gradientd::service
