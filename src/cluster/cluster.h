// Cluster: one gradientd node of a cluster whose shared log is P shard
// streams on NATS JetStream. Every node holds every series: each shard's
// series live in a Service of their own, changed only by that shard's
// stream, applied in stream order (Service::ApplyChange). The same stream
// gives the same state and the same responses on every node, so any node
// answers any series.
//
// A change request is checked here (Service::Propose), published to its
// series' shard, and answered with the outcome this node computed when it
// applied it from the stream (ChangeLog::OnDecided); queries are answered
// from this node's state at once. Limits that count across series (series,
// producers, window memory) are divided among the shards, so that what one
// shard refuses depends on its stream alone.
//
// Thread-safety: Handle, OnDecided and the readers from any thread; Start
// and Stop from one.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <iosfwd>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cluster/pending_changes.h"
#include "core/status.h"
#include "jetstream/shard_streams.h"
#include "protocol/connection.h"
#include "service/change_log.h"
#include "service/series_store.h"
#include "service/service.h"
#include "util/mutex.h"

namespace gradientd::cluster {

struct ClusterNodeOptions {
  jetstream::ClusterOptions streams;  // urls empty: not a cluster node
  // The node's limits; max_series, max_producers and max_window_bytes are
  // divided among the shards (each gets its share, rounded up).
  service::ServiceLimits limits;
  // How long a change waits for its outcome after it was proposed: to be
  // stored (a publish retried through a leader election) and applied here.
  std::chrono::milliseconds decide_timeout{20000};
};

class Cluster : public protocol::RequestHandler, public service::ChangeLog {
 public:
  explicit Cluster(ClusterNodeOptions options);
  ~Cluster() override;
  Cluster(const Cluster&) = delete;
  Cluster& operator=(const Cluster&) = delete;

  // Connects to NATS (trying again while it is not ready, for up to
  // decide_timeout), creates the shard streams or checks them, and applies
  // every shard's stream from its start up to where it ended when Start
  // began; then the appliers go on following the streams. Writes what it
  // does to `log`. Call once.
  Status Start(std::ostream& log);
  // Stops following the streams; changes still waiting get UNAVAILABLE.
  void Stop();

  uint64_t Handle(const v1::Request& request, v1::Response* response) override;

  // service::ChangeLog, as the server sees it: every change's response is
  // decided by its application here.
  Status Append(const v1::JournalRecord&, uint64_t*) override {
    return Status::Internal("a cluster's changes are proposed, not appended");
  }
  void OnDurable(uint64_t, std::function<void(const Status&)> done) override { done(Status::Ok()); }
  Status Outcome(uint64_t) override { return Status::Ok(); }
  bool DecidesResponses() const override { return true; }
  void OnDecided(uint64_t token, std::function<void(v1::Response)> done) override {
    pending_.OnDecided(token, std::move(done));
  }

  // Where each shard is: the last stream position applied here and the
  // last one the stream had when last looked at.
  struct ShardProgress {
    uint64_t applied = 0;
    uint64_t known_end = 0;
  };
  std::vector<ShardProgress> Progress() const;
  // Ok once Start has caught up; else UNAVAILABLE saying how far it is.
  Status CatchingUp() const;
  // Ok while connected to NATS and applying every shard; else why not (a
  // shard this node stopped applying, or no connection, with the lag).
  Status Health() const;
  uint32_t shards() const { return static_cast<uint32_t>(shards_.size()); }

  std::size_t series() const;
  std::size_t producers();
  std::size_t pending() { return pending_.size(); }

  // Wired into every shard's Service (see Service). Set before Start.
  void SetMetrics(service::ServiceMetrics* metrics);
  void SetResetObserver(const service::Service::ResetObserver& observer);
  // Called with every batch this node proposes, once checked (before it is
  // applied), e.g. for the dashboard's samples.
  void SetBatchObserver(service::Service::BatchObserver observer) {
    batch_observer_ = std::move(observer);
  }

 private:
  struct Shard {
    explicit Shard(const service::ServiceLimits& limits) : service(store, limits) {}
    service::SeriesStore store;
    service::Service service;
    std::atomic<uint64_t> applied{0};
    std::atomic<uint64_t> known_end{0};
    // Set once this node stops applying the shard (see Stall), never reset.
    std::atomic<bool> stalled{false};
    mutable util::Mutex stall_mu;
    std::string stall_reason GUARDED_BY(stall_mu);
    std::thread applier;
  };

  // A change request: proposed to its shard; the token of its response.
  uint64_t Propose(const v1::Request& request, const std::string& series, v1::Response* response);
  // A listing merged from every shard's page.
  void List(const v1::Request& request, v1::Response* response);
  // Connects and opens the shard streams, trying again while NATS is not
  // ready, up to decide_timeout.
  Status OpenStreams(std::ostream& log);
  // Follows shard `index`'s stream from its applied position on.
  void Follow(uint32_t index);
  // Applies one message of shard `index`; false when it cannot be (a gap).
  bool ApplyMessage(uint32_t index, const jetstream::StreamMessage& message);
  // Every 100 ms: expires changes past their deadline, refreshes known ends
  // and stalls a shard whose stream no longer holds what this node applied.
  void Sweep();
  // Stops applying shard `index` for `reason`: its state is then frozen
  // (never a change skipped), its changes refused here.
  void Stall(uint32_t index, const std::string& reason);
  // Ok, or UNAVAILABLE with the reason, for shard `index`.
  Status ShardHealth(uint32_t index) const;
  Shard& ShardFor(const std::string& series);

  const ClusterNodeOptions options_;
  // 16 random bytes, hex: the origin of this process's proposals.
  const std::string origin_;
  std::vector<std::unique_ptr<Shard>> shards_;
  std::unique_ptr<jetstream::ShardStreams> streams_;
  PendingChanges pending_;
  service::Service::BatchObserver batch_observer_;

  std::atomic<bool> caught_up_{false};
  std::thread sweeper_;
  // Wakes the threads' sleeps when Stop is called.
  util::Mutex stop_mu_;
  util::CondVar stop_cv_;
  bool stopping_ GUARDED_BY(stop_mu_) = false;
  // Sleeps up to `time`; false once stopping.
  bool SleepUnlessStopping(std::chrono::milliseconds time) EXCLUDES(stop_mu_);
  bool Stopping() EXCLUDES(stop_mu_);
};

}  // namespace gradientd::cluster
