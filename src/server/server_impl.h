// Server::Impl: the server's state, shared by server.cc (threads, stop),
// acceptor.cc (accepting and refusing) and peer.cc (a connection's life).
// Private to src/server/.
#pragma once

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "auth/session.h"
#include "protocol/connection.h"
#include "server/peer_state.h"
#include "server/server.h"
#include "server/tls_stream.h"
#include "util/mutex.h"

namespace gradientd::server {

inline constexpr auto use_tuple = boost::asio::as_tuple(boost::asio::use_awaitable);

struct Server::Impl {
  using Clock = boost::asio::steady_timer::clock_type;
  using tcp = boost::asio::ip::tcp;
  using Timer = boost::asio::steady_timer;

  // Responses of one Process call, waiting to be written.
  struct Chunk {
    std::string bytes;
    uint64_t token = 0;  // the change-log token they wait for
    std::vector<protocol::Connection::Waiting> waiting;
  };

  // A live connection: its socket, its protocol state, and the reader,
  // writer and watchdog coroutines' shared state. The reader turns requests
  // into chunks of responses, the writer sends them in order, one write at a
  // time. Everything here is touched only on the thread of the context the
  // peer is on; it moves (see MoveToIngestContext) only while none of its
  // coroutines runs.
  struct Peer {
    Peer(tcp::socket s, boost::asio::ssl::context* tls_context, protocol::RequestHandler& handler,
         auth::Authenticator* authenticator, metrics::CounterFamily* auth_failures,
         std::size_t max_frame_bytes);
    // Re-creates the timers on the socket's (new) context.
    void MakeTimers();

    tcp::socket socket;
    // Timers used as condition variables: cancel() wakes the waiter.
    Timer writer_wake;
    Timer reader_wake;
    // While a read or a write is pending, when it times out; the watchdog
    // enforces them. Moving a deadline costs a store, not a timer update.
    Clock::time_point read_deadline = Clock::time_point::max();
    Clock::time_point write_deadline = Clock::time_point::max();
    Timer watchdog;
    Timer abandon_wake;                      // wakes a writer waiting for durability
    std::unique_ptr<TlsStream> tls;          // over socket; null for plaintext
    std::unique_ptr<auth::Session> session;  // who the client is; null on an open server
    protocol::Connection connection;
    std::deque<Chunk> chunks;
    std::size_t queued_bytes = 0;
    PeerState state;
    std::optional<std::size_t> ingest_context;  // its index; nullopt: on the query context
  };

  Impl(ServerOptions o, protocol::RequestHandler& h, service::ChangeLog* l, auth::Authenticator* a);

  // --- acceptor.cc ---
  boost::asio::awaitable<void> Accept();
  // Counts an accepted socket as a connection, or as a refusal in progress,
  // and starts it; beyond both limits, closes it.
  void Admit(tcp::socket socket) EXCLUDES(mu);
  // A socket over max_connections (answered or closed at once).
  void CountConnectionRefusal();
  // Answers RESOURCE_EXHAUSTED and closes; the socket is in `refusing`
  // meanwhile.
  boost::asio::awaitable<void> Refuse(std::shared_ptr<tcp::socket> socket);

  // --- peer.cc ---
  // Spawns a connection's Serve on `executor`; an exception out of it is
  // logged and the connection closed and forgotten.
  void SpawnServe(const boost::asio::any_io_executor& executor, std::shared_ptr<Peer> peer);
  // The grace period is over: drops what the peer has not handled or sent,
  // and closes it. On the peer's context.
  static void Abandon(Peer& peer);
  // A connection's life on one context: the TLS handshake (first time
  // only), then its reader, writer and watchdog until they end; then either
  // on to an ingest context, or closed.
  boost::asio::awaitable<void> Serve(std::shared_ptr<Peer> peer);
  // Stream: the peer's tcp::socket, or its TlsStream once the handshake is done.
  template <typename Stream>
  boost::asio::awaitable<void> Read(std::shared_ptr<Peer> peer, Stream& stream);
  template <typename Stream>
  boost::asio::awaitable<void> Write(std::shared_ptr<Peer> peer, Stream& stream);
  // Waits for the change log to make the chunk's changes durable, and turns
  // the responses it did not into errors. False if abandoned or cancelled.
  boost::asio::awaitable<bool> AwaitDurable(Peer& peer, Chunk& chunk);
  // For a log that decides responses (a cluster's): waits for each waiting
  // response's own, and puts it in place. False if abandoned or cancelled.
  boost::asio::awaitable<bool> AwaitDecided(Peer& peer, Chunk& chunk);
  boost::asio::awaitable<void> Watch(std::shared_ptr<Peer> peer);
  // Re-registers the peer's socket and timers with the ingest context that
  // has the fewest producers and returns it. Null if the server is stopping
  // or the socket could not move; the peer then stays (its socket may have
  // been closed).
  boost::asio::io_context* MoveToIngestContext(Peer& peer) EXCLUDES(mu);
  void Forget(const std::shared_ptr<Peer>& peer) EXCLUDES(mu);
  // Changes the peer's queued_bytes, and the metrics' total.
  void AddQueued(Peer& peer, int64_t delta);

  // --- server.cc ---
  // Each live peer with the executor of the context it is on.
  using Located = std::pair<std::shared_ptr<Peer>, boost::asio::any_io_executor>;
  std::vector<Located> LocatePeers() const REQUIRES(mu);
  // Lets each thread's run() return once its work is done.
  void StopRunning() REQUIRES(mu);
  void AwaitSighup();
  // Stop, on the control executor: stops accepting, half-closes every
  // connection, and abandons what is left after the grace period.
  void BeginStop() EXCLUDES(mu);
  void AbandonTheRest() EXCLUDES(mu);

  const ServerOptions options;
  protocol::RequestHandler& handler;
  service::ChangeLog* log;                         // set before Start
  auth::Authenticator* const authenticator;        // null: open server
  std::unique_ptr<boost::asio::ssl::context> tls;  // null: plaintext
  // One io_context per thread, so that a connection's reader and writer,
  // and the handlers between them, stay on one thread: no locking and no
  // cross-thread wake-up on the way from request to response.
  //
  // Every connection starts on the query context. One that ingests moves,
  // once, to the ingest context with the fewest producers: a query never
  // waits behind a producer's batches on the same thread, and the query
  // thread, mostly asleep, is woken promptly by the kernel even when the
  // ingest threads keep every core busy.
  boost::asio::io_context query_context{1};
  std::vector<std::unique_ptr<boost::asio::io_context>> ingest_contexts;
  // The acceptor, signals and shutdown timer live on the query context.
  boost::asio::io_context::executor_type control;
  tcp::acceptor acceptor;
  Clock::time_point last_accept_error{};  // when it was last reported
  boost::asio::signal_set signals;
  boost::asio::signal_set reload_signals;
  Timer grace_timer;
  std::vector<std::function<void()>> on_stop;  // set before Run; run by BeginStop

  mutable util::Mutex mu;                             // also taken for a peer's move
  std::vector<std::size_t> producers GUARDED_BY(mu);  // per ingest context
  std::list<std::shared_ptr<Peer>> peers GUARDED_BY(mu);
  std::list<std::shared_ptr<tcp::socket>> refusing GUARDED_BY(mu);  // on the query context
  bool stopping GUARDED_BY(mu) = false;
  // Contexts without connections have no work; these keep them running.
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> keep_running
      GUARDED_BY(mu);
};

}  // namespace gradientd::server
