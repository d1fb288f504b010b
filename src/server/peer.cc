// A connection's life: the TLS handshake, then its reader, writer and
// watchdog coroutines on one context; the move to an ingest context; the
// close.
#include <unistd.h>

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <iostream>
#include <type_traits>
#include <variant>

#include "server/durable_wait.h"
#include "server/server_impl.h"

namespace gradientd::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

// How long one Process call may go on handling a connection's buffered
// requests before the connection yields its thread to the others on it.
constexpr auto kProcessBudget = std::chrono::milliseconds(5);
// Responses are cut into chunks of about this size, so a connection's
// queue is bounded by max_queued_bytes plus one chunk and one response.
constexpr std::size_t kChunkBytes = 256 * 1024;

// What an exception says; for several at once (the reader's, then its
// partners' cancellations, nested per operator), the first.
std::string Describe(std::exception_ptr e) {
  for (int depth = 0; depth < 8; ++depth) {
    try {
      std::rethrow_exception(e);
    } catch (const asio::multiple_exceptions& several) {
      if (!several.first_exception()) return several.what();
      e = several.first_exception();
    } catch (const std::exception& x) {
      return x.what();
    } catch (...) {
      return "an exception of unknown type";
    }
  }
  return "nested exceptions";
}

// A wait for the log's answer that ended without it: the connection was
// abandoned, or the wait cancelled by an exception out of the reader.
bool Interrupted(std::size_t which, const PeerState& peer, const asio::cancellation_state& state) {
  return which != 0 || peer.abandoned() || state.cancelled() != asio::cancellation_type::none;
}

}  // namespace

Server::Impl::Peer::Peer(tcp::socket s, asio::ssl::context* tls_context,
                         protocol::RequestHandler& handler, auth::Authenticator* authenticator,
                         metrics::CounterFamily* auth_failures, std::size_t max_frame_bytes)
    : socket(std::move(s)),
      writer_wake(socket.get_executor()),
      reader_wake(socket.get_executor()),
      watchdog(socket.get_executor()),
      abandon_wake(socket.get_executor(), Timer::time_point::max()),
      tls(tls_context ? std::make_unique<TlsStream>(socket, *tls_context) : nullptr),
      session(authenticator
                  ? std::make_unique<auth::Session>(handler, *authenticator, auth_failures)
                  : nullptr),
      connection(session ? *session : handler, max_frame_bytes) {}

void Server::Impl::Peer::MakeTimers() {
  writer_wake = Timer(socket.get_executor());
  reader_wake = Timer(socket.get_executor());
  watchdog = Timer(socket.get_executor());
  abandon_wake = Timer(socket.get_executor(), Timer::time_point::max());
}

void Server::Impl::SpawnServe(const asio::any_io_executor& executor, std::shared_ptr<Peer> peer) {
  asio::co_spawn(executor, Serve(peer), [this, peer](std::exception_ptr e) {
    if (!e) return;  // Serve has closed and forgotten the connection
    std::cerr << "gradientd: closing a connection after an internal error: " << Describe(e) << "\n";
    boost::system::error_code ignored;
    peer->socket.close(ignored);
    peer->state.WriterEnded();
    Forget(peer);
  });
}

void Server::Impl::Abandon(Peer& peer) {
  peer.state.Abandon();
  boost::system::error_code ignored;
  peer.socket.close(ignored);
  peer.reader_wake.cancel();
  peer.writer_wake.cancel();
  peer.watchdog.cancel();
  peer.abandon_wake.cancel();
}

asio::awaitable<void> Server::Impl::Serve(std::shared_ptr<Peer> peer) {
  boost::system::error_code ignored;
  // A client that does not complete the handshake is dropped; it counted
  // towards max_connections meanwhile.
  if (peer->tls && !peer->ingest_context) {
    ServerMetrics* metrics = options.metrics;
    if (metrics != nullptr) metrics->handshaking.Add(1);
    const bool secured = co_await AcceptTls(*peer->tls, options.request_timeout);
    if (metrics != nullptr) {
      metrics->handshaking.Add(-1);
      if (!secured) metrics->tls_handshake_failures.Add();
    }
    if (!secured) {
      peer->socket.close(ignored);
      Forget(peer);
      co_return;
    }
  }
  while (true) {
    if (peer->tls) {
      co_await (Read(peer, *peer->tls) && Write(peer, *peer->tls) && Watch(peer));
    } else {
      co_await (Read(peer, peer->socket) && Write(peer, peer->socket) && Watch(peer));
    }
    if (!peer->state.wants_move()) break;
    peer->state.Moved();
    if (asio::io_context* target = MoveToIngestContext(*peer)) {
      SpawnServe(target->get_executor(), peer);
      co_return;
    }
    // Stopping, or the socket could not move: go on here (the reader meets
    // the end of input, or the closed socket).
  }
  if (peer->tls && peer->state.closes_cleanly()) {
    co_await SendCloseNotify(*peer->tls, options.write_timeout);
  }
  peer->socket.shutdown(tcp::socket::shutdown_both, ignored);
  peer->socket.close(ignored);
  Forget(peer);
}

