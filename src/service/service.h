// Service: answers gradientd.v1 requests against a SeriesStore. The
// protocol's semantics live here; no I/O. Thread-safe.
//
// Every request either succeeds or changes nothing a client can observe.
// No access control: a Hello is answered as an open server would (every
// role); auth::Session enforces tokens and roles in front of a Service.
// With a ChangeLog, every change is appended to it, in the order it is
// applied, before the request returns; Handle's token says what to wait for
// before sending the response. Apply and Restore rebuild the state from a
// snapshot and the log; Checkpoint takes a consistent snapshot.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "core/series.h"
#include "gradientd/v1/cluster.pb.h"
#include "gradientd/v1/gradientd.pb.h"
#include "gradientd/v1/journal.pb.h"
#include "protocol/connection.h"
#include "protocol/series_name.h"
#include "service/change_log.h"
#include "service/names.h"
#include "service/producer_table.h"
#include "service/series_store.h"
#include "service/service_metrics.h"
#include "util/mutex.h"

namespace gradientd::service {

// List pages: ListSeries.page_size 0 means the default; more than the
// maximum is refused. A page also ends before it would pass
// kMaxListPageBytes of FitReplies, so a list reply is at most that plus
// one FitReply and a page token (about 1 MiB + 2 * name bytes + 250 B).
inline constexpr std::size_t kDefaultListPageSize = 1000;
inline constexpr std::size_t kMaxListPageSize = 4096;
inline constexpr std::size_t kMaxListPageBytes = 1 << 20;
// What FitReply.descent.loss_error (and least_squares.loss_error) says.
inline constexpr std::string_view kLossOverflows =
    "the loss overflows (is not finite) at this line";

struct ServiceLimits {
  // New series beyond this are refused (RESOURCE_EXHAUSTED); existing ones
  // keep working.
  std::size_t max_series = 1'000'000;
  // Series names: at most this many bytes of UTF-8, no control characters.
  std::size_t max_series_name_bytes = kMaxSeriesNameBytes;
  std::size_t max_batch_points = 1'000'000;
  // Exactly-once producers remembered at once; a producer is forgotten once
  // no batch of it has been applied for producer_expiry (a retry of one of
  // its batches then counts again). A new producer is refused
  // (RESOURCE_EXHAUSTED) only while the table is full of unexpired ones.
  std::size_t max_producers = 100'000;
  std::chrono::nanoseconds producer_expiry = std::chrono::hours(1);
  // Sequences below a producer's highest whose batches are told apart, so a
  // retry that lands after later batches is applied once (SequenceWindow);
  // a positive multiple of 64.
  uint64_t producer_window = 4096;
  // A step request stops after this much time, keeping the iterations run.
  std::chrono::nanoseconds max_step_time = std::chrono::milliseconds(100);
  // A batch whose event time is more than this ahead of the clock is
  // refused (INVALID_ARGUMENT); one older than a window still counts in the
  // other views.
  std::chrono::nanoseconds max_future_skew = std::chrono::minutes(5);
  // The heap all windows together may hold (core::BucketWindow::HeapBytes
  // each); a configure that would pass it is refused (RESOURCE_EXHAUSTED).
  std::size_t max_window_bytes = std::size_t{1} << 30;
};

class Service : public protocol::RequestHandler {
 public:
  explicit Service(SeriesStore& store, ServiceLimits limits = {})
      : store_(store),
        limits_(limits),
        producers_(limits.max_producers, limits.producer_expiry, limits.producer_window) {}

  // The wall clock (Unix nanoseconds): a batch's receive time (its event
  // time when it has none, and the bound of --max-future-skew) and producer
  // expiry. The system clock unless set (tests). Set before serving and
  // before recovery; recovery reads it only for records of older versions
  // without a time (producer expiry), never for a batch's stamp.
  void SetClock(std::function<int64_t()> now_unix_nanos) {
    producers_.SetClock(std::move(now_unix_nanos));
  }

  // How many producers the table holds now (expired ones included until
  // they are evicted to make room).
  std::size_t producers() { return producers_.size(); }

  // From now on every change is appended to `log` (which must outlive the
  // Service); without one (in-memory mode) changes are not logged. Set it
  // before serving, after recovery.
  void SetChangeLog(ChangeLog* log) { log_ = log; }

  // Counts every request, batch and refusal in `metrics` (which must
  // outlive the Service); null: none. Set before serving.
  void SetMetrics(ServiceMetrics* metrics) { metrics_ = metrics; }

  uint64_t Handle(const v1::Request& request, v1::Response* response) override;

  // Called with every batch applied (not duplicates), its series' name, its
  // event time as applied and when it was received (Unix nanoseconds), in
  // the order the series applied them, e.g. to record traffic. Runs under
  // the series' lock: keep it short. Set before serving.
  using BatchObserver =
      std::function<void(const std::string& series, const v1::PointBatch&,
                         int64_t event_time_unix_nanos, int64_t received_unix_nanos)>;
  void SetBatchObserver(BatchObserver observer) { batch_observer_ = std::move(observer); }
  // Called with the name of every series a reset emptied, under its lock,
  // after the reset is applied (not for a refused one, nor by recovery).
  // Set before serving.
  using ResetObserver = std::function<void(const std::string& series)>;
  void SetResetObserver(ResetObserver observer) { reset_observer_ = std::move(observer); }

  // Recovery: the state of a snapshot, then the log's records after it, in
  // order; an exactly-once batch the producer table has applied is skipped,
  // so a log holding one twice counts it once. Not concurrent with Handle.
  void Restore(const v1::Snapshot& snapshot);
  void Apply(const v1::JournalRecord& record);

