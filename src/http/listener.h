// Listener: the HTTP shell (Boost.Beast) on the server's query executor.
// Accepts connections (plaintext, or TLS with the protocol's context),
// parses each request within the limits below, hands it to the Router and
// writes the response; HTTP/1.1 keep-alive, requests handled in order.
//
// Limits: a connection over max_connections is answered 503 and closed (up
// to kRefusalAllowance at once; beyond, closed at once); a header over
// max_header_bytes gets 431, a body over max_body_bytes 413, a malformed
// request 400, each then closed. A connection with nothing buffered is
// closed after idle_timeout; a request (or TLS handshake) not complete
// request_timeout after its first byte, or a response not written within
// write_timeout, closes it too.
//
// Everything runs on the executor's one thread: Start before the executor
// runs; Stop on the executor (Server::OnStop), which closes the acceptor and
// every connection at once.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <cstddef>
#include <list>
#include <memory>
#include <string>

#include "core/status.h"
#include "http/router.h"

namespace boost::asio::ssl {
class context;
}

namespace gradientd::http {

struct ListenerOptions {
  std::string listen;  // HOST:PORT; port 0 picks a free one
  std::size_t max_connections = 64;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_body_bytes = 4u << 10;  // GET and HEAD carry none
  std::chrono::milliseconds idle_timeout = std::chrono::minutes(1);
  std::chrono::milliseconds request_timeout = std::chrono::seconds(30);
  std::chrono::milliseconds write_timeout = std::chrono::seconds(30);
};

class Listener {
 public:
  static constexpr std::size_t kRefusalAllowance = 4;

  // `router` must outlive this; `tls` (null: plaintext) too. Runs on
  // `executor`, which must be single-threaded.
  Listener(ListenerOptions options, const Router& router, boost::asio::any_io_executor executor,
           boost::asio::ssl::context* tls);
  ~Listener();
  Listener(const Listener&) = delete;
  Listener& operator=(const Listener&) = delete;

  // Binds and listens. The error names --http-listen and the address.
  Status Start();
  // REQUIRES: Start succeeded.
  boost::asio::ip::tcp::endpoint local_endpoint() const;
  // On the executor: stops accepting and closes every connection.
  void Stop();

  // Connections open now: served (TLS handshakes included) and over
  // max_connections, being answered 503. Thread-safe.
  std::size_t served() const { return served_.load(std::memory_order_relaxed); }
  std::size_t refusing() const { return refusing_.load(std::memory_order_relaxed); }

 private:
  struct Connection;
  enum class Outcome { kRequest, kMalformed, kEnd };
  boost::asio::awaitable<void> Accept();
  void Admit(boost::asio::ip::tcp::socket socket);
  boost::asio::awaitable<void> Serve(std::shared_ptr<Connection> connection);
  template <typename Stream>
  boost::asio::awaitable<void> Exchange(Connection& connection, Stream& stream);
  template <typename Stream>
  boost::asio::awaitable<Outcome> ReadRequest(Connection& connection, Stream& stream,
                                              Response* error);
  void Forget(const std::shared_ptr<Connection>& connection);

  const ListenerOptions options_;
  const Router& router_;
  boost::asio::any_io_executor executor_;
  boost::asio::ssl::context* const tls_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // Touched only on the executor's thread (the counts also read by
  // served() and refusing()).
  std::list<std::shared_ptr<Connection>> connections_;
  std::atomic<std::size_t> served_ = 0;    // of connections_, those within max_connections
  std::atomic<std::size_t> refusing_ = 0;  // the others, being answered 503
  bool stopping_ = false;
};

}  // namespace gradientd::http