template <typename Stream>
asio::awaitable<void> Server::Impl::Read(std::shared_ptr<Peer> peer, Stream& stream) {
  constexpr bool kPlain = std::is_same_v<Stream, tcp::socket>;
  protocol::Connection& connection = peer->connection;
  if constexpr (kPlain) {
    boost::system::error_code ignored;
    stream.non_blocking(true, ignored);  // for the direct write below
  }
  // On the query thread, long work waits for the move to an ingest thread.
  connection.DeferLongWork(!peer->ingest_context && peer->state.may_move());
  // The request timeout bounds a whole frame from its first byte (a client
  // trickling bytes does not extend it); max while no frame is partial.
  Clock::time_point frame_deadline = Clock::time_point::max();
  uint64_t frames = connection.frames();
  bool open = true;
  while (open && peer->state.reading()) {
    if (!connection.HasFrame()) {
      // Idle between requests, or in the middle of one: either may time out.
      const bool idle = connection.buffered() == 0;
      if (idle) {
        frame_deadline = Clock::time_point::max();
      } else if (frame_deadline == Clock::time_point::max()) {
        frame_deadline = Clock::now() + options.request_timeout;
      }
      peer->read_deadline = idle ? Clock::now() + options.idle_timeout : frame_deadline;
      const std::span<uint8_t> space = connection.ReceiveBuffer();
      auto [read_ec, n] =
          co_await stream.async_read_some(asio::buffer(space.data(), space.size()), use_tuple);
      peer->read_deadline = Clock::time_point::max();
      if (read_ec) break;  // end of input (or timed out: see Watch), reset, or shutdown
      connection.Received(n);
    }
    Chunk chunk;
    open = connection.Process(&chunk.bytes, kChunkBytes, Clock::now() + kProcessBudget);
    if (connection.frames() != frames) {
      // A frame completed: what is left is the start of the next one.
      frames = connection.frames();
      frame_deadline = Clock::time_point::max();
    }
    chunk.token = connection.durability_token();
    chunk.waiting = connection.TakeWaiting();
    // Nothing queued and nothing to wait for: send at once, without waking
    // the writer; what the socket does not take goes to it.
    if (kPlain && chunk.token == 0 && peer->chunks.empty() && !chunk.bytes.empty()) {
      boost::system::error_code ignored;  // the writer meets any error again
      chunk.bytes.erase(0, peer->socket.write_some(asio::buffer(chunk.bytes), ignored));
    }
    if (!chunk.bytes.empty()) {
      AddQueued(*peer, static_cast<int64_t>(chunk.bytes.size()));
      peer->chunks.push_back(std::move(chunk));
      peer->writer_wake.cancel();
    }
    // Back-pressure: a client that does not read its responses stops being read.
    while (peer->queued_bytes >= options.max_queued_bytes && peer->state.reading()) {
      peer->reader_wake.expires_at(Timer::time_point::max());
      co_await peer->reader_wake.async_wait(use_tuple);
    }
    // A producer, or long work: hand the connection over to an ingest
    // thread, once the writer has sent what is queued (Serve does the move).
    if (open && connection.wants_worker() && peer->state.may_move()) {
      peer->state.ReaderParkedForMove();
      break;
    }
    // A long pipeline: let the other connections on this thread have a turn.
    if (open && connection.HasFrame()) co_await asio::post(peer->socket.get_executor(), use_tuple);
  }
  peer->state.ReaderEnded();
  peer->writer_wake.cancel();
}

template <typename Stream>
asio::awaitable<void> Server::Impl::Write(std::shared_ptr<Peer> peer, Stream& stream) {
  boost::system::error_code ignored;
  while (!peer->state.abandoned()) {
    if (peer->chunks.empty()) {
      if (peer->state.reader_ended()) break;
      peer->writer_wake.expires_at(Timer::time_point::max());
      co_await peer->writer_wake.async_wait(use_tuple);
      continue;
    }
    Chunk& chunk = peer->chunks.front();
    // Group commit: the responses wait for the one fsync that covers all the
    // changes they acknowledge; meanwhile the reader goes on.
    // (Two statements, not a conditional expression of awaitables: GCC 12
    // destroys such a temporary twice.)
    if (chunk.token > 0 && log != nullptr) {
      bool sent = false;
      if (log->DecidesResponses()) {
        sent = co_await AwaitDecided(*peer, chunk);
      } else {
        sent = co_await AwaitDurable(*peer, chunk);
      }
      if (!sent) break;
    }
    peer->write_deadline = Clock::now() + options.write_timeout;
    auto [write_ec, n] = co_await asio::async_write(stream, asio::buffer(chunk.bytes), use_tuple);
    peer->write_deadline = Clock::time_point::max();
    if (write_ec) {
      // Timed out or broken: give up on this client, and stop its reader.
      peer->state.WriteFailed();
      peer->socket.close(ignored);
      break;
    }
    AddQueued(*peer, -static_cast<int64_t>(chunk.bytes.size()));
    peer->chunks.pop_front();
    peer->reader_wake.cancel();
  }
  peer->state.WriterEnded();
  peer->reader_wake.cancel();
  peer->watchdog.cancel();
}

