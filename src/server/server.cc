#include "server/server.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <deque>
#include <iostream>
#include <list>
#include <mutex>
#include <optional>
#include <thread>
#include <type_traits>
#include <variant>
#include <vector>

#include "auth/session.h"
#include "protocol/endpoint.h"
#include "protocol/error_codes.h"
#include "protocol/frame_codec.h"

namespace gradientd::server {
namespace asio = boost::asio;
using asio::ip::tcp;
using namespace asio::experimental::awaitable_operators;

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(2);
// How long one Process call may go on handling a connection's buffered
// requests before the connection yields its thread to the others on it.
constexpr auto kProcessBudget = std::chrono::milliseconds(5);
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

// TLS over a connection's socket, which stays the lowest layer: closing and
// half-closing it work as for plaintext.
using TlsStream = asio::ssl::stream<tcp::socket&>;

// The server side of the TLS handshake, bounded by `timeout`. False if it
// failed (a plaintext client, an untrusted or missing client certificate)
// or timed out; OpenSSL has then sent the client an alert if it could.
asio::awaitable<bool> AcceptTls(TlsStream& stream, std::chrono::milliseconds timeout) {
  asio::steady_timer deadline(stream.get_executor(), timeout);
  auto result = co_await (stream.async_handshake(TlsStream::server, use_tuple) ||
                          deadline.async_wait(use_tuple));
  co_return result.index() == 0 && !std::get<0>(std::get<0>(result));
}

// Sends TLS close_notify after the last response, so the client can tell the
// end of the responses from a cut connection. Does not wait for the client's
// close_notify (marked as received), only for the write, within `timeout`.
asio::awaitable<void> SendCloseNotify(TlsStream& stream, std::chrono::milliseconds timeout) {
  SSL* ssl = stream.native_handle();
  SSL_set_shutdown(ssl, SSL_get_shutdown(ssl) | SSL_RECEIVED_SHUTDOWN);
  asio::steady_timer deadline(stream.get_executor(), timeout);
  co_await (stream.async_shutdown(use_tuple) || deadline.async_wait(use_tuple));
}

// One AsyncWaitDurable: the handler, called once on its executor, by the
// log's answer or by cancellation, whichever comes first.
template <typename Handler>
struct DurableWait {
  explicit DurableWait(Handler h)
      : handler(std::move(h)),
        work(asio::make_work_guard(asio::get_associated_executor(handler))) {}

  // Hands `status` to the handler on its executor, unless already done.
  // From any thread.
  void Post(const Status& status) {
    std::lock_guard lock(mu);
    if (!work) return;
    asio::post(work->get_executor(), [self = shared(), status] { self->Complete(status); });
    work.reset();
  }
  void Complete(const Status& status) {  // on the handler's executor
    asio::get_associated_cancellation_slot(handler).clear();
    std::move(handler)(status);
  }
  std::shared_ptr<DurableWait> shared() { return self.lock(); }

