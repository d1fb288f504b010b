#include "auth/authenticator.h"

#include <utility>

namespace gradientd::auth {

Authenticator::Authenticator(TokenTable table, std::string path)
    : path_(std::move(path)), table_(std::make_shared<const TokenTable>(std::move(table))) {}

Status Authenticator::Load(const std::string& path, std::unique_ptr<Authenticator>* authenticator) {
  TokenTable table;
  if (Status s = LoadTokenFile(path, &table); !s.ok()) return s;
  *authenticator = std::make_unique<Authenticator>(std::move(table), path);
  return Status::Ok();
}

Status Authenticator::Reload() {
  if (path_.empty()) return Status::FailedPrecondition("no auth file to reload");
  TokenTable table;
  if (Status s = LoadTokenFile(path_, &table); !s.ok()) return s;
  util::MutexLock lock(mu_);
  table_ = std::make_shared<const TokenTable>(std::move(table));
  generation_.fetch_add(1, std::memory_order_acq_rel);
  return Status::Ok();
}

std::optional<Authenticator::Grant> Authenticator::Authenticate(const Digest& digest) const {
  std::shared_ptr<const TokenTable> table;
  uint64_t generation = 0;
  {
    util::MutexLock lock(mu_);
    table = table_;
    generation = generation_.load(std::memory_order_acquire);
  }
  const TokenEntry* entry = table->Find(digest);
  if (entry == nullptr) return std::nullopt;
  return Grant{entry->name, entry->roles, generation};
}

std::size_t Authenticator::size() const {
  util::MutexLock lock(mu_);
  return table_->size();
}

}  // namespace gradientd::auth
