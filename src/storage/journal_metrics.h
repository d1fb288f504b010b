// JournalMetrics: what the journal's committer counts, registered in a
// Node's metrics::Registry. Updated by the committer thread only.
#pragma once

#include "metrics/metrics.h"

namespace gradientd::storage {

struct JournalMetrics {
  explicit JournalMetrics(metrics::Registry& registry)
      : bytes_written(registry.AddCounter("gradientd_journal_written_bytes_total",
                                          "Bytes the journal wrote to its files.")),
        write_failures(registry.AddCounter(
            "gradientd_journal_write_failures_total",
            "Failed journal writes or fsyncs (after one the journal refuses every change).")),
        fsync_seconds(registry.AddHistogram("gradientd_journal_fsync_duration_seconds",
                                            "Time each journal fdatasync took.",
                                            {1e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3,
                                             0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10})),
        group_commit_records(
            registry.AddHistogram("gradientd_journal_group_commit_records",
                                  "Records written together in one journal round (group commit).",
                                  metrics::ExponentialBounds(1, 2, 15))) {}

  metrics::Counter& bytes_written;
  metrics::Counter& write_failures;
  metrics::Histogram& fsync_seconds;
  metrics::Histogram& group_commit_records;
};

}  // namespace gradientd::storage