  Handler handler;
  std::weak_ptr<DurableWait> self;
  std::mutex mu;
  // Until answered or cancelled: keeps the handler's io_context running.
  // After a cancellation the log's late answer touches nothing else.
  std::optional<asio::executor_work_guard<asio::associated_executor_t<Handler>>> work;
};

// Completes with the log's verdict once `token` is durable, on the
// awaiting coroutine's executor; or, if cancelled first, at once with
// kUnavailable (then the log's later answer is ignored).
template <typename Token>
auto AsyncWaitDurable(service::ChangeLog& log, uint64_t token, Token&& completion) {
  return asio::async_initiate<Token, void(Status)>(
      [&log, token](auto handler) {
        using Wait = DurableWait<decltype(handler)>;
        auto wait = std::make_shared<Wait>(std::move(handler));
        wait->self = wait;
        auto slot = asio::get_associated_cancellation_slot(wait->handler);
        if (slot.is_connected()) {
          slot.assign([weak = std::weak_ptr<Wait>(wait)](asio::cancellation_type) {
            if (auto w = weak.lock()) w->Post(Status::Unavailable("cancelled"));
          });
        }
        log.OnDurable(token, [wait](const Status& status) { wait->Post(status); });
      },
      completion);
}

// Sets the calling thread's scheduling policy, SCHED_OTHER or SCHED_BATCH,
// and its time slice (0: the kernel's default; Linux 6.12 or newer, EEVDF
// custom slices, honours others). Best effort: older kernels ignore or
// refuse what they do not know, and a thread given a real-time policy is
// left alone.
void SetFairScheduling(uint32_t policy, uint64_t slice_ns) {
  struct {  // the kernel's struct sched_attr (glibc has no wrapper)
    uint32_t size, sched_policy;
    uint64_t sched_flags;
    int32_t sched_nice;
    uint32_t sched_priority;
    uint64_t sched_runtime, sched_deadline, sched_period;
    uint32_t sched_util_min, sched_util_max;
  } attr{};
  if (syscall(SYS_sched_getattr, 0, &attr, sizeof attr, 0) != 0) return;
  if (attr.sched_policy != SCHED_OTHER) return;
  attr.size = sizeof attr;
  attr.sched_policy = policy;
  attr.sched_runtime = slice_ns;
  syscall(SYS_sched_setattr, 0, &attr, 0);
}

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

}  // namespace

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  return protocol::FormatEndpoint(endpoint.address().to_string(), endpoint.port());
}

struct Server::Impl {
  using Clock = asio::steady_timer::clock_type;

  // Responses of one Process call, waiting to be written.
  struct Chunk {
    std::string bytes;
    uint64_t token = 0;  // the change-log token they wait for
    std::vector<protocol::Connection::Waiting> waiting;
  };

  // A live connection: its socket, its protocol state, and the reader and
  // writer coroutines' shared state. The reader turns requests into chunks
  // of responses, the writer sends them in order, one write at a time.
  // Everything here is touched only on the thread of the context the peer is
  // on; it moves (see MoveToIngestContext) only while none of its
  // coroutines runs.
  struct Peer {
    Peer(tcp::socket s, asio::ssl::context* tls_context, protocol::RequestHandler& handler,
         auth::Authenticator* authenticator, std::size_t max_frame_bytes)
        : socket(std::move(s)),
          writer_wake(socket.get_executor()),
          reader_wake(socket.get_executor()),
          watchdog(socket.get_executor()),
          abandon_wake(socket.get_executor(), asio::steady_timer::time_point::max()),
          tls(tls_context ? std::make_unique<TlsStream>(socket, *tls_context) : nullptr),
          session(authenticator ? std::make_unique<auth::Session>(handler, *authenticator)
                                : nullptr),
          connection(session ? *session : handler, max_frame_bytes) {}
    tcp::socket socket;
    // Timers used as condition variables: cancel() wakes the waiter.
    asio::steady_timer writer_wake;
    asio::steady_timer reader_wake;
    // While a read or a write is pending, when it times out; the watchdog
    // enforces them. Moving a deadline costs a store, not a timer update.
    Clock::time_point read_deadline = Clock::time_point::max();
    Clock::time_point write_deadline = Clock::time_point::max();
    asio::steady_timer watchdog;
    asio::steady_timer abandon_wake;         // see abandoned
    std::unique_ptr<TlsStream> tls;          // over socket; null for plaintext
    std::unique_ptr<auth::Session> session;  // who the client is; null on an open server
    protocol::Connection connection;
    std::deque<Chunk> chunks;
    std::size_t queued_bytes = 0;
    bool reading_done = false;
    bool writing_failed = false;
    bool done = false;    // reader and writer have ended: so does the watchdog
    bool moving = false;  // the reader stopped for the peer to move
    // The shutdown grace period is over: the reader drops what it has not
    // handled, the writer what it has not sent; abandon_wake wakes a writer
    // waiting for durability.
    bool abandoned = false;
    std::optional<std::size_t> ingest_context;  // its index; nullopt: on the query context
    bool may_move = true;                       // false once moved, or once a move failed
  };

