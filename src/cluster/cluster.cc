#include "cluster/cluster.h"

#include <algorithm>
#include <ostream>
#include <utility>

#include "jetstream/shard_streams.h"
#include "protocol/error_codes.h"
#include "protocol/series_name.h"
#include "util/random.h"

namespace gradientd::cluster {
namespace {

using protocol::SetError;

// A share of a limit for each of `shards`, rounded up.
template <typename T>
T ShareOf(T limit, uint32_t shards) {
  return limit / shards + (limit % shards != 0 ? 1 : 0);
}

service::ServiceLimits ShardLimits(service::ServiceLimits limits, uint32_t shards) {
  limits.max_series = ShareOf(limits.max_series, shards);
  limits.max_producers = ShareOf(limits.max_producers, shards);
  limits.max_window_bytes = ShareOf(limits.max_window_bytes, shards);
  return limits;
}

// The series a request is about ("" for the default), or nullptr for one
// that is about none.
const std::string* SeriesOf(const v1::Request& request) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
      return &request.ingest().series();
    case v1::Request::kGradient:
      return &request.gradient().series();
    case v1::Request::kFit:
      return &request.fit().series();
    case v1::Request::kStep:
      return &request.step().series();
    case v1::Request::kConfigure:
      return &request.configure().series();
    case v1::Request::kReset:
      return &request.reset().series();
    default:
      return nullptr;
  }
}

bool IsChange(const v1::Request& request) {
  switch (request.body_case()) {
    case v1::Request::kIngest:
    case v1::Request::kStep:
    case v1::Request::kConfigure:
    case v1::Request::kReset:
      return true;
    default:
      return false;
  }
}

}  // namespace

Cluster::Cluster(ClusterNodeOptions options)
    : options_(std::move(options)), origin_(util::RandomHex64() + util::RandomHex64()) {
  const uint32_t count = std::max<uint32_t>(options_.streams.shards, 1);
  const service::ServiceLimits limits = ShardLimits(options_.limits, count);
  for (uint32_t i = 0; i < count; ++i) shards_.push_back(std::make_unique<Shard>(limits));
}

Cluster::~Cluster() { Stop(); }

void Cluster::SetMetrics(service::ServiceMetrics* metrics) {
  for (auto& shard : shards_) shard->service.SetMetrics(metrics);
}

void Cluster::SetResetObserver(const service::Service::ResetObserver& observer) {
  for (auto& shard : shards_) shard->service.SetResetObserver(observer);
}

bool Cluster::Stopping() {
  util::MutexLock lock(stop_mu_);
  return stopping_;
}

bool Cluster::SleepUnlessStopping(std::chrono::milliseconds time) {
  util::MutexLock lock(stop_mu_);
  if (!stopping_) stop_cv_.WaitFor(stop_mu_, time);
  return !stopping_;
}

Status Cluster::OpenStreams(std::ostream& log) {
  // NATS may be starting, or electing its JetStream leader: try again until
  // the timeout, unless the streams disagree with the options or NATS
  // refuses this node's TLS or credentials.
  const auto give_up = std::chrono::steady_clock::now() + options_.decide_timeout;
  for (int attempt = 0;; ++attempt) {
    const Status s = jetstream::ShardStreams::Open(options_.streams, &streams_);
    if (s.ok()) return s;
    if (s.code() == StatusCode::kFailedPrecondition || s.code() == StatusCode::kInvalidArgument ||
        s.code() == StatusCode::kUnauthenticated || s.code() == StatusCode::kPermissionDenied ||
        std::chrono::steady_clock::now() >= give_up ||
        !SleepUnlessStopping(std::chrono::milliseconds(500))) {
      return Status(s.code(), "--cluster: " + s.message());
    }
    if (attempt == 0) {
      log << "gradientd: cluster " << options_.streams.name << ": " << s.message()
          << "; trying again for up to " << options_.decide_timeout.count() << " ms\n";
    }
  }
}

Status Cluster::Start(std::ostream& log) {
  if (Status s = OpenStreams(log); !s.ok()) return s;
  uint64_t total = 0;
  for (uint32_t i = 0; i < shards(); ++i) {
    jetstream::ShardState state;
    if (Status s = streams_->State(i, &state); !s.ok()) {
      return Status(s.code(), "--cluster: " + s.message());
    }
    if (state.first_sequence > 1) {
      return Status::FailedPrecondition(
          "--cluster: stream " + streams_->StreamName(i) + " starts at position " +
          std::to_string(state.first_sequence) +
          ": its older changes were removed, and this node has no snapshot to start from");
    }
    shards_[i]->known_end = state.last_sequence;
    total += state.last_sequence;
  }
  log << "gradientd: cluster " << options_.streams.name << ": " << shards() << " shards, "
      << options_.streams.replicas << " replicas; catching up with " << total << " changes\n";
  for (uint32_t i = 0; i < shards(); ++i) {
    shards_[i]->applier = std::thread([this, i] { Follow(i); });
  }
  sweeper_ = std::thread([this] { Sweep(); });
  // Caught up once every shard has applied what its stream held at start.
  while (true) {
    bool done = true;
    for (const auto& shard : shards_) done = done && shard->applied.load() >= shard->known_end;
    if (done) break;
    if (!SleepUnlessStopping(std::chrono::milliseconds(20))) {
      return Status::Unavailable("stopped while catching up with the cluster");
    }
  }
  caught_up_ = true;
  log << "gradientd: cluster " << options_.streams.name << ": caught up (" << series()
      << " series)\n";
  return Status::Ok();
}

