// Server: the Asio shell. Accepts TCP connections and moves bytes between
// each socket and a protocol::Connection; all protocol work happens there and
// in the RequestHandler. One io_context per thread; each connection lives on
// one of them, as a reader and a writer coroutine.
//
// Thread-safe: Stop may be called from any thread (or a signal handler set
// up with StopOnSignals).
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

#include "auth/authenticator.h"
#include "core/status.h"
#include "protocol/connection.h"
#include "server/server_metrics.h"
#include "server/tls.h"
#include "service/change_log.h"

namespace gradientd::server {

struct ServerOptions {
  std::string listen = "127.0.0.1:7878";  // HOST:PORT; port 0 picks a free one
  unsigned threads = 0;                   // 0 = one per core
  std::size_t max_frame_bytes = 16u << 20;
  // Accepted sockets served at once, counted from accept (TLS handshake
  // included) until closed. More are answered RESOURCE_EXHAUSTED and
  // closed, at most a few at a time; beyond those, closed at once.
  std::size_t max_connections = 1024;
  // Responses queued per connection before it stops being read.
  std::size_t max_queued_bytes = 4u << 20;
  // A connection with nothing buffered is closed after idle_timeout without
  // a byte; one whose frame is not complete request_timeout after its first
  // byte arrived; a write that does not finish within write_timeout closes
  // it too.
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(5);
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
  // TLS when tls.enabled(); the handshake is bounded by request_timeout.
  TlsOptions tls;
  ServerMetrics* metrics = nullptr;  // must outlive the server; null: none
};

// The connections at one moment, by state.
struct ConnectionCounts {
  std::size_t handshaking = 0;  // TLS handshake under way
  std::size_t established = 0;  // being served
  std::size_t refusing = 0;     // over --max-connections, being told so
};

class Server {
 public:
  // Connections over max_connections that may be getting their
  // RESOURCE_EXHAUSTED error at once; more are closed without a reply.
  static constexpr std::size_t kRefusalAllowance = 16;

  // With a change log, each batch of responses is sent only once the log
  // reports the changes they acknowledge durable (group commit). With an
  // authenticator (which must outlive the Server), every connection goes
  // through an auth::Session; without one the server is open.
  Server(ServerOptions options, protocol::RequestHandler& handler,
         service::ChangeLog* log = nullptr, auth::Authenticator* authenticator = nullptr);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Loads the TLS certificate and binds the address without listening:
  // the port is taken (a busy one is an error now) but connections to it
  // are refused until Start. The error names the address. Start binds if
  // Bind was not called.
  Status Bind();
  // Binds if needed and listens; connections queue from here on. The
  // error names the address.
  Status Start();

  // With a change log (which must outlive the Server), responses wait on
  // it as the constructor's does. Call before Start.
  void SetChangeLog(service::ChangeLog* log);

  // Runs the query context on a thread of its own while `work` runs on the
  // caller's, so what serves there (the HTTP listener) answers during a
  // long startup step such as recovery; returns when `work` has and the
  // thread has stopped. Call before Run; not once Stop was called.
  void ServeQueriesDuring(const std::function<void()>& work);

  // The address actually bound (the chosen port when listening on port 0).
  // REQUIRES: Bind() or Start() succeeded.
  boost::asio::ip::tcp::endpoint local_endpoint() const;

  // For a listener that serves beside the protocol (HTTP): the query
  // context's executor (queries run there; Run runs it, and returns only
  // once the listener's work there is done), and the TLS context the
  // protocol uses (null for plaintext; REQUIRES: Start succeeded).
  boost::asio::any_io_executor query_executor();
  boost::asio::ssl::context* tls_context();
  // `stop` runs on the query executor when Stop begins: it must close what
  // the listener has there, promptly. Call before Run.
  void OnStop(std::function<void()> stop);

  // Stops on SIGINT or SIGTERM. Call before Run.
  void StopOnSignals();

  // Reloads the auth file on SIGHUP, saying on stderr what happened (a
  // failed reload keeps the previous tokens). Existing connections see the
  // new tokens at their next request. Call before Run; only with an
  // authenticator.
  void ReloadOnSighup();

  // Serves until Stop, on `threads` threads (the caller's among them), then
  // returns once every connection has finished.
  void Run();

  // Stops accepting, lets every connection finish the requests it has
  // received and send their responses, then closes them. After a short
  // grace period (2 s) whatever is left is abandoned: requests not yet
  // handled are dropped, responses not yet sent (to clients that do not
  // read, or waiting on a change log that does not answer) too, and
  // handshakes in progress are cut; so Run returns soon after.
  void Stop();

  // Thread-safe; handshaking only with ServerOptions::metrics.
  ConnectionCounts Connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// "HOST:PORT" for an endpoint, with IPv6 addresses in brackets.
std::string FormatEndpoint(const boost::asio::ip::tcp::endpoint& endpoint);

}  // namespace gradientd::server