  Impl(ServerOptions o, protocol::RequestHandler& h, service::ChangeLog* l, auth::Authenticator* a)
      : options(std::move(o)),
        handler(h),
        log(l),
        authenticator(a),
        ingest_contexts(MakeIngestContexts(options.threads)),
        producers(ingest_contexts.size(), 0),
        control(query_context.get_executor()),
        acceptor(control),
        signals(control),
        reload_signals(control),
        grace_timer(control) {
    keep_running.emplace_back(query_context.get_executor());
    for (const auto& context : ingest_contexts) keep_running.emplace_back(context->get_executor());
  }

  static std::vector<std::unique_ptr<asio::io_context>> MakeIngestContexts(unsigned threads) {
    if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
    std::vector<std::unique_ptr<asio::io_context>> contexts;
    for (unsigned i = 0; i < threads; ++i) {
      contexts.push_back(std::make_unique<asio::io_context>(1));  // one thread each
    }
    return contexts;
  }

  asio::awaitable<void> Accept();
  // Answers RESOURCE_EXHAUSTED and closes; the socket is in `refusing`
  // meanwhile.
  asio::awaitable<void> Refuse(std::shared_ptr<tcp::socket> socket);
  // Spawns a connection's Serve on `executor`; an exception out of it is
  // logged and the connection closed and forgotten.
  template <typename Executor>
  void SpawnServe(const Executor& executor, std::shared_ptr<Peer> peer);
  // The grace period is over: drops what the peer has not handled or sent,
  // and closes it. On the peer's context.
  static void Abandon(Peer& peer);
  // A connection's life on one context: the TLS handshake (first time
  // only), then its reader, writer and watchdog until they end; then either
  // on to an ingest context, or closed.
  asio::awaitable<void> Serve(std::shared_ptr<Peer> peer);
  // Stream: the peer's tcp::socket, or its TlsStream once the handshake is done.
  template <typename Stream>
  asio::awaitable<void> Read(std::shared_ptr<Peer> peer, Stream& stream);
  template <typename Stream>
  asio::awaitable<void> Write(std::shared_ptr<Peer> peer, Stream& stream);
  asio::awaitable<void> Watch(std::shared_ptr<Peer> peer);
  // Re-registers the peer's socket and timers with the ingest context that
  // has the fewest producers and returns it. Null if the server is stopping
  // or the socket could not move; the peer then stays (its socket may have
  // been closed).
  asio::io_context* MoveToIngestContext(Peer& peer);
  void Forget(const std::shared_ptr<Peer>& peer);
  // Each live peer with the executor of the context it is on. REQUIRES: mu held.
  using Located = std::pair<std::shared_ptr<Peer>, asio::any_io_executor>;
  std::vector<Located> LocatePeers() const {
    std::vector<Located> located;
    for (const auto& peer : peers) located.emplace_back(peer, peer->socket.get_executor());
    return located;
  }
  // Lets each thread's run() return once its work is done. REQUIRES: mu held.
  void StopRunning();
  void AwaitSighup();

  const ServerOptions options;
  protocol::RequestHandler& handler;
  service::ChangeLog* const log;
  auth::Authenticator* const authenticator;  // null: open server
  std::unique_ptr<asio::ssl::context> tls;   // null: plaintext
  // One io_context per thread, so that a connection's reader and writer,
  // and the handlers between them, stay on one thread: no locking and no
  // cross-thread wake-up on the way from request to response.
  //
  // Every connection starts on the query context. One that ingests moves,
  // once, to the ingest context with the fewest producers: a query never
  // waits behind a producer's batches on the same thread, and the query
  // thread, mostly asleep, is woken promptly by the kernel even when the
  // ingest threads keep every core busy.
  asio::io_context query_context{1};
  std::vector<std::unique_ptr<asio::io_context>> ingest_contexts;
  // The acceptor, signals and shutdown timer live on the query context.
  std::vector<std::size_t> producers;  // per ingest context; guarded by mu
  asio::io_context::executor_type control;
  tcp::acceptor acceptor;
  Clock::time_point last_accept_error{};  // when it was last reported
  asio::signal_set signals;
  asio::signal_set reload_signals;
  asio::steady_timer grace_timer;

