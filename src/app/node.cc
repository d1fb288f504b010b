#include "app/node.h"

#include <google/protobuf/stubs/common.h>

#include <boost/version.hpp>
#include <chrono>
#include <filesystem>
#include <ostream>
#include <utility>

#include "auth/session.h"
#include "http/api_routes.h"
#include "http/health_routes.h"
#include "http/startup_gate.h"
#include "metrics/process.h"
#include "protocol/endpoint.h"

#ifndef GRADIENTD_VERSION
#define GRADIENTD_VERSION "unknown"
#endif
#ifndef GRADIENTD_GIT_COMMIT
#define GRADIENTD_GIT_COMMIT ""
#endif

namespace gradientd::app {

namespace {

// "3.21.12" from 3021012.
std::string ProtobufVersion() {
  const int v = GOOGLE_PROTOBUF_VERSION;
  return std::to_string(v / 1000000) + "." + std::to_string(v / 1000 % 1000) + "." +
         std::to_string(v % 1000);
}

// "1.81.0" from 108100.
std::string BoostVersion() {
  const int v = BOOST_VERSION;
  return std::to_string(v / 100000) + "." + std::to_string(v / 100 % 1000) + "." +
         std::to_string(v % 100);
}

// A cluster node when `options` name NATS servers, else null.
std::unique_ptr<cluster::Cluster> MakeCluster(const NodeOptions& options) {
  if (options.cluster.streams.urls.empty()) return nullptr;
  cluster::ClusterNodeOptions cluster = options.cluster;
  cluster.limits = options.limits;
  return std::make_unique<cluster::Cluster>(std::move(cluster));
}

}  // namespace

Node::Node(NodeOptions options, std::ostream& log)
    : auth_failures_(registry_.AddCounterFamily("gradientd_auth_failures_total",
                                                "Requests refused by access control, by reason.",
                                                auth::AuthFailureLabels())),
      recovery_seconds_(registry_.AddGauge(
          "gradientd_recovery_duration_seconds",
          "How long recovering the data directory took at start (0 in memory).")),
      options_(WithMetrics(std::move(options))),
      log_(log),
      service_(store_, options_.limits),
      cluster_(MakeCluster(options_)),
      handler_(cluster_ ? static_cast<protocol::RequestHandler&>(*cluster_) : service_),
      dashboard_(handler_, live_points_) {
  // Set before recovery, which does not call it: the samples are of live
  // traffic only (in a cluster, this node's).
  auto observe = [this](const std::string& series, const v1::PointBatch& batch, int64_t event_time,
                        int64_t received) { ObserveBatch(series, batch, event_time, received); };
  // A reset series' old points and history are not drawn again.
  auto forget = [this](const std::string& series) { live_points_.Forget(series); };
  if (cluster_) {
    cluster_->SetMetrics(&service_metrics_);
    cluster_->SetBatchObserver(observe);
    cluster_->SetResetObserver(forget);
  } else {
    service_.SetMetrics(&service_metrics_);
    service_.SetBatchObserver(observe);
    service_.SetResetObserver(forget);
  }
  AddStateMetrics();
  metrics_ = [this] { return registry_.Render(); };
}

NodeOptions Node::WithMetrics(NodeOptions options) {
  options.server.metrics = &server_metrics_;
  server_metrics_.auth_failures = &auth_failures_;
  server_metrics_.max_connections_refusals =
      &service_metrics_.refusals.at(static_cast<std::size_t>(service::Limit::kMaxConnections));
  options.data.journal.metrics = &journal_metrics_;
  options.data.metrics = &checkpoint_metrics_;
  return options;
}

void Node::AddStateMetrics() {
  registry_
      .AddGauge("gradientd_build_info", "gradientd's build: version, git commit, libraries.",
                {{"version", GRADIENTD_VERSION},
                 {"git_commit", GRADIENTD_GIT_COMMIT},
                 {"protobuf_version", ProtobufVersion()},
                 {"boost_version", BoostVersion()}})
      .Set(1);
  registry_.AddGaugeCallback("gradientd_series", "Series held.", [this] {
    return static_cast<double>(cluster_ ? cluster_->series() : store_.size());
  });
  registry_.AddGaugeCallback(
      "gradientd_producers", "Exactly-once producers the producer table holds.", [this] {
        return static_cast<double>(cluster_ ? cluster_->producers() : service_.producers());
      });
  if (cluster_) AddClusterMetrics();
  registry_.AddCallback("gradientd_connections", "Client connections by listener and state.",
                        "gauge", ConnectionLabels(),
                        [this](std::vector<double>* values) { ReadConnections(values); });
  metrics::AddProcessMetrics(registry_);
}

std::vector<metrics::Labels> Node::ConnectionLabels() {
  return {{{"listener", "protocol"}, {"state", "handshaking"}},
          {{"listener", "protocol"}, {"state", "established"}},
          {{"listener", "protocol"}, {"state", "refusing"}},
          {{"listener", "http"}, {"state", "established"}},
          {{"listener", "http"}, {"state", "refusing"}}};
}

void Node::ReadConnections(std::vector<double>* values) const {
  values->assign(5, 0.0);
  if (server_) {
    const server::ConnectionCounts counts = server_->Connections();
    (*values)[0] = static_cast<double>(counts.handshaking);
    (*values)[1] = static_cast<double>(counts.established);
    (*values)[2] = static_cast<double>(counts.refusing);
  }
  if (http_) {
    (*values)[3] = static_cast<double>(http_->served());
    (*values)[4] = static_cast<double>(http_->refusing());
  }
}

Node::~Node() {
  // Its appliers call into what is destroyed before it (the reset observer).
  if (cluster_) cluster_->Stop();
}

Status Node::Open() {
  if (server_) return Status::Ok();
  if (Status s = LoadAuthFile(); !s.ok()) return s;
  server_ =
      std::make_unique<server::Server>(options_.server, handler_, nullptr, authenticator_.get());
  if (Status s = server_->Bind(); !s.ok()) return s;
  return StartHttp();
}

Status Node::Start() {
  if (Status s = Open(); !s.ok()) return s;
  Status recovered;
  server_->ServeQueriesDuring([&] { recovered = cluster_ ? JoinCluster() : Recover(); });
  if (!recovered.ok()) return recovered;
  if (Status s = CreateRecording(); !s.ok()) return s;
  if (data_) server_->SetChangeLog(data_->change_log());
  if (cluster_) server_->SetChangeLog(cluster_.get());
  if (Status s = server_->Start(); !s.ok()) return s;
  // Whatever HTTP sees from here on sees the recovered state.
  recovering_.store(false, std::memory_order_release);
  if (!authenticator_ && !endpoint().address().is_loopback()) {
    log_ << "gradientd: warning: listening on " << server::FormatEndpoint(endpoint())
         << " without --auth-file: anyone who can reach it may read and change every series\n";
  }
  if (!authenticator_ && http_ && !http_->local_endpoint().address().is_loopback()) {
    log_ << "gradientd: warning: HTTP on " << server::FormatEndpoint(http_->local_endpoint())
         << " without --auth-file: anyone who can reach it may read every series\n";
  }
  return Status::Ok();
}

Status ResolveHttpListen(const std::string& http_listen, const std::string& listen,
                         std::string* resolved) {
  if (http_listen == "off") {
    resolved->clear();
    return Status::Ok();
  }
  if (!http_listen.empty()) {
    protocol::Endpoint where;
    if (Status s = protocol::ParseEndpoint(http_listen, &where); !s.ok()) {
      return Status::InvalidArgument("--http-listen: " + s.message());
    }
    *resolved = http_listen;
    return Status::Ok();
  }
  protocol::Endpoint where;
  if (Status s = protocol::ParseEndpoint(listen, &where); !s.ok()) {
    return Status::InvalidArgument("--listen: " + s.message());
  }
  if (where.port == 65535) {
    return Status::InvalidArgument(
        "--http-listen: --listen's port is 65535, so HTTP has no port "
        "next to it: give --http-listen HOST:PORT or off");
  }
  const uint16_t port = where.port == 0 ? 0 : static_cast<uint16_t>(where.port + 1);
  *resolved = protocol::FormatEndpoint(where.host, port);
  return Status::Ok();
}

Status Node::StartHttp() {
  http::ListenerOptions listener;
  if (Status s = ResolveHttpListen(options_.http.listen, options_.server.listen, &listener.listen);
      !s.ok()) {
    return s;
  }
  if (listener.listen.empty()) return Status::Ok();
  listener.max_connections = options_.http.max_connections;
  listener.idle_timeout = options_.server.idle_timeout;
  listener.request_timeout = options_.server.request_timeout;
  listener.write_timeout = options_.server.write_timeout;
  router_ = std::make_unique<http::Router>(authenticator_.get());
  router_->Add(std::make_shared<http::HealthRoutes>(
      http::HealthChecks{[this] { return Ready(); }, metrics_}));
  router_->Add(std::make_shared<http::StartupGate>([this] { return Started(); }));
  // The dashboard before the JSON API, which answers every other /api/
  // path (404); the Node owns it, so the pointer owns nothing.
  router_->Add(std::shared_ptr<http::Routes>(std::shared_ptr<void>(), &dashboard_));
  router_->Add(std::make_shared<http::ApiRoutes>(handler_));
  for (const auto& routes : extra_routes_) router_->Add(routes);
  http_ = std::make_unique<http::Listener>(std::move(listener), *router_, server_->query_executor(),
                                           server_->tls_context());
  if (Status s = http_->Start(); !s.ok()) return s;
  server_->OnStop([listener = http_.get()] { listener->Stop(); });
  return Status::Ok();
}

Status Node::Started() const {
  if (!recovering_.load(std::memory_order_acquire)) return Status::Ok();
  if (cluster_) return cluster_->CatchingUp();
  return Status::Unavailable("recovering the data directory (" +
                             std::to_string(checkpoint_metrics_.records_replayed.Value()) +
                             " journal records replayed, " + std::to_string(store_.size()) +
                             " series so far)");
}

Status Node::Ready() const {
  if (Status s = Started(); !s.ok()) return s;
  if (cluster_) return cluster_->Health();
  if (data_ == nullptr) return Status::Ok();
  if (Status s = data_->journal_health(); !s.ok()) {
    return Status(s.code(), "the journal has failed, writes are refused: " + s.message());
  }
  return Status::Ok();
}

Status Node::LoadAuthFile() {
  const std::string& path = options_.auth_file;
  if (path.empty()) return Status::Ok();
  if (Status s = auth::Authenticator::Load(path, &authenticator_); !s.ok()) {
    return Status(s.code(), "--auth-file: " + s.message());
  }
  log_ << "gradientd: access control: " << authenticator_->size() << " token(s) from " << path
       << "\n";
  std::error_code ec;
  const auto permissions = std::filesystem::status(path, ec).permissions();
  if (!ec &&
      (permissions & (std::filesystem::perms::group_read | std::filesystem::perms::others_read)) !=
          std::filesystem::perms::none) {
    log_ << "gradientd: warning: " << path << " is readable by other users (chmod 600 it)\n";
  }
  if (authenticator_->size() == 0) {
    log_ << "gradientd: warning: " << path
         << " holds no tokens: every request will be refused until a reload adds one\n";
  }
  return Status::Ok();
}

Status Node::Recover() {
  if (options_.in_memory) return Status::Ok();
  durable::RecoveryReport report;
  if (Status s = durable::DataDirectory::Open(options_.data, service_, &data_, &report); !s.ok()) {
    return Status(s.code(), "cannot use data directory " + options_.data.path + ": " + s.message());
  }
  log_ << "gradientd: " << report.ToString(options_.data.path) << "\n";
  recovery_seconds_.Set(report.seconds);
  return Status::Ok();
}

Status Node::CreateRecording() {
  if (options_.record_path.empty()) return Status::Ok();
  if (Status s = storage::RecordingWriter::Create(options_.record_path, &recording_); !s.ok()) {
    return Status(s.code(), "--record: " + s.message());
  }
  return Status::Ok();
}

void Node::ObserveBatch(const std::string& series, const v1::PointBatch& batch, int64_t event_time,
                        int64_t received) {
  live_points_.Observe(series, batch);
  if (recording_) Record(storage::RecordAcceptedBatch(series, batch, received, event_time));
}

void Node::Record(const v1::RecordedBatch& record) {
  // Flushed per batch, so a crash of gradientd loses at most the record
  // being written (the reader stops cleanly at a cut record).
  Status s = recording_->Append(record);
  if (s.ok()) s = recording_->Flush();
  if (!s.ok() && !recording_error_logged_.exchange(true)) {
    log_ << "gradientd: --record: " << s.message() << "\n";
  }
}

Status Node::JoinCluster() {
  const auto start = std::chrono::steady_clock::now();
  if (Status s = cluster_->Start(log_); !s.ok()) return s;
  const std::chrono::duration<double> took = std::chrono::steady_clock::now() - start;
  recovery_seconds_.Set(took.count());
  return Status::Ok();
}

void Node::AddClusterMetrics() {
  std::vector<metrics::Labels> shards;
  for (uint32_t i = 0; i < cluster_->shards(); ++i)
    shards.push_back({{"shard", std::to_string(i)}});
  registry_.AddCallback("gradientd_cluster_applied_position",
                        "The last position of each shard's stream this node has applied.", "gauge",
                        shards, [this](std::vector<double>* values) {
                          values->clear();
                          for (const auto& p : cluster_->Progress()) {
                            values->push_back(static_cast<double>(p.applied));
                          }
                        });
  registry_.AddCallback("gradientd_cluster_known_position",
                        "The last position of each shard's stream when last looked at (about "
                        "every second); minus the applied position: this node's lag.",
                        "gauge", shards, [this](std::vector<double>* values) {
                          values->clear();
                          for (const auto& p : cluster_->Progress()) {
                            values->push_back(static_cast<double>(p.known_end));
                          }
                        });
  registry_.AddGaugeCallback(
      "gradientd_cluster_pending_changes",
      "Changes this node proposed that have no outcome yet (or whose outcome is not yet sent).",
      [this] { return static_cast<double>(cluster_->pending()); });
}

boost::asio::ip::tcp::endpoint Node::endpoint() const { return server_->local_endpoint(); }

std::optional<boost::asio::ip::tcp::endpoint> Node::http_endpoint() const {
  if (!http_) return std::nullopt;
  return http_->local_endpoint();
}

void Node::HandleSignals() {
  server_->StopOnSignals();
  if (authenticator_) server_->ReloadOnSighup();
}

void Node::Run() { server_->Run(); }

void Node::Stop() { server_->Stop(); }

Status Node::Finish() {
  if (cluster_) cluster_->Stop();
  if (recording_) {
    if (Status s = recording_->Close(); !s.ok()) {
      log_ << "gradientd: --record: " << s.message() << "\n";
    }
  }
  if (data_) {
    if (Status s = data_->Close(); !s.ok()) {
      return Status(s.code(), "final checkpoint failed: " + s.message());
    }
  }
  return Status::Ok();
}

}  // namespace gradientd::app
