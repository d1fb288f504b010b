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

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>

#include "gradientd/v1/gradientd.pb.h"
#include "gradientd/v1/journal.pb.h"
#include "protocol/connection.h"
#include "service/change_log.h"
#include "service/series_store.h"

namespace gradientd::service {

inline constexpr std::string_view kDefaultSeries = "default";
inline constexpr std::size_t kMaxSeriesNameBytes = 256;
inline constexpr std::size_t kMaxProducerIdBytes = 256;

struct ServiceLimits {
  // New series beyond this are refused (RESOURCE_EXHAUSTED); existing ones
  // keep working.
  std::size_t max_series = 1'000'000;
  // Series names: at most this many bytes of UTF-8, no control characters.
  std::size_t max_series_name_bytes = kMaxSeriesNameBytes;
  std::size_t max_batch_points = 1'000'000;
};

class Service : public protocol::RequestHandler {
 public:
  explicit Service(SeriesStore& store, ServiceLimits limits = {})
      : store_(store), limits_(limits) {}

  // From now on every change is appended to `log` (which must outlive the
  // Service); without one (in-memory mode) changes are not logged. Set it
  // before serving, after recovery.
  void SetChangeLog(ChangeLog* log) { log_ = log; }

  uint64_t Handle(const v1::Request& request, v1::Response* response) override;

  // Called with every batch applied (not duplicates) and its series' name,
  // in the order the series applied them, e.g. to record traffic. Runs under
  // the series' lock: keep it short. Set before serving.
  using BatchObserver = std::function<void(const std::string& series, const v1::PointBatch&)>;
  void SetBatchObserver(BatchObserver observer) { batch_observer_ = std::move(observer); }

  // Recovery: the state of a snapshot, then the log's records after it, in
  // order. Not concurrent with Handle.
  void Restore(const v1::Snapshot& snapshot);
  void Apply(const v1::JournalRecord& record);

  // Pauses changes, calls cut() (which returns the log position the state
  // then corresponds to, e.g. Journal::Rotate), copies the whole state into
  // `snapshot`, and resumes. Queries go on meanwhile.
  void Checkpoint(const std::function<uint64_t()>& cut, v1::Snapshot* snapshot);

  // How many series and points there are now.
  void Totals(uint64_t* series, uint64_t* points);

 private:
  struct Producer {
    std::mutex mu;
    uint64_t last_sequence = 0;
    uint64_t last_token = 0;  // the log token of the batch that set it
  };

  uint64_t Ingest(const v1::PointBatch& batch, v1::Response* response);
  void Gradient(const v1::GradientQuery& query, v1::Response* response);
  void Fit(const v1::FitQuery& query, v1::Response* response);
  uint64_t Step(const v1::StepRequest& request, v1::Response* response);
  uint64_t Configure(const v1::ConfigureSeries& request, v1::Response* response);
  uint64_t Reset(const v1::ResetSeries& request, v1::Response* response);
  void List(v1::Response* response);

  // Appends `record` to the log, if there is one.
  Status Log(const v1::JournalRecord& record, uint64_t* token);
  Producer& FindOrCreateProducer(const std::string& id);
  // The series a request names ("" means "default"); sets an error and
  // returns nullopt when the name is unacceptable.
  std::optional<std::string> SeriesName(const std::string& name, v1::Response* response) const;
  Status TooManySeries(const std::string& name) const;

  SeriesStore& store_;
  const ServiceLimits limits_;
  ChangeLog* log_ = nullptr;
  BatchObserver batch_observer_;

  // Changes hold it shared, Checkpoint exclusively: a snapshot is a state
  // between two changes.
  std::shared_mutex changes_;

  std::mutex producers_mu_;
  std::unordered_map<std::string, std::unique_ptr<Producer>> producers_;
};

// Fills `reply` with the series' model, least-squares line and settings.
void FillFitReply(const std::string& name, const core::Series& series, v1::FitReply* reply);

}  // namespace gradientd::service
