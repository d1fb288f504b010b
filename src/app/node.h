// Node: one gradientd, wired in one place: the service over its series
// store, the data directory it recovers from and journals to, the auth file,
// the recording, and the server in front of them. gradientd's main and the
// in-process tests build the same Node.
//
// Open loads the auth file, binds the server and starts HTTP (health
// answers); Start recovers, creates the recording and starts the server; Run
// serves until Stop or a signal; Finish, after Run, closes the recording
// and writes the final checkpoint. What gradientd says on the way (the
// recovery report, warnings) goes to `log`.
//
// The Node owns the metrics::Registry every component counts in (so nodes in
// one process count separately); RenderMetrics is the /metrics page.
//
// Thread-safety: Stop and RenderMetrics may be called from any thread; the
// rest from one.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "auth/authenticator.h"
#include "cluster/cluster.h"
#include "core/status.h"
#include "durable/checkpoint_metrics.h"
#include "durable/data_directory.h"
#include "http/dashboard_routes.h"
#include "http/listener.h"
#include "http/live_points.h"
#include "http/router.h"
#include "metrics/metrics.h"
#include "recording/recording.h"
#include "server/server.h"
#include "server/server_metrics.h"
#include "service/series_store.h"
#include "service/service.h"
#include "service/service_metrics.h"
#include "storage/journal_metrics.h"

namespace gradientd::app {

// The HTTP listener's options; its timeouts are the protocol's
// (ServerOptions' idle, request and write timeouts).
struct HttpOptions {
  // --http-listen HOST:PORT; empty: --listen's host at its port + 1 (port 0
  // when --listen's is 0); "off": no HTTP.
  std::string listen;
  std::size_t max_connections = 64;  // --http-max-connections
};

// The HTTP address `http.listen` means beside the protocol's `listen`: ""
// for off, else HOST:PORT. The error names --http-listen.
Status ResolveHttpListen(const std::string& http_listen, const std::string& listen,
                         std::string* resolved);

struct NodeOptions {
  server::ServerOptions server;
  HttpOptions http;
  service::ServiceLimits limits;
  bool in_memory = false;
  durable::DataDirectoryOptions data;  // unless in_memory
  std::string record_path;             // --record: empty for none
  std::string auth_file;               // --auth-file: empty for an open server
  // --cluster: with NATS urls, a node of that cluster, whose state is its
  // shard streams' (no data directory, no recording); else a single node.
  cluster::ClusterNodeOptions cluster;
};

class Node {
 public:
  explicit Node(NodeOptions options, std::ostream& log);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Routes served over HTTP after the built-in ones (health, metrics, the
  // JSON API), in the order added; and the text /metrics serves (by default
  // RenderMetrics; null: 404).
  // Call before Open.
  void AddRoutes(std::shared_ptr<http::Routes> routes) {
    extra_routes_.push_back(std::move(routes));
  }
  void SetMetrics(std::function<std::string()> render) { metrics_ = std::move(render); }

  // Loads the auth file, binds the protocol's port (connections to it are
  // refused until Start) and starts the HTTP listener. /healthz answers
  // from here on; /readyz, the API and the dashboard answer 503
  // "recovering" until Start has recovered. The error is what gradientd
  // prints after "gradientd: " before exiting 1. Call once, or not at all.
  Status Open();

  // Opens if Open was not called, recovers the data directory (HTTP
  // answering meanwhile), creates the recording and starts accepting
  // protocol connections. Errors as Open's. Call once.
  Status Start();

  // The address the server listens on. REQUIRES: Open succeeded.
  boost::asio::ip::tcp::endpoint endpoint() const;
  // The HTTP listener's address; nullopt with --http-listen off.
  // REQUIRES: Open succeeded.
  std::optional<boost::asio::ip::tcp::endpoint> http_endpoint() const;

  // SIGINT or SIGTERM stop the server; SIGHUP reloads the auth file. Call
  // after Start, before Run.
  void HandleSignals();

  // Serves until Stop (or a signal, with HandleSignals), then returns once
  // every connection has finished. REQUIRES: Start succeeded.
  void Run();
  void Stop();

  // After Run: closes the recording (an error is logged, not returned) and
  // writes the final checkpoint; the error is the checkpoint's ("final
  // checkpoint failed: ..."). Without Finish the data directory is closed
  // with its journal only (recovery replays it).
  Status Finish();

  service::Service& service() { return service_; }
  // The cluster node; null for a single node.
  cluster::Cluster* cluster() { return cluster_.get(); }

  // Every metric, in the Prometheus text format 0.0.4. Any time after
  // construction (a state not started yet reads as 0).
  std::string RenderMetrics() const { return registry_.Render(); }
  metrics::Registry& metrics() { return registry_; }

 private:
  Status LoadAuthFile();
  Status Recover();
  // Cluster mode's Recover: catches up with the cluster's streams.
  Status JoinCluster();
  Status CreateRecording();
  Status StartHttp();
  // Ok once Start has recovered; else UNAVAILABLE, saying so. Thread-safe.
  Status Started() const;
  // /readyz: started, and the journal takes records (a cluster node:
  // connected to NATS and applying every shard). Thread-safe.
  Status Ready() const;
  // The service's one batch observer: the recording, if any, and the
  // dashboard's samples.
  void ObserveBatch(const std::string& series, const v1::PointBatch& batch, int64_t event_time,
                    int64_t received);
  void Record(const v1::RecordedBatch& record);
  // The metrics read at scrape time: build info, process_*, series,
  // producers, connections.
  void AddStateMetrics();
  // Each shard's applied and known positions; the pending changes.
  void AddClusterMetrics();
  // gradientd_connections' label sets, and their values now, in that order.
  static std::vector<metrics::Labels> ConnectionLabels();
  void ReadConnections(std::vector<double>* values) const;
  // `options` with the metrics structs below wired in.
  NodeOptions WithMetrics(NodeOptions options);

  // Before everything that counts in them; destroyed after.
  metrics::Registry registry_;
  service::ServiceMetrics service_metrics_{registry_};
  storage::JournalMetrics journal_metrics_{registry_};
  durable::CheckpointMetrics checkpoint_metrics_{registry_};
  server::ServerMetrics server_metrics_{registry_};
  metrics::CounterFamily& auth_failures_;
  metrics::Gauge& recovery_seconds_;

  const NodeOptions options_;
  std::ostream& log_;
  // Declared in the order they start; destroyed in reverse, server first.
  service::SeriesStore store_;
  service::Service service_;
  // A cluster node (else null), which answers the protocol, HTTP and the
  // dashboard in place of service_ (then unused).
  std::unique_ptr<cluster::Cluster> cluster_;
  protocol::RequestHandler& handler_;
  http::LivePoints live_points_;
  // The dashboard's pages and its sample and history API, served by the
  // HTTP listener; fed by every applied batch.
  http::DashboardRoutes dashboard_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  // True until Start has recovered. data_ is set by recovery, on another
  // thread than HTTP's: read it only once this reads false.
  std::atomic<bool> recovering_{true};
  std::unique_ptr<durable::DataDirectory> data_;
  std::unique_ptr<storage::RecordingWriter> recording_;
  std::atomic<bool> recording_error_logged_{false};
  std::unique_ptr<server::Server> server_;
  // After the server, whose query executor they run on: destroyed first.
  std::vector<std::shared_ptr<http::Routes>> extra_routes_;
  std::function<std::string()> metrics_;
  std::unique_ptr<http::Router> router_;
  std::unique_ptr<http::Listener> http_;
};

}  // namespace gradientd::app
