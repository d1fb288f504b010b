// Node: one gradientd, wired in one place: the service over its series
// store, the data directory it recovers from and journals to, the auth file,
// the recording, and the server in front of them. gradientd's main and the
// in-process tests build the same Node.
//
// Start opens them in order (auth file, recovery, recording, server); Run
// serves until Stop or a signal; Finish, after Run, closes the recording
// and writes the final checkpoint. What gradientd says on the way (the
// recovery report, warnings) goes to `log`.
//
// Thread-safety: Stop may be called from any thread; the rest from one.
#pragma once

#include <atomic>
#include <boost/asio/ip/tcp.hpp>
#include <iosfwd>
#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "core/status.h"
#include "durable/data_directory.h"
#include "http/dashboard_routes.h"
#include "http/live_points.h"
#include "recording/recording.h"
#include "server/server.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::app {

struct NodeOptions {
  server::ServerOptions server;
  service::ServiceLimits limits;
  bool in_memory = false;
  durable::DataDirectoryOptions data;  // unless in_memory
  std::string record_path;             // --record: empty for none
  std::string auth_file;               // --auth-file: empty for an open server
};

class Node {
 public:
  explicit Node(NodeOptions options, std::ostream& log);
  ~Node();
  Node(const Node&) = delete;
  Node& operator=(const Node&) = delete;

  // Loads the auth file, recovers the data directory, creates the
  // recording, binds the server. The error is what gradientd prints after
  // "gradientd: " before exiting 1. Call once.
  Status Start();

  // The address the server listens on. REQUIRES: Start succeeded.
  boost::asio::ip::tcp::endpoint endpoint() const;

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
  // The dashboard's pages and its sample and history API, for the HTTP
  // listener's Router; fed by every applied batch.
  http::Routes& dashboard() { return dashboard_; }

 private:
  Status LoadAuthFile();
  Status Recover();
  Status CreateRecording();
  // The service's one batch observer: the recording, if any, and the
  // dashboard's samples.
  void ObserveBatch(const std::string& series, const v1::PointBatch& batch, int64_t event_time,
                    int64_t received);
  void Record(const v1::RecordedBatch& record);

  const NodeOptions options_;
  std::ostream& log_;
  // Declared in the order they start; destroyed in reverse, server first.
  service::SeriesStore store_;
  service::Service service_;
  http::LivePoints live_points_;
  http::DashboardRoutes dashboard_;
  std::unique_ptr<auth::Authenticator> authenticator_;
  std::unique_ptr<durable::DataDirectory> data_;
  std::unique_ptr<storage::RecordingWriter> recording_;
  std::atomic<bool> recording_error_logged_{false};
  std::unique_ptr<server::Server> server_;
};

}  // namespace gradientd::app