  // Pauses changes, calls cut() (which returns the log position the state
  // then corresponds to, e.g. Journal::Rotate), copies the whole state into
  // `snapshot`, and resumes. Queries go on meanwhile.
  void Checkpoint(const std::function<uint64_t()>& cut, v1::Snapshot* snapshot);

  // Cluster mode, where a change is applied only once the shared log
  // delivers it. Propose checks a change request (ingest, step, configure,
  // reset) as Handle would and, when it may be applied, fills *change with
  // what applying it needs (a batch's statistics instead of its points; a
  // step's iterations, as many as this state runs within max_step_time),
  // timed now, and returns true; else it sets an Error in `response` and
  // returns false. Changes nothing.
  bool Propose(const v1::Request& request, v1::ClusterChange* change, v1::Response* response);
  // Applies a proposed change as Handle would have, with the clock at the
  // change's time and no time budget, filling `response` with its outcome:
  // the same changes in the same order leave the same state and give the
  // same responses on every node. Not concurrent with itself.
  void ApplyChange(const v1::ClusterChange& change, v1::Response* response);

  // How many series and points there are now.
  void Totals(uint64_t* series, uint64_t* points);

 private:
  // Handle without the metrics.
  uint64_t Dispatch(const v1::Request& request, v1::Response* response);
  void CountRefusal(Limit limit) const {
    if (metrics_ != nullptr) metrics_->CountRefusal(limit);
  }
  // A batch checked and reduced to its statistics, ready to apply: its
  // record (series, batch, producer, sequence, event time; stamped when
  // applied) and when it was received.
  struct PreparedBatch {
    v1::JournalRecord record;
    core::PointStats partial;
    int64_t received = 0;
  };
  uint64_t Ingest(const v1::PointBatch& batch, v1::Response* response);
  // Checks `batch` and fills *prepared; else sets an Error and returns false.
  bool PrepareBatch(const v1::PointBatch& batch, PreparedBatch* prepared, v1::Response* response);
  // INVALID_ARGUMENT, naming both times, when `event_time` is more than
  // max_future_skew after `now`.
  Status CheckFutureSkew(int64_t event_time, int64_t now) const;
  // Applies a prepared batch (an exactly-once one once), at time `at` (the
  // clock's when absent), filling the response's ack; `batch`, when there,
  // holds its points for the batch observer. Takes changes_ shared.
  Status ApplyPrepared(PreparedBatch* prepared, const v1::PointBatch* batch,
                       std::optional<int64_t> at, v1::Response* response, uint64_t* token)
      REQUIRES_SHARED(changes_);
  // Ingest's change: stamps the batch for its series, created if needed,
  // logs its record with the stamp and absorbs it; fills `ack`.
  Status ApplyBatch(PreparedBatch& prepared, const v1::PointBatch* batch, v1::IngestAck* ack,
                    uint64_t* token);
  // A batch with a producer id and sequence: applied once, later copies
  // answered as duplicates.
  Status IngestExactlyOnce(PreparedBatch& prepared, const v1::PointBatch* batch,
                           std::optional<int64_t> at, v1::Response* response, uint64_t* token);
  void Gradient(const v1::GradientQuery& query, v1::Response* response);
  void Fit(const v1::FitQuery& query, v1::Response* response);
  // Runs the request's iterations, stopping after max_step_time when `timed`.
  uint64_t Step(const v1::StepRequest& request, v1::Response* response, bool timed);
  // The step of `request` (parsed into `options`) run on a copy of `series`
  // into *after, stopping after max_step_time when `timed`; *stats: the
  // view it runs on. `series` itself is not changed.
  Status StepCopy(const std::string& name, const core::Series& series,
                  const v1::StepRequest& request, const core::StepOptions& options, bool timed,
                  core::Series* after, core::StepResult* result, core::ViewStats* stats) const;
  // How many of the request's iterations a timed Step would run now, on a
  // copy of the series, and whether the time stopped it (that Step's
  // error, if it would fail).
  Status StepIterations(const v1::StepRequest& request, const std::string& name,
                        uint64_t* iterations, bool* time_limited);
  uint64_t Configure(const v1::ConfigureSeries& request, v1::Response* response);
  uint64_t Reset(const v1::ResetSeries& request, v1::Response* response);
  void List(const v1::ListSeries& request, v1::Response* response);

  // Appends `record` to the log, if there is one.
  Status Log(const v1::JournalRecord& record, uint64_t* token);
  // The series a request names ("" means "default"); sets an error and
  // returns nullopt when the name is unacceptable.
  std::optional<std::string> SeriesName(const std::string& name, v1::Response* response) const;
  Status TooManySeries(const std::string& name) const;
  // Takes the window heap a configure changes from `before` to `after`
  // (bytes) out of the budget; RESOURCE_EXHAUSTED, taking nothing, when it
  // would pass max_window_bytes. ReturnWindowBytes undoes it.
  Status TakeWindowBytes(std::size_t before, std::size_t after);
  void ReturnWindowBytes(std::size_t before, std::size_t after);

  SeriesStore& store_;
  const ServiceLimits limits_;
  ChangeLog* log_ = nullptr;
  ServiceMetrics* metrics_ = nullptr;
  BatchObserver batch_observer_;
  ResetObserver reset_observer_;

  // Changes hold it shared, Checkpoint exclusively: a snapshot is a state
  // between two changes.
  util::SharedMutex changes_;

  ProducerTable producers_;
  // The heap of every series' window (WindowHeapBytes), against
  // limits_.max_window_bytes.
  std::atomic<std::size_t> window_bytes_{0};
};

// The heap the series' window holds; 0 without one.
std::size_t WindowHeapBytes(const core::Series& series);

}  // namespace gradientd::service
