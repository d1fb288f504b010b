// The server's threads (one io_context each), signals and shutdown.
// Accepting is in acceptor.cc, a connection's life in peer.cc.
#include "server/server.h"

#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <boost/asio/post.hpp>
#include <iostream>
#include <thread>

#include "server/server_impl.h"

namespace gradientd::server {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(2);

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

std::vector<std::unique_ptr<asio::io_context>> MakeIngestContexts(unsigned threads) {
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::unique_ptr<asio::io_context>> contexts;
  for (unsigned i = 0; i < threads; ++i) {
    contexts.push_back(std::make_unique<asio::io_context>(1));  // one thread each
  }
  return contexts;
}

}  // namespace

Server::Impl::Impl(ServerOptions o, protocol::RequestHandler& h, service::ChangeLog* l,
                   auth::Authenticator* a)
    : options(std::move(o)),
      handler(h),
      log(l),
      authenticator(a),
      ingest_contexts(MakeIngestContexts(options.threads)),
      control(query_context.get_executor()),
      acceptor(control),
      signals(control),
      reload_signals(control),
      grace_timer(control),
      producers(ingest_contexts.size(), 0) {
  keep_running.emplace_back(query_context.get_executor());
  for (const auto& context : ingest_contexts) keep_running.emplace_back(context->get_executor());
}

std::vector<Server::Impl::Located> Server::Impl::LocatePeers() const {
  std::vector<Located> located;
  for (const auto& peer : peers) located.emplace_back(peer, peer->socket.get_executor());
  return located;
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

void Server::Impl::BeginStop() {
  std::vector<Located> located;
  {
    util::MutexLock lock(mu);
    if (stopping) return;
    stopping = true;  // from here on, no connection moves
    located = LocatePeers();
    if (located.empty()) StopRunning();
  }
  boost::system::error_code ignored;
  acceptor.close(ignored);
  for (const auto& stop : on_stop) stop();
  signals.cancel(ignored);
  reload_signals.cancel(ignored);
  {
    // Refusals in progress (on this context) end at once.
    util::MutexLock lock(mu);
    for (const auto& refused : refusing) refused->close(ignored);
  }
  // Half-close for reading: each connection sees end of input once it has
  // handled what it received, sends its responses and ends. Over TLS too:
  // this is the TCP socket under the TLS stream, whose read then fails
  // (stream_truncated) while its write side keeps working.
  for (const Located& where : located) {
    asio::post(where.second, [peer = where.first] {
      boost::system::error_code e;
      peer->socket.shutdown(tcp::socket::shutdown_receive, e);
    });
  }
  // Connections still there after the grace period (a client that does not
  // read, a pipeline still being handled, a log that does not answer) are
  // abandoned: what they have not handled or sent is dropped.
  if (located.empty()) return;
  grace_timer.expires_after(kShutdownGrace);
  grace_timer.async_wait([this](const boost::system::error_code& ec) {
    if (!ec) AbandonTheRest();  // else cancelled: every connection has ended
  });
}

void Server::Impl::AbandonTheRest() {
  std::vector<Located> left;
  {
    util::MutexLock lock(mu);
    left = LocatePeers();
  }
  for (const Located& where : left) {
    asio::post(where.second, [peer = where.first] { Abandon(*peer); });
  }
}

Server::Server(ServerOptions options, protocol::RequestHandler& handler, service::ChangeLog* log,
               auth::Authenticator* authenticator)
    : impl_(std::make_unique<Impl>(std::move(options), handler, log, authenticator)) {}

Server::~Server() = default;

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

ConnectionCounts Server::Connections() const {
  ConnectionCounts counts;
  if (impl_->options.metrics != nullptr) {
    counts.handshaking =
        static_cast<std::size_t>(std::max<int64_t>(0, impl_->options.metrics->handshaking.Value()));
  }
  util::MutexLock lock(impl_->mu);
  counts.established = impl_->peers.size() - std::min(impl_->peers.size(), counts.handshaking);
  counts.refusing = impl_->refusing.size();
  return counts;
}

void Server::SetChangeLog(service::ChangeLog* log) { impl_->log = log; }

void Server::ServeQueriesDuring(const std::function<void()>& work) {
  std::thread queries([context = &impl_->query_context] {
    pthread_setname_np(pthread_self(), "gd-query-start");
    context->run();
  });
  work();
  impl_->query_context.stop();  // its handlers stay queued for Run
  queries.join();
  impl_->query_context.restart();
}

asio::any_io_executor Server::query_executor() { return impl_->control; }

asio::ssl::context* Server::tls_context() { return impl_->tls.get(); }

void Server::OnStop(std::function<void()> stop) { impl_->on_stop.push_back(std::move(stop)); }

void Server::Stop() {
  asio::post(impl_->control, [impl = impl_.get()] { impl->BeginStop(); });
}

}  // namespace gradientd::server
