// The ingest phase: P producer connections, one thread each, send the
// pre-built batch (batch_template.h) with at most W batches unacknowledged.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>

#include "cli/bench/batch_template.h"
#include "cli/bench/common.h"
#include "client/client.h"
#include "core/status.h"
#include "protocol/endpoint.h"

namespace gradientd::cli::bench {

struct ProducerPlan {
  const BatchTemplate* batch = nullptr;
  std::string series;
  bool expect_acks = true;  // false: a discard server, which never answers
  uint64_t window = 1;
  client::ConnectOptions connect;  // token and congestion control (TLS: never)
  Clock::time_point deadline;      // set by RunProducers
  uint64_t points_limit = 0;       // 0: none
  // Shared by all producers of a run; set by RunProducers.
  std::atomic<uint64_t>* points_acked = nullptr;
  std::atomic<bool>* stop = nullptr;  // set on any producer's error
};

// What producers sent and had acknowledged.
struct IngestCounts {
  uint64_t batches_sent = 0;
  uint64_t batches_acked = 0;
  uint64_t points_acked = 0;
  uint64_t bytes_sent = 0;

  void Add(const IngestCounts& other);
};

struct IngestResult : IngestCounts {
  Status status;
  double seconds = 0;
  std::string tcp_congestion;  // what the producers' sockets used
};

// Connects `producers` connections to `endpoint`, runs them for `seconds`
// (each sends at least one batch), calls `monitor` (if set) with the points
// acknowledged so far every few milliseconds while they run, and once at the
// end. Producer ids are "ID_PREFIX-0", "ID_PREFIX-1", ...
IngestResult RunProducers(const protocol::Endpoint& endpoint, int producers, ProducerPlan plan,
                          double seconds, const std::string& id_prefix,
                          const std::function<void(uint64_t)>& monitor);

}  // namespace gradientd::cli::bench