void Cluster::Stop() {
  {
    util::MutexLock lock(stop_mu_);
    if (stopping_ && !sweeper_.joinable()) return;
    stopping_ = true;
    stop_cv_.SignalAll();
  }
  for (auto& shard : shards_) {
    if (shard->applier.joinable()) shard->applier.join();
  }
  if (sweeper_.joinable()) sweeper_.join();
  if (streams_) {
    streams_->CancelPublishes(
        Status::Unavailable("the node is shutting down: the change may or may not be published"));
  }
  pending_.FailAll(Status::Unavailable(
      "the node is shutting down: the outcome of this change is unknown (it may be applied)"));
}

Status Cluster::CatchingUp() const {
  if (caught_up_.load()) return Status::Ok();
  uint64_t applied = 0;
  uint64_t end = 0;
  for (const auto& shard : shards_) {
    applied += std::min(shard->applied.load(), shard->known_end.load());
    end += shard->known_end.load();
  }
  return Status::Unavailable("catching up with the cluster (" + std::to_string(applied) + " of " +
                             std::to_string(end) + " changes applied)");
}

std::vector<Cluster::ShardProgress> Cluster::Progress() const {
  std::vector<ShardProgress> progress;
  for (const auto& shard : shards_) progress.push_back({shard->applied, shard->known_end});
  return progress;
}

std::size_t Cluster::series() const {
  std::size_t n = 0;
  for (const auto& shard : shards_) n += shard->store.size();
  return n;
}

std::size_t Cluster::producers() {
  std::size_t n = 0;
  for (auto& shard : shards_) n += shard->service.producers();
  return n;
}

Cluster::Shard& Cluster::ShardFor(const std::string& series) {
  const std::string name = protocol::SeriesOrDefault(series);
  return *shards_[jetstream::ShardOf(name, shards())];
}

uint64_t Cluster::Handle(const v1::Request& request, v1::Response* response) {
  if (request.body_case() == v1::Request::kList) {
    List(request, response);
    return 0;
  }
  const std::string* series = SeriesOf(request);
  if (series == nullptr) return shards_[0]->service.Handle(request, response);  // hello, none
  if (IsChange(request)) return Propose(request, *series, response);
  return ShardFor(*series).service.Handle(request, response);
}

uint64_t Cluster::Propose(const v1::Request& request, const std::string& series,
                          v1::Response* response) {
  const std::string name = protocol::SeriesOrDefault(series);
  const uint32_t index = jetstream::ShardOf(name, shards());
  if (Status s = ShardHealth(index); !s.ok()) {
    SetError(s, response);
    return 0;
  }
  v1::ClusterChange change;
  if (!shards_[index]->service.Propose(request, &change, response)) return 0;
  if (streams_ == nullptr || Stopping()) {
    SetError(Status::Unavailable("the node is not connected to its cluster"), response);
    return 0;
  }
  if (batch_observer_ && change.has_batch()) {
    batch_observer_(name, request.ingest(), change.batch().event_time_unix_nanos(),
                    change.time_unix_nanos());
  }
  const uint64_t token =
      pending_.Add(index, PendingChanges::Clock::now() + options_.decide_timeout);
  change.set_origin(origin_);
  change.set_proposal(token);
  // Pipelined; each message sent again with its id (stored once) until the
  // decide timeout, in whatever order the stream then stores them.
  streams_->PublishAsync(
      index, change.SerializeAsString(), origin_ + ":" + std::to_string(token),
      PendingChanges::Clock::now() + options_.decide_timeout,
      [this, token](const Status& status, const jetstream::PublishResult& where) {
        if (status.ok()) return pending_.Stored(token, where.sequence);
        v1::Response error;
        SetError(Status(status.code(),
                        "the change was not stored by the cluster's log, so it "
                        "may or may not be applied: " +
                            status.message()),
                 &error);
        pending_.Decide(token, std::move(error));
      });
  return token;
}

void Cluster::List(const v1::Request& request, v1::Response* response) {
  // Each shard's page in name order, merged: the first page_size names of
  // all, within the byte budget of one page.
  std::vector<v1::FitReply> all;
  bool more = false;
  for (auto& shard : shards_) {
    v1::Response part;
    shard->service.Handle(request, &part);
    if (part.has_error()) {
      *response = std::move(part);
      return;
    }
    v1::SeriesList* list = part.mutable_series_list();
    more = more || !list->next_page_token().empty();
    for (v1::FitReply& reply : *list->mutable_series()) all.push_back(std::move(reply));
  }
  std::sort(all.begin(), all.end(),
            [](const v1::FitReply& a, const v1::FitReply& b) { return a.series() < b.series(); });
  const std::size_t page_size =
      request.list().page_size() == 0 ? service::kDefaultListPageSize : request.list().page_size();
  v1::SeriesList* list = response->mutable_series_list();
  std::size_t bytes = 0;
  for (v1::FitReply& reply : all) {
    const std::size_t size = reply.ByteSizeLong() + 4;
    if (static_cast<std::size_t>(list->series_size()) == page_size ||
        (list->series_size() > 0 && bytes + size > service::kMaxListPageBytes)) {
      more = true;
      break;
    }
    bytes += size;
    *list->add_series() = std::move(reply);
  }
  if (more && list->series_size() > 0) {
    list->set_next_page_token(list->series(list->series_size() - 1).series());
  }
}

