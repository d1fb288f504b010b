// ChangeLog: where the Service writes every change it applies, in order, so
// that the state can be rebuilt (the journal of the data directory); or,
// in a cluster, the shared log changes are proposed to and applied from,
// which decides each change's response.
#pragma once

#include <cstdint>
#include <functional>

#include "core/status.h"
#include "gradientd/v1/gradientd.pb.h"
#include "gradientd/v1/journal.pb.h"

namespace gradientd::service {

class ChangeLog {
 public:
  virtual ~ChangeLog() = default;

  // Appends `record` after every record appended before it and sets *token
  // to what OnDurable waits for. Fails, changing nothing, once the log has
  // failed. Thread-safe.
  virtual Status Append(const v1::JournalRecord& record, uint64_t* token) = 0;

  // Calls done(Ok) once every record up to `token` is durable, or done(the
  // log's error) once the log has failed without making `token` durable.
  // From any thread, possibly inline.
  virtual void OnDurable(uint64_t token, std::function<void(const Status&)> done) = 0;

  // The fate of one record, for answering each change by its own outcome
  // after an OnDurable of a later token failed: Ok if `token` is durable,
  // the log's error if the log failed before making it so.
  // REQUIRES: OnDurable has completed for some token >= `token`.
  virtual Status Outcome(uint64_t token) = 0;

  // Whether the log decides the response to each change (a cluster's, where
  // a change is applied only when the shared log delivers it): then the
  // server waits with OnDecided for each token alone, and sends the
  // response it gives in place of the one Handle filled.
  virtual bool DecidesResponses() const { return false; }
  // Calls done(response) once, when the change of `token` has its response
  // (from any thread, possibly inline). Only where DecidesResponses.
  virtual void OnDecided(uint64_t token, std::function<void(v1::Response)> done) {
    (void)token;
    done(v1::Response());
  }
};

}  // namespace gradientd::service