  std::mutex mu;  // guards peers, stopping, producers, keep_running and moves
  std::list<std::shared_ptr<Peer>> peers;
  std::list<std::shared_ptr<tcp::socket>> refusing;  // on the query context
  bool stopping = false;
  // Contexts without connections have no work; these keep them running.
  std::vector<asio::executor_work_guard<asio::io_context::executor_type>> keep_running;
};

asio::awaitable<void> Server::Impl::Accept() {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(query_context, use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: say so (at most every few
      // seconds), back off a moment while the other connections are
      // served, go on.
      if (Clock::now() - last_accept_error >= std::chrono::seconds(5)) {
        last_accept_error = Clock::now();
        std::cerr << "gradientd: accept failed: " << ec.message() << "\n";
      }
      asio::steady_timer pause(control, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    // Every accepted socket counts from here until it is closed: as a
    // connection, or as a refusal in progress.
    std::shared_ptr<Peer> peer;
    std::shared_ptr<tcp::socket> refused;
    {
      std::lock_guard lock(mu);
      if (stopping) co_return;
      if (peers.size() < options.max_connections) {
        peer = std::make_shared<Peer>(std::move(socket), tls.get(), handler, authenticator,
                                      options.max_frame_bytes);
        peers.push_back(peer);
      } else if (refusing.size() < Server::kRefusalAllowance) {
        refused = std::make_shared<tcp::socket>(std::move(socket));
        refusing.push_back(refused);
      }
    }
    if (peer) {
      SpawnServe(control, std::move(peer));
    } else if (refused) {
      asio::co_spawn(control, Refuse(refused), [this, refused](std::exception_ptr) {
        boost::system::error_code e;
        refused->close(e);
        std::lock_guard lock(mu);
        refusing.remove(refused);
      });
    } else {
      socket.close(ignored);  // too many refusals already under way
    }
  }
}

template <typename Executor>
void Server::Impl::SpawnServe(const Executor& executor, std::shared_ptr<Peer> peer) {
  asio::co_spawn(executor, Serve(peer), [this, peer](std::exception_ptr e) {
    if (!e) return;  // Serve has closed and forgotten the connection
    std::cerr << "gradientd: closing a connection after an internal error: " << Describe(e) << "\n";
    boost::system::error_code ignored;
    peer->socket.close(ignored);
    peer->done = true;
    Forget(peer);
  });
}

void Server::Impl::Abandon(Peer& peer) {
  peer.abandoned = true;
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
  if (peer->tls && !peer->ingest_context &&
      !co_await AcceptTls(*peer->tls, options.request_timeout)) {
    peer->socket.close(ignored);
    Forget(peer);
    co_return;
  }
  while (true) {
    if (peer->tls) {
      co_await (Read(peer, *peer->tls) && Write(peer, *peer->tls) && Watch(peer));
    } else {
      co_await (Read(peer, peer->socket) && Write(peer, peer->socket) && Watch(peer));
    }
    if (!peer->moving || peer->writing_failed) break;
    peer->moving = peer->reading_done = peer->done = peer->may_move = false;
    if (asio::io_context* target = MoveToIngestContext(*peer)) {
      SpawnServe(target->get_executor(), peer);
      co_return;
    }
    // Stopping, or the socket could not move: go on here (the reader meets
    // the end of input, or the closed socket).
  }
  if (peer->tls && !peer->writing_failed && !peer->abandoned)
    co_await SendCloseNotify(*peer->tls, options.write_timeout);
  peer->socket.shutdown(tcp::socket::shutdown_both, ignored);
  peer->socket.close(ignored);
  Forget(peer);
}

asio::io_context* Server::Impl::MoveToIngestContext(Peer& peer) {
  std::lock_guard lock(mu);
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
  peer.writer_wake = asio::steady_timer(target);
  peer.reader_wake = asio::steady_timer(target);
  peer.watchdog = asio::steady_timer(target);
  peer.abandon_wake = asio::steady_timer(target, asio::steady_timer::time_point::max());
  peer.ingest_context = index;
  ++producers[index];
  return &target;
}

asio::awaitable<void> Server::Impl::Refuse(std::shared_ptr<tcp::socket> refused) {
  tcp::socket& socket = *refused;
  v1::Response response;
  protocol::SetError(Status::ResourceExhausted("too many connections (the limit is " +
                                               std::to_string(options.max_connections) + ")"),
                     &response);
  std::string frame;
  protocol::AppendFrame(response, &frame);
  if (tls) {
    // A TLS client can only read the refusal over TLS.
    TlsStream stream(socket, *tls);
    if (co_await AcceptTls(stream, options.request_timeout)) {
      asio::steady_timer deadline(socket.get_executor(), options.write_timeout);
      auto result = co_await (asio::async_write(stream, asio::buffer(frame), use_tuple) ||
                              deadline.async_wait(use_tuple));
      if (result.index() == 0 && !std::get<0>(std::get<0>(result))) {
        co_await SendCloseNotify(stream, options.write_timeout);
      }
    }
  } else {
    asio::steady_timer deadline(socket.get_executor(), options.write_timeout);
    co_await (asio::async_write(socket, asio::buffer(frame), use_tuple) ||
              deadline.async_wait(use_tuple));
  }
  boost::system::error_code ignored;
  socket.shutdown(tcp::socket::shutdown_both, ignored);
  socket.close(ignored);
}

template <typename Stream>
asio::awaitable<void> Server::Impl::Read(std::shared_ptr<Peer> peer, Stream& stream) {
  // Responses are cut into chunks of about this size, so a connection's
  // queue is bounded by max_queued_bytes plus one chunk and one response.
  constexpr std::size_t kChunkBytes = 256 * 1024;
  protocol::Connection& connection = peer->connection;
  if constexpr (std::is_same_v<Stream, tcp::socket>) {
    boost::system::error_code ignored;
    stream.non_blocking(true, ignored);  // for the direct write below
  }
  // On the query thread, long work waits for the move to an ingest thread.
  connection.DeferLongWork(!peer->ingest_context && peer->may_move);
  // The request timeout bounds a whole frame from its first byte (a client
  // trickling bytes does not extend it); max while no frame is partial.
  Clock::time_point frame_deadline = Clock::time_point::max();
  uint64_t frames = connection.frames();
  bool open = true;
  while (open && !peer->writing_failed && !peer->abandoned) {
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
    if constexpr (std::is_same_v<Stream, tcp::socket>) {
      // Nothing queued and nothing to wait for: send at once, without
      // waking the writer; what the socket does not take goes to it.
      if (chunk.token == 0 && peer->chunks.empty() && !chunk.bytes.empty()) {
        boost::system::error_code ignored;  // the writer meets any error again
        const std::size_t sent = stream.write_some(asio::buffer(chunk.bytes), ignored);
        chunk.bytes.erase(0, sent);
      }
    }
    if (!chunk.bytes.empty()) {
      peer->queued_bytes += chunk.bytes.size();
      peer->chunks.push_back(std::move(chunk));
      peer->writer_wake.cancel();
    }
    // Back-pressure: a client that does not read its responses stops being read.
    while (peer->queued_bytes >= options.max_queued_bytes && !peer->writing_failed &&
           !peer->abandoned) {
      peer->reader_wake.expires_at(asio::steady_timer::time_point::max());
      co_await peer->reader_wake.async_wait(use_tuple);
    }
    // A producer, or long work: hand the connection over to an ingest
    // thread, once the writer has sent what is queued (Serve does the move).
    if (open && connection.wants_worker() && peer->may_move) {
      peer->moving = true;
      break;
    }
    // A long pipeline: let the other connections on this thread have a turn.
    if (open && connection.HasFrame()) co_await asio::post(peer->socket.get_executor(), use_tuple);
  }
  peer->reading_done = true;
  peer->writer_wake.cancel();
}

template <typename Stream>
asio::awaitable<void> Server::Impl::Write(std::shared_ptr<Peer> peer, Stream& stream) {
  boost::system::error_code ignored;
  while (!peer->abandoned) {
    if (peer->chunks.empty()) {
      if (peer->reading_done) break;
      peer->writer_wake.expires_at(asio::steady_timer::time_point::max());
      co_await peer->writer_wake.async_wait(use_tuple);
      continue;
    }
    Chunk& chunk = peer->chunks.front();
    // Group commit: the responses wait for the one fsync that covers all the
    // changes they acknowledge; meanwhile the reader goes on.
    if (chunk.token > 0 && log != nullptr) {
      auto durable = co_await (AsyncWaitDurable(*log, chunk.token, asio::use_awaitable) ||
                               peer->abandon_wake.async_wait(use_tuple));
      // Abandoned, or cancelled by an exception out of the reader: the log
      // has not answered, so there is no outcome to ask it for.
      const asio::cancellation_state state = co_await asio::this_coro::cancellation_state;
      const asio::cancellation_type cancelled = state.cancelled();
      if (durable.index() != 0 || peer->abandoned || cancelled != asio::cancellation_type::none) {
        break;
      }
      if (!std::get<0>(durable).ok()) {
        // Each response by its own change's fate: an Error only for the
        // changes the log did not make durable. The Errors differ in size
        // from what they replace, and the queue counts what it holds.
        const std::size_t before = chunk.bytes.size();
        protocol::Connection::FailUndurable([this](uint64_t token) { return log->Outcome(token); },
                                            chunk.waiting, &chunk.bytes);
        peer->queued_bytes = peer->queued_bytes - before + chunk.bytes.size();
      }
    }
    peer->write_deadline = Clock::now() + options.write_timeout;
    auto [write_ec, n] = co_await asio::async_write(stream, asio::buffer(chunk.bytes), use_tuple);
    peer->write_deadline = Clock::time_point::max();
    if (write_ec) {
      // Timed out or broken: give up on this client, and stop its reader.
      peer->writing_failed = true;
      peer->socket.close(ignored);
      break;
    }
    peer->queued_bytes -= chunk.bytes.size();
    peer->chunks.pop_front();
    peer->reader_wake.cancel();
  }
  peer->done = true;
  peer->reader_wake.cancel();
  peer->watchdog.cancel();
}

asio::awaitable<void> Server::Impl::Watch(std::shared_ptr<Peer> peer) {
  // Deadlines are only ever set to now + a timeout. Waking at least once per
  // shortest timeout therefore catches each one on time, and moving one
  // never needs to wake the watchdog early.
  const auto period = std::max<std::chrono::milliseconds>(
      std::chrono::milliseconds(1),
      std::min({options.idle_timeout, options.request_timeout, options.write_timeout}));
  boost::system::error_code ignored;
  while (!peer->done && !peer->abandoned) {
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

void Server::Impl::Forget(const std::shared_ptr<Peer>& peer) {
  std::lock_guard lock(mu);
  peers.remove(peer);
  if (peer->ingest_context) --producers[*peer->ingest_context];
  if (stopping && peers.empty()) {
    // The last connection is gone: no need to wait out the grace period.
    asio::post(control, [this] { grace_timer.cancel(); });
    StopRunning();
  }
}

void Server::Impl::StopRunning() {
  for (auto& guard : keep_running) guard.reset();
}

void Server::Impl::AwaitSighup() {
  reload_signals.async_wait([this](const boost::system::error_code& ec, int) {
    if (ec) return;  // cancelled by Stop
    const std::size_t before = authenticator->size();
    if (Status s = authenticator->Reload(); s.ok()) {
      std::cerr << "gradientd: SIGHUP: reloaded " << authenticator->path() << ": "
                << authenticator->size() << " token(s)\n";
    } else {
      std::cerr << "gradientd: SIGHUP: cannot reload the auth file: " << s.message()
                << "; keeping the previous " << before << " token(s)\n";
    }
    AwaitSighup();
  });
}

Server::Server(ServerOptions options, protocol::RequestHandler& handler, service::ChangeLog* log,
               auth::Authenticator* authenticator)
    : impl_(std::make_unique<Impl>(std::move(options), handler, log, authenticator)) {}

Server::~Server() = default;

Status Server::Start() {
  protocol::Endpoint where;
  if (Status s = protocol::ParseEndpoint(impl_->options.listen, &where); !s.ok()) {
    return Status::InvalidArgument("--listen: " + s.message());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->control);
  const auto results =
      resolver.resolve(where.host, std::to_string(where.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve listen address " + impl_->options.listen + ": " +
                                   ec.message());
  }
  if (impl_->options.tls.enabled()) {
    if (Status s = MakeServerTlsContext(impl_->options.tls, &impl_->tls); !s.ok()) return s;
  }
  const tcp::endpoint endpoint = results.begin()->endpoint();
  tcp::acceptor& acceptor = impl_->acceptor;
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return Status::Unavailable("cannot listen on " + impl_->options.listen + ": " + ec.message());
  }
  asio::co_spawn(impl_->control, impl_->Accept(), asio::detached);
  return Status::Ok();
}

tcp::endpoint Server::local_endpoint() const { return impl_->acceptor.local_endpoint(); }

void Server::StopOnSignals() {
  impl_->signals.add(SIGINT);
  impl_->signals.add(SIGTERM);
  impl_->signals.async_wait([this](const boost::system::error_code& ec, int signal) {
    if (ec) return;
    std::cerr << "gradientd: received signal " << signal << ", shutting down\n";
    Stop();
  });
}

void Server::ReloadOnSighup() {
  if (impl_->authenticator == nullptr) return;
  impl_->reload_signals.add(SIGHUP);
  impl_->AwaitSighup();
}

void Server::Run() {
  std::vector<std::thread> pool;
  for (std::size_t i = 0; i < impl_->ingest_contexts.size(); ++i) {
    pool.emplace_back([context = impl_->ingest_contexts[i].get(), i] {
      pthread_setname_np(pthread_self(), ("gd-ingest-" + std::to_string(i)).substr(0, 15).c_str());
      // Ingest is throughput work. A SCHED_BATCH thread does not preempt the
      // running thread when it wakes, so a producer's bytes gather into
      // larger reads instead of waking the reader as each piece arrives
      // (BENCHMARKS.md, "What the profile taught", 7).
      SetFairScheduling(SCHED_BATCH, 0);
      context->run();
    });
  }
  pthread_setname_np(pthread_self(), "gd-query");
  // A short slice gives the query thread an early deadline, so when a query
  // wakes it, it preempts a busy thread at once instead of queueing behind
  // that thread's slice (1.4 ms by default). It costs nothing while the
  // thread sleeps.
  constexpr uint64_t kQuerySliceNs = 100'000;  // the shortest the kernel allows
  SetFairScheduling(SCHED_OTHER, kQuerySliceNs);
  impl_->query_context.run();
  for (auto& t : pool) t.join();
}

void Server::Stop() {
  asio::post(impl_->control, [impl = impl_.get()] {
    std::vector<Impl::Located> peers;
    {
      std::lock_guard lock(impl->mu);
      if (impl->stopping) return;
      impl->stopping = true;  // from here on, no connection moves
      peers = impl->LocatePeers();
      if (peers.empty()) impl->StopRunning();
    }
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->signals.cancel(ignored);
    impl->reload_signals.cancel(ignored);
    {
      // Refusals in progress (on this context) end at once.
      std::lock_guard lock(impl->mu);
      for (const auto& refused : impl->refusing) refused->close(ignored);
    }
    // Half-close for reading: each connection sees end of input once it has
    // handled what it received, sends its responses and ends. Over TLS too:
    // this is the TCP socket under the TLS stream, whose read then fails
    // (stream_truncated) while its write side keeps working.
    for (const auto& [peer, executor] : peers) {
      asio::post(executor, [peer] {
        boost::system::error_code e;
        peer->socket.shutdown(tcp::socket::shutdown_receive, e);
      });
    }
    // Connections still there after the grace period (a client that does not
    // read, a pipeline still being handled, a log that does not answer) are
    // abandoned: what they have not handled or sent is dropped.
    if (peers.empty()) return;
    impl->grace_timer.expires_after(kShutdownGrace);
    impl->grace_timer.async_wait([impl](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: every connection has ended
      std::vector<Impl::Located> left;
      {
        std::lock_guard lock(impl->mu);
        left = impl->LocatePeers();
      }
      for (const auto& [peer, executor] : left) {
        asio::post(executor, [peer] { Impl::Abandon(*peer); });
      }
    });
  });
}

}  // namespace gradientd::server
