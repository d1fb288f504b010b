// The baselines that bench's figures are compared with: what the same
// client code reaches when the server does nothing.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <cstdint>
#include <thread>
#include <vector>

#include "core/status.h"
#include "protocol/endpoint.h"

namespace gradientd::cli::bench {

// An in-process server that reads and drops bytes, blocking Asio, one thread
// per connection. It accepts exactly `connections` connections.
class DiscardServer {
 public:
  explicit DiscardServer(int connections) : connections_(connections) {}
  ~DiscardServer() { Join(); }

  // Listens on a free loopback port (into *endpoint) and starts accepting.
  Status Start(protocol::Endpoint* endpoint);

  // Waits for every connection to end. Connections the benchmark did not
  // make (it failed early) are made here, so that the accept loop ends.
  void Join();

  uint64_t bytes_received() const { return bytes_.load(); }

 private:
  void Accept();
  void Serve(boost::asio::ip::tcp::socket& socket);

  int connections_;
  boost::asio::io_context io_;
  boost::asio::ip::tcp::acceptor acceptor_{io_};
  std::thread acceptor_thread_;
  std::vector<std::thread> workers_;  // written by the acceptor thread only
  std::atomic<uint64_t> bytes_{0};
  std::atomic<int> accepted_{0};
};

// A plain TCP echo server in a child process. Like gradientd, it is a
// process of its own, so each round trip to it pays the same switches
// between address spaces as a query does (a round trip to a thread of this
// process would not, and was measured 6 us faster here).
class EchoProcess {
 public:
  EchoProcess() = default;
  EchoProcess(const EchoProcess&) = delete;
  EchoProcess& operator=(const EchoProcess&) = delete;
  ~EchoProcess() { Stop(); }

  // Listens on a free loopback port (into *endpoint) and forks the server,
  // which serves the first connection made to it until that connection ends.
  Status Start(protocol::Endpoint* endpoint);
  // Kills and reaps the child, if running.
  void Stop();

 private:
  [[noreturn]] static void Serve(int listener, pid_t parent);

  pid_t pid_ = -1;
};

}  // namespace gradientd::cli::bench
