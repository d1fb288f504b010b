// RunningNode: an app::Node, the wiring gradientd's main uses, served on a
// thread of its own; for in-process tests. Its log is kept, not printed.
#pragma once

#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <utility>

#include "app/node.h"
#include "client_calls.h"
#include "durable/data_directory.h"
#include "service/series_store.h"
#include "service/service.h"

namespace gradientd::testing {

class RunningNode {
 public:
  explicit RunningNode(app::NodeOptions options) : node_(std::move(options), log_) {}
  ~RunningNode() { Stop(); }
  RunningNode(const RunningNode&) = delete;
  RunningNode& operator=(const RunningNode&) = delete;

  // Node::Start, then Run on the thread.
  Status Start() {
    Status s = node_.Start();
    if (s.ok()) runner_ = std::thread([this] { node_.Run(); });
    return s;
  }
  // HOST:PORT it listens on. REQUIRES: Start succeeded.
  std::string address() const { return server::FormatEndpoint(node_.endpoint()); }
  // HOST:PORT of its HTTP listener. REQUIRES: Start succeeded, HTTP not off.
  std::string http_address() const { return server::FormatEndpoint(*node_.http_endpoint()); }
  // Stops the node and waits for Run to return; the data directory is left
  // to recovery from its journal.
  void Stop() {
    if (!runner_.joinable()) return;
    node_.Stop();
    runner_.join();
  }
  // Stop, then the final checkpoint.
  Status Finish() {
    Stop();
    return node_.Finish();
  }
  app::Node& node() { return node_; }
  // What the node logged. Only while it is stopped or idle.
  std::string log() const { return log_.str(); }

 private:
  std::ostringstream log_;
  app::Node node_;
  std::thread runner_;
};

// Options for a node on loopback port 0 with `threads` ingest threads, in
// memory unless data_dir is given.
inline app::NodeOptions LoopbackNodeOptions(std::string data_dir = "", unsigned threads = 1) {
  app::NodeOptions options;
  options.server.listen = "127.0.0.1:0";
  options.server.threads = threads;
  options.in_memory = data_dir.empty();
  options.data.path = std::move(data_dir);
  return options;
}

// Recovers the data directory into a fresh in-memory Service, as a restart
// would; `report` says what recovery found.
inline Status RecoverDataDirectory(const durable::DataDirectoryOptions& options,
                                   durable::RecoveryReport* report) {
  service::SeriesStore store;
  service::Service service(store);
  std::unique_ptr<durable::DataDirectory> data;
  return durable::DataDirectory::Open(options, service, &data, report);
}

}  // namespace gradientd::testing
