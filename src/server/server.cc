#include "server/server.h"

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <iostream>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "protocol/endpoint.h"

namespace gradientd::server {
namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

constexpr auto kShutdownGrace = std::chrono::seconds(2);
constexpr auto use_tuple = asio::as_tuple(asio::use_awaitable);

}  // namespace

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  const auto address = endpoint.address();
  const std::string host = address.is_v6() ? "[" + address.to_string() + "]" : address.to_string();
  return host + ":" + std::to_string(endpoint.port());
}

struct Server::Impl {
  // A live connection; its socket is only touched on its strand.
  struct Peer {
    explicit Peer(tcp::socket s) : socket(std::move(s)) {}
    tcp::socket socket;
  };

  Impl(ServerOptions o, protocol::RequestHandler& h)
      : options(std::move(o)),
        handler(h),
        control(asio::make_strand(io)),
        acceptor(control),
        signals(control),
        grace_timer(control) {}

  asio::awaitable<void> Accept();
  asio::awaitable<void> Serve(std::shared_ptr<Peer> peer);
  void Forget(const std::shared_ptr<Peer>& peer);

  const ServerOptions options;
  protocol::RequestHandler& handler;
  asio::io_context io;
  // The acceptor, signals and shutdown timer are only touched on this strand.
  asio::strand<asio::io_context::executor_type> control;
  tcp::acceptor acceptor;
  asio::signal_set signals;
  asio::steady_timer grace_timer;

  std::mutex mu;  // guards peers and stopping
  std::list<std::shared_ptr<Peer>> peers;
  bool stopping = false;
};

asio::awaitable<void> Server::Impl::Accept() {
  while (true) {
    auto [ec, socket] = co_await acceptor.async_accept(asio::make_strand(io), use_tuple);
    if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) {
      // Out of descriptors and the like: say so, back off a moment, go on.
      std::cerr << "gradientd: accept failed: " << ec.message() << "\n";
      asio::steady_timer pause(io, std::chrono::milliseconds(100));
      co_await pause.async_wait(use_tuple);
      continue;
    }
    boost::system::error_code ignored;
    socket.set_option(tcp::no_delay(true), ignored);
    auto peer = std::make_shared<Peer>(std::move(socket));
    {
      std::lock_guard lock(mu);
      if (stopping) co_return;
      peers.push_back(peer);
    }
    asio::co_spawn(peer->socket.get_executor(), Serve(peer), asio::detached);
  }
}

asio::awaitable<void> Server::Impl::Serve(std::shared_ptr<Peer> peer) {
  protocol::Connection connection(handler, options.max_frame_bytes);
  std::string out;
  bool open = true;
  while (open) {
    const std::span<uint8_t> space = connection.ReceiveBuffer();
    auto [read_ec, n] =
        co_await peer->socket.async_read_some(asio::buffer(space.data(), space.size()), use_tuple);
    if (read_ec) break;  // EOF, reset, or shutdown
    connection.Received(n);
    out.clear();
    open = connection.Process(&out);
    // One write per read cycle carries every response it produced; reading
    // waits for it, so a client that does not read its replies stops being
    // read (back-pressure).
    if (!out.empty()) {
      auto [write_ec, written] =
          co_await asio::async_write(peer->socket, asio::buffer(out), use_tuple);
      if (write_ec) break;
    }
  }
  boost::system::error_code ignored;
  peer->socket.shutdown(tcp::socket::shutdown_both, ignored);
  peer->socket.close(ignored);
  Forget(peer);
}

void Server::Impl::Forget(const std::shared_ptr<Peer>& peer) {
  std::lock_guard lock(mu);
  peers.remove(peer);
  if (stopping && peers.empty()) {
    // The last connection is gone: no need to wait out the grace period.
    asio::post(control, [this] { grace_timer.cancel(); });
  }
}

Server::Server(ServerOptions options, protocol::RequestHandler& handler)
    : impl_(std::make_unique<Impl>(std::move(options), handler)) {}

Server::~Server() = default;

Status Server::Start() {
  protocol::Endpoint where;
  if (Status s = protocol::ParseEndpoint(impl_->options.listen, &where); !s.ok()) {
    return Status::InvalidArgument("--listen: " + s.message());
  }
  boost::system::error_code ec;
  tcp::resolver resolver(impl_->io);
  const auto results =
      resolver.resolve(where.host, std::to_string(where.port),
                       tcp::resolver::passive | tcp::resolver::numeric_service, ec);
  if (ec || results.empty()) {
    return Status::InvalidArgument("cannot resolve listen address " + impl_->options.listen + ": " +
                                   ec.message());
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

void Server::Run() {
  unsigned threads = impl_->options.threads;
  if (threads == 0) threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<std::thread> pool;
  for (unsigned i = 1; i < threads; ++i) pool.emplace_back([this] { impl_->io.run(); });
  impl_->io.run();
  for (auto& t : pool) t.join();
}

void Server::Stop() {
  asio::post(impl_->control, [impl = impl_.get()] {
    std::vector<std::shared_ptr<Impl::Peer>> peers;
    {
      std::lock_guard lock(impl->mu);
      if (impl->stopping) return;
      impl->stopping = true;
      peers.assign(impl->peers.begin(), impl->peers.end());
    }
    boost::system::error_code ignored;
    impl->acceptor.close(ignored);
    impl->signals.cancel(ignored);
    // Half-close for reading: each connection sees end of input once it has
    // handled what it received, sends its responses and ends.
    for (const auto& peer : peers) {
      asio::post(peer->socket.get_executor(), [peer] {
        boost::system::error_code e;
        peer->socket.shutdown(tcp::socket::shutdown_receive, e);
      });
    }
    // Connections whose client does not read their responses are closed.
    if (peers.empty()) return;
    impl->grace_timer.expires_after(kShutdownGrace);
    impl->grace_timer.async_wait([impl](const boost::system::error_code& ec) {
      if (ec) return;  // cancelled: every connection has ended
      std::vector<std::shared_ptr<Impl::Peer>> left;
      {
        std::lock_guard lock(impl->mu);
        left.assign(impl->peers.begin(), impl->peers.end());
      }
      for (const auto& peer : left) {
        asio::post(peer->socket.get_executor(), [peer] {
          boost::system::error_code e;
          peer->socket.close(e);
        });
      }
    });
  });
}

}  // namespace gradientd::server