asio::awaitable<bool> Server::Impl::AwaitDurable(Peer& peer, Chunk& chunk) {
  auto durable = co_await (AsyncWaitDurable(*log, chunk.token, asio::use_awaitable) ||
                           peer.abandon_wake.async_wait(use_tuple));
  // The log has not answered, so there is no outcome to ask it for.
  const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
  if (Interrupted(durable.index(), peer.state, state)) co_return false;
  if (!std::get<0>(durable).ok()) {
    // Each response by its own change's fate: an Error only for the changes
    // the log did not make durable. The Errors differ in size from what
    // they replace, and the queue counts what it holds.
    const std::size_t before = chunk.bytes.size();
    protocol::Connection::FailUndurable([this](uint64_t token) { return log->Outcome(token); },
                                        chunk.waiting, &chunk.bytes);
    AddQueued(peer, static_cast<int64_t>(chunk.bytes.size()) - static_cast<int64_t>(before));
  }
  co_return true;
}

asio::awaitable<bool> Server::Impl::AwaitDecided(Peer& peer, Chunk& chunk) {
  std::vector<v1::Response> decided;
  decided.reserve(chunk.waiting.size());
  for (const protocol::Connection::Waiting& w : chunk.waiting) {
    auto response = co_await (AsyncWaitDecided(*log, w.token, asio::use_awaitable) ||
                              peer.abandon_wake.async_wait(use_tuple));
    const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
    if (Interrupted(response.index(), peer.state, state)) co_return false;
    decided.push_back(std::move(std::get<0>(response)));
  }
  const std::size_t before = chunk.bytes.size();
  protocol::Connection::ReplaceResponses(chunk.waiting, decided, &chunk.bytes);
  AddQueued(peer, static_cast<int64_t>(chunk.bytes.size()) - static_cast<int64_t>(before));
  co_return true;
}

asio::awaitable<void> Server::Impl::Watch(std::shared_ptr<Peer> peer) {
  // Deadlines are only ever set to now + a timeout. Waking at least once per
  // shortest timeout therefore catches each one on time, and moving one
  // never needs to wake the watchdog early.
  const auto period = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(1),
      std::min({options.idle_timeout, options.request_timeout, options.write_timeout}));
  boost::system::error_code ignored;
  while (peer->state.watching()) {
    const auto now = Clock::now();
    if (now >= peer->write_deadline) {
      peer->socket.close(ignored);  // a client that does not read: the writer gives up
      break;
    }
    if (now >= peer->read_deadline) {
      // Idle or stalled mid-frame: the reader sees end of input, and the
      // writer still sends what was answered before closing.
      peer->read_deadline = Clock::time_point::max();
      peer->socket.shutdown(tcp::socket::shutdown_receive, ignored);
    }
    peer->watchdog.expires_at(std::min({peer->read_deadline, peer->write_deadline, now + period}));
    co_await peer->watchdog.async_wait(use_tuple);
  }
}

asio::io_context* Server::Impl::MoveToIngestContext(Peer& peer) {
  util::MutexLock lock(mu);
  if (stopping) return nullptr;
  const auto index = static_cast<std::size_t>(std::min_element(producers.begin(), producers.end()) -
                                              producers.begin());
  asio::io_context& target = *ingest_contexts[index];
  boost::system::error_code ec;
  const tcp::endpoint local = peer.socket.local_endpoint(ec);
  if (ec) return nullptr;
  const tcp::socket::native_handle_type fd = peer.socket.release(ec);
  if (ec) return nullptr;
  tcp::socket moved(target);
  if (moved.assign(local.protocol(), fd, ec); ec) {
    ::close(fd);
    return nullptr;
  }
  // The TLS stream holds a reference to the socket object, which stays.
  peer.socket = std::move(moved);
  peer.MakeTimers();
  peer.ingest_context = index;
  ++producers[index];
  return &target;
}

void Server::Impl::AddQueued(Peer& peer, int64_t delta) {
  peer.queued_bytes = static_cast<std::size_t>(static_cast<int64_t>(peer.queued_bytes) + delta);
  if (options.metrics != nullptr) options.metrics->queued_bytes.Add(delta);
}

void Server::Impl::Forget(const std::shared_ptr<Peer>& peer) {
  util::MutexLock lock(mu);
  // What it leaves unsent no longer counts as queued (once: a peer may be
  // forgotten twice after an internal error).
  if (peers.remove(peer) > 0 && options.metrics != nullptr) {
    options.metrics->queued_bytes.Add(-static_cast<int64_t>(peer->queued_bytes));
  }
  if (peer->ingest_context) --producers[*peer->ingest_context];
  if (stopping && peers.empty()) {
    // The last connection is gone: no need to wait out the grace period.
    asio::post(control, [this] { grace_timer.cancel(); });
    StopRunning();
  }
}

}  // namespace gradientd::server
