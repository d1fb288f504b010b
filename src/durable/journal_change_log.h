// JournalChangeLog: the storage::Journal as the Service's service::ChangeLog,
// so that neither layer knows the other. Forwards every call; as thread-safe
// as the Journal (fully).
#pragma once

#include <cstdint>
#include <functional>

#include "service/change_log.h"
#include "storage/journal.h"

namespace gradientd::durable {

class JournalChangeLog final : public service::ChangeLog {
 public:
  // `journal` must outlive this.
  explicit JournalChangeLog(storage::Journal& journal) : journal_(journal) {}

  Status Append(const v1::JournalRecord& record, uint64_t* token) override {
    return journal_.Append(record, token);
  }
  void OnDurable(uint64_t token, std::function<void(const Status&)> done) override {
    journal_.OnDurable(token, std::move(done));
  }
  Status Outcome(uint64_t token) override { return journal_.Outcome(token); }

 private:
  storage::Journal& journal_;
};

}  // namespace gradientd::durable
