// CheckpointMetrics: the data directory's snapshots and recovery's progress,
// registered in a Node's metrics::Registry.
#pragma once

#include "metrics/metrics.h"

namespace gradientd::durable {

struct CheckpointMetrics {
  explicit CheckpointMetrics(metrics::Registry& registry)
      : seconds(registry.AddHistogram(
            "gradientd_snapshot_duration_seconds",
            "Time each checkpoint took (snapshot written and old files pruned), failed or not.",
            {0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300})),
        failures(registry.AddCounter("gradientd_snapshot_failures_total",
                                     "Checkpoints that failed (the journal still holds "
                                     "everything).")),
        last_success(registry.AddGauge(
            "gradientd_snapshot_last_success_timestamp_seconds",
            "Unix time of the last checkpoint that succeeded (0: none yet since start).")),
        records_replayed(registry.AddCounter(
            "gradientd_recovery_journal_records_replayed_total",
            "Journal records recovery has replayed since start (grows while it runs).")) {}

  metrics::Histogram& seconds;
  metrics::Counter& failures;
  metrics::Gauge& last_success;
  metrics::Counter& records_replayed;
};

}  // namespace gradientd::durable