void Cluster::Follow(uint32_t index) {
  Shard& shard = *shards_[index];
  std::unique_ptr<jetstream::ShardStreams::Reader> reader;
  while (!Stopping()) {
    if (!reader) {
      // UNAVAILABLE for a while after the stream's leader died: try again.
      if (!streams_->OpenReader(index, shard.applied + 1, &reader).ok()) {
        reader.reset();
        SleepUnlessStopping(std::chrono::milliseconds(200));
      }
      continue;
    }
    jetstream::StreamMessage message;
    if (!reader->Next(std::chrono::milliseconds(200), &message).ok()) {
      reader.reset();
      continue;
    }
    if (message.sequence == 0 || message.sequence <= shard.applied) continue;
    if (!ApplyMessage(index, message)) {
      // Never skip a change: this node stops applying the shard.
      return Stall(index, "the stream gave position " + std::to_string(message.sequence) +
                              " after " + std::to_string(shard.applied) + ": a change is missing");
    }
  }
}

bool Cluster::ApplyMessage(uint32_t index, const jetstream::StreamMessage& message) {
  Shard& shard = *shards_[index];
  if (message.sequence != shard.applied + 1) return false;
  v1::ClusterChange change;
  v1::Response response;
  if (change.ParseFromString(message.data)) {
    shard.service.ApplyChange(change, &response);
  } else {
    // Not a change: refused alike by every node.
    change.Clear();
    shard.service.ApplyChange(change, &response);
  }
  shard.applied = message.sequence;
  if (shard.known_end < message.sequence) shard.known_end = message.sequence;
  if (change.origin() == origin_) pending_.Decide(change.proposal(), std::move(response));
  return true;
}

void Cluster::Sweep() {
  int rounds = 0;
  while (SleepUnlessStopping(std::chrono::milliseconds(100))) {
    pending_.Expire(PendingChanges::Clock::now(), std::chrono::minutes(1));
    if (++rounds % 10 != 0) continue;
    for (uint32_t i = 0; i < shards(); ++i) {
      Shard& shard = *shards_[i];
      // The applier goes on meanwhile: compare the stream's end with what
      // was applied before asking, its start with what was applied after.
      const uint64_t applied_before = shard.applied;
      jetstream::ShardState state;
      if (!streams_->State(i, &state).ok()) continue;
      const uint64_t applied_after = shard.applied;
      if (state.last_sequence > shard.known_end) shard.known_end = state.last_sequence;
      if (state.last_sequence < applied_before) {
        Stall(i, "the stream ends at position " + std::to_string(state.last_sequence) +
                     " but this node applied up to " + std::to_string(applied_before) +
                     ": the stream was deleted or recreated (restart this node to follow it)");
      } else if (state.messages > 0 && state.first_sequence > applied_after + 1) {
        Stall(i, "the stream's oldest change is at position " +
                     std::to_string(state.first_sequence) + ", after this node's " +
                     std::to_string(applied_after) +
                     ": changes were removed before it applied them");
      }
    }
  }
}

void Cluster::Stall(uint32_t index, const std::string& reason) {
  Shard& shard = *shards_[index];
  {
    util::MutexLock lock(shard.stall_mu);
    if (!shard.stall_reason.empty()) return;
    shard.stall_reason = reason;
  }
  shard.stalled = true;
}

Status Cluster::ShardHealth(uint32_t index) const {
  const Shard& shard = *shards_[index];
  if (!shard.stalled) return Status::Ok();
  util::MutexLock lock(shard.stall_mu);
  return Status::Unavailable("this node stopped applying shard " + std::to_string(index) +
                             " at position " + std::to_string(shard.applied) + ": " +
                             shard.stall_reason +
                             "; its series are answered from that state, their changes refused "
                             "here (another node may serve them)");
}

Status Cluster::Health() const {
  for (uint32_t i = 0; i < shards(); ++i) {
    if (Status s = ShardHealth(i); !s.ok()) return s;
  }
  if (streams_ != nullptr && !streams_->Connected()) {
    uint64_t behind = 0;
    for (const auto& shard : shards_) {
      behind += shard->known_end - std::min(shard->known_end.load(), shard->applied.load());
    }
    return Status::Unavailable(
        "not connected to the cluster's NATS servers: changes are refused; reads are answered "
        "from the state applied here, " +
        std::to_string(behind) + " changes behind the last positions known");
  }
  return Status::Ok();
}

}  // namespace gradientd::cluster
