// ServiceMetrics: what the Service counts, registered in a Node's
// metrics::Registry: requests by operation and result code, their handling
// time, ingested batches by outcome and points, and refusals by limit.
// Labels are fixed: the hot path indexes arrays by these enums.
#pragma once

#include <cstddef>

#include "gradientd/v1/gradientd.pb.h"
#include "metrics/metrics.h"

namespace gradientd::service {

enum class Operation : std::size_t {
  kIngest,
  kGradient,
  kFit,
  kStep,
  kConfigure,
  kReset,
  kList,
  kHello,
  kEmpty,
  kCount
};
Operation OperationOf(const v1::Request& request);

enum class BatchOutcome : std::size_t { kApplied, kDuplicate, kRefused, kCount };

// The limits whose refusals are counted (gradientd_refusals_total{limit}).
enum class Limit : std::size_t {
  kMaxSeries,       // --max-series
  kWindowMemory,    // --max-window-memory
  kProducerTable,   // --max-producers
  kBatchPoints,     // --max-batch-points
  kFutureSkew,      // --max-future-skew
  kMaxConnections,  // --max-connections (counted by the server)
  kCount
};

// The request-duration buckets, in seconds: 1 us to 10 s.
std::vector<double> RequestSecondsBounds();

struct ServiceMetrics {
  explicit ServiceMetrics(metrics::Registry& registry);

  // One request of `operation` answered with `response` after `seconds`
  // (handling, not the wait for durability); an ingest also counts its
  // batch's outcome and points.
  void CountRequest(Operation operation, const v1::Response& response, double seconds);
  void CountRefusal(Limit limit) { refusals.at(static_cast<std::size_t>(limit)).Add(); }

  metrics::CounterFamily& requests;           // operation x code
  metrics::HistogramFamily& request_seconds;  // operation
  metrics::CounterFamily& batches;            // outcome
  metrics::Counter& points;                   // applied
  metrics::CounterFamily& refusals;           // limit
};

}  // namespace gradientd::service
